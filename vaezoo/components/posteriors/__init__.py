"""Built-in posteriors q(z|x), registered through the posteriors hook."""
from __future__ import annotations

from vaezoo.components.posteriors.gaussian import GaussianPosterior
from vaezoo.components.posteriors.ladder import LadderPosterior
from vaezoo.hookspecs import Register, hookimpl

__all__ = ["GaussianPosterior", "LadderPosterior"]


@hookimpl
def vaezoo_register_posteriors(register: Register) -> None:
    register("gaussian", GaussianPosterior)
    register("ladder", LadderPosterior)
