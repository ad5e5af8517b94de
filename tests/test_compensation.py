import copy

import torch
from torch import nn

from prune_rl.pruning import NeuronMask, PrunableNet, fold_mean_, mean_activations, mlp_layers


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
