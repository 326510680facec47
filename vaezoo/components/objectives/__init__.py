"""Built-in objectives, registered through the objectives hook."""
from __future__ import annotations

from vaezoo.components.objectives.aae import AdversarialAutoencoder
from vaezoo.components.objectives.capacity import CapacityObjective
from vaezoo.components.objectives.dfc import FeatureConsistentVAE
from vaezoo.components.objectives.dip import DIPVAE
from vaezoo.components.objectives.elbo import ELBO
from vaezoo.components.objectives.factor import FactorVAE
from vaezoo.components.objectives.hamiltonian import HamiltonianELBO
from vaezoo.components.objectives.iwae import IWAE
from vaezoo.components.objectives.ldm import LatentDiffusionLoss
from vaezoo.components.objectives.miwae import CIWAE, MIWAE, PIWAE
from vaezoo.components.objectives.mmd import MMDObjective
from vaezoo.components.objectives.rae import RAE
from vaezoo.components.objectives.swae import SlicedWassersteinAE
from vaezoo.components.objectives.tc import BetaTCVAE
from vaezoo.components.objectives.vaegan import VAEGAN
from vaezoo.registry.hookspecs import Register, hookimpl

__all__ = [
    "CIWAE", "DIPVAE", "ELBO", "IWAE", "MIWAE", "PIWAE", "VAEGAN", "AdversarialAutoencoder", "BetaTCVAE", "FactorVAE",
    "HamiltonianELBO", "LatentDiffusionLoss", "MMDObjective", "RAE", "CapacityObjective", "SlicedWassersteinAE",
    "FeatureConsistentVAE",
]


@hookimpl
def vaezoo_register_objectives(register: Register) -> None:
    register("elbo", ELBO)
    register("tc", BetaTCVAE)
    register("mmd", MMDObjective)
    register("iwae", IWAE)
    register("factor", FactorVAE)
    register("aae", AdversarialAutoencoder)
    register("vae-gan", VAEGAN)
    register("dip", DIPVAE, description="DIP-VAE I or II: ELBO plus a covariance penalty on q(z) (Kumar et al., 2018)")
    register("miwae", MIWAE, description="mean of M IWAE bounds of K draws (Rainforth et al., 2018)")
    register("piwae", PIWAE, description="IWAE(MK) for the decoder, MIWAE(M, K) for the encoder (Rainforth et al., 2018)")
    register("rae", RAE, description="regularized autoencoder: |z|^2 and an L2 or gradient penalty on the decoder "
             "(Ghosh et al., 2020)")
    register("ciwae", CIWAE, description="beta ELBO + (1 - beta) IWAE of the same draws (Rainforth et al., 2018)")
    register("hamiltonian", HamiltonianELBO, description="K tempered leapfrog steps on log p(x, z) from the "
             "posterior's draw: the Hamiltonian VAE bound (Caterini et al., 2018)")
    register("ldm", LatentDiffusionLoss, description="L1 + perceptual + adaptive hinge patch-GAN + small KL: the "
             "objective of latent diffusion's autoencoders and VQGAN (Esser et al., 2021; Rombach et al., 2022)")
    register("capacity", CapacityObjective, description="reconstruction + gamma |KL - C(t)|, the capacity C rising "
             "linearly (Burgess et al., 2018); separate continuous and discrete capacities for joint latents "
             "(Dupont, 2018)")
    register("swae", SlicedWassersteinAE, description="reconstruction + the sliced Wasserstein distance between the "
             "batch's codes and prior draws (Kolouri et al., 2019)")
    register("dfc", FeatureConsistentVAE, description="deep feature consistent VAE: reconstruction in the hidden "
             "features of vaezoo's FeatureNet trained on the dataset's labels, + KL (Hou et al., 2017)")
