"""vaezoo: a plugin-based model zoo of Variational Autoencoders on PyTorch, with fused C++/CUDA kernels."""
from vaezoo import metrics, ops
from vaezoo.analysis import run_pictures
from vaezoo.analysis.run_evaluation import check_finite, evaluate_saved_run
from vaezoo.analysis.run_held_out import open_run
from vaezoo._version import __version__
from vaezoo.core import (
    FEATURES,
    VAE,
    Latent,
    Likelihood,
    Objective,
    Posterior,
    Prior,
    Sampler,
    VAEOutput,
)
from vaezoo.data.datasets import Dataset
from vaezoo.data.splits import ImageSet, Splits, TensorImages
from vaezoo.registry.factory import (
    get_model_spec,
    list_components,
    list_models,
)
from vaezoo.registry.description import describe_variant
from vaezoo.registry.hookspecs import Register, hookimpl, hookspec
from vaezoo.registry.spec import VariantSpec
from vaezoo.registry.weights import PretrainedWeights
from vaezoo.runs.directory import load_model
from vaezoo.runs.pretrained import create_model
from vaezoo.training.callbacks import Callback
from vaezoo.training.config import BuildSettings, TrainConfig, TrainSettings
from vaezoo.training.fit import Run, fit

__all__ = [
    "FEATURES",
    "VAE",
    "BuildSettings",
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
    "Sampler",
    "Splits",
    "TensorImages",
    "TrainConfig",
    "TrainSettings",
    "VAEOutput",
    "VariantSpec",
    "__version__",
    "check_finite",
    "create_model",
    "describe_variant",
    "evaluate_saved_run",
    "fit",
    "get_model_spec",
    "hookimpl",
    "hookspec",
    "list_components",
    "list_models",
    "load_model",
    "metrics",
    "open_run",
    "ops",
    "run_pictures",
]
