import pytest
import torch
from torch import nn

from prune_rl.core import (
    PrunableNet,
    activation_importance,
    deviation_importance,
    magnitude_importance,
    reconstruction_importance,
    taylor_importance,
)


def test_magnitude_is_group_norm(net: PrunableNet) -> None:
    scores = magnitude_importance(net.layers)
    torch.testing.assert_close(scores[1], net.layers[1].group_norms())


def test_activation_importance_by_hand(mlp: nn.Sequential, net: PrunableNet) -> None:
    x = torch.randn(32, 3)
    scores = activation_importance(net.layers, lambda: mlp(x))
    hidden = torch.tanh(mlp[0](x))  # activation of layer 0
    expected = hidden.abs().mean(0) * mlp[2].weight.norm(dim=0)
    torch.testing.assert_close(scores[0], expected.detach())


def test_dead_neuron_scores_zero(mlp: nn.Sequential, net: PrunableNet) -> None:
    net.layers[1].scale_(torch.tensor([1.0, 0, 1, 1, 1, 1, 1, 1]))
    x = torch.randn(32, 3)
    for fn in (activation_importance, taylor_importance):
        assert float(fn(net.layers, lambda: mlp(x))[1][1]) == 0.0
    assert float(magnitude_importance(net.layers)[1][1]) == 0.0


def test_taylor_importance_by_hand(mlp: nn.Sequential, net: PrunableNet) -> None:
    x = torch.randn(4, 3)
    scores = taylor_importance(net.layers, lambda: mlp(x))
    a = torch.tanh(mlp[2](torch.tanh(mlp[0](x)))).detach().requires_grad_(True)
    energy = 0.5 * mlp[4](a).pow(2).sum()  # per-sample energies summed
    (grad,) = torch.autograd.grad(energy, a)
    torch.testing.assert_close(scores[1], (a * grad).abs().mean(0).detach())
    assert all(p.grad is None for p in mlp.parameters())  # scoring does not leave gradients behind


def test_deviation_importance_by_hand(mlp: nn.Sequential, net: PrunableNet) -> None:
    x = torch.randn(32, 3)
    scores = deviation_importance(net.layers, lambda: mlp(x))
    hidden = torch.tanh(mlp[0](x))
    expected = (hidden - hidden.mean(0)).abs().mean(0) * mlp[2].weight.norm(dim=0)
    torch.testing.assert_close(scores[0], expected.detach())


def test_a_saturated_neuron_is_kept_by_activation_and_not_by_deviation(mlp: nn.Sequential, net: PrunableNet) -> None:
    with torch.no_grad():
        mlp[0].weight[0].zero_()
        mlp[0].bias[0] = 20.0  # tanh(20) = 1 on every state: a constant neuron
    x = torch.randn(64, 3)
    activation = activation_importance(net.layers, lambda: mlp(x))[0]
    deviation = deviation_importance(net.layers, lambda: mlp(x))[0]
    assert int(activation.argmax()) == 0  # |a| = 1 is the largest a tanh unit can have
    assert float(deviation[0]) == 0.0


def _unexplained(acts: torch.Tensor, weight: torch.Tensor, kept: list[int]) -> float:
    """Least-squares error of reconstructing the centred ``acts @ weight.T`` from the kept neurons (brute force)."""
    h = acts.double() - acts.double().mean(dim=0)
    y = h @ weight.double().T
    if not kept:
        return float(y.pow(2).mean(dim=0).sum())
    coef = torch.linalg.lstsq(h[:, kept], y).solution
    return float((y - h[:, kept] @ coef).pow(2).mean(dim=0).sum())


def test_reconstruction_importance_follows_greedy_least_squares(mlp: nn.Sequential, net: PrunableNet) -> None:
    x = torch.randn(256, 3)
    layer = net.layers[1]
    scores = reconstruction_importance(net.layers, lambda: mlp(x))[1]
    acts = torch.tanh(mlp[2](torch.tanh(mlp[0](x)))).detach()
    weight = layer.consumers[0].weight.detach()
    order = torch.argsort(scores, descending=True).tolist()
    kept: list[int] = []
    for j in order[:4]:  # each pick is the neuron that most lowers the error, and scores the error before it
        assert float(scores[j]) ** 2 == pytest.approx(_unexplained(acts, weight, kept), rel=1e-6)
        best = min((i for i in range(8) if i not in kept), key=lambda i: _unexplained(acts, weight, [*kept, i]))
        assert j == best
        kept.append(j)


def test_reconstruction_importance_gives_a_copy_nothing(mlp: nn.Sequential, net: PrunableNet) -> None:
    with torch.no_grad():
        mlp[0].weight[5] = mlp[0].weight[2]
        mlp[0].bias[5] = mlp[0].bias[2]
        mlp[0].weight[7] = 0.0  # and a dead neuron
        mlp[0].bias[7] = 0.0
    scores = reconstruction_importance(net.layers, lambda: mlp(torch.randn(128, 3)))[0]
    assert float(scores[2] * scores[5]) == 0.0 < float(scores[2] + scores[5])
    assert float(scores[7]) == 0.0
