"""vaezoo: a plugin-based model zoo of Variational Autoencoders on PyTorch, with fused C++/CUDA kernels."""
from vaezoo import metrics, ops
from vaezoo._version import __version__
from vaezoo.factory import create_model, get_model_spec, list_components, list_models
from vaezoo.core import FEATURES, VAE, Latent, Likelihood, Objective, Posterior, Prior, VAEOutput
from vaezoo.hookspecs import hookimpl, hookspec
from vaezoo.rundir import load_model
from vaezoo.spec import VariantSpec

__all__ = [
    "FEATURES",
    "VAE",
    "Latent",
    "Likelihood",
    "Objective",
    "Posterior",
    "Prior",
    "VAEOutput",
    "VariantSpec",
    "__version__",
    "create_model",
    "get_model_spec",
    "hookimpl",
    "hookspec",
    "list_components",
    "list_models",
    "load_model",
    "metrics",
    "ops",
]
