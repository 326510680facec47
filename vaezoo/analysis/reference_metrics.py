"""Reference figures of a trained run on a small fixed protocol: the held-out ELBO, the importance-weighted NLL
and FID (on the dataset's feature network) of the first few held-out images, each from a fixed seed.

Shipped weights record these beside their full figures so that a test can recompute them in seconds: a change
to any of the estimators, the parts or the feature network that moves a figure shows up as a failed test.
"""
from __future__ import annotations

import os
from typing import Any

from vaezoo.analysis import evaluate
from vaezoo.analysis.eval_extras import sample_quality_scores
from vaezoo.analysis.run_held_out import run_held_out
from vaezoo.runs.directory import load_model, load_run_data

#: The protocol shipped weights record their reference figures with: ELBO and FID on `examples` held-out
#: images, the IW-NLL with `nll_samples` importance samples on the first `nll_examples` of them; `quality` 0
#: leaves FID out (for data without a shipped feature network, which would be trained first).
PROTOCOL: dict[str, int] = {"examples": 500, "nll_examples": 100, "nll_samples": 20, "seed": 0, "quality": 1}


def reference_metrics(run: str | os.PathLike[str], protocol: dict[str, int] | None = None,
                      data_dir: str | None = None) -> dict[str, Any]:
    """`elbo` on the first `examples` held-out images of the run at `run` (a directory or
    pretrained:VARIANT/DATASET), `nll` on the first `nll_examples` (where the posterior gives samples with their
    density) and `fid` of `examples` prior samples against those held-out images (where the dataset has class
    labels for the feature network, unless the protocol's `quality` is 0)."""
    protocol = {**PROTOCOL, **(protocol or {})}
    examples, seed = protocol["examples"], protocol["seed"]
    model = load_model(run)
    data = load_run_data(run, data_dir)
    held_out = run_held_out(run, model, data).head(examples)
    result: dict[str, Any] = {"elbo": evaluate.elbo(model, held_out, seed=seed)["elbo"]}
    if model.posterior.why_not("samples", model.prior) is None:
        result["nll"] = evaluate.importance_weighted_nll(model, held_out.head(protocol["nll_examples"]),
                                                         protocol["nll_samples"], seed=seed)
    if protocol["quality"] and data.train.labels is not None:
        result["fid"] = sample_quality_scores(model, data, held_out, examples, seed=seed)["fid"]
    return result
