"""Disentanglement metrics on codes with known answers: the factors themselves, independent noise, a permuted
and rescaled copy of the factors, one factor spread over two dimensions; and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from vaezoo import metrics
from vaezoo.errors import MetricInputError, VaezooError
from vaezoo.metrics.dci import disentanglement_completeness

GRID = (3, 6, 10, 8, 8)  # a small factorial grid like dSprites': shape, scale, orientation, x, y
NAMES = ("mig", "sap", "dci_d", "dci_c", "beta_vae", "factor_vae")


def sample_factors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack(np.unravel_index(rng.integers(0, np.prod(GRID), n), GRID), 1).astype(np.float64)


def scores(codes: np.ndarray, factors: np.ndarray) -> dict[str, float]:
    d = metrics.dci(codes, factors)
    return {
        "mig": metrics.mig(codes, factors), "sap": metrics.sap(codes, factors),
        "dci_d": d["disentanglement"], "dci_c": d["completeness"], "dci_i": d["informativeness"],
        "beta_vae": metrics.beta_vae_score(codes, factors, train_points=2000, eval_points=1000),
        "factor_vae": metrics.factor_vae_score(codes, factors, train_votes=2000, eval_votes=1000),
    }


@pytest.fixture(scope="module")
def factors() -> np.ndarray:
    return sample_factors(2000)


@pytest.fixture(scope="module")
def perfect(factors) -> dict[str, float]:
    return scores(factors, factors)


def test_the_factors_themselves_score_near_one(perfect):
    for name in NAMES:
        assert perfect[name] > 0.95, (name, perfect[name])
    assert perfect["dci_i"] > 0.99


def test_independent_noise_scores_near_zero_or_chance(factors):
    noise = np.random.default_rng(1).normal(size=(len(factors), 6))
    s = scores(noise, factors)
    for name in ("mig", "sap", "dci_d", "dci_c"):
        assert s[name] < 0.05, (name, s[name])
    # the classifier scores are accuracies: noise scores chance, 1 / 5 factors (BetaVAE, FactorVAE) and the
    # mean of 1 / values per factor (DCI informativeness)
    assert abs(s["beta_vae"] - 0.2) < 0.06 and abs(s["factor_vae"] - 0.2) < 0.06, s
    chance = np.mean([1 / v for v in GRID])
    assert abs(s["dci_i"] - chance) < 0.06, (s["dci_i"], chance)


def test_a_permuted_rescaled_shifted_copy_scores_like_the_factors(factors, perfect):
    copy = factors[:, [3, 0, 4, 1, 2]] * np.array([2.0, -0.5, 3.0, 0.1, -7.0]) + np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    s = scores(copy, factors)
    for name in NAMES:
        assert s[name] == pytest.approx(perfect[name], abs=0.02), name


def test_entangled_codes_score_lower_than_disentangled_ones(factors, perfect):
    """Rotating two factors into each other keeps the information but spreads each factor over two dims."""
    mixed = factors / factors.std(0)
    a, b = mixed[:, 3].copy(), mixed[:, 4].copy()
    mixed[:, 3], mixed[:, 4] = a + b, a - b
    s = scores(mixed + np.random.default_rng(2).normal(scale=0.01, size=mixed.shape), factors)
    # two of five factors lose their gap (MIG, SAP) and split their importance over two codes (DCI)
    for name in ("mig", "sap"):
        assert s[name] < perfect[name] - 0.25, (name, s[name], perfect[name])
    for name in ("dci_d", "dci_c"):
        assert s[name] < perfect[name] - 0.1, (name, s[name], perfect[name])
    assert s["dci_i"] > 0.95  # the information is all still there


def test_dci_formulas_on_hand_made_importances():
    assert disentanglement_completeness(np.eye(3)) == pytest.approx((1.0, 1.0))
    d, c = disentanglement_completeness(np.ones((3, 3)))
    assert d == pytest.approx(0.0, abs=1e-9) and c == pytest.approx(0.0, abs=1e-9)
    # one code carries two factors equally: that code's disentanglement is 1 - log(2)/log(2) = 0
    d, c = disentanglement_completeness(np.array([[1.0, 1.0], [0.0, 0.0]]))
    assert d == pytest.approx(0.0, abs=1e-6) and c == pytest.approx(1.0, abs=1e-6)


def test_scores_repeat_with_the_seed(factors):
    codes = factors + np.random.default_rng(3).normal(scale=1.0, size=factors.shape)
    for fn in (metrics.sap, metrics.beta_vae_score, metrics.factor_vae_score):
        assert fn(codes, factors, seed=5) == fn(codes, factors, seed=5)


@pytest.mark.parametrize("fn", [metrics.mig, metrics.sap, metrics.dci, metrics.beta_vae_score, metrics.factor_vae_score])
def test_bad_input_is_named(fn, factors):
    codes = factors.copy()
    with pytest.raises(MetricInputError, match="codes must be 2-D"):
        fn(codes[:, 0], factors)
    with pytest.raises(MetricInputError, match="factors has 10 rows but codes have 2000"):
        fn(codes, factors[:10])
    with pytest.raises(MetricInputError, match="factors must be numeric"):
        fn(codes, factors.astype(str))
    with pytest.raises(MetricInputError, match="at least"):
        fn(codes[:5], factors[:5])
    with pytest.raises(MetricInputError, match="NaN"):
        fn(np.where(codes == 0, np.nan, codes), factors)
    with pytest.raises(MetricInputError, match="factor 1 takes one value"):
        fn(codes, np.stack([factors[:, 0], np.ones(len(factors))], 1))
    with pytest.raises(MetricInputError, match="looks continuous"):
        fn(codes, np.random.default_rng(0).normal(size=(len(codes), 1)))
    assert issubclass(MetricInputError, VaezooError)
