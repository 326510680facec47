"""Built-in objectives, registered through the objectives hook."""
from __future__ import annotations

from vaezoo.components.objectives.aae import AdversarialAutoencoder
from vaezoo.components.objectives.elbo import ELBO
from vaezoo.components.objectives.factor import FactorVAE
from vaezoo.components.objectives.iwae import IWAE
from vaezoo.components.objectives.mmd import MMDObjective
from vaezoo.components.objectives.tc import BetaTCVAE
from vaezoo.components.objectives.vaegan import VAEGAN
from vaezoo.hookspecs import Register, hookimpl

__all__ = ["ELBO", "IWAE", "VAEGAN", "AdversarialAutoencoder", "BetaTCVAE", "FactorVAE", "MMDObjective"]


@hookimpl
def vaezoo_register_objectives(register: Register) -> None:
    register("elbo", ELBO)
    register("tc", BetaTCVAE)
    register("mmd", MMDObjective)
    register("iwae", IWAE)
    register("factor", FactorVAE)
    register("aae", AdversarialAutoencoder)
    register("vae-gan", VAEGAN)
