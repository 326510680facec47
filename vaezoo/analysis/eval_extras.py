"""What `vaezoo eval --disentanglement --sample-quality` adds to a run's evaluation: the disentanglement
metrics on held-out codes and ground-truth factors, sample quality on the features of vaezoo's per-dataset
classifier, and a traversal picture whose rows are labelled by the factor each latent dimension captures."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from vaezoo import metrics
from vaezoo.analysis import explore
from vaezoo.analysis import pictures as viz
from vaezoo.analysis.samplers import draw_images
from vaezoo.atomic import atomic_write_text
from vaezoo.checks import whole_number
from vaezoo.core import Sampler
from vaezoo.data.held_out import HeldOut
from vaezoo.data.splits import ImageSet, Splits, to_model_input
from vaezoo.errors import DataError, VaezooError
from vaezoo.metrics.classifier import FeatureExtractor, LabelledImages, check_labels, feature_extractor
from vaezoo.runs.directory import read_metrics
from vaezoo.metrics.inputs import codes_and_factors, entropies
from vaezoo.metrics.mig import mutual_information_matrix
from vaezoo.runtime.finite import mark_nonfinite

if TYPE_CHECKING:  # only the model API is used: posterior_mean, decode, sample, latent_dim
    from torch.nn import Module as VAE

EVALUATION = "evaluation.json"
TRAVERSAL = "traversal_factors.png"
ACTIVE_VARIANCE = 0.01  # a code dimension varying less than this over the data is inactive (as active units)


@torch.no_grad()
def codes_of(model: VAE, held_out: HeldOut, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
    """Posterior means [N, latent_dim] of the held-out images, read and encoded in batches (of up to 500) on the
    model's device."""
    batch_size = batch_size or held_out.batch_rows(500)
    device = next(model.parameters()).device
    model.eval()
    return torch.cat([model.posterior_mean(x, y).cpu() for x, y, _ in
                      held_out.batches(batch_size, device, progress="codes" if progress else None)]).double().numpy()


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


def check_disentanglement(data: Splits) -> None:
    """VaezooError unless `data` has ground-truth factors for every held-out image (checked before any work)."""
    if data.test.factors is None:
        raise VaezooError(
            f"--disentanglement needs a dataset with ground-truth factors (dsprites, colour-shapes); {data.name} has none"
        )


def disentanglement_scores(model: VAE, data: Splits, held_out: HeldOut, seed: int = 0,
                           progress: bool = False) -> dict[str, Any]:
    """MIG, SAP, DCI, BetaVAE and FactorVAE scores of the model's codes of the run's held-out set; `progress`
    shows a bar naming the metric being computed (DCI's gradient-boosted trees take minutes on dSprites)."""
    check_disentanglement(data)
    codes, factors = codes_of(model, held_out, progress=progress), held_out.factors
    scores = {
        "mig": lambda: metrics.mig(codes, factors), "sap": lambda: metrics.sap(codes, factors, seed=seed),
        "dci": lambda: metrics.dci(codes, factors, seed=seed),
        "beta_vae_score": lambda: metrics.beta_vae_score(codes, factors, seed=seed),
        "factor_vae_score": lambda: metrics.factor_vae_score(codes, factors, seed=seed),
    }
    result: dict[str, Any] = {"examples": len(codes), "factor_names": list(data.factor_names)}
    bar = tqdm(scores.items(), desc="disentanglement", leave=False, delay=2.0, disable=not progress)
    for name, score in bar:
        bar.set_postfix_str(name)
        result[name] = score()
    return {**result, "dimension_factors": dimension_factors(codes, factors, data.factor_names)}


@torch.no_grad()
def generate(model: VAE, n: int, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """n decoded draws of the prior, [n, C, H, W] on the CPU, repeatable by seed."""
    device = next(model.parameters()).device
    model.eval()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return torch.cat([model.sample(min(batch_size, n - i)).float().cpu() for i in range(0, n, batch_size)])


def check_sample_quality(data: Splits, samples: int) -> None:
    """VaezooError unless sample quality can be scored on `data` with `samples` images (checked before any
    work): at least 10 samples, and class labels for the feature network."""
    whole_number("quality_samples", samples, least=10)
    check_labels(data.name, _feature_images(data.full_train()))


def _feature_images(split: ImageSet) -> LabelledImages:
    """A split as the feature network reads it: rows of float images in [0, 1], labels in memory."""
    return LabelledImages(lambda rows: to_model_input(split.read(rows)), split.labels, split.shape)


def feature_network(data: Splits, progress: bool = False) -> FeatureExtractor:
    """The dataset's canonical sample-quality feature network: the one made from its whole training split
    (Splits.full_train), even when a run trained on part of it (--limit), so that a limited run is measured on
    the same network as any other (the shipped one, for a built-in dataset); cached, or trained on batches of
    that split."""
    return feature_extractor(data.name, _feature_images(data.full_train()), _feature_images(data.test),
                             progress=progress)


def hand_feature_network(model: VAE, data: Splits, progress: bool = False) -> None:
    """Give the model's objective the dataset's feature network when it runs on one (the ldm objective's
    perceptual distance without LPIPS): made, as feature_network's, from the dataset's whole training split
    whatever the run's --limit (shipped, cached, or trained now for the steps the objective asks; training reads
    only the batches it trains on). Without a held-out split its test accuracy is measured on the training
    images, and the record says so. The global random state is left as it was, cached or not, so that training
    draws the same either way."""
    steps = model.objective.feature_network_steps()
    if steps is None:
        return
    train = _feature_images(data.full_train())
    classes = len(torch.unique(train.labels)) if len(train) else 0
    if classes < 2:
        raise DataError(f"the objective's perceptual distance runs on a feature network vaezoo trains on the "
                        f"dataset's class labels, but the training data ({data.name}) has "
                        f"{classes} class{'es' if classes != 1 else ''}: give labelled data (fit(model, (x, y))), "
                        f"or set {model.objective.feature_network_off}")
    held = len(data.test) > 0
    with torch.random.fork_rng(devices=[]):  # a cached network is built before its weights load: that draws
        extractor = feature_extractor(data.name, train, _feature_images(data.test) if held else train,
                                      steps=steps, progress=progress)
    record = extractor.describe()
    if not held:
        record["test_accuracy"] = f"{extractor.test_accuracy:.4f} on the training images (no held-out set)"
    model.objective.use_feature_network(extractor.net, record)


def sample_quality_scores(model: VAE, data: Splits, held_out: HeldOut, samples: int = 5000, seed: int = 0,
                          progress: bool = False, batch_size: int | None = None, sampler: Sampler | None = None,
                          sampler_name: str = "prior") -> dict[str, Any]:
    """FID, KID and precision/recall of `samples` generated images against as many of the run's held-out
    images, on the features of the dataset's vaezoo classifier (domain features: comparable within vaezoo
    only), and the sharpness of both sets of images. Only the held-out images scored are read, in batches, as
    stored (unbinarized: the feature network is trained on stored images and a sample is a decoded mean). The
    images are decoded draws of `sampler` (named `sampler_name` in the result), or of the model's prior."""
    check_sample_quality(data, samples)
    batch_size = batch_size or held_out.batch_rows(500)
    extractor = feature_network(data, progress=progress)
    count = min(samples, len(held_out))
    real, fake, sharp_real, sharp_fake = [], [], 0.0, 0.0
    device = next(model.parameters()).device
    model.eval()
    starts = tqdm(range(0, count, batch_size), desc="sample quality", leave=False, delay=2.0,
                  disable=not progress)
    with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in starts:
            images, _ = held_out.read(np.arange(start, min(start + batch_size, count), dtype=np.int64), stored=True)
            generated = draw_images(model, sampler, len(images)).float().cpu()
            real.append(extractor.net.features(images))
            fake.append(extractor.net.features(generated))
            sharp_real += metrics.sharpness(images.numpy()) * len(images)
            sharp_fake += metrics.sharpness(generated.numpy()) * len(images)
    real_features, fake_features = torch.cat(real).double().numpy(), torch.cat(fake).double().numpy()
    precision, recall = metrics.precision_recall(real_features, fake_features)
    return {
        "samples": count, "sampler": sampler_name, "fid": metrics.fid(real_features, fake_features),
        "kid": metrics.kid(real_features, fake_features, seed=seed),
        "precision": precision, "recall": recall, "sample_sharpness": sharp_fake / count,
        "held_out_sharpness": sharp_real / count, "features": extractor.describe(),
    }


def save_factor_traversal(model: VAE, held_out: HeldOut, dims: list[dict[str, Any]], path: Path,
                          steps: int = 9) -> None:
    """A traversal of every latent dimension (one row each, from the first held-out image's code), each row
    labelled with the factor that dimension captures best."""
    x, _ = held_out.first(1, next(model.parameters()).device)
    images = explore.traverse(model, x, steps=steps, dims=[d["dim"] for d in dims])
    labels = [f"z{d['dim']}: {d['factor']} ({d['normalized_mutual_information']:.2f})" if d["active"]
              else f"z{d['dim']}: inactive" for d in dims]
    viz.save_labelled_rows(images.float().cpu(), labels, path, nrow=steps)


def check_extras(data: Splits, *, disentanglement: bool, sample_quality: bool, quality_samples: int = 5000) -> None:
    """Refuse, before any work, the extra evaluation that `data` cannot give."""
    if disentanglement:
        check_disentanglement(data)
    if sample_quality:
        check_sample_quality(data, quality_samples)


def evaluate_run(
    run_dir: str | Path, model: VAE, data: Splits, held_out: HeldOut, *, disentanglement: bool,
    sample_quality: bool, quality_samples: int = 5000, progress: bool = False, reconstruction: bool = False,
    sampler: Sampler | None = None, sampler_name: str = "prior", held_out_metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The extra evaluation asked for, on the run's held-out set, also written to RUN_DIR/evaluation.json (with
    the labelled traversal picture, and the full-size reconstructions) and shown in report.html; the held-out
    metrics measured beside it (evaluate.summary's, with the IW-NLL's K and examples), when given, are written
    there too, under `held_out`, but not returned."""
    from vaezoo.analysis.reconstruction import FULL_SIZE, reconstruction_scores, save_full_size
    from vaezoo.analysis.report import write_report

    run = Path(run_dir)
    result: dict[str, Any] = {}
    if disentanglement:
        result["disentanglement"] = disentanglement_scores(model, data, held_out, progress=progress)
        save_factor_traversal(model, held_out, result["disentanglement"]["dimension_factors"], run / TRAVERSAL)
    if sample_quality:
        result["sample_quality"] = sample_quality_scores(model, data, held_out, quality_samples, progress=progress,
                                                         sampler=sampler, sampler_name=sampler_name)
    if reconstruction:
        result["reconstruction"] = reconstruction_scores(model, held_out, data, progress=progress)
        save_full_size(model, held_out, run / FULL_SIZE)
    epoch = max((m["epoch"] for m in read_metrics(run)), default=None)
    for section in result.values():  # which weights were measured: report.html says so beside the figures
        section["epoch"] = epoch
    if result:
        written = {**result, **({"held_out": {**held_out_metrics, "epoch": epoch}} if held_out_metrics else {})}
        path = run / EVALUATION
        try:
            saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            saved = {}  # a damaged earlier evaluation is replaced
        record = mark_nonfinite({**saved, **written})[0]  # valid JSON: a NaN is written as "non-finite"
        atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n")
        write_report(run_dir)  # a SavedRun's config as read, not read again
    return result
