import copy

import pytest
import torch
from torch import nn

from prune_rl.core import NeuronMask, PrunableNet, fold_linear_, fold_mean_, link_mirrors, mean_activations, mlp_layers
from prune_rl.core.importance import probe_activations


def test_mean_activations_are_the_hidden_means(mlp: nn.Sequential, net: PrunableNet) -> None:
    x = torch.randn(64, 3)
    means = mean_activations(net.layers, lambda: mlp(x))
    first = torch.tanh(mlp[0](x))
    torch.testing.assert_close(means[0], first.mean(dim=0))
    torch.testing.assert_close(means[1], torch.tanh(mlp[2](first)).mean(dim=0))


def test_folding_a_cut_neuron_keeps_the_mean_output(mlp: nn.Sequential, net: PrunableNet) -> None:
    # The output layer is linear in the last hidden layer, so mean replacement there keeps the mean output exactly.
    x = torch.randn(256, 3) + 1.0  # shifted inputs: hidden means far from 0
    plain = copy.deepcopy(mlp)
    layer = net.layers[-1]
    before = mlp(x).detach()
    cut = torch.zeros(layer.n_neurons, dtype=torch.bool)
    cut[[1, 4]] = True
    mean = mean_activations(net.layers, lambda: mlp(x))[-1]
    NeuronMask(mlp_layers("pi", plain)[0][-1], ~cut).apply_()
    fold_mean_(layer, cut, mean)
    NeuronMask(layer, ~cut).apply_()
    torch.testing.assert_close(mlp(x).mean(dim=0), before.mean(dim=0))
    assert not torch.allclose(plain(x).mean(dim=0), before.mean(dim=0), atol=1e-3)


def test_folding_a_zeroed_neuron_changes_nothing(mlp: nn.Sequential, net: PrunableNet) -> None:
    x = torch.randn(32, 3)
    layer = net.layers[0]
    cut = torch.zeros(layer.n_neurons, dtype=torch.bool)
    cut[2] = True
    NeuronMask(layer, ~cut).apply_()  # as if the regularizer had driven the group to zero
    before = mlp(x).detach()
    fold_mean_(layer, cut, mean_activations(net.layers, lambda: mlp(x))[0])
    torch.testing.assert_close(mlp(x), before)


def _cut(layer_size: int, *idx: int) -> torch.Tensor:
    cut = torch.zeros(layer_size, dtype=torch.bool)
    cut[list(idx)] = True
    return cut


def _cut_last_layer(mlp: nn.Sequential, net: PrunableNet, x: torch.Tensor, cut: torch.Tensor, how: str) -> torch.Tensor:
    """Cut neurons of the last hidden layer with one fold; return the output error on ``x``."""
    model = copy.deepcopy(mlp)
    layer = mlp_layers("pi", model)[0][-1]
    before = model(x).detach()
    acts = probe_activations([layer], lambda: model(x), "test")[0]
    if how == "mean":
        fold_mean_(layer, cut, acts.mean(dim=0))
    elif how == "linear":
        fold_linear_(layer, ~cut, cut, acts, ridge=1e-9)
    NeuronMask(layer, ~cut).apply_()
    return (model(x) - before).detach().pow(2).sum(dim=1).mean()


def test_linear_fold_removes_a_duplicated_neuron_exactly(mlp: nn.Sequential, net: PrunableNet) -> None:
    # Neuron 5 of the last hidden layer is a copy of neuron 2: cutting it must lose nothing.
    with torch.no_grad():
        mlp[2].weight[5] = mlp[2].weight[2]
        mlp[2].bias[5] = mlp[2].bias[2]
    x = torch.randn(128, 3)
    cut = _cut(8, 5)
    linear, mean = (float(_cut_last_layer(mlp, net, x, cut, how)) for how in ("linear", "mean"))
    assert linear < 1e-9 < 1e-6 < mean


def test_linear_fold_is_the_least_squares_cut_on_the_states_it_fits(mlp: nn.Sequential, net: PrunableNet) -> None:
    # The output is linear in the last hidden layer, so the fold minimises the output error on its states:
    # no worse than mean replacement (its A = 0 case), which is no worse than dropping the neurons.
    x = torch.randn(256, 3) + 0.5
    cut = _cut(8, 0, 3, 6)
    dropped, mean, linear = (float(_cut_last_layer(mlp, net, x, cut, how)) for how in ("none", "mean", "linear"))
    assert linear < mean < dropped


def test_linear_fold_moves_the_same_weights_in_target_mirrors(mlp: nn.Sequential) -> None:
    target = copy.deepcopy(mlp)
    online, target_net = (PrunableNet(n, "policy", *mlp_layers(n, m)) for n, m in (("q", mlp), ("q_target", target)))
    link_mirrors(online, target_net)
    x = torch.randn(64, 3)
    layer = online.layers[0]
    acts = probe_activations([layer], lambda: mlp(x), "test")[0]
    fold_linear_(layer, _cut(8, 1, 2, 3, 4, 5, 6, 7).logical_not(), _cut(8, 1, 2, 3, 4, 5, 6, 7), acts)
    torch.testing.assert_close(target[2].weight, mlp[2].weight)
    torch.testing.assert_close(target[2].bias, mlp[2].bias)


def test_linear_fold_refuses_a_neuron_both_kept_and_cut(net: PrunableNet) -> None:
    layer = net.layers[0]
    with pytest.raises(ValueError, match="both kept and cut"):
        fold_linear_(layer, torch.ones(8, dtype=torch.bool), _cut(8, 2), torch.randn(16, 8))
