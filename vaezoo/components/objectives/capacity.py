"""Controlled capacity: the KL is held near a target C(t) that rises linearly during training, instead of being
pushed down by a beta weight (beta-VAE with controlled capacity, Burgess et al., 2018; JointVAE's separate
continuous and discrete capacities, Dupont, 2018)."""
from __future__ import annotations

import torch

from vaezoo.core import VAE, Objective, VAEOutput
from vaezoo.core.estimators import elbo_terms


def _non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def capacity_at(step: int, capacity: float, steps: int) -> float:
    """C(t): 0 at step 0, rising linearly to `capacity` at step `steps`, then held (at once with steps = 0)."""
    return capacity if steps == 0 else capacity * min(1.0, step / steps)


class CapacityObjective(Objective):
    """-E[log p(x|z)] + gamma |KL - C(t)|, KL the batch mean of KL(q(z|x) || p(z)) and C(t) rising linearly
    from 0 to `capacity` nats over `capacity_steps` steps (Burgess et al., 2018: gamma 1000, 25 nats over
    100,000 steps). With `discrete_capacity` set (JointVAE, Dupont, 2018), the KL of a posterior with
    continuous and discrete parts (the feature "kl_parts": the joint posterior) is held in two parts:
    gamma |KL_c - C_c(t)| + discrete_gamma |KL_d - C_d(t)|, C_d(t) rising to `discrete_capacity` over the same
    steps but never above the largest discrete KL (log(categories) per variable for a uniform prior), which
    could not be reached. Reads `step`, which the training loop sets; terms["capacity"] holds C(t)."""

    def __init__(self, gamma: float = 1000.0, capacity: float = 25.0, capacity_steps: int = 100_000,
                 discrete_capacity: float | None = None, discrete_gamma: float | None = None) -> None:
        super().__init__()
        self.gamma, self.capacity = _non_negative("gamma", gamma), _non_negative("capacity", capacity)
        if isinstance(capacity_steps, bool) or not isinstance(capacity_steps, int) or capacity_steps < 0:
            raise ValueError(f"capacity_steps must be a non-negative int (steps), got {capacity_steps!r}")
        self.capacity_steps = capacity_steps
        self.discrete_capacity = None if discrete_capacity is None else _non_negative(
            "discrete_capacity", discrete_capacity)
        if discrete_gamma is not None and discrete_capacity is None:
            raise ValueError("discrete_gamma weighs the discrete capacity term: set discrete_capacity too")
        self.discrete_gamma = self.gamma if discrete_gamma is None else _non_negative("discrete_gamma", discrete_gamma)

    def needs(self) -> frozenset[str]:
        return frozenset({"kl_parts"}) if self.discrete_capacity is not None else frozenset()

    def capacities(self, vae: VAE) -> tuple[float, float]:
        """(C_c(t), C_d(t)) at the current step; C_d(t) is 0 without a discrete capacity."""
        continuous = capacity_at(self.step, self.capacity, self.capacity_steps)
        if self.discrete_capacity is None:
            return continuous, 0.0
        discrete = capacity_at(self.step, self.discrete_capacity, self.capacity_steps)
        return continuous, min(discrete, vae.posterior.discrete_kl_bound(vae.prior))

    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        c_continuous, c_discrete = self.capacities(vae)
        out = elbo_terms(vae, x, y, kl_parts=self.discrete_capacity is not None)
        if self.discrete_capacity is None:
            penalty = self.gamma * (out.kl.mean() - c_continuous).abs()
        else:
            kl_c, kl_d = out.terms["kl_parts"].mean(0)
            penalty = self.gamma * (kl_c - c_continuous).abs() + self.discrete_gamma * (kl_d - c_discrete).abs()
            out.terms["discrete_capacity"] = out.kl.new_full(out.kl.shape, c_discrete)
        out.terms["capacity"] = out.kl.new_full(out.kl.shape, c_continuous)
        out.loss = -out.recon.mean() + penalty
        return out
