"""The feature network behind vaezoo's sample-quality metrics: a small CNN that vaezoo trains on a dataset's
training labels, deterministically (fixed seed, one thread, on the CPU), reading only the batches it trains on.
Its penultimate layer gives the features.

The cache is keyed by what the network was made from without reading the whole dataset (the dataset's name,
its split sizes, image shape and type, a hash of its labels and of a fixed sample of its images, and the
training settings), and holds a checksum of its weights and of its record, verified on every read: a cache
that is damaged, replaced or made from other data is said in one line and trained again, never trusted.

For the built-in datasets vaezoo ships the network it trained once (feature_nets/, fixed by SHA-256 in
feature_nets/manifest.json), used whenever the data's cache key is the one it was made from, so that the same
images give the same FID on every machine (a network trained here depends on the CPU's arithmetic). Other
data trains its own as above; the figures name which network was used and its hash. (A run trained on part of
a dataset, with --limit, is measured on its dataset's network all the same: vaezoo.analysis hands this module
the whole training split, Splits.full_train.)

These are domain features: FID, KID and precision/recall computed on them compare models within vaezoo on
one dataset, not with figures computed on Inception features (whose weights vaezoo never downloads).
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load as load_weights
from safetensors.torch import save as save_weights
from torch import nn
from tqdm import tqdm

from vaezoo.atomic import atomic_write, atomic_write_text
from vaezoo.cache import cache_dir
from vaezoo.errors import DataError

SHIPPED = Path(__file__).resolve().parent / "feature_nets"  # the networks shipped with vaezoo
MANIFEST = "manifest.json"  # per dataset name: file, sha256, data_hash, classes, test_accuracy, steps

VERSION = 2  # 2: trained batch by batch from an ImageSet; cache key and checksums
FEATURES = 128
STEPS = 1000  # training steps
BATCH_SIZE = 128
SEED = 0
KEY_SAMPLE_ROWS = 64  # training images hashed into the cache key, evenly spaced over the split


class FeatureNet(nn.Module):
    """Three stride-2 3x3 convolutions (16, 32, 64 channels), pooled to 4x4, a dense layer of FEATURES units,
    a linear head: cheap enough to train on one CPU thread in a minute or two."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = input_shape[0]
        for out in (16, 32, 64):
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.ReLU()]
            channels = out
        self.body = nn.Sequential(
            *layers, nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64 * 16, FEATURES), nn.ReLU(),
        )
        self.head = nn.Linear(FEATURES, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Penultimate-layer features [N, FEATURES] of images [N, C, H, W], in batches."""
        device = next(self.parameters()).device
        return torch.cat([self.body(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


@dataclass
class LabelledImages:
    """One split as the feature network reads it: `read(rows)` gives the images of those rows as floats in
    [0, 1], [n, *shape]; `labels` (int64 [N]) are in memory. (vaezoo.analysis makes one from an ImageSet.)"""

    read: Callable[[np.ndarray], torch.Tensor]
    labels: torch.Tensor
    shape: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class FeatureExtractor:
    """A trained FeatureNet with what it was trained on and how well it classifies held-out images."""

    net: FeatureNet
    dataset: str
    data_hash: str  # the cache key: what the network was made from
    test_accuracy: float
    steps: int
    sha256: str = ""  # of the network's safetensors file
    shipped: bool = False  # shipped with vaezoo (the same everywhere), or trained on this machine

    def describe(self) -> dict:
        return {"network": f"vaezoo FeatureNet v{VERSION}", "dataset": self.dataset, "data_hash": self.data_hash,
                "test_accuracy": self.test_accuracy, "training_steps": self.steps, "features": FEATURES,
                "weights_sha256": self.sha256,
                "source": "shipped with vaezoo" if self.shipped else "trained on this machine"}


def check_labels(name: str, train: LabelledImages) -> None:
    """DataError unless the training labels are class labels with at least two classes."""
    labels = train.labels
    if labels.dim() != 1 or len(torch.unique(labels)) < 2:
        raise DataError(f"{name}: the sample-quality features need class labels with at least two classes")


def cache_key(
    name: str, train: LabelledImages, test: LabelledImages, steps: int, batch_size: int, seed: int
) -> str:
    """SHA-256 (first 16 hex digits) of what a feature network is made from, reading only KEY_SAMPLE_ROWS
    training images: the dataset's name, split sizes and image shape, every label, the sampled images, the
    training settings and the network's version."""
    digest = hashlib.sha256()
    settings = {"name": name, "train": len(train), "test": len(test), "shape": list(train.shape), "steps": steps,
                "batch_size": batch_size, "seed": seed, "version": VERSION, "features": FEATURES}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for labels in (train.labels, test.labels):
        digest.update(labels.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
    rows = np.unique(np.linspace(0, len(train) - 1, KEY_SAMPLE_ROWS).round().astype(np.int64))
    digest.update(train.read(rows).detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _accuracy(net: FeatureNet, images: LabelledImages, batch_size: int = 500) -> float:
    """The share of `images` whose label the network predicts, read in batches."""
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            rows = np.arange(start, min(start + batch_size, len(images)), dtype=np.int64)
            correct += int((net(images.read(rows)).argmax(1) == images.labels[torch.from_numpy(rows)]).sum())
    return correct / len(images)


def train_feature_net(
    train: LabelledImages, steps: int = STEPS, batch_size: int = BATCH_SIZE, seed: int = SEED, progress: bool = False
) -> FeatureNet:
    """Train a FeatureNet to classify the labels of `train` with Adam, on one CPU thread from a fixed seed, so
    that the same data always gives the same weights. Only the steps x batch_size rows trained on are read."""
    classes = int(train.labels.max()) + 1
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = FeatureNet(tuple(train.shape), classes)
            optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
            generator = torch.Generator().manual_seed(seed)
            order = torch.randperm(len(train), generator=generator)
            position = 0
            for _ in tqdm(range(steps), desc="feature network", leave=False, delay=2.0, disable=not progress):
                if position + batch_size > len(order):
                    order, position = torch.randperm(len(train), generator=generator), 0
                rows = order[position : position + batch_size]
                position += batch_size
                loss = nn.functional.cross_entropy(net(train.read(rows.numpy())), train.labels[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return net.eval()


def _record_checksum(record: dict) -> str:
    """SHA-256 of a cache record's fields other than its checksum, in a canonical form."""
    fields = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _cached(weights: Path, record_path: Path, key: str, shape: tuple[int, ...], classes: int) -> FeatureExtractor | str:
    """The cached extractor if its record and weights are whole and made from `key`, else why not."""
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"its record is unreadable ({type(exc).__name__})"
    if not isinstance(record, dict) or record.get("checksum") != _record_checksum(record):
        return "its record does not match its checksum"
    if (record.get("data_hash"), record.get("version"), record.get("classes")) != (key, VERSION, classes):
        return "it was made from other data or settings"
    try:
        blob = weights.read_bytes()
    except OSError as exc:
        return f"its weights are unreadable ({exc.strerror or exc})"
    if hashlib.sha256(blob).hexdigest() != record.get("weights_sha256"):
        return "its weights do not match their checksum"
    net = FeatureNet(shape, classes)
    try:
        net.load_state_dict(load_weights(blob))
    except Exception as exc:  # noqa: BLE001 - weights that pass the checksum but not the network: rebuilt all the same
        return f"its weights do not fit the network ({type(exc).__name__})"
    return FeatureExtractor(net.eval(), record["dataset"], key, float(record["test_accuracy"]), int(record["steps"]),
                            record["weights_sha256"])


def shipped_manifest(folder: Path = SHIPPED) -> dict[str, dict]:
    """The record of every feature network shipped in `folder`, by dataset name (empty when there is none)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{folder / MANIFEST} is unreadable ({type(exc).__name__}): reinstall vaezoo") from None
    return manifest if isinstance(manifest, dict) else {}


def shipped_extractor(name: str, key: str, shape: tuple[int, ...], classes: int,
                      folder: Path = SHIPPED) -> FeatureExtractor | None:
    """The feature network shipped for dataset `name` when it was made from data with the cache key `key`
    (None otherwise: other data trains its own); DataError when its file does not match its SHA-256."""
    record = shipped_manifest(folder).get(name)
    if not isinstance(record, dict) or (record.get("data_hash"), record.get("version"), record.get("classes")) != (
            key, VERSION, classes):
        return None
    path = folder / str(record.get("file"))
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise DataError(f"the shipped feature network {path} is unreadable ({exc.strerror or exc}): reinstall vaezoo") from None
    actual = hashlib.sha256(blob).hexdigest()
    if actual != record.get("sha256"):
        raise DataError(f"the shipped feature network {path} has SHA-256 {actual[:12]}..., not {str(record.get('sha256'))[:12]}... "
                        "as recorded: the file was changed or damaged; reinstall vaezoo")
    net = FeatureNet(shape, classes)
    net.load_state_dict({k: v.float() for k, v in load_weights(blob).items()})
    return FeatureExtractor(net.eval(), name, key, float(record["test_accuracy"]), int(record["steps"]), actual, True)


def feature_extractor(name: str, train: LabelledImages, test: LabelledImages, steps: int | None = None,
                      progress: bool = False) -> FeatureExtractor:
    """The FeatureNet of a dataset (trained on its training split and labels): the one shipped with vaezoo
    when this is the data it was made from, else from the cache when it is whole
    and made from this data, else trained and cached now (a damaged or foreign cache is said in one line on
    stderr); its test accuracy is measured on the held-out split."""
    steps = steps or STEPS
    check_labels(name, train)
    classes = int(train.labels.max()) + 1
    key = cache_key(name, train, test, steps, BATCH_SIZE, SEED)
    shipped = shipped_extractor(name, key, tuple(train.shape), classes)
    if shipped is not None:
        return shipped
    stem = f"{name.replace(':', '_').replace('/', '_')}-{key}-v{VERSION}"
    folder = cache_dir("classifiers")
    weights, record_path = folder / f"{stem}.safetensors", folder / f"{stem}.json"
    if weights.exists() or record_path.exists():
        cached = _cached(weights, record_path, key, tuple(train.shape), classes)
        if isinstance(cached, FeatureExtractor):
            return cached
        print(f"vaezoo: the cached feature network {weights} cannot be used: {cached}; training it again",
              file=sys.stderr)
    if progress:
        print(f"training the sample-quality feature network on {name} ({steps} steps, cached in {folder})")
    net = train_feature_net(train, steps, progress=progress)
    accuracy = _accuracy(net, test)
    blob = save_weights({k: v.contiguous() for k, v in net.state_dict().items()})
    atomic_write(weights, lambda f: f.write(blob))
    record = {"dataset": name, "data_hash": key, "version": VERSION, "classes": classes, "test_accuracy": accuracy,
              "steps": steps, "batch_size": BATCH_SIZE, "seed": SEED,
              "weights_sha256": hashlib.sha256(blob).hexdigest()}
    atomic_write_text(record_path, json.dumps({**record, "checksum": _record_checksum(record)}, indent=2) + "\n")
    return FeatureExtractor(net, name, key, accuracy, steps, record["weights_sha256"])
