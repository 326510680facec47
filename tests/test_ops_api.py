"""The operator's Python face: torch.library registration (opcheck, torch.compile), backend choice and the
VAEZOO_BACKEND variable, and errors for bad arguments."""
from __future__ import annotations

import contextlib
import os
import re
import sys

import pytest
import torch
from _ops_cases import (
    assert_compiled_step_matches_eager,
    fused_cpu,
    make_eps,
    make_inputs,
)

import vaezoo
from vaezoo.ops import backends, noise_shard, reparameterize
from vaezoo.ops.fused import eager_entry
from vaezoo.ops.validation import check_arguments


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


BAD_ARGUMENTS = [  # (arguments beside mu = logvar = zeros(2, 3), error, what its message names)
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
        # opcall: every check the C++ entry makes has a row
        (dict(mu=torch.zeros(2, 3, dtype=torch.float16)), TypeError, "logvar has dtype torch.float32 but mu"),
        (dict(eps=torch.zeros(2, 3, device="meta")), ValueError, "eps is on meta but mu is on cpu"),
        (dict(prior_mu=torch.zeros(3), prior_logvar=torch.zeros(3, dtype=torch.int32)), TypeError, "prior_logvar"),
        (dict(prior_mu=torch.zeros(1, 3, 1), prior_logvar=torch.zeros(1, 3, 1)), ValueError, "prior_mu has shape"),
        (dict(eps=torch.zeros(2, 3, dtype=torch.float64)), TypeError, "eps has dtype torch.float64"),
        (dict(eps=torch.zeros(3, 2, 3), samples=2), ValueError, r"expected \(2, 2, 3\)"),
        (dict(samples=-3), ValueError, "samples must be a positive int or None, got -3"),
        (dict(shard=(2, 3)), ValueError, r"mu has 2 rows, more than the rows 2\.\.3 left in the noise_shard block"),
]
# arguments that only the Python entry sees: the C++ entry leaves them to it
PYTHON_ONLY = [
    (dict(mu=[[0.0, 0.0, 0.0]]), TypeError, "mu must be a torch.Tensor, got list"),
    (dict(prior_mu=torch.zeros(3), prior_logvar=3.0), TypeError, "prior_logvar must be a torch.Tensor, got float"),
    (dict(samples=True), ValueError, "samples must be a positive int or None, got True"),
    (dict(samples=2.0), ValueError, "samples must be a positive int or None, got 2.0"),
]


def _call(kwargs: dict, run):
    """run(mu, logvar, prior_mu, prior_logvar, eps, samples, row_start, row_total) with one row's arguments."""
    args = dict(mu=torch.zeros(2, 3), logvar=torch.zeros(2, 3))
    args.update(kwargs)
    start, total = args.pop("shard", (0, None))
    return run(args["mu"], args["logvar"], args.get("prior_mu"), args.get("prior_logvar"), args.get("eps"),
               args.get("samples"), start, total)


def _public(backend: str):
    def run(mu, logvar, prior_mu, prior_logvar, eps, samples, start, total):
        with noise_shard(start, total) if total is not None else contextlib.nullcontext():
            return reparameterize(mu, logvar, prior_mu, prior_logvar, eps=eps, samples=samples, backend=backend)
    return run


@pytest.mark.parametrize("kwargs, error, names", BAD_ARGUMENTS + PYTHON_ONLY)
@pytest.mark.parametrize("backend", ["reference", pytest.param("fused", marks=fused_cpu)])
def test_bad_arguments_name_the_argument(kwargs, error, names, backend):
    """Both backends refuse the same arguments with the same error (the fused kernel never sees them)."""
    with pytest.raises(error, match=names):
        _call(kwargs, _public(backend))


def _error_of(fn) -> tuple[type, str]:
    with pytest.raises((TypeError, ValueError)) as info:
        fn()
    return type(info.value), str(info.value)


@fused_cpu
@pytest.mark.parametrize("kwargs, error, names", BAD_ARGUMENTS)
def test_the_cpp_and_python_checks_raise_the_same_error(kwargs, error, names):
    """The C++ checks (eager calls) and validation.py's (torch.compile's tracing, the reference backend, builds
    without vaezoo._C) raise the same error type with the same message."""

    def cpp(mu, logvar, prior_mu, prior_logvar, eps, samples, start, total):
        shard = None if total is None else (start, total)
        out = eager_entry(mu, logvar, prior_mu, prior_logvar, eps, samples, False, "fused", shard)
        raise AssertionError(f"the C++ entry returned {out!r} instead of raising")

    from_cpp = _error_of(lambda: _call(kwargs, cpp))
    from_python = _error_of(lambda: _call(kwargs, check_arguments))
    assert from_cpp == from_python
    assert from_cpp[0] is error and re.search(names, from_cpp[1])


PACKAGE = os.path.dirname(vaezoo.__file__) + os.sep


def _python_calls(fn) -> list[str]:
    """The Python functions (file:name) that fn() calls, fn itself not counted."""
    calls = []

    def profile(frame, event, arg):
        if event == "call":
            calls.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


@fused_cpu
def test_an_eager_fused_call_is_one_cpp_call():
    """The common call (plain tensors, fused kernels) runs no Python of vaezoo's beyond the entry and its shard
    look-up: no Python checks, no backend choice, no op wrapper."""
    mu, logvar, pm, plv = make_inputs((4, 3), torch.float32, "shared")

    def vaezoo_calls(fn) -> list[str]:
        return [c.removeprefix(PACKAGE) for c in _python_calls(fn) if c.startswith(PACKAGE)]

    expected = [os.path.join("ops", "__init__.py:reparameterize"), os.path.join("ops", "shard.py:current_shard")]
    assert vaezoo_calls(lambda: reparameterize(mu, logvar, pm, plv, samples=2, log_q=True)) == expected
    with noise_shard(1, 9):
        assert vaezoo_calls(lambda: reparameterize(mu, logvar)) == expected
    general = vaezoo_calls(lambda: reparameterize(mu, logvar, backend="reference"))
    assert os.path.join("ops", "validation.py:check_arguments") in general


@fused_cpu
@pytest.mark.parametrize("case", ["reference", "environment", "subclass", "meta"])
def test_the_cpp_entry_leaves_other_calls_to_the_general_path(case, monkeypatch):
    class Sub(torch.Tensor):
        pass

    mu = torch.zeros(2, 3)
    backend = "reference" if case == "reference" else "auto"
    if case == "environment":
        monkeypatch.setenv("VAEZOO_BACKEND", "reference")
    if case == "subclass":
        mu = mu.as_subclass(Sub)
    if case == "meta":
        mu = mu.to("meta")
    assert eager_entry(mu, mu, None, None, None, None, False, backend, None) is None


@fused_cpu
def test_a_plain_backward_runs_no_python():
    """Without create_graph, backward goes straight to the backward kernel, past its Python autograd (which
    only gradients of gradients need)."""
    mu, logvar = make_inputs((4, 3), torch.float32, requires_grad=True)[:2]
    z, kl = reparameterize(mu, logvar)
    calls = _python_calls(lambda: torch.autograd.grad((z, kl), (mu, logvar), (torch.ones_like(z), torch.ones(4))))
    assert not [c for c in calls if "torch/_library" in c or c.startswith(PACKAGE)], calls
