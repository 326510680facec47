"""Train the sample-quality feature network of each named built-in dataset once and ship it in
vaezoo/metrics/feature_nets/ (float16 safetensors, recorded with its SHA-256, the data's cache key and its
held-out accuracy in manifest.json), so that FID, KID and precision/recall are the same on every machine.

    OMP_NUM_THREADS=1 python scripts/ship_feature_nets.py fashion-mnist digits colour-shapes dsprites

A maintainer's tool: run it only when the network or a dataset changes (the figures made with the old
network then change too).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save

from vaezoo.analysis.eval_extras import _feature_images
from vaezoo.atomic import atomic_write, atomic_write_text
from vaezoo.data.datasets import load_dataset
from vaezoo.metrics import classifier


def ship(name: str, folder: Path) -> dict:
    """Train `name`'s network as vaezoo would, store it in float16 and return its manifest record."""
    data = load_dataset(name)
    train, test = _feature_images(data.train), _feature_images(data.test)
    classifier.check_labels(name, train)
    key = classifier.cache_key(name, train, test, classifier.STEPS, classifier.BATCH_SIZE, classifier.SEED)
    net = classifier.train_feature_net(train, progress=True)
    half = {k: v.detach().to(torch.float16).contiguous() for k, v in net.state_dict().items()}
    net.load_state_dict({k: v.float() for k, v in half.items()})  # measured as shipped: float16 values
    blob = save(half)
    file = f"{name}.safetensors"
    atomic_write(folder / file, lambda f: f.write(blob))
    return {"file": file, "sha256": hashlib.sha256(blob).hexdigest(), "data_hash": key,
            "version": classifier.VERSION, "classes": int(train.labels.max()) + 1,
            "test_accuracy": classifier._accuracy(net, test), "steps": classifier.STEPS,
            "batch_size": classifier.BATCH_SIZE, "seed": classifier.SEED, "storage": "float16",
            "torch": torch.__version__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="+", help="built-in dataset names")
    parser.add_argument("--folder", type=Path, default=classifier.SHIPPED, help="where to write (default: the package's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.folder.mkdir(parents=True, exist_ok=True)
    manifest = classifier.shipped_manifest(args.folder)
    for name in args.datasets:
        manifest[name] = ship(name, args.folder)
        print(f"{name}: {json.dumps(manifest[name])}", file=sys.stderr)
        atomic_write_text(args.folder / classifier.MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
