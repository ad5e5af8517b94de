import torch
from torch import nn

from prune_rl.core import PrunableNet, compact_weight_count, link_mirrors, mlp_layers

from conftest import tiny_mlp


def test_mlp_layers_chain(mlp: nn.Sequential) -> None:
    layers, linears = mlp_layers("pi", mlp)
    assert [layer.name for layer in layers] == ["pi.0", "pi.1"]
    assert layers[0].producer is mlp[0] and layers[0].consumers == [mlp[2]]
    assert layers[1].producer is mlp[2] and layers[1].consumers == [mlp[4]]
    assert linears == [mlp[0], mlp[2], mlp[4]]


def test_mlp_layers_with_several_heads() -> None:
    body = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU())
    mu, log_std = nn.Linear(8, 2), nn.Linear(8, 2)
    layers, linears = mlp_layers("actor", body, [mu, log_std])
    assert layers[1].consumers == [mu, log_std]
    assert len(linears) == 4


def test_group_norms_by_hand(net: PrunableNet) -> None:
    layer = net.layers[0]
    j = 3
    by_hand = torch.cat([layer.producer.weight[j], layer.producer.bias[j : j + 1], layer.consumers[0].weight[:, j]]).norm()
    torch.testing.assert_close(layer.group_norms()[j], by_hand)


def test_compact_weight_count(net: PrunableNet) -> None:
    assert compact_weight_count(net) == 3 * 8 + 8 * 8 + 8 * 2
    alive = [torch.zeros(8, dtype=torch.bool), torch.zeros(8, dtype=torch.bool)]
    alive[0][:2] = True
    alive[1][:3] = True
    assert compact_weight_count(net, alive) == 3 * 2 + 2 * 3 + 3 * 2


def test_link_mirrors_checks_shapes(net: PrunableNet) -> None:
    target_layers, target_linears = mlp_layers("t", tiny_mlp(seed=1))
    link_mirrors(net, PrunableNet("t", "policy", target_layers, target_linears))
    assert net.layers[0].mirrors == [target_layers[0]]
    other_layers, other_linears = mlp_layers("o", tiny_mlp(hidden=(4, 8)))
    try:
        link_mirrors(net, PrunableNet("o", "policy", other_layers, other_linears))
    except ValueError as exc:
        assert "shape" in str(exc)
    else:
        raise AssertionError("mirrors of another shape must be refused")
