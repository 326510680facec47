"""Metrics of what a VAE learned, as functions of numpy arrays with one row per example, for any encoder.

Disentanglement, from codes [N, D] and discrete ground-truth factors [N, K]: mig, sap (and vaezoo's variant
sap_nearest_mean), dci, beta_vae_score, factor_vae_score. Sample quality, from features [N, F] of real and generated images:
fid, kid, precision_recall (vaezoo's features come from `vaezoo.metrics.classifier`), and from the
images [N, C, H, W] themselves: sharpness. Reconstruction quality, per image against its original: psnr, ssim,
ms_ssim.
"""
from vaezoo.metrics.betavae import beta_vae_score
from vaezoo.metrics.dci import dci
from vaezoo.metrics.factorvae import factor_vae_score
from vaezoo.metrics.image_quality import ms_ssim, psnr, ssim
from vaezoo.metrics.mig import mig
from vaezoo.metrics.quality import fid, kid, precision_recall
from vaezoo.metrics.sap import sap, sap_nearest_mean
from vaezoo.metrics.sharpness import sharpness

__all__ = ["beta_vae_score", "dci", "factor_vae_score", "fid", "kid", "mig", "ms_ssim", "precision_recall", "psnr", "sap",
           "sap_nearest_mean", "sharpness", "ssim"]
