"""Built-in samplers, registered through the samplers hook: distributions over a trained model's codes."""
from __future__ import annotations

from vaezoo.components.samplers.flow import FlowSampler
from vaezoo.components.samplers.gmm import GaussianMixtureSampler
from vaezoo.components.samplers.pixelcnn import PixelCNNSampler
from vaezoo.components.samplers.prior import PriorSampler
from vaezoo.components.samplers.two_stage import TwoStageSampler
from vaezoo.registry.hookspecs import Register, hookimpl

__all__ = ["FlowSampler", "GaussianMixtureSampler", "PixelCNNSampler", "PriorSampler", "TwoStageSampler"]


@hookimpl
def vaezoo_register_samplers(register: Register) -> None:
    register("prior", PriorSampler, description="the model's own prior p(z): what `vaezoo sample` draws by default")
    register("gmm", GaussianMixtureSampler,
             description="a Gaussian mixture fitted by EM to the training set's posterior means (Ghosh et al., 2020)")
    register("two-stage", TwoStageSampler,
             description="a second VAE fitted to draws of the training set's codes (Dai and Wipf, 2019)")
    register("flow", FlowSampler,
             description="a masked autoregressive flow (MAF; Papamakarios et al., 2017) fitted to posterior means")
    register("pixelcnn", PixelCNNSampler,
             description="an autoregressive prior over VQ code indices (van den Oord et al., 2017)")
