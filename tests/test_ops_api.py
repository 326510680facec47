"""The operator's Python face: torch.library registration (opcheck, torch.compile), backend choice and the
VAEZOO_BACKEND variable, and errors for bad arguments."""
from __future__ import annotations

import pytest
import torch
from _ops_cases import (
    assert_compiled_step_matches_eager,
    fused_cpu,
    make_eps,
    make_inputs,
)

from vaezoo.ops import backends, reparameterize


def test_backends_lists_cpu():
    found = backends()
    assert "reference" in found["cpu"]
    assert ("cuda" in found) == torch.cuda.is_available()


@fused_cpu
@pytest.mark.parametrize(
    "prior, samples, explicit_eps, shard",
    [(None, None, False, ()), ("full", None, True, ()), ("shared", 3, False, (2, 9)), ("shared1", 2, True, ()),
     (None, 2, False, (5, 9))],
)
def test_opcheck(prior, samples, explicit_eps, shard):
    mu, logvar, pm, plv = make_inputs((4, 3, 2), torch.float32, prior, requires_grad=True)
    eps = make_eps((4, 3, 2), torch.float32, samples) if explicit_eps else None
    torch.library.opcheck(torch.ops.vaezoo.reparameterize_fwd.default, (mu, logvar, pm, plv, eps, samples, *shard))


@fused_cpu
def test_compiled_training_step_matches_eager():
    assert_compiled_step_matches_eager()


def _standard_draw(**kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """(z from reparameterize, torch.randn) under one seed, for mu = 0 and logvar = 0."""
    zeros = torch.zeros(8, 5)
    torch.manual_seed(2)
    z = reparameterize(zeros, zeros, **kwargs)[0]
    torch.manual_seed(2)
    return z, torch.randn(8, 5)


def test_reference_backend_draws_with_torch_randn():
    z, randn = _standard_draw(backend="reference")
    assert torch.equal(z, randn)


@fused_cpu
def test_auto_is_fused_where_built():
    z, randn = _standard_draw()
    assert not torch.equal(z, randn)
    assert torch.equal(z, _standard_draw(backend="fused")[0])


@fused_cpu
def test_environment_variable_picks_the_backend(monkeypatch):
    monkeypatch.setenv("VAEZOO_BACKEND", "reference")
    z, randn = _standard_draw()
    assert torch.equal(z, randn)
    z, randn = _standard_draw(backend="fused")  # an explicit argument wins over the variable
    assert not torch.equal(z, randn)


def test_bad_backend_names(monkeypatch):
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="backend"):
        reparameterize(x, x, backend="fast")
    monkeypatch.setenv("VAEZOO_BACKEND", "fast")
    with pytest.raises(ValueError, match="VAEZOO_BACKEND"):
        reparameterize(x, x)


def test_fused_where_not_built_is_a_clear_error():
    x = torch.zeros(2, 3, device="meta")
    with pytest.raises(RuntimeError, match="fused.*not built"):
        reparameterize(x, x, backend="fused")


@pytest.mark.parametrize(
    "kwargs, error, names",
    [
        (dict(logvar=torch.zeros(2, 4)), ValueError, "logvar"),
        (dict(logvar=torch.zeros(2, 3, dtype=torch.float64)), TypeError, "logvar"),
        (dict(mu=torch.zeros(2, 3, dtype=torch.int64)), TypeError, "mu"),
        (dict(logvar=torch.zeros(2, 3, dtype=torch.int32)), TypeError, "logvar"),
        (dict(logvar=torch.zeros(2, 3, device="meta")), ValueError, "logvar"),
        (dict(mu=torch.zeros(())), ValueError, "mu"),
        (dict(prior_mu=torch.zeros(3), prior_logvar=torch.zeros(4)), ValueError, "prior_logvar"),
        (dict(prior_mu=torch.zeros(2, 3), prior_logvar=torch.zeros(3)), ValueError, "both the shape of mu"),
        (dict(prior_mu=torch.zeros(1, 3), prior_logvar=torch.zeros(2, 3)), ValueError, "both the shape of mu"),
        (dict(prior_mu=torch.zeros(2, 3)), ValueError, "prior_mu and prior_logvar"),
        (dict(prior_mu=torch.zeros(3, dtype=torch.float16), prior_logvar=torch.zeros(3)), TypeError, "prior_mu"),
        (dict(eps=torch.zeros(3, 2)), ValueError, "eps"),
        (dict(eps=torch.zeros(2, 3), samples=2), ValueError, "eps"),
        (dict(samples=0), ValueError, "samples"),
        (dict(eps=torch.zeros(2, 3, dtype=torch.int64)), TypeError, "eps"),
    ],
)
@pytest.mark.parametrize("backend", ["reference", pytest.param("fused", marks=fused_cpu)])
def test_bad_arguments_name_the_argument(kwargs, error, names, backend):
    """Both backends refuse the same arguments with the same error (the fused kernel never sees them)."""
    args = dict(mu=torch.zeros(2, 3), logvar=torch.zeros(2, 3))
    args.update(kwargs)
    mu, logvar = args.pop("mu"), args.pop("logvar")
    with pytest.raises(error, match=names):
        reparameterize(mu, logvar, **args, backend=backend)
