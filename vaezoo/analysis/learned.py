"""What `vaezoo eval --disentanglement --sample-quality` adds to a run's evaluation: the disentanglement
metrics on held-out codes and ground-truth factors, sample quality on the features of vaezoo's per-dataset
classifier, and a traversal picture whose rows are labelled by the factor each latent dimension captures."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vaezoo import metrics
from vaezoo.analysis import explore
from vaezoo.analysis import pictures as viz
from vaezoo.atomic import atomic_write_text
from vaezoo.data.datasets import Dataset
from vaezoo.errors import VaezooError
from vaezoo.runs.directory import read_metrics
from vaezoo.metrics.classifier import feature_extractor
from vaezoo.metrics.inputs import codes_and_factors, entropies
from vaezoo.metrics.mig import mutual_information_matrix
from vaezoo.runtime.finite import mark_nonfinite

if TYPE_CHECKING:  # only the model API is used: posterior_mean, decode, sample, latent_dim
    from torch.nn import Module as VAE

EVALUATION = "evaluation.json"
TRAVERSAL = "traversal_factors.png"
ACTIVE_VARIANCE = 0.01  # a code dimension varying less than this over the data is inactive (as active units)


@torch.no_grad()
def codes_of(model: VAE, x: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """Posterior means [N, latent_dim] of images x, in batches on the model's device."""
    device = next(model.parameters()).device
    model.eval()
    return torch.cat([model.posterior_mean(x[i : i + batch_size].to(device)).cpu()
                      for i in range(0, len(x), batch_size)]).double().numpy()


def dimension_factors(codes: np.ndarray, factors: np.ndarray, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """For each code dimension, the factor it carries most information about (mutual information over the
    factor's entropy), or none when the dimension is inactive."""
    z, labels = codes_and_factors(codes, factors)
    normalized = mutual_information_matrix(z, labels) / entropies(labels)[None]
    active = z.var(axis=0) > ACTIVE_VARIANCE
    return [
        {"dim": d, "factor": names[int(normalized[d].argmax())] if active[d] else None,
         "normalized_mutual_information": float(normalized[d].max()), "active": bool(active[d])}
        for d in range(z.shape[1])
    ]


def disentanglement_scores(model: VAE, data: Dataset, seed: int = 0) -> dict[str, Any]:
    """MIG, SAP, DCI, BetaVAE and FactorVAE scores of the model's codes of the held-out set."""
    if data.test_factors is None:
        raise VaezooError(
            f"--disentanglement needs a dataset with ground-truth factors (dsprites, colour-shapes); {data.name} has none"
        )
    codes, factors = codes_of(model, data.test_x), data.test_factors.numpy()
    return {
        "examples": len(codes), "factor_names": list(data.factor_names),
        "mig": metrics.mig(codes, factors), "sap": metrics.sap(codes, factors, seed=seed),
        "dci": metrics.dci(codes, factors, seed=seed),
        "beta_vae_score": metrics.beta_vae_score(codes, factors, seed=seed),
        "factor_vae_score": metrics.factor_vae_score(codes, factors, seed=seed),
        "dimension_factors": dimension_factors(codes, factors, data.factor_names),
    }


@torch.no_grad()
def generate(model: VAE, n: int, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """n decoded draws of the prior, [n, C, H, W] on the CPU, repeatable by seed."""
    device = next(model.parameters()).device
    model.eval()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return torch.cat([model.sample(min(batch_size, n - i)).float().cpu() for i in range(0, n, batch_size)])


def sample_quality_scores(model: VAE, data: Dataset, samples: int = 5000, seed: int = 0,
                          progress: bool = False) -> dict[str, Any]:
    """FID, KID and precision/recall of `samples` generated images against as many held-out images, on the
    features of the dataset's vaezoo classifier (domain features: comparable within vaezoo only), and the
    sharpness of both sets of images."""
    if samples < 10:
        raise VaezooError(f"--quality-samples must be at least 10, got {samples}")
    extractor = feature_extractor(data, progress=progress)
    images = data.test_x[:samples]
    generated = generate(model, len(images), seed)
    real = extractor.net.features(images).double().numpy()
    fake = extractor.net.features(generated).double().numpy()
    precision, recall = metrics.precision_recall(real, fake)
    return {
        "samples": len(real), "fid": metrics.fid(real, fake), "kid": metrics.kid(real, fake, seed=seed),
        "precision": precision, "recall": recall, "sample_sharpness": metrics.sharpness(generated.numpy()),
        "held_out_sharpness": metrics.sharpness(images.numpy()), "features": extractor.describe(),
    }


def save_factor_traversal(model: VAE, data: Dataset, dims: list[dict[str, Any]], path: Path, steps: int = 9) -> None:
    """A traversal of every latent dimension (one row each, from the first held-out image's code), each row
    labelled with the factor that dimension captures best."""
    x = data.test_x[:1].to(next(model.parameters()).device)
    images = explore.traverse(model, x, steps=steps, dims=[d["dim"] for d in dims])
    labels = [f"z{d['dim']}: {d['factor']} ({d['normalized_mutual_information']:.2f})" if d["active"]
              else f"z{d['dim']}: inactive" for d in dims]
    viz.save_labelled_rows(images.float().cpu(), labels, path, nrow=steps)


def evaluate_run(
    run_dir: str | Path, model: VAE, data: Dataset, *, disentanglement: bool, sample_quality: bool,
    quality_samples: int = 5000, progress: bool = False,
) -> dict[str, Any]:
    """The extra evaluation asked for, also written to RUN_DIR/evaluation.json (with the labelled traversal
    picture) and shown in report.html."""
    from vaezoo.analysis.report import write_report

    run = Path(run_dir)
    result: dict[str, Any] = {}
    if disentanglement:
        result["disentanglement"] = disentanglement_scores(model, data)
        save_factor_traversal(model, data, result["disentanglement"]["dimension_factors"], run / TRAVERSAL)
    if sample_quality:
        result["sample_quality"] = sample_quality_scores(model, data, quality_samples, progress=progress)
    epoch = max((m["epoch"] for m in read_metrics(run)), default=None)
    for section in result.values():  # which weights were measured: report.html says so beside the figures
        section["epoch"] = epoch
    if result:
        path = run / EVALUATION
        try:
            saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            saved = {}  # a damaged earlier evaluation is replaced
        record = mark_nonfinite({**saved, **result})[0]  # valid JSON: a NaN is written as "non-finite"
        atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n")
        write_report(run)
    return result
