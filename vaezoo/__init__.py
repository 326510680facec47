"""vaezoo: a plugin-based model zoo of Variational Autoencoders on PyTorch, with fused C++/CUDA kernels."""
from vaezoo import metrics, ops
from vaezoo._version import __version__
from vaezoo.core import (
    FEATURES,
    VAE,
    Latent,
    Likelihood,
    Objective,
    Posterior,
    Prior,
    VAEOutput,
)
from vaezoo.data.datasets import Dataset
from vaezoo.data.splits import ImageSet, Splits, TensorImages
from vaezoo.registry.factory import (
    get_model_spec,
    list_components,
    list_models,
)
from vaezoo.registry.hookspecs import Register, hookimpl, hookspec
from vaezoo.registry.spec import VariantSpec
from vaezoo.registry.weights import PretrainedWeights
from vaezoo.runs.directory import load_model
from vaezoo.runs.pretrained import create_model
from vaezoo.training.callbacks import Callback
from vaezoo.training.config import TrainConfig
from vaezoo.training.fit import Run, fit

__all__ = [
    "FEATURES",
    "VAE",
    "Callback",
    "Dataset",
    "ImageSet",
    "Latent",
    "Likelihood",
    "Objective",
    "Posterior",
    "Prior",
    "PretrainedWeights",
    "Register",
    "Run",
    "Splits",
    "TensorImages",
    "TrainConfig",
    "VAEOutput",
    "VariantSpec",
    "__version__",
    "create_model",
    "fit",
    "get_model_spec",
    "hookimpl",
    "hookspec",
    "list_components",
    "list_models",
    "load_model",
    "metrics",
    "ops",
]
