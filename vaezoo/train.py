"""The training loop: a VAE by name on a dataset by name, written to a run directory."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from tqdm import tqdm

from vaezoo import evaluate, viz
from vaezoo.data import Dataset, batches, dataset_loader, fixed_binarization
from vaezoo.errors import VaezooError
from vaezoo.factory import create_model, resolve
from vaezoo.model import VAE
from vaezoo.rundir import append_metrics, prepare_run_dir, save_weights, write_config


@dataclass
class TrainConfig:
    """Everything that decides a training run."""

    variant: str
    dataset: str
    out: str
    data_dir: str | None = None
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    latent_dim: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    seed: int = 0

    def validate(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise VaezooError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise VaezooError(f"lr must be a positive number, got {self.lr!r}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise VaezooError(f"device must be cpu or cuda, got {self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise VaezooError("device cuda was asked for, but PyTorch sees no CUDA GPU here")


def save_pictures(model: VAE, data: Dataset, run: Path, n: int = 64) -> None:
    """samples.png (decoded prior draws) and reconstructions.png (inputs above their reconstructions)."""
    device = next(model.parameters()).device
    model.eval()
    viz.save_grid(model.sample(n), run / "samples.png")
    originals = data.test_x[:32].to(device)
    recon = model.reconstruct(originals, data.test_y[:32] if model.conditional else None)
    pairs = torch.stack([originals.view(4, 8, *originals.shape[1:]), recon.view(4, 8, *recon.shape[1:])], dim=1)
    viz.save_grid(pairs.reshape(-1, *originals.shape[1:]), run / "reconstructions.png", nrow=8)


def labelled_batches(
    data: Dataset, batch_size: int, generator: torch.Generator, binarize: bool
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled (x, y) training batches, x binarized afresh per batch when asked (the draws of `batches`)."""
    for index in batches(torch.arange(len(data.train_x)), batch_size, shuffle=True, generator=generator):
        x = data.train_x[index]
        yield (torch.bernoulli(x, generator=generator) if binarize else x), data.train_y[index]


def train(config: TrainConfig, progress: bool = True) -> Path:
    """Train `config.variant` on `config.dataset` and write the run directory; returns its path."""
    config.validate()
    resolve(config.variant, config.overrides)  # bad names and overrides fail before any work
    loader = dataset_loader(config.dataset)
    data = loader(Path(config.data_dir) if config.data_dir else None)
    run = prepare_run_dir(config.out)
    model = create_model(config.variant, input_shape=data.input_shape, latent_dim=config.latent_dim, **config.overrides)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    device = torch.device(config.device)
    model.to(device)
    write_config(run, {**model.config, "dataset": config.dataset, "train": asdict(config)})
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    binarize = model.likelihood.binary_data
    held_out = fixed_binarization(data.test_x) if binarize else data.test_x
    held_out_labels = data.test_y if model.conditional else None
    steps_per_epoch = math.ceil(len(data.train_x) / config.batch_size)

    for epoch in range(1, config.epochs + 1):
        model.train()
        start, total, seen = time.perf_counter(), 0.0, 0
        bar = tqdm(
            labelled_batches(data, config.batch_size, generator, binarize),
            total=steps_per_epoch, desc=f"epoch {epoch}/{config.epochs}", disable=not progress, leave=False,
        )
        for i, (x, y) in enumerate(bar):
            model.objective.step = (epoch - 1) * steps_per_epoch + i
            x = x.to(device, non_blocking=True)
            loss = model(x, y.to(device) if model.conditional else None).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
            seen += len(x)
            bar.set_postfix(loss=f"{total / seen:.2f}", refresh=False)
        train_seconds = time.perf_counter() - start
        val = evaluate.elbo(model, held_out, held_out_labels)
        metrics = {
            "epoch": epoch, "train_loss": total / seen, "val_elbo": val["elbo"], "val_recon": val["recon"],
            "val_kl": val["kl"], "seconds": round(train_seconds, 3),
        }
        if "bits_per_dim" in val:
            metrics["val_bits_per_dim"] = val["bits_per_dim"]
        append_metrics(run, metrics)
        save_weights(run, model)
        if progress:
            tqdm.write(
                f"epoch {epoch}/{config.epochs}  train_loss {metrics['train_loss']:.2f}  "
                f"val_elbo {val['elbo']:.2f} nats  ({train_seconds:.1f}s)"
            )
    save_pictures(model, data, run)
    return run
