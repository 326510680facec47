"""Built-in likelihoods p(x | decoder output), registered through the likelihoods hook."""
from __future__ import annotations

from vaezoo.components.likelihoods.bernoulli import Bernoulli
from vaezoo.components.likelihoods.location_scale import Gaussian, Laplace
from vaezoo.components.likelihoods.logistic import DiscretizedLogistic
from vaezoo.registry.hookspecs import Register, hookimpl

__all__ = ["Bernoulli", "DiscretizedLogistic", "Gaussian", "Laplace"]


@hookimpl
def vaezoo_register_likelihoods(register: Register) -> None:
    register("bernoulli", Bernoulli)
    register("gaussian", Gaussian)
    register("laplace", Laplace)
    register("discretized-logistic", DiscretizedLogistic)
