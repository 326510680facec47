"""Categorical priors over one-hot codes: independent categorical variables, uniform or learned, and their
product with N(0, I) for the joint continuous + discrete latents of JointVAE."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.components.layers import positive_int
from vaezoo.components.priors.gaussian import StandardNormal
from vaezoo.core import Prior


def split_categories(latent_dim: int, categories: int) -> int:
    """The number of categorical variables of `categories` values in `latent_dim` one-hot dimensions."""
    categories = positive_int("categories", categories)
    if categories < 2 or latent_dim % categories:
        raise ValueError(
            f"the categorical dimensions ({latent_dim}) must be a multiple of categories ({categories}, at least 2)"
        )
    return latent_dim // categories


class CategoricalPrior(Prior):
    """latent_dim / categories independent categorical variables, each a one-hot block of `categories` numbers.

    Uniform by default; with learn=True each variable's probabilities are learned (by the ELBO's KL term).
    `log_prob(z)` is sum z * log p over the blocks: exact for one-hot z, a cross-entropy for relaxed z.
    """

    support = frozenset({"simplex"})

    def __init__(self, latent_dim: int, categories: int = 10, learn: bool = False) -> None:
        super().__init__(latent_dim)
        self.categories = categories
        self.variables = split_categories(latent_dim, categories)
        logits = torch.zeros(self.variables, categories)
        if learn:
            self.logits = nn.Parameter(logits)
        else:
            self.register_buffer("logits", logits, persistent=False)

    def log_probs(self) -> torch.Tensor:
        """log p of each value of each variable, [variables, categories]."""
        return torch.log_softmax(self.logits, dim=-1)

    def sample(self, n: int) -> torch.Tensor:
        k = torch.distributions.Categorical(logits=self.logits).sample((n,))
        return F.one_hot(k, self.categories).to(self.logits.dtype).flatten(1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        blocks = z.unflatten(-1, (self.variables, self.categories))
        return (blocks * self.log_probs()).sum((-1, -2))


class JointPrior(Prior):
    """N(0, I) over the first `continuous` dimensions times a categorical prior over the rest (JointVAE)."""

    support = frozenset({"euclidean-simplex"})

    def __init__(self, latent_dim: int, continuous: int = 10, categories: int = 10, learn: bool = False) -> None:
        super().__init__(latent_dim)
        continuous = positive_int("continuous", continuous)
        if continuous >= latent_dim:
            raise ValueError(f"continuous ({continuous}) must leave dimensions for the categories of latent_dim {latent_dim}")
        self.continuous = continuous
        self.normal = StandardNormal(continuous)
        self.categorical = CategoricalPrior(latent_dim - continuous, categories, learn)

    def sample(self, n: int) -> torch.Tensor:
        return torch.cat([self.normal.sample(n), self.categorical.sample(n)], dim=-1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        c = self.continuous
        return self.normal.log_prob(z[..., :c]) + self.categorical.log_prob(z[..., c:])
