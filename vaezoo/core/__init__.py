"""The core: the VAE and the base types of its parts, and the estimators that combine them."""
from vaezoo.core.latent import Latent
from vaezoo.core.likelihood import Likelihood
from vaezoo.core.model import VAE
from vaezoo.core.objective import Objective
from vaezoo.core.output import VAEOutput
from vaezoo.core.posterior import FEATURES, Posterior
from vaezoo.core.prior import Prior
from vaezoo.core.sampler import CODES, Sampler

__all__ = ["CODES", "FEATURES", "VAE", "Latent", "Likelihood", "Objective", "Posterior", "Prior", "Sampler", "VAEOutput"]
