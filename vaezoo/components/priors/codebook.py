"""The codebook prior of VQ-VAE (van den Oord et al., 2017): latent_dim / code_dim positions, each one of
`codes` learned vectors, with a categorical distribution over the codes of each position."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.components.layers import positive_int
from vaezoo.core import Prior

UPDATES = ("loss", "ema")


class CodebookPrior(Prior):
    """p(z) = prod_n pi_n(k_n) with z the concatenated code vectors e_{k_1}, ..., e_{k_N}: a discrete prior on
    the codebook, which it owns (the VQ posterior quantizes against it).

    The codebook learns by the VQ posterior's codebook loss (update="loss") or as an exponential moving
    average of the encoder outputs assigned to each code (update="ema", decay, Laplace smoothing epsilon;
    van den Oord et al., 2017, appendix). pi is uniform, or learned (learn=True) by the ELBO's KL term
    -log pi_n(k_n), which reaches only pi: that fits the prior over codes to the codes the encoder uses, so
    that samples decode codes in the proportions seen in training (one categorical per position).
    """

    support = frozenset({"codes"})

    def __init__(
        self, latent_dim: int, codes: int = 128, code_dim: int = 4, learn: bool = True, update: str = "ema",
        decay: float = 0.99, epsilon: float = 1e-5,
    ) -> None:
        super().__init__(latent_dim)
        self.codes, self.code_dim = positive_int("codes", codes), positive_int("code_dim", code_dim)
        if latent_dim % code_dim:
            raise ValueError(f"latent_dim ({latent_dim}) must be a multiple of code_dim ({code_dim})")
        if update not in UPDATES:
            raise ValueError(f"update must be one of {', '.join(UPDATES)}, got {update!r}")
        if not 0 < decay < 1 or not epsilon > 0:
            raise ValueError(f"need 0 < decay < 1 and epsilon > 0, got {decay} and {epsilon}")
        self.positions, self.update, self.decay, self.epsilon = latent_dim // code_dim, update, float(decay), float(epsilon)
        embedding = torch.empty(codes, code_dim).uniform_(-1.0, 1.0)
        logits = torch.zeros(self.positions, codes)
        self.logits = nn.Parameter(logits) if learn else None
        if not learn:
            self.register_buffer("fixed_logits", logits, persistent=False)
        if update == "loss":
            self.embedding = nn.Parameter(embedding)
        else:
            self.register_buffer("embedding", embedding)
            self.register_buffer("cluster_size", torch.ones(codes))
            self.register_buffer("embed_sum", embedding.clone())

    def log_probs(self) -> torch.Tensor:
        """log pi_n(k) for each position n and code k, [positions, codes]."""
        return torch.log_softmax(self.logits if self.logits is not None else self.fixed_logits, dim=-1)

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
        e_k = m_k / N_k with N Laplace-smoothed: (N_k + eps) / (sum N + K eps) * sum N."""
        flat, idx = vectors.reshape(-1, self.code_dim), indices.reshape(-1)
        onehot = F.one_hot(idx, self.codes).to(flat.dtype)
        self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1.0 - self.decay)
        self.embed_sum.mul_(self.decay).add_(onehot.T @ flat, alpha=1.0 - self.decay)
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
