"""Relaxed categorical latents: the Gumbel-softmax / Concrete posterior (Jang et al., 2017; Maddison et al., 2017).

z is latent_dim / categories one-hot blocks. In training, each block is softmax((logits + g) / tau) with Gumbel
noise g, a differentiable relaxation of a categorical draw (straight-through one-hot with hard=True); tau
anneals as max(min_temperature, temperature * exp(-anneal_rate * step)), `step` being set by the training
loop. In eval mode the draw is the exact one-hot categorical sample. The KL is that of the categorical
distributions: sum_k q_k (log q_k - log p_k) per variable.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vaezoo.components.priors.categorical import split_categories
from vaezoo.core import Latent, Posterior, Prior


def gumbel_softmax(logits: torch.Tensor, tau: float, hard: bool, relaxed: bool) -> torch.Tensor:
    """A draw per row of logits [..., K]: relaxed (softmax((logits + g) / tau), straight-through one-hot with
    `hard`) or, with relaxed=False, the exact one-hot categorical sample argmax(logits + g)."""
    u = torch.rand_like(logits).clamp(min=torch.finfo(logits.dtype).tiny, max=1.0 - torch.finfo(logits.dtype).eps)
    scores = logits - torch.log(-torch.log(u))
    onehot = F.one_hot(scores.argmax(-1), logits.shape[-1]).to(logits.dtype)
    if not relaxed:
        return onehot
    soft = torch.softmax(scores / tau, dim=-1)
    return onehot + soft - soft.detach() if hard else soft


def categorical_kl(log_q: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """KL(q || p) of categorical distributions given as log-probabilities [..., K], summed over the last dim."""
    return (log_q.exp() * (log_q - log_p)).sum(-1)


class GumbelSoftmaxPosterior(Posterior):
    """latent_dim / categories categorical variables from the encoder's logits [latent_dim], drawn relaxed.

    Needs a categorical prior (on the simplex). log_q of a draw is the categorical log-probability of the
    one-hot code it rounds to, so several draws are not offered: a relaxed z has no categorical density, and
    importance weights between relaxed densities would be of another model than the KL.
    """

    family = "categorical"
    requires = frozenset({"simplex"})

    def __init__(
        self, latent_dim: int, categories: int = 10, temperature: float = 1.0, min_temperature: float = 0.5,
        anneal_rate: float = 3e-5, hard: bool = False,
    ) -> None:
        super().__init__(latent_dim)
        self.categories = categories
        self.variables = split_categories(self.discrete_dim(), categories)
        if not 0 < min_temperature <= temperature:
            raise ValueError(f"need 0 < min_temperature <= temperature, got {min_temperature} and {temperature}")
        if not anneal_rate >= 0:
            raise ValueError(f"anneal_rate must be non-negative, got {anneal_rate}")
        self.temperature, self.min_temperature = float(temperature), float(min_temperature)
        self.anneal_rate, self.hard = float(anneal_rate), bool(hard)

    def discrete_dim(self) -> int:
        """How many of the latent dimensions are one-hot blocks."""
        return self.latent_dim

    def param_dims(self) -> tuple[int, ...]:
        return (self.latent_dim,)

    def tau(self) -> float:
        """The relaxation temperature at the current training step."""
        return max(self.min_temperature, self.temperature * math.exp(-self.anneal_rate * self.step))

    def discrete(self, logits: torch.Tensor, log_p: torch.Tensor, samples: int | None) -> Latent:
        """z, KL and log q of the categorical part, from logits [B, variables * categories]."""
        log_q = torch.log_softmax(logits.unflatten(-1, (self.variables, self.categories)), dim=-1)
        lead = (samples,) if samples is not None else ()
        z = gumbel_softmax(log_q.expand(*lead, *log_q.shape), self.tau(), self.hard, self.training)
        log_q_z = (z.detach().argmax(-1, keepdim=True).eq(torch.arange(self.categories, device=z.device))
                   * log_q).sum((-1, -2))
        return Latent(z.flatten(-2), categorical_kl(log_q, log_p).sum(-1), log_q_z)

    def draw(self, params: tuple[torch.Tensor, ...], prior: Prior, samples: int | None = None) -> Latent:
        return self.discrete(params[0], prior.log_probs(), samples)

    def mean(self, params: tuple[torch.Tensor, ...], prior: Prior) -> torch.Tensor:
        """The most probable value of each variable, one-hot."""
        logits = params[0].unflatten(-1, (self.variables, self.categories))
        return F.one_hot(logits.argmax(-1), self.categories).to(logits.dtype).flatten(-2)

    def why_not(self, feature: str, prior: Prior) -> str | None:
        if feature == "kl_parts":
            return "a Gumbel-softmax posterior has no continuous part"
        if feature == "samples":
            return "a relaxed categorical draw has no categorical log q(z|x) to weight it with"
        if feature == "kl_per_dim":
            return "the KL of a categorical variable is one term per variable of several one-hot dimensions"
        if feature == "density":
            return "the dimensions of a one-hot block have no separate densities"
        if feature == "moments":
            return "the moments of a relaxed categorical draw depend on the temperature and have no closed form"
        return None
