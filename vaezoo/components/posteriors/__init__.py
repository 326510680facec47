"""Built-in posteriors q(z|x), registered through the posteriors hook."""
from __future__ import annotations

from vaezoo.components.posteriors.deterministic import DeterministicPosterior
from vaezoo.components.posteriors.gaussian import GaussianPosterior
from vaezoo.components.posteriors.gumbel import GumbelSoftmaxPosterior
from vaezoo.components.posteriors.iaf import IAFPosterior
from vaezoo.components.posteriors.joint import JointPosterior
from vaezoo.components.posteriors.ladder import LadderPosterior
from vaezoo.components.posteriors.planar_radial import PlanarPosterior, RadialPosterior
from vaezoo.components.posteriors.vmf import VonMisesFisherPosterior
from vaezoo.components.posteriors.vq import VQPosterior
from vaezoo.components.posteriors.wrapped_normal import WrappedNormalPosterior
from vaezoo.registry.hookspecs import Register, hookimpl

__all__ = [
    "DeterministicPosterior", "GaussianPosterior", "GumbelSoftmaxPosterior", "IAFPosterior", "JointPosterior", "LadderPosterior",
    "PlanarPosterior", "RadialPosterior", "VQPosterior", "VonMisesFisherPosterior", "WrappedNormalPosterior",
]


@hookimpl
def vaezoo_register_posteriors(register: Register) -> None:
    register("gaussian", GaussianPosterior)
    register("ladder", LadderPosterior)
    register("vmf", VonMisesFisherPosterior, description="von Mises-Fisher on the hypersphere (Davidson et al., 2018)")
    register("gumbel-softmax", GumbelSoftmaxPosterior,
             description="relaxed categorical latents, annealed temperature (Jang et al., 2017; Maddison et al., 2017)")
    register("joint", JointPosterior, description="Gaussian plus Gumbel-softmax categorical latents (JointVAE; Dupont, 2018)")
    register("vq", VQPosterior, description="vector quantization, straight-through (VQ-VAE; van den Oord et al., 2017)")
    register("iaf", IAFPosterior, description="inverse autoregressive flow on a Gaussian (Kingma et al., 2016)")
    register("deterministic", DeterministicPosterior,
             description="a point mass z = e(x): a plain or regularized autoencoder, sampled through a fitted sampler")
    register("planar", PlanarPosterior,
             description="planar flows on a Gaussian, parameters amortized by the encoder (Rezende and Mohamed, 2015)")
    register("radial", RadialPosterior,
             description="radial flows on a Gaussian, parameters amortized by the encoder (Rezende and Mohamed, 2015)")
    register("wrapped-normal", WrappedNormalPosterior,
             description="wrapped normal on the Poincaré ball, codes read through the log map (Mathieu et al., 2019)")
