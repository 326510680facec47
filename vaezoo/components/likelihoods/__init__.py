"""Built-in likelihoods p(x | decoder output), registered through the likelihoods hook."""
from __future__ import annotations

from vaezoo.components.likelihoods.bernoulli import Bernoulli
from vaezoo.components.likelihoods.location_scale import Gaussian, Laplace
from vaezoo.components.likelihoods.logistic import DiscretizedLogistic
from vaezoo.components.likelihoods.ms_ssim import MSSSIMDistance
from vaezoo.registry.hookspecs import Register, hookimpl

__all__ = ["Bernoulli", "DiscretizedLogistic", "Gaussian", "Laplace", "MSSSIMDistance"]


@hookimpl
def vaezoo_register_likelihoods(register: Register) -> None:
    register("bernoulli", Bernoulli)
    register("gaussian", Gaussian)
    register("laplace", Laplace)
    register("discretized-logistic", DiscretizedLogistic)
    register("ms-ssim", MSSSIMDistance, description="not a normalized likelihood: -weight (alpha (1 - MS-SSIM) + "
             "(1 - alpha) L1) of the decoded image (Zhao et al., 2017); the ELBO on it is not a bound on log p(x)")
