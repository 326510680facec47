"""Built-in priors p(z), registered through the priors hook."""
from __future__ import annotations

from vaezoo.components.priors.categorical import CategoricalPrior, JointPrior
from vaezoo.components.priors.codebook import CodebookPrior
from vaezoo.components.priors.gaussian import LearnedDiagonal, StandardNormal
from vaezoo.components.priors.ladder import LadderPrior
from vaezoo.components.priors.mixture import MixtureOfGaussians
from vaezoo.components.priors.poincare import PoincareNormal
from vaezoo.components.priors.sphere import UniformSphere
from vaezoo.components.priors.vamp import VampPrior
from vaezoo.registry.hookspecs import Register, hookimpl

__all__ = [
    "CategoricalPrior", "CodebookPrior", "JointPrior", "LadderPrior", "LearnedDiagonal", "MixtureOfGaussians", "PoincareNormal",
    "StandardNormal", "UniformSphere", "VampPrior",
]


@hookimpl
def vaezoo_register_priors(register: Register) -> None:
    register("standard-normal", StandardNormal)
    register("learned-diagonal", LearnedDiagonal)
    register("mog", MixtureOfGaussians)
    register("vamp", VampPrior)
    register("ladder", LadderPrior)
    register("uniform-sphere", UniformSphere, description="uniform on the hypersphere, for the vmf posterior")
    register("categorical", CategoricalPrior, description="independent categorical one-hot blocks, uniform or learned")
    register("joint", JointPrior, description="N(0, I) times categorical blocks, for the joint posterior (JointVAE)")
    register("codebook", CodebookPrior,
             description="VQ-VAE codebook (loss or EMA updates) with a categorical prior over codes (van den Oord et al., 2017)")
    register("poincare", PoincareNormal,
             description="wrapped normal at the origin of the Poincaré ball, for the wrapped-normal posterior")
