"""Spectrally normalized layers against the exact largest singular value (torch.linalg), in value and in
gradient, and their power-iteration state through state dicts."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vaezoo.components.spectral import SpectralConv2d, SpectralLinear

CASES = [
    (lambda: SpectralLinear(30, 20), lambda: torch.randn(4, 30), F.linear),
    (lambda: SpectralConv2d(3, 8, kernel_size=3, padding=1), lambda: torch.randn(4, 3, 6, 6),
     lambda x, w, b: F.conv2d(x, w, b, padding=1)),
]


def exactly_normalized(weight: torch.Tensor) -> torch.Tensor:
    return weight / torch.linalg.matrix_norm(weight.flatten(1), ord=2)


def weight_gradient(x, apply, layer, sigma_fixed: bool = False) -> torch.Tensor:
    """The gradient of a fixed weighted sum of the layer's outputs through its exactly normalized weight (with
    sigma's own derivative, or with sigma held fixed)."""
    weight = layer.weight.detach().requires_grad_()
    sigma = torch.linalg.matrix_norm(weight.flatten(1), ord=2)
    out = apply(x, weight / (sigma.detach() if sigma_fixed else sigma), layer.bias)
    (grad,) = torch.autograd.grad((out * torch.ones_like(out).cumsum(-1)).sum(), weight)
    return grad


@pytest.mark.parametrize("make, inputs, apply", CASES)
def test_the_weight_is_divided_by_its_largest_singular_value_in_value_and_gradient(make, inputs, apply):
    torch.manual_seed(0)
    layer, x = make(), inputs()
    for _ in range(100):  # power-iteration steps: one per training forward
        layer(x)
    out = layer(x)
    torch.testing.assert_close(out, apply(x, exactly_normalized(layer.weight), layer.bias), rtol=1e-4, atol=1e-5)
    (grad,) = torch.autograd.grad((out * torch.ones_like(out).cumsum(-1)).sum(), layer.weight)
    torch.testing.assert_close(grad, weight_gradient(x, apply, layer), rtol=1e-3, atol=1e-5)
    assert not torch.allclose(grad, weight_gradient(x, apply, layer, sigma_fixed=True), rtol=1e-2)


@pytest.mark.parametrize("make, inputs, apply", CASES)
def test_under_bfloat16_autocast_the_singular_value_is_estimated_in_the_weights_precision(make, inputs, apply):
    torch.manual_seed(0)
    layer, x = make(), inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = layer(x)
    assert low.dtype == torch.bfloat16 and layer.u.dtype == torch.float32
    layer.eval()  # the same power-iteration state, in float32 throughout
    torch.testing.assert_close(low.float(), layer(x), rtol=0.05, atol=0.05)


def test_training_forwards_step_the_power_iteration_and_evaluation_leaves_it():
    torch.manual_seed(0)
    layer, x = SpectralLinear(10, 5), torch.randn(3, 10)
    start = layer.u.clone()
    layer.eval()
    layer(x)
    assert torch.equal(layer.u, start)
    layer.train()
    layer(x)
    assert not torch.equal(layer.u, start)


def test_two_forwards_before_one_backward_keep_the_graph_intact():
    torch.manual_seed(0)
    layer = SpectralLinear(10, 5)
    first, second = layer(torch.randn(3, 10)), layer(torch.randn(3, 10))
    (first.sum() + second.sum()).backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()


def test_the_power_iteration_state_is_saved_and_weights_saved_without_it_still_load():
    torch.manual_seed(0)
    layer = SpectralConv2d(2, 4, kernel_size=3)
    layer(torch.randn(2, 2, 5, 5))
    state = layer.state_dict()
    assert set(state) == {"weight", "bias", "u"}
    copy = SpectralConv2d(2, 4, kernel_size=3)
    copy.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(copy.state_dict().values(), state.values()))
    older = SpectralConv2d(2, 4, kernel_size=3)
    u = older.u.clone()
    older.load_state_dict({"weight": state["weight"], "bias": state["bias"]})  # saved before normalization
    assert torch.equal(older.weight, state["weight"]) and torch.equal(older.u, u)
