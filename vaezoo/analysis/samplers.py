"""Fitting a sampler to a trained run's training codes and storing it in the run; reading it back, checked
against the run; drawing images through it. `vaezoo fit-sampler`, `vaezoo sample --sampler` and
`vaezoo eval --sample-quality --sampler` call these."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from vaezoo.core import VAE, Sampler
from vaezoo.data.held_out import HeldOut, binarization
from vaezoo.data.splits import Splits
from vaezoo.errors import BadOverrideError, RunDirError, SettingError, VaezooError
from vaezoo.registry.samplers import build_sampler, rebuild_sampler
from vaezoo.runs.directory import (
    claim_run_dir,
    load_model,
    load_run_data,
    open_saved_run,
    read_only_origin,
)
from vaezoo.runs.samplers import read_sampler, save_sampler


@torch.no_grad()
def training_codes(model: VAE, data: Splits, which: str, binarize: str = "auto", batch_size: int = 500,
                   progress: bool = False) -> torch.Tensor:
    """The codes [N, latent_dim] of every training image: posterior means (`which="means"`) or one draw of
    q(z|x) each ("samples"; from the global RNG). Images are binarized as the run's held-out set is (one fixed
    draw each) when the run trained on binarized images."""
    images = HeldOut(data.train, binarized=binarization(binarize, model) != "none", conditional=False)
    model.eval()
    device = next(model.parameters()).device
    codes = []
    for x, _, _ in images.batches(batch_size, device, progress="training codes" if progress else None):
        params = model.encode(x)
        codes.append(model.posterior.mean(params, model.prior) if which == "means"
                     else model.posterior.draw(params, model.prior).z)
    return torch.cat(codes)


def _epochs(sampler: Sampler, epochs: int | None) -> int:
    if epochs is None:
        return sampler.default_epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise BadOverrideError(f"--epochs must be a positive integer, got {epochs!r}")
    return epochs


def fit_sampler(run_dir: str | os.PathLike[str], name: str, *, epochs: int | None = None, seed: int = 0,
                options: dict[str, Any] | None = None, data_dir: str | None = None, device: str = "cpu",
                progress: bool = False) -> tuple[Path, dict[str, Any]]:
    """Fit the sampler `name` to the run's training codes and store it in RUN/samplers/; returns its path and
    record. The same seed gives the same sampler, bit for bit, on the same machine and thread count. The run's
    weights, metrics and checkpoints are only read, under the run's lock (no training writes meanwhile)."""
    options = dict(options or {})
    # claimed as named, so that shipped weights and Hub runs are refused as read-only
    with claim_run_dir(run_dir, busy="wait for it to finish, then fit the sampler"):
        saved = open_saved_run(run_dir)  # config.json read once, for the data, the model and the binarization
        run, config = saved.path, saved.config
        data = load_run_data(saved, data_dir)
        model = load_model(saved, device=device)
        with torch.random.fork_rng(devices=[model_device(model)] if model_device(model).type == "cuda" else []):
            torch.manual_seed(seed)
            sampler, identity = build_sampler(name, model, **options)
            if not sampler.needs_fit:
                raise VaezooError(f"the {name!r} sampler is the model's own prior: it has nothing to fit and is "
                                  f"used as is (vaezoo sample {run} --sampler {name})")
            count = _epochs(sampler, epochs)
            codes = training_codes(model, data, sampler.codes, config.get("train", {}).get("binarize", "auto"),
                                   progress=progress)
            sampler.to(model_device(model))
            bar = tqdm(total=count, desc=f"fitting {name}", leave=False, disable=not progress)

            def report(epoch: int, loss: float) -> None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")

            try:
                figures = sampler.fit(codes, count, report if progress else None)
            except ValueError as exc:
                raise BadOverrideError(f"fitting the {name!r} sampler failed: {exc}") from exc
            finally:
                bar.close()
        record = {"sampler": identity, "options": options, "codes": sampler.codes, "seed": seed, "epochs": count,
                  "training_codes": len(codes), "fit": figures}
        path = save_sampler(run, name, sampler.state_dict(), record)
    return path, record


def model_device(model: VAE) -> torch.device:
    return next(model.parameters()).device


def load_sampler(run_dir: str | os.PathLike[str], name: str, model: VAE) -> Sampler:
    """The sampler `name` for the run's `model` (`run_dir` a reference, or a SavedRun, which is not located
    again: shipped weights are not hashed twice): the prior as is, else the one fitted to this run, refused (one
    line) when it is missing, changed, fitted to other weights or cannot model this posterior's codes, or when
    the run is one that vaezoo only reads (shipped weights, a Hub run), which never carries one."""
    sampler, _ = build_sampler(name, model)
    if not sampler.needs_fit:
        return sampler
    saved = open_saved_run(run_dir)  # hf://ORG/NAME, pretrained:VARIANT/DATASET resolved (a SavedRun is already)
    run, origin = saved.path, read_only_origin(saved)
    if origin is not None:
        raise RunDirError(f"{saved.reference} is {origin}: read-only, and it carries no fitted samplers; to draw through "
                          f"{name!r}, copy it to a folder of yours (cp -rL {run} COPY), fit the sampler there "
                          f"(vaezoo fit-sampler COPY --sampler {name}) and give COPY instead")
    tensors, record = read_sampler(run, name)
    sampler = rebuild_sampler(record["sampler"], model, record.get("options", {}))
    try:
        sampler.load_state_dict(tensors)
    except RuntimeError as exc:
        raise RunDirError(f"the stored {name!r} sampler of {run} does not fit its recorded options ({exc}); fit it "
                          f"again: vaezoo fit-sampler {run} --sampler {name}") from None
    return sampler.to(model_device(model)).eval()


@torch.no_grad()
def draw_images(model: VAE, sampler: Sampler | None, n: int, label: int | None = None,
                temperature: float = 1.0) -> torch.Tensor:
    """n decoded draws of `sampler` (the model's prior when None, or for the prior sampler)."""
    if sampler is None or not sampler.needs_fit:
        return model.sample(n, label, temperature=temperature)
    if label is not None:
        raise SettingError("{0} needs the prior sampler (the default {1}): a fitted sampler draws codes without "
                           "labels", "label", "sampler")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return model.decode(sampler.sample(n, temperature).to(next(model.parameters())))
