"""The CNN's cheaper forms compute what the recipe's does: FastDropout's masks and the pool-before-ReLU order."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mnistctl.dropout import FastDropout, keep_mask
from mnistctl.network import CNN


@pytest.mark.parametrize("p", [0.25, 0.5, 0.1])
def test_dropout_keeps_one_minus_p_in_every_position(p):
    # Catches a mask read off random_()'s 31 bits as two 16-bit halves without cutting both to 15 bits: the upper
    # halves are never negative, so even and odd positions would be kept at different rates (0.875 and 0.75 at
    # p = 0.25).
    torch.manual_seed(0)
    x = torch.ones(16, 8, 100, 100)
    y = FastDropout(p)(x).flatten()
    # 640,000 elements per half: the binomial standard deviation is under 6e-4.
    for half in (y[0::2], y[1::2]):
        assert abs((half != 0).float().mean().item() - (1 - p)) < 0.004
    assert y.unique().tolist() == [0.0, pytest.approx(1 / (1 - p))]


def test_dropout_gradient_is_the_forward_mask():
    # Catches a backward pass that lets the gradient through unmasked, or unscaled.
    torch.manual_seed(1)
    x = torch.ones(64, 32, 10, 10, requires_grad=True)
    y = FastDropout(0.25)(x)
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # x is all ones: y is the scaled mask itself
    assert 0.7 < (y != 0).float().mean().item() < 0.8


def test_dropout_is_seeded_by_torch_and_keeps_the_layout():
    # Catches a mask drawn from another generator (seed_everything and a checkpoint's RNG state would not
    # replay it), and a channels_last mask laid out as NCHW (its elements would not line up with x's memory).
    x = torch.randn(8, 32, 10, 10).contiguous(memory_format=torch.channels_last)
    torch.manual_seed(2)
    first = FastDropout(0.25)(x)
    torch.manual_seed(2)
    assert torch.equal(FastDropout(0.25)(x), first)
    assert keep_mask(x, 0.25).stride() == x.stride()
    assert first.is_contiguous(memory_format=torch.channels_last)


def test_dropout_is_torch_dropout_where_it_does_not_apply():
    x = torch.randn(4, 5)
    dropout = FastDropout(0.25).eval()
    assert torch.equal(dropout(x), x)
    assert torch.equal(FastDropout(0.0)(x), x)
    assert torch.equal(FastDropout(1.0)(x), torch.zeros_like(x))


def recipe_forward(net: CNN, x: torch.Tensor) -> torch.Tensor:
    """The recipe's order, conv-ReLU-pool, with net's weights (eval: no dropout)."""
    conv1, conv2, conv3 = (net.features[i] for i in (0, 2, 6))
    x = F.max_pool2d(F.relu(conv2(F.relu(conv1(x)))), 2)
    x = F.max_pool2d(F.relu(conv3(x)), 2)
    return net.classifier(torch.flatten(x, 1))


@pytest.mark.parametrize("bf16", [False, True], ids=["float32", "bf16-autocast"])
def test_network_computes_the_recipe_order_bit_for_bit(bf16):
    # Catches a reordering that is not exact (e.g. pooling before the first ReLU moved across a convolution).
    torch.manual_seed(3)
    net = CNN().eval()
    x = torch.randn(32, 1, 28, 28)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        ours, recipes = net(x), recipe_forward(net, x)
    assert torch.equal(ours, recipes)
    # The gradients too: where a pooling window's maximum is not positive, both orders send it nothing.
    grads = [torch.autograd.grad(out.square().sum(), list(net.parameters())) for out in (ours, recipes)]
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))


def test_network_keeps_the_parameter_names_of_earlier_checkpoints():
    # Catches a reordering that moves a convolution to another index: checkpoints saved before would not load.
    convolutions = [f"features.{i}.{p}" for i in (0, 2, 6) for p in ("weight", "bias")]
    assert list(CNN().state_dict()) == [*convolutions, "classifier.weight", "classifier.bias"]
