"""The codebook prior of VQ-VAE (van den Oord et al., 2017): latent_dim / code_dim positions, each one of
`codes` learned vectors, with a categorical distribution over the codes of each position."""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vaezoo.components.layers import positive_int
from vaezoo.core import Prior

UPDATES = ("loss", "ema")
PI = ("refit", "learned", "uniform")


class CodebookPrior(Prior):
    """p(z) = prod_n pi_n(k_n) with z the concatenated code vectors e_{k_1}, ..., e_{k_N}: a discrete prior on
    the codebook, which it owns (the VQ posterior quantizes against it).

    The codebook learns by the VQ posterior's codebook loss (update="loss") or as an exponential moving
    average of the encoder outputs assigned to each code (update="ema", decay, Laplace smoothing epsilon;
    van den Oord et al., 2017, appendix). pi (one categorical per position) is
    - "refit": fitted after training, as in the paper's second stage: after each epoch's training the trainer
      counts the codes the encoder gives the training set and sets pi_n(k) = (count + 1) / (N + codes), so the
      saved model samples codes in the proportions its encoder uses (add-one smoothing keeps every code
      possible); `refits`, `code_statistics` and `refit` are the Prior seam the trainer calls;
    - "learned": a parameter learned by the ELBO's KL term -log pi_n(k_n) during training;
    - "uniform".
    """

    support = frozenset({"codes"})

    def __init__(
        self, latent_dim: int, codes: int = 128, code_dim: int = 4, pi: str = "refit", update: str = "ema",
        decay: float = 0.99, epsilon: float = 1e-5,
    ) -> None:
        super().__init__(latent_dim)
        self.codes, self.code_dim = positive_int("codes", codes), positive_int("code_dim", code_dim)
        if latent_dim % code_dim:
            raise ValueError(f"latent_dim ({latent_dim}) must be a multiple of code_dim ({code_dim})")
        if update not in UPDATES:
            raise ValueError(f"update must be one of {', '.join(UPDATES)}, got {update!r}")
        if pi not in PI:
            raise ValueError(f"pi must be one of {', '.join(PI)}, got {pi!r}")
        if not 0 < decay < 1 or not epsilon > 0:
            raise ValueError(f"need 0 < decay < 1 and epsilon > 0, got {decay} and {epsilon}")
        self.positions, self.update, self.decay, self.epsilon = latent_dim // code_dim, update, float(decay), float(epsilon)
        embedding = torch.empty(codes, code_dim).uniform_(-1.0, 1.0)
        logits = torch.zeros(self.positions, codes)
        self.refits = pi == "refit"
        if pi == "learned":
            self.logits = nn.Parameter(logits)
        else:  # a refitted pi is saved with the weights; a uniform one is not state
            self.register_buffer("logits", logits, persistent=pi == "refit")
        if update == "loss":
            self.embedding = nn.Parameter(embedding)
        else:
            self.register_buffer("embedding", embedding)
            self.register_buffer("cluster_size", torch.ones(codes))
            self.register_buffer("embed_sum", embedding.clone())

    def log_probs(self) -> torch.Tensor:
        """log pi_n(k) for each position n and code k, [positions, codes]."""
        return torch.log_softmax(self.logits, dim=-1)

    def nearest(self, vectors: torch.Tensor) -> torch.Tensor:
        """The index of the closest code to each vector [..., code_dim] (squared Euclidean distance)."""
        e = self.embedding
        distances = (vectors * vectors).sum(-1, keepdim=True) - 2.0 * vectors @ e.T + (e * e).sum(-1)
        return distances.argmin(-1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """The code vectors of indices [..., positions], concatenated: [..., latent_dim]."""
        return self.embedding[indices].flatten(-2)

    @torch.no_grad()
    def ema_update(self, vectors: torch.Tensor, indices: torch.Tensor) -> None:
        """One moving-average step: N_k <- g N_k + (1-g) n_k, m_k <- g m_k + (1-g) sum of the vectors assigned to k,
        e_k = m_k / N_k with N Laplace-smoothed: (N_k + eps) / (sum N + K eps) * sum N.

        In data-parallel training n_k and the sums are summed over the ranks first, so every rank takes the
        step one process takes on the whole batch and the codebooks stay identical."""
        flat, idx = vectors.reshape(-1, self.code_dim), indices.reshape(-1)
        onehot = F.one_hot(idx, self.codes).to(flat.dtype)
        batch = torch.cat([onehot.sum(0, keepdim=True).T, onehot.T @ flat], dim=1)  # [codes, 1 + code_dim]
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(batch)
        self.cluster_size.mul_(self.decay).add_(batch[:, 0], alpha=1.0 - self.decay)
        self.embed_sum.mul_(self.decay).add_(batch[:, 1:], alpha=1.0 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (total + self.codes * self.epsilon) * total
        self.embedding.copy_(self.embed_sum / smoothed.unsqueeze(-1))

    def sample(self, n: int) -> torch.Tensor:
        k = torch.distributions.Categorical(logits=self.log_probs()).sample((n,))
        return self.lookup(k)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """sum_n log pi_n(k_n) of the codes nearest to z's blocks (exact for codebook vectors)."""
        k = self.nearest(z.unflatten(-1, (self.positions, self.code_dim)))
        return self.code_log_prob(k)

    def code_log_prob(self, indices: torch.Tensor) -> torch.Tensor:
        """sum_n log pi_n(k_n) of code indices [..., positions]."""
        log_probs = self.log_probs().expand(*indices.shape, self.codes)
        return log_probs.gather(-1, indices.unsqueeze(-1)).squeeze(-1).sum(-1)

    def code_statistics(self, z: torch.Tensor) -> torch.Tensor:
        """How often each code is the nearest one at each position among z [..., latent_dim]: [positions, codes]."""
        k = self.nearest(z.unflatten(-1, (self.positions, self.code_dim))).reshape(-1, self.positions)
        return F.one_hot(k, self.codes).sum(0).to(self.logits.dtype)

    @torch.no_grad()
    def refit(self, statistics: torch.Tensor) -> None:
        """pi_n(k) = (count_n(k) + 1) / (N + codes) from the training set's summed `code_statistics`."""
        self.logits.copy_(torch.log(statistics.to(self.logits) + 1.0))
