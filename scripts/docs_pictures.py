"""Draw the pictures of the documentation's tour (docs/images/tour-*.png) from a trained model.

The model is the shipped `pretrained:vae-conv/fashion-mnist` where this vaezoo has those weights and the
Fashion-MNIST files; otherwise a vae-mlp is trained here on the built-in 8x8 digits (the `vaezoo demo` recipe,
a minute or two on a CPU). docs/images/tour.json records which, with the seed. Run from the repository root:

    python scripts/docs_pictures.py [--epochs 100] [--out docs/images]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import vaezoo  # noqa: E402
from vaezoo.analysis import explore  # noqa: E402
from vaezoo.analysis.pictures import save_grid  # noqa: E402
from vaezoo.analysis.run_held_out import run_held_out  # noqa: E402
from vaezoo.errors import VaezooError  # noqa: E402
from vaezoo.runs.directory import load_run_data  # noqa: E402

PRETRAINED = "pretrained:vae-conv/fashion-mnist"
SEED = 0


def trained_model(epochs: int, scratch: Path):
    """(model, held-out set, record of where they came from): the shipped weights, else a digits run."""
    try:  # the reference itself is given to each call: each resolves it as vaezoo resolves any run
        model, data = vaezoo.load_model(PRETRAINED), load_run_data(PRETRAINED)
        return model, run_held_out(PRETRAINED, model, data), {"model": PRETRAINED}
    except VaezooError as exc:
        print(f"{PRETRAINED} is not available here ({exc}); training vae-mlp on the digits instead")
    from vaezoo.training.trainer import TrainConfig, train

    config = TrainConfig(variant="vae-mlp", dataset="digits", out=str(scratch / "run"), epochs=epochs,
                         batch_size=64, seed=SEED)
    run = train(config, progress=False)
    model, data = vaezoo.load_model(run), load_run_data(run)
    command = f"vaezoo train vae-mlp --dataset digits --epochs {epochs} --batch-size 64 --seed {SEED}"
    return model, run_held_out(run, model, data), {"model": "vae-mlp trained on digits", "command": command}


@torch.no_grad()
def draw(model, held_out, out: Path) -> list[str]:
    """Write the tour's pictures into `out`; their names."""
    torch.manual_seed(SEED)
    x, y = held_out.first(8, "cpu", stored=True)
    # encoder -> posterior -> sample -> decoder: each row is an input, the decoded posterior mean, then six
    # decoded draws z = mu + sigma * eps of its posterior (the fused operator draws them)
    mu, logvar = model.encode(x)
    draws = [vaezoo.ops.reparameterize(mu, logvar)[0] for _ in range(6)]
    columns = [x, model.decode(mu), *(model.decode(z) for z in draws)]
    save_grid(torch.stack([c.to(x.dtype) for c in columns], dim=1).flatten(0, 1), out / "tour-posterior.png", nrow=8)
    save_grid(model.sample(64), out / "tour-prior.png", nrow=8)
    xa, _ = held_out.read(np.arange(0, 12, 2), "cpu", stored=True)
    xb, _ = held_out.read(np.arange(1, 12, 2), "cpu", stored=True)
    save_grid(explore.interpolate(model, xa, xb, steps=10), out / "tour-interpolation.png", nrow=10)
    rows = np.arange(12, 24).reshape(3, 4).T  # four triples (a, b, c)
    triples = [held_out.read(r, "cpu", stored=True)[0] for r in rows.T]
    save_grid(explore.arithmetic(model, *triples), out / "tour-arithmetic.png", nrow=4)
    return ["tour-posterior.png", "tour-prior.png", "tour-interpolation.png", "tour-arithmetic.png"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs of the digits run, when it is trained")
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"), help="folder for the pictures")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        model, held_out, record = trained_model(args.epochs, Path(scratch))
        names = draw(model.eval(), held_out, out)
    (out / "tour.json").write_text(json.dumps({**record, "seed": SEED, "pictures": names}, indent=2) + "\n")
    print(f"wrote {', '.join(names)} into {out} from {record['model']}")


if __name__ == "__main__":
    main()
