"""`vaezoo eval`: a run's held-out metrics, printed or as JSON."""
from __future__ import annotations

import argparse

from vaezoo.cli.output import print_json
from vaezoo.cli.picture_commands import _check_picture_args
from vaezoo.errors import VaezooError


def cmd_eval(args: argparse.Namespace) -> int:
    from vaezoo.analysis import evaluate
    from vaezoo.analysis.learned import check_extras, evaluate_run
    from vaezoo.analysis.run_held_out import load_run_held_out
    from vaezoo.runs.directory import load_model

    _check_picture_args(args)
    try:
        evaluate.check_nll_samples(args.nll_samples)
    except ValueError as exc:
        raise VaezooError(f"--nll-samples: {exc}") from exc
    if args.nll_examples is not None and args.nll_examples < 1:
        raise VaezooError(f"--nll-examples must be a positive integer, got {args.nll_examples}")
    model = load_model(args.run_dir, device=args.device)
    data, held_out = load_run_held_out(args.run_dir, model, args.data_dir)
    extras = {"disentanglement": args.disentanglement, "sample_quality": args.sample_quality}
    check_extras(data, **extras, quality_samples=args.quality_samples)  # before any work
    result = evaluate.summary(model, held_out, args.nll_samples, progress=not args.json,
                              nll_examples=args.nll_examples)
    if args.disentanglement or args.sample_quality:
        result.update(evaluate_run(args.run_dir, model, data, held_out, **extras,
                                   quality_samples=args.quality_samples, progress=not args.json))
    if args.json:
        print_json(result)
        return 0
    missing = result["unavailable"]
    print(f"held-out examples      {result['examples']}")
    print(f"ELBO                   {result['elbo']:.2f} nats (reconstruction {result['recon']:.2f}, KL {result['kl']:.2f})")
    if "nll" in result:
        on = "" if result["nll_examples"] == result["examples"] else f" on the first {result['nll_examples']}"
        print(f"{f'NLL (IW, K={args.nll_samples})':<23}{result['nll']:.2f} nats{on}")
        if "bits_per_dim" in result:
            print(f"bits per dimension     {result['bits_per_dim']:.4f}{on}")
    print(f"active units           {result['active_units']} of {model.latent_dim}")
    if "mutual_information" in result:
        print(f"mutual information     {result['mutual_information']:.3f} nats")
    if "kl_per_dim" in result:
        print("KL per dimension       " + " ".join(f"{v:.2f}" for v in result["kl_per_dim"]))
    for metric, reason in missing.items():
        print(f"{metric.replace('_', ' '):<23}not available: {reason}")
    if "disentanglement" in result:
        d = result["disentanglement"]
        print(f"MIG {d['mig']:.3f}  SAP {d['sap']:.3f}  DCI disentanglement {d['dci']['disentanglement']:.3f} "
              f"completeness {d['dci']['completeness']:.3f} informativeness {d['dci']['informativeness']:.3f}")
        print(f"BetaVAE score {d['beta_vae_score']:.3f}  FactorVAE score {d['factor_vae_score']:.3f}")
    if "sample_quality" in result:
        q = result["sample_quality"]
        print(f"FID {q['fid']:.3f}  KID {q['kid']:.4f}  precision {q['precision']:.3f}  recall {q['recall']:.3f} "
              f"(vaezoo features; classifier test accuracy {q['features']['test_accuracy']:.3f})")
        print(f"sharpness of the samples {q['sample_sharpness']:.4f}, of held-out images {q['held_out_sharpness']:.4f}")
    return 0
