"""Fan-in learning-rate scaling: hand-computed scales, exact equivalence with per-layer learning rates."""

import pytest
import torch
from torch import nn

from prune_rl.core import FanInLR, NeuronMask, PrunableNet, fan_in_scales, mlp_layers

from conftest import tiny_mlp


def _masks(net: PrunableNet, alive_counts: list[int]) -> list[torch.Tensor]:
    masks = []
    for layer, n in zip(net.layers, alive_counts, strict=True):
        keep = torch.zeros(layer.n_neurons, dtype=torch.bool)
        keep[:n] = True
        masks.append(keep)
    return masks


def test_scales_are_dense_over_alive_fan_in(mlp: nn.Sequential, net: PrunableNet) -> None:
    # [3 -> 8 -> 8 -> 2]: mlp[2] reads layer 0 (2 of 8 alive), the output mlp[4] reads layer 1 (8 of 8 alive).
    scales = fan_in_scales(net.layers, _masks(net, [2, 8]), exponent=1.0)
    assert scales == {mlp[2].weight: 4.0}  # biases and the unpruned layer's reader are not scaled
    half = fan_in_scales(net.layers, _masks(net, [2, 1]), exponent=0.5)
    assert half == {mlp[2].weight: pytest.approx(2.0), mlp[4].weight: pytest.approx(8**0.5)}
    assert fan_in_scales(net.layers, _masks(net, [2, 1]), exponent=0.0) == {}


@pytest.mark.parametrize("optimizer", [torch.optim.SGD, torch.optim.Adam])
def test_scaled_steps_equal_a_per_layer_learning_rate(optimizer: type[torch.optim.Optimizer]) -> None:
    scaled, reference = tiny_mlp(), tiny_mlp()
    lr, scale = 1e-2, 4.0
    opt = optimizer(scaled.parameters(), lr=lr)
    hooks = FanInLR(opt)
    hooks.set_scales({scaled[2].weight: scale})
    others = [p for name, p in reference.named_parameters() if name != "2.weight"]
    ref_opt = optimizer([{"params": others}, {"params": [reference[2].weight], "lr": lr * scale}], lr=lr)
    x = torch.randn(16, 3)
    for _ in range(5):
        for model, o in ((scaled, opt), (reference, ref_opt)):
            o.zero_grad()
            model(x).pow(2).sum().backward()
            o.step()
    for a, b in zip(scaled.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_removed_hooks_leave_plain_steps() -> None:
    model = tiny_mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hooks = FanInLR(opt)
    hooks.set_scales({model[2].weight: 4.0})
    hooks.remove()
    before = model[2].weight.detach().clone()
    model(torch.randn(16, 3)).pow(2).sum().backward()
    opt.step()
    assert model[2].weight.grad is not None
    torch.testing.assert_close(model[2].weight, before - 0.1 * model[2].weight.grad)


def test_pruned_columns_stay_zero_under_scaled_adam(mlp: nn.Sequential, net: PrunableNet) -> None:
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    masks = _masks(net, [3, 2])
    for layer, keep in zip(net.layers, masks, strict=True):
        NeuronMask(layer, keep).apply_([opt])
    hooks = FanInLR(opt)
    hooks.set_scales(fan_in_scales(net.layers, masks, exponent=1.0))
    for _ in range(5):
        opt.zero_grad()
        mlp(torch.randn(16, 3)).pow(2).sum().backward()
        opt.step()
    for layer, keep in zip(net.layers, masks, strict=True):
        assert torch.all(layer.group_norms()[~keep] == 0)
        assert torch.all(layer.group_norms()[keep] > 0)


def test_parameters_of_another_optimizer_are_ignored() -> None:
    a, b = tiny_mlp(seed=0), tiny_mlp(seed=1)
    opt = torch.optim.SGD(a.parameters(), lr=0.1)
    hooks = FanInLR(opt)
    hooks.set_scales({b[2].weight: 4.0})
    assert hooks.scales == []
    assert not hooks._handles  # nothing to scale: no hooks on the hot path
    layers, _ = mlp_layers("pi", a)
    assert fan_in_scales(layers, [torch.ones(8, dtype=torch.bool)] * 2, exponent=1.0) == {}
