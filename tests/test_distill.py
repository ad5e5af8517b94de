"""Distilling a cut network back to its outputs before the cut."""

import copy

import torch
from torch import nn

from prune_rl.core import NeuronMask, PrunableNet, distill_, mlp_layers, output_loss


def test_output_loss_is_the_missed_share_of_each_targets_variance() -> None:
    a, b = torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0, 2.0], [4.0, 2.0]])
    out_a, out_b = torch.tensor([[2.0], [3.0]]), b.clone()
    out_b[0, 0] = 2.0
    # a: mean sq. error 0.5, variance 1; b: 4 / 4 = 1 over variance (mean of 0, 2, 4, 2 is 2: variance 2)
    assert float(output_loss([out_a, out_b], [a, b])) == 0.5 / 1.0 + 1.0 / 2.0
    assert float(output_loss([a, b], [a, b])) == 0.0


def _cut_first_layer(net: PrunableNet, *idx: int) -> list[NeuronMask]:
    keep = torch.ones(net.layers[0].n_neurons, dtype=torch.bool)
    keep[list(idx)] = False
    masks = [NeuronMask(net.layers[0], keep), NeuronMask(net.layers[1])]
    for mask in masks:
        mask.apply_()
    return masks


def test_distilling_a_cut_brings_the_outputs_back_and_keeps_cut_neurons_zero(mlp: nn.Sequential, net: PrunableNet) -> None:
    torch.manual_seed(0)
    x = torch.randn(128, 3)
    targets = [mlp(x).detach()]
    masks = _cut_first_layer(net, 0, 2, 5)
    params = net.parameters()
    # a training optimizer with state: distillation uses its own and leaves this one alone
    training = torch.optim.Adam(params, lr=1e-3)
    mlp(x).sum().backward()
    training.step()
    masks[0].apply_([training])
    state = copy.deepcopy(training.state_dict())
    before, after = distill_(params, lambda: [mlp(x)], targets, masks, steps=200, lr=1e-2)
    assert before > 0.01 and after < before / 4
    with torch.no_grad():
        assert abs(after - float(output_loss([mlp(x)], targets))) < 1e-6
    cut = ~masks[0].alive
    first, second = net.layers[0].producer, mlp_layers("pi", mlp)[0][1].producer
    assert first.weight[cut].eq(0).all() and first.bias[cut].eq(0).all() and second.weight[:, cut].eq(0).all()
    for key, value in training.state_dict()["state"].items():
        for name, tensor in value.items():
            assert torch.equal(tensor, state["state"][key][name])
    assert all(p.grad is None for p in params)  # its gradients do not leak into the next training step


def test_zero_steps_only_measure(mlp: nn.Sequential, net: PrunableNet) -> None:
    x = torch.randn(64, 3)
    targets = [mlp(x).detach()]
    masks = _cut_first_layer(net, 1)
    weights = [p.detach().clone() for p in mlp.parameters()]
    before, after = distill_(mlp.parameters(), lambda: [mlp(x)], targets, masks, steps=0, lr=1e-2)
    assert before == after > 0
    assert all(torch.equal(w, p) for w, p in zip(weights, mlp.parameters(), strict=True))


def test_a_step_size_that_overshoots_never_leaves_the_outputs_worse(mlp: nn.Sequential, net: PrunableNet) -> None:
    x = torch.randn(64, 3)
    targets = [mlp(x).detach()]
    masks = _cut_first_layer(net, 3)
    before, after = distill_(mlp.parameters(), lambda: [mlp(x)], targets, masks, steps=5, lr=10.0)
    with torch.no_grad():
        assert after <= before and abs(after - float(output_loss([mlp(x)], targets))) < 1e-6
    assert net.layers[0].producer.weight[3].eq(0).all()
