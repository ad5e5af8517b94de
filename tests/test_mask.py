import pickle

import pytest
import torch
from torch import nn

from prune_rl.core import NeuronMask, PrunableNet, cut_share, mlp_layers, n_kept, select_alive
from stable_baselines3.common.utils import polyak_update

from conftest import tiny_mlp


def _remove_neuron(mlp: nn.Sequential, layer_idx: int, j: int) -> nn.Sequential:
    """A copy of the MLP with neuron j of hidden layer layer_idx deleted."""
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    new = []
    for i, lin in enumerate(linears):
        w, b = lin.weight.detach().clone(), lin.bias.detach().clone()
        keep = [k for k in range(w.shape[0]) if not (i == layer_idx and k == j)]
        w, b = w[keep], b[keep]
        if i == layer_idx + 1:
            w = w[:, [k for k in range(w.shape[1]) if k != j]]
        layer = nn.Linear(w.shape[1], w.shape[0])
        layer.weight.data, layer.bias.data = w, b
        new.append(layer)
    mods: list[nn.Module] = []
    for lin in new[:-1]:
        mods += [lin, nn.Tanh()]
    return nn.Sequential(*mods, new[-1])


def test_masked_neuron_equals_deleted_neuron(mlp: nn.Sequential, net: PrunableNet) -> None:
    x = torch.randn(16, 3)
    expected = _remove_neuron(mlp, 1, 5)(x)
    mask = NeuronMask(net.layers[1])
    mask.alive[5] = False
    mask.apply_()
    torch.testing.assert_close(mlp(x), expected)


def _train_steps(mlp: nn.Sequential, opt: torch.optim.Optimizer, n: int = 20) -> None:
    for _ in range(n):
        opt.zero_grad()
        mlp(torch.randn(32, 3)).pow(2).sum().backward()
        opt.step()


def test_masked_weights_and_adam_moments_stay_zero(mlp: nn.Sequential, net: PrunableNet) -> None:
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    _train_steps(mlp, opt)  # moments are non-zero everywhere now
    mask = NeuronMask(net.layers[0])
    mask.alive[[1, 4]] = False
    mask.apply_([opt])
    _train_steps(mlp, opt)
    layer = net.layers[0]
    assert torch.all(layer.producer.weight[[1, 4]] == 0) and torch.all(layer.producer.bias[[1, 4]] == 0)
    assert torch.all(layer.consumers[0].weight[:, [1, 4]] == 0)
    state = opt.state[layer.producer.weight]
    assert torch.all(state["exp_avg"][[1, 4]] == 0) and torch.all(state["exp_avg_sq"][[1, 4]] == 0)
    col_state = opt.state[layer.consumers[0].weight]
    assert torch.all(col_state["exp_avg"][:, [1, 4]] == 0)
    # alive neurons did train
    assert torch.all(layer.group_norms()[[0, 2, 3]] > 0)


def test_target_network_stays_masked_after_polyak(mlp: nn.Sequential, net: PrunableNet) -> None:
    target = tiny_mlp(seed=7)
    t_layers, _t_linears = mlp_layers("t", target)
    net.layers[1].mirrors.append(t_layers[1])
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    mask = NeuronMask(net.layers[1])
    mask.alive[[0, 6]] = False
    mask.apply_([opt])
    for _ in range(10):
        _train_steps(mlp, opt, n=2)
        polyak_update(mlp.parameters(), target.parameters(), tau=0.05)
    assert torch.all(t_layers[1].producer.weight[[0, 6]] == 0)
    assert torch.all(t_layers[1].consumers[0].weight[:, [0, 6]] == 0)
    assert torch.all(t_layers[1].group_norms()[[1, 2]] > 0)


def test_select_alive_reaches_sparsity_and_keeps_the_best() -> None:
    scores = [torch.arange(1.0, 9.0), torch.arange(1.0, 9.0)]
    alive = [torch.ones(8, dtype=torch.bool), torch.ones(8, dtype=torch.bool)]
    new, tau = select_alive(scores, alive, sparsity=0.75, min_neurons=1, allocation="global")
    assert sum(int(a.sum()) for a in new) == 4
    assert torch.equal(new[0], torch.tensor([False] * 6 + [True] * 2))
    assert tau > 0


def test_select_alive_never_removes_a_layers_last_neurons() -> None:
    scores = [torch.full((8,), 1e-6), torch.arange(1.0, 9.0) * 100]
    scores[0][3] = 2e-6
    alive = [torch.ones(8, dtype=torch.bool), torch.ones(8, dtype=torch.bool)]
    new, _ = select_alive(scores, alive, sparsity=0.75, min_neurons=2, allocation="global")
    assert int(new[0].sum()) == 2 and bool(new[0][3])
    assert sum(int(a.sum()) for a in new) == 4  # the floor is taken from the budget, not added to it
    for allocation in ("global", "layer"):
        last, _ = select_alive(scores, new, sparsity=0.99, min_neurons=1, allocation=allocation)
        assert all(int(a.sum()) >= 1 for a in last)
        last, _ = select_alive(scores, new, sparsity=0.99, min_neurons=2, allocation=allocation)
        assert [int(a.sum()) for a in last] == [2, 2]


def test_layer_allocation_prunes_every_layer_to_the_sparsity() -> None:
    """Each layer keeps its own share, whatever the scores of the other layers."""
    scores = [torch.arange(1.0, 17.0), torch.arange(1.0, 9.0) * 1e-3]
    alive = [torch.ones(16, dtype=torch.bool), torch.ones(8, dtype=torch.bool)]
    new, tau = select_alive(scores, alive, sparsity=0.75, min_neurons=1, allocation="layer")
    assert [int(a.sum()) for a in new] == [4, 2]
    assert torch.equal(new[0], torch.arange(16) >= 12) and torch.equal(new[1], torch.arange(8) >= 6)
    assert tau == pytest.approx(min(13 / 8.5, 7 / 4.5))  # the lowest kept score over its layer's mean


def test_kept_neurons_reach_at_least_the_sparsity() -> None:
    assert n_kept(0.95, 256) == 12  # 95.3% removed; rounding to nearest (13) would give 94.9%
    assert n_kept(0.95, 64) == 3
    assert n_kept(0.9, 10) == 1  # 0.1 * 10 is 0.9999999999999998 in floats
    assert n_kept(0.0, 7) == 7
    scores = [torch.rand(256), torch.rand(256)]
    alive = [torch.ones(256, dtype=torch.bool)] * 2
    for allocation in ("layer", "global"):
        new, _ = select_alive(scores, alive, sparsity=0.95, min_neurons=2, allocation=allocation)
        assert 1 - sum(int(a.sum()) for a in new) / 512 >= 0.95


def test_unknown_allocation_is_refused() -> None:
    with pytest.raises(ValueError, match="allocation"):
        select_alive([torch.ones(4)], [torch.ones(4, dtype=torch.bool)], 0.5, allocation="uniform")


def test_select_alive_is_permanent() -> None:
    scores = [torch.arange(8.0, 0.0, -1.0)]
    alive = [torch.tensor([False, True, True, True, True, True, True, True])]
    new, _ = select_alive(scores, alive, sparsity=0.5, min_neurons=1)
    assert not bool(new[0][0])  # the best-scoring neuron was already dead: it stays dead
    assert int(new[0].sum()) == 4
    same, tau = select_alive(scores, new, sparsity=0.25, min_neurons=1)  # lower target: no regrowth
    assert torch.equal(same[0], new[0]) and tau is None


def test_neuron_mask_pickles(net: PrunableNet) -> None:
    mask = NeuronMask(net.layers[0])
    mask.alive[2] = False
    assert torch.equal(pickle.loads(pickle.dumps(mask)).alive, mask.alive)


def test_select_alive_breaks_ties_at_zero() -> None:
    """Groups the regularizer zeroed all score 0: the target sparsity must still be reached."""
    scores = [torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]), torch.tensor([0.0] * 7 + [2.0])]
    alive = [torch.ones(8, dtype=torch.bool), torch.ones(8, dtype=torch.bool)]
    new, _ = select_alive(scores, alive, sparsity=0.5, min_neurons=1)
    assert sum(int(a.sum()) for a in new) == 8
    assert bool(new[0][3]) and bool(new[1][7])


def test_select_alive_treats_non_finite_scores_as_zero() -> None:
    scores = [torch.tensor([float("nan"), 1.0, 2.0, 3.0])]
    new, tau = select_alive(scores, [torch.ones(4, dtype=torch.bool)], sparsity=0.25, min_neurons=1)
    assert not bool(new[0][0]) and tau is not None and tau == tau  # not NaN


def test_cut_share_is_the_norm_mass_of_the_neurons_cut(net: PrunableNet) -> None:
    layer = net.layers[0]
    with torch.no_grad():
        layer.scale_(torch.tensor([0.0] + [1.0] * (layer.n_neurons - 1)))  # neuron 0 already regularized to zero
        norms = layer.group_norms()
        total = sum(float(la.group_norms().sum()) for la in net.layers)
    before = [torch.ones(la.n_neurons, dtype=torch.bool) for la in net.layers]
    zero_cut = [b.clone() for b in before]
    zero_cut[0][0] = False
    assert cut_share(net.layers, before, zero_cut) == 0.0
    live_cut = [b.clone() for b in zero_cut]
    live_cut[0][1] = False
    assert cut_share(net.layers, before, live_cut) == pytest.approx(float(norms[1]) / total)
    assert cut_share(net.layers, before, before) == 0.0
