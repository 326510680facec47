"""`vaezoo eval`: a run's held-out metrics (analysis.run_evaluation), printed or as JSON."""
from __future__ import annotations

import argparse

from vaezoo.cli.output import number, print_json
from vaezoo.errors import VaezooError


def cmd_eval(args: argparse.Namespace) -> int:
    from vaezoo.analysis.nll_budget import FULL_SAMPLES
    from vaezoo.analysis.run_evaluation import check_finite, evaluate_saved_run

    if args.sampler != "prior" and not args.sample_quality:
        raise VaezooError(f"--sampler {args.sampler} chooses whose draws --sample-quality scores; add --sample-quality")
    result = evaluate_saved_run(
        args.run_dir, nll_samples=args.nll_samples, nll_examples=args.nll_examples, device=args.device,
        data_dir=args.data_dir, trust_pickle=args.trust_pickle, imports=args.imports,
        disentanglement=args.disentanglement, sample_quality=args.sample_quality,
        reconstruction=args.reconstruction, sampler=args.sampler, quality_samples=args.quality_samples, progress=not args.json,
    )
    if args.json:
        print_json(result)
        check_finite(args.run_dir, result)
        return 0
    print(f"held-out examples      {result['examples']}")
    print(f"ELBO                   {number(result['elbo'], '.2f')} nats (reconstruction "
          f"{number(result['recon'], '.2f')}, KL {number(result['kl'], '.2f')})")
    if "nll" in result:
        on = "" if result["nll_examples"] == result["examples"] else f" on the first {result['nll_examples']}"
        label = f"NLL (IW, K={result['nll_samples']})"
        print(f"{label:<23}{number(result['nll'], '.2f')} nats{on}")
        if "bits_per_dim" in result:
            print(f"bits per dimension     {number(result['bits_per_dim'], '.4f')}{on}")
        budget = result["nll_budget"]
        if budget["chosen_by"] == "default" and budget["examples"] < result["examples"]:
            print(f"{'':<23}(the default for this model: K={FULL_SAMPLES} on all {result['examples']} would cost "
                  f"{budget['full_flops']:.1e} FLOPs; --nll-samples and --nll-examples choose)")
    print(f"active units           {result['active_units']} of {result['latent_dim']}")
    if "mutual_information" in result:
        print(f"mutual information     {number(result['mutual_information'], '.3f')} nats")
    if "kl_per_dim" in result:
        print("KL per dimension       " + " ".join(number(v, ".2f") for v in result["kl_per_dim"]))
    for metric, reason in result["unavailable"].items():
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
        print(f"samples drawn by the {q['sampler']} sampler")
        print(f"FID {number(q['fid'], '.3f')}  KID {number(q['kid'], '.4f')}  precision {number(q['precision'], '.3f')}"
              f"  recall {number(q['recall'], '.3f')} (vaezoo features; classifier test accuracy "
              f"{number(q['features']['test_accuracy'], '.3f')})")
        print(f"feature network {q['features']['weights_sha256'][:16]} ({q['features']['source']})")
        print(f"sharpness of the samples {number(q['sample_sharpness'], '.4f')}, "
              f"of held-out images {number(q['held_out_sharpness'], '.4f')}")
    if "reconstruction" in result:
        _print_reconstruction(result["reconstruction"])
    check_finite(args.run_dir, result)
    return 0


def _print_reconstruction(r: dict) -> None:
    """The reconstruction section of an evaluation, as text."""
    print(f"reconstructions        PSNR {number(r['psnr'], '.2f')} dB  SSIM {number(r['ssim'], '.4f')}  MS-SSIM "
          f"{number(r['ms_ssim'], '.4f')} ({r['ms_ssim_scales']} scale{'s' if r['ms_ssim_scales'] != 1 else ''}, {r['ssim_window']}-pixel window)")
    if "rfid" in r:
        print(f"rFID                   {number(r['rfid'], '.3f')} (vaezoo features; classifier test accuracy "
              f"{number(r['features']['test_accuracy'], '.3f')})")
    if "kl_per_channel" in r:
        print("KL per latent channel  " + " ".join(number(v, ".2f") for v in r["kl_per_channel"]))
    for metric, reason in r["unavailable"].items():
        if metric != "rfid" or "rfid" not in r:
            print(f"{metric.replace('_', ' '):<23}not available: {reason}")
