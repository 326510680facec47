"""`vaezoo eval`: a run's held-out metrics, printed or as JSON."""
from __future__ import annotations

import argparse
from contextlib import nullcontext

from vaezoo.cli.output import number, print_json
from vaezoo.cli.picture_commands import _check_picture_args
from vaezoo.errors import NonFiniteError, VaezooError
from vaezoo.runtime.finite import mark_nonfinite


def cmd_eval(args: argparse.Namespace) -> int:
    from vaezoo.analysis import evaluate
    from vaezoo.analysis.learned import check_extras, evaluate_run
    from vaezoo.analysis.run_held_out import run_held_out
    from vaezoo.runs.directory import claim_run_dir, load_model, load_run_data

    _check_picture_args(args)
    try:
        evaluate.check_nll_samples(args.nll_samples)
    except ValueError as exc:
        raise VaezooError(f"--nll-samples: {exc}") from exc
    if args.nll_examples is not None and args.nll_examples < 1:
        raise VaezooError(f"--nll-examples must be a positive integer, got {args.nll_examples}")
    writes = args.disentanglement or args.sample_quality  # evaluation.json and report.html, into the run
    # held for the whole evaluation: the weights measured are the ones recorded, and no training writes between
    lock = claim_run_dir(args.run_dir, busy="wait for it to finish, then evaluate it") if writes else nullcontext()
    with lock:
        data = load_run_data(args.run_dir, args.data_dir)  # first: a run whose data it cannot read is refused unloaded
        extras = {"disentanglement": args.disentanglement, "sample_quality": args.sample_quality}
        check_extras(data, **extras, quality_samples=args.quality_samples)  # before any work
        model = load_model(args.run_dir, device=args.device, trust_pickle=args.trust_pickle,
                           imports=args.imports)
        held_out = run_held_out(args.run_dir, model, data)
        result = evaluate.summary(model, held_out, args.nll_samples, progress=not args.json,
                                  nll_examples=args.nll_examples)
        if writes:
            result.update(evaluate_run(args.run_dir, model, data, held_out, **extras,
                                       quality_samples=args.quality_samples, progress=not args.json))
    if args.json:
        print_json(result)
        return _finite(args.run_dir, result)
    missing = result["unavailable"]
    print(f"held-out examples      {result['examples']}")
    print(f"ELBO                   {number(result['elbo'], '.2f')} nats (reconstruction "
          f"{number(result['recon'], '.2f')}, KL {number(result['kl'], '.2f')})")
    if "nll" in result:
        on = "" if result["nll_examples"] == result["examples"] else f" on the first {result['nll_examples']}"
        print(f"{f'NLL (IW, K={args.nll_samples})':<23}{number(result['nll'], '.2f')} nats{on}")
        if "bits_per_dim" in result:
            print(f"bits per dimension     {number(result['bits_per_dim'], '.4f')}{on}")
    print(f"active units           {result['active_units']} of {model.latent_dim}")
    if "mutual_information" in result:
        print(f"mutual information     {number(result['mutual_information'], '.3f')} nats")
    if "kl_per_dim" in result:
        print("KL per dimension       " + " ".join(number(v, ".2f") for v in result["kl_per_dim"]))
    for metric, reason in missing.items():
        print(f"{metric.replace('_', ' '):<23}not available: {reason}")
    if "disentanglement" in result:
        d = result["disentanglement"]
        print(f"MIG {number(d['mig'], '.3f')}  SAP {number(d['sap'], '.3f')}  DCI ({d['dci']['importances']}) "
              f"disentanglement {number(d['dci']['disentanglement'], '.3f')} "
              f"completeness {number(d['dci']['completeness'], '.3f')} "
              f"informativeness {number(d['dci']['informativeness'], '.3f')}")
        print(f"BetaVAE score {number(d['beta_vae_score'], '.3f')}  "
              f"FactorVAE score {number(d['factor_vae_score'], '.3f')}")
    if "sample_quality" in result:
        q = result["sample_quality"]
        print(f"FID {number(q['fid'], '.3f')}  KID {number(q['kid'], '.4f')}  precision {number(q['precision'], '.3f')}"
              f"  recall {number(q['recall'], '.3f')} (vaezoo features; classifier test accuracy "
              f"{number(q['features']['test_accuracy'], '.3f')})")
        print(f"feature network {q['features']['weights_sha256'][:16]} ({q['features']['source']})")
        print(f"sharpness of the samples {number(q['sample_sharpness'], '.4f')}, "
              f"of held-out images {number(q['held_out_sharpness'], '.4f')}")
    return _finite(args.run_dir, result)


def _finite(run_dir: str, result: dict) -> int:
    """0 when every number of the evaluation is finite; else (once it is shown, marked) an error naming them."""
    bad = mark_nonfinite(result)[1]
    if bad:
        raise NonFiniteError(f"the evaluation of {run_dir} is non-finite ({', '.join(bad[:4])}"
                             f"{f' and {len(bad) - 4} more' if len(bad) > 4 else ''}): its weights are finite but "
                             "the model's outputs overflow; the run diverged or its weights were changed")
    return 0
