"""How much importance-weighted NLL `vaezoo eval` measures by default: K = 1000 on every held-out example where
that is affordable, K = 100 on a bounded number of the first examples where it is not.

The IW-NLL costs one decoder pass per importance sample per example. For an MLP on 28x28 images, K = 1000 on
all 10,000 test images is the protocol the literature reports (about 1e13 operations, a quarter of an hour of
one CPU thread); for a conv model of 64x64 images (5,000 held-out dSprites) the same protocol is about 2e14,
some 15 hours of one CPU thread. The choice is made from the model's operations, counted by torch's FLOP
counter on one held-out example (matrix products and convolutions), not from a timing, so the same run gets
the same default on every machine and its figures stay comparable."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch.utils.flop_counter import FlopCounterMode

from vaezoo.analysis.evaluate import evaluating
from vaezoo.core import VAE
from vaezoo.core.estimators import iw_terms
from vaezoo.data.held_out import HeldOut

#: K on every held-out example while the whole costs at most FULL_FLOPS (Fashion-MNIST vae-mlp: 9.6e12).
FULL_SAMPLES, FULL_FLOPS = 1000, 3e13
#: Beyond FULL_FLOPS: K = 100 on as many of the first examples as BOUNDED_FLOPS pays for (two significant
#: digits, at least MIN_EXAMPLES): about a minute of one CPU thread for a 64x64 conv model (120 dSprites images).
BOUNDED_SAMPLES, BOUNDED_FLOPS, MIN_EXAMPLES = 100, 5e11, 10


@dataclass(frozen=True)
class NllBudget:
    """The IW-NLL to measure: K importance samples on the first `examples` held-out examples, `chosen_by` the
    default rule ("default": neither was given; "given": both were; "partly given": one was) and, when the
    model's operations were counted, the FLOPs of K = 1000 on every example (`full_flops`) and of this budget."""

    samples: int
    examples: int
    chosen_by: str
    full_flops: float | None = None
    flops: float | None = None

    def record(self) -> dict[str, Any]:
        """The budget as evaluation results record it (JSON)."""
        return {key: value for key, value in asdict(self).items() if value is not None}


def iw_flops(model: VAE, held_out: HeldOut) -> tuple[float, float]:
    """(FLOPs per example, FLOPs per importance sample) of the IW bound, from counts on the first held-out
    example with K = 1 and K = 2: the encoder (and anything else done once per example), then the decoder and
    densities done per sample."""
    counts = []
    with evaluating(model, 0) as device:
        x, y = held_out.first(1, device)
        for samples in (1, 2):
            with FlopCounterMode(display=False) as counter:
                iw_terms(model, x, samples, y)
            counts.append(float(counter.get_total_flops()))
    per_sample = max(0.0, counts[1] - counts[0])
    return max(0.0, counts[0] - per_sample), per_sample


def _two_digits(n: int) -> int:
    """n rounded down to two significant digits (127 -> 120, 1,234 -> 1,200)."""
    unit = 10 ** max(0, len(str(n)) - 2)
    return n // unit * unit


def nll_budget(model: VAE, held_out: HeldOut, samples: int | None = None, examples: int | None = None) -> NllBudget:
    """The IW-NLL `vaezoo eval` measures: `samples` (K) and `examples` (the first N held-out examples) where
    given, the default rule's for the others (module docstring). The model's operations are counted only when
    the rule is needed."""
    available = len(held_out)
    if samples is not None and examples is not None:
        return NllBudget(samples, min(examples, available), "given")
    per_example, per_sample = iw_flops(model, held_out)
    full_flops = available * (per_example + FULL_SAMPLES * per_sample)
    if full_flops <= FULL_FLOPS:
        default_samples, default_examples = FULL_SAMPLES, available
    else:
        affordable = int(BOUNDED_FLOPS // (per_example + BOUNDED_SAMPLES * per_sample))
        default_samples = BOUNDED_SAMPLES
        default_examples = min(available, max(MIN_EXAMPLES, _two_digits(affordable)))
    k = default_samples if samples is None else samples
    n = default_examples if examples is None else min(examples, available)
    chosen_by = "default" if samples is None and examples is None else "partly given"
    return NllBudget(k, n, chosen_by, full_flops, n * (per_example + k * per_sample))

