"""`vaezoo eval` for the Python API too: a run directory's held-out metrics and, when asked, its disentanglement
and sample-quality scores (written into the run), every argument checked before any work."""
from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from vaezoo.analysis import evaluate
from vaezoo.analysis.eval_extras import check_extras, evaluate_run
from vaezoo.analysis.nll_budget import FULL_SAMPLES, nll_budget
from vaezoo.analysis.reconstruction import check_reconstruction, images_reason, reconstruction_scores
from vaezoo.analysis.run_held_out import run_held_out
from vaezoo.analysis.samplers import load_sampler
from vaezoo.checks import whole_number
from vaezoo.errors import NonFiniteError, SettingError, literal
from vaezoo.runs import directory
from vaezoo.runtime.devices import check_device
from vaezoo.runtime.finite import mark_nonfinite


def evaluate_saved_run(
    run_dir: str | os.PathLike[str], *, nll_samples: int | None = None, nll_examples: int | None = None,
    device: str = "cpu", data_dir: str | None = None, trust_pickle: bool = False, imports: Sequence[str] = (),
    disentanglement: bool = False, sample_quality: bool = False, reconstruction: bool = False, sampler: str = "prior",
    quality_samples: int = 5000, progress: bool = False,
) -> dict[str, Any]:
    """The evaluation of the trained run at `run_dir`, as `vaezoo eval` prints it: evaluate.summary on the run's
    held-out set (the IW-NLL with `nll_samples` importance samples on the first `nll_examples` examples, each
    the default of nll_budget where not given: K = 1000 on every example unless that is too costly for the
    model; `nll_budget` in the result says which), PSNR/SSIM/MS-SSIM of reconstructions and the KL per latent
    channel for a model of images, and, with `disentanglement`, `sample_quality` (of the draws of `sampler`,
    the prior or one fitted to the run) or `reconstruction` (which adds rFID), those scores too, also written
    to the run's evaluation.json (with the held-out metrics, under `held_out`) and report.html under the run's
    lock (so that no training writes while they are measured).
    A run whose data cannot be read, or that cannot give the extra scores, is refused before its model is
    loaded. `device`, `data_dir`, `trust_pickle` and `imports` are as for load_model and load_run_data."""
    check_device(device)
    if nll_samples is not None:
        try:
            evaluate.check_nll_samples(nll_samples)
        except ValueError as exc:
            raise SettingError(f"{{0}}: {literal(exc)}", "nll_samples") from exc
    if nll_examples is not None:
        whole_number("nll_examples", nll_examples)
    extras = {"disentanglement": disentanglement, "sample_quality": sample_quality}
    writes = disentanglement or sample_quality or reconstruction  # evaluation.json and report.html, into the run
    # claimed by the reference as given, so that shipped weights and Hub runs are refused as read-only
    lock = directory.claim_run_dir(run_dir, busy="wait for it to finish, then evaluate it") if writes else nullcontext()
    with lock:
        # hf://ORG/NAME, pretrained:VARIANT/DATASET resolved and config.json read, once, for every step below
        run_dir = directory.open_saved_run(run_dir)
        data = directory.load_run_data(run_dir, data_dir)
        check_extras(data, **extras, quality_samples=quality_samples)
        model = directory.load_model(run_dir, device=device, trust_pickle=trust_pickle, imports=imports)
        if reconstruction:
            check_reconstruction(model)
        fitted = load_sampler(run_dir, sampler, model) if sample_quality else None
        held_out = run_held_out(run_dir, model, data)
        budget = None if model.posterior.why_not("samples", model.prior) else nll_budget(
            model, held_out, nll_samples, nll_examples)
        result = evaluate.summary(model, held_out, budget.samples if budget else FULL_SAMPLES, progress=progress,
                                  nll_examples=budget.examples if budget else None)
        if budget:
            result["nll_budget"] = budget.record()
        if images_reason(model) is None and not reconstruction:  # without rFID, and nothing written
            result["reconstruction"] = reconstruction_scores(model, held_out, progress=progress)
        if writes:
            result.update(evaluate_run(run_dir, model, data, held_out, **extras, reconstruction=reconstruction,
                                       quality_samples=quality_samples, progress=progress, sampler=fitted,
                                       sampler_name=sampler,
                                       held_out_metrics={k: v for k, v in result.items() if k != "reconstruction"}))
    return result


def check_finite(run_dir: str | os.PathLike[str], result: dict[str, Any]) -> None:
    """NonFiniteError naming the numbers of an evaluation of the run at `run_dir` that are NaN or infinite (its
    weights are finite, so its outputs overflow: the run diverged or its weights were changed)."""
    bad = mark_nonfinite(result)[1]
    if bad:
        raise NonFiniteError(f"the evaluation of {run_dir} is non-finite ({', '.join(bad[:4])}"
                             f"{f' and {len(bad) - 4} more' if len(bad) > 4 else ''}): its weights are finite but "
                             "the model's outputs overflow; the run diverged or its weights were changed")
