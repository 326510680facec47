"""Built-in priors p(z), registered through the priors hook."""
from __future__ import annotations

from vaezoo.components.priors.gaussian import LearnedDiagonal, StandardNormal
from vaezoo.components.priors.ladder import LadderPrior
from vaezoo.components.priors.mixture import MixtureOfGaussians
from vaezoo.components.priors.vamp import VampPrior
from vaezoo.hookspecs import Register, hookimpl

__all__ = ["LadderPrior", "LearnedDiagonal", "MixtureOfGaussians", "StandardNormal", "VampPrior"]


@hookimpl
def vaezoo_register_priors(register: Register) -> None:
    register("standard-normal", StandardNormal)
    register("learned-diagonal", LearnedDiagonal)
    register("mog", MixtureOfGaussians)
    register("vamp", VampPrior)
    register("ladder", LadderPrior)
