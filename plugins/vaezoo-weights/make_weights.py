"""Package trained runs as this distribution's weights: copy each run's config.json (its data read from the
dataset's default place), metrics.jsonl and its model.safetensors (float tensors stored as float16 unless
--float32), measure the full figures and the reference figures of the shipped files, and write weights.json.

    OMP_NUM_THREADS=1 python plugins/vaezoo-weights/make_weights.py plan.json

plan.json maps each VARIANT/DATASET to {"run": RUN_DIR, "command": the train command, "description": ...}.
A maintainer's tool (it is not installed with the distribution).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

from vaezoo.analysis import evaluate
from vaezoo.analysis.eval_extras import disentanglement_scores, sample_quality_scores
from vaezoo.analysis.reference_metrics import PROTOCOL, reference_metrics
from vaezoo.analysis.run_held_out import run_held_out
from vaezoo.atomic import atomic_write, atomic_write_text
from vaezoo.runs.directory import load_model, load_run_data
from vaezoo.runs.pretrained import file_sha256
from vaezoo.runs.sealed import seal, unseal

HERE = Path(__file__).resolve().parent / "src" / "vaezoo_weights"
FULL = {"nll_samples": 100, "nll_examples": 500, "quality_samples": 5000}
TOLERANCE = 1e-4  # relative: what tests/test_weights_shipped.py allows between a recomputed and a recorded figure


def half(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """float32 tensors as float16 where every value stays finite; others as they are."""
    out = {}
    for name, t in tensors.items():
        h = t.to(torch.float16) if t.dtype == torch.float32 else t
        out[name] = h if torch.isfinite(h.float()).all() or not t.is_floating_point() else t
    return out


def copy_run(run: Path, target: Path, float32: bool) -> None:
    """The files of `run` that ship, into the empty folder `target`."""
    target.mkdir(parents=True)
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    config["train"]["data_dir"] = None  # the dataset's default place: a shipped run names no machine's paths
    config["train"]["out"] = target.name
    atomic_write_text(target / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    shutil.copyfile(run / "metrics.jsonl", target / "metrics.jsonl")
    tensors, _ = unseal((run / "model.safetensors").read_bytes())
    data = seal(tensors if float32 else half(tensors))
    atomic_write(target / "model.safetensors", lambda f: f.write(data))


def full_metrics(run: Path, quality: bool) -> dict[str, float]:
    """The ELBO on every held-out image, the IW-NLL on the first FULL['nll_examples'], FID on
    FULL['quality_samples'] samples when `quality` (all from seed 0), as `vaezoo eval --sample-quality`
    measures them; where the data has ground-truth factors, the scores of `vaezoo eval --disentanglement` on
    every held-out image's code (MIG, SAP, DCI with gradient-boosted trees, BetaVAE and FactorVAE scores)."""
    model, data = load_model(run), load_run_data(run)
    held_out = run_held_out(run, model, data)
    summary = evaluate.summary(model, held_out, FULL["nll_samples"], nll_examples=FULL["nll_examples"],
                               optional=("nll",))
    result = {k: summary[k] for k in ("elbo", "recon", "kl", "nll", "bits_per_dim") if k in summary}
    result["active_units"] = summary["active_units"]
    if quality and data.train.labels is not None:
        scores = sample_quality_scores(model, data, held_out, FULL["quality_samples"])
        result.update({k: scores[k] for k in ("fid", "kid", "precision", "recall")})
    if data.test.factors is not None:
        scores = disentanglement_scores(model, data, held_out)
        result.update({k: scores[k] for k in ("mig", "sap", "beta_vae_score", "factor_vae_score")})
        result.update({f"dci_{k}": scores["dci"][k] for k in ("disentanglement", "completeness", "informativeness")})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("plan", type=Path)
    parser.add_argument("--float32", action="store_true", help="store float32 weights (default float16)")
    parser.add_argument("--reference-only", action="store_true",
                        help="only measure the reference figures of weights already in weights.json again")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    plan = json.loads(args.plan.read_text(encoding="utf-8"))
    manifest_path = HERE / "weights.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    for name, item in plan.items():
        started = time.time()
        if args.reference_only:
            record = manifest[name]
            target = HERE / "runs" / record["directory"]
            protocol = {**PROTOCOL, "quality": int(item.get("quality", 1))}
            record["reference"] = reference_metrics(target, protocol)
            record["protocol"].update({**protocol, "reference_float32": reference_metrics(item["run"], protocol)})
            atomic_write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            print(f"{name}: reference {json.dumps(record['reference'])} (float32 "
                  f"{json.dumps(record['protocol']['reference_float32'])}) {time.time() - started:.0f}s", file=sys.stderr)
            continue
        directory = name.replace("/", "--")
        target = HERE / "runs" / directory
        if target.exists():
            shutil.rmtree(target)
        copy_run(Path(item["run"]), target, args.float32)
        protocol = {**PROTOCOL, "quality": int(item.get("quality", 1))}
        as_trained = reference_metrics(item["run"], protocol)
        reference = reference_metrics(target, protocol)
        manifest[name] = {
            "directory": directory, "description": item.get("description", ""), "command": item["command"],
            "sha256": file_sha256(target / "model.safetensors"),
            "metrics": full_metrics(target, bool(protocol["quality"])), "reference": reference,
            "protocol": {**protocol, "tolerance": TOLERANCE, "storage": "float32" if args.float32 else "float16",
                         "reference_float32": as_trained,
                         "full": f"ELBO on every held-out image; IW-NLL with K={FULL['nll_samples']} on the first "
                                 f"{FULL['nll_examples']}; FID/KID/precision/recall of {FULL['quality_samples']} "
                                 "samples against as many held-out images; seed 0"},
        }
        atomic_write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        print(f"{name}: {json.dumps(manifest[name]['metrics'])} reference {json.dumps(reference)} "
              f"(float32 {json.dumps(as_trained)}) {time.time() - started:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
