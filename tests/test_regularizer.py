import math

import torch

from prune_rl.core import GroupLasso, PrunableNet


def test_penalty_equals_hand_computation(net: PrunableNet) -> None:
    lasso = GroupLasso(net.layers, strength=0.3)
    lasso.weights = [torch.linspace(0.5, 2.0, 8), torch.ones(8)]
    by_hand = 0.0
    for layer, weight in zip(net.layers, lasso.weights, strict=False):
        for j in range(8):
            group = [layer.producer.weight[j], layer.producer.bias[j : j + 1]] + [c.weight[:, j] for c in layer.consumers]
            by_hand += float(weight[j]) * math.sqrt(sum(float(g.detach().pow(2).sum()) for g in group))
    torch.testing.assert_close(lasso.penalty(), torch.tensor(0.3 * by_hand))


def test_importance_weights_penalise_unimportant_neurons_harder(net: PrunableNet) -> None:
    lasso = GroupLasso(net.layers, strength=1.0, gamma=1.0, max_weight=10.0)
    scores = [torch.tensor([1.0, 2.0, 4.0, 1.0, 1.0, 1.0, 1.0, 1.0]), torch.ones(8)]
    lasso.set_importance(scores)
    w = lasso.weights[0]
    mean = float(scores[0].mean())
    torch.testing.assert_close(w[2], torch.tensor(mean / 4.0))
    assert w[0] > w[1] > w[2]
    torch.testing.assert_close(lasso.weights[1], torch.ones(8))
    lasso.set_importance([torch.tensor([1e-9] + [1.0] * 7), torch.ones(8)])
    assert float(lasso.weights[0][0]) == 10.0  # clipped at max_weight


def test_keep_anchor_gives_weight_one_at_the_last_kept_neuron(net: PrunableNet) -> None:
    """With the keep anchor, the neurons the final sparsity keeps get weights <= 1, the others > 1."""
    lasso = GroupLasso(net.layers, strength=1.0, gamma=1.0, max_weight=10.0)
    scores = [torch.tensor([8.0, 1.0, 4.0, 2.0, 0.5, 0.1, 16.0, 0.0]), torch.arange(1.0, 9.0)]
    alive = [torch.ones(8, dtype=torch.bool), torch.tensor([True] * 7 + [False])]  # 8.0 is dead in layer 1
    lasso.set_importance(scores, alive, keep=[3, 2])
    torch.testing.assert_close(lasso.weights[0], torch.tensor([0.5, 4.0, 1.0, 2.0, 8.0, 10.0, 0.25, 10.0]))
    torch.testing.assert_close(lasso.weights[1], (6.0 / torch.arange(1.0, 9.0)).clamp(0.1, 10.0))
    lasso.set_importance(scores, alive, keep=[100, 100])  # more than alive: the least important alive neuron
    torch.testing.assert_close(lasso.weights[0], torch.ones(8))  # its score is 0: plain group lasso
    torch.testing.assert_close(lasso.weights[1], (1.0 / torch.arange(1.0, 9.0)).clamp(0.1, 10.0))


def test_prox_shrinks_group_norms_by_the_step(net: PrunableNet) -> None:
    layer = net.layers[0]
    before = layer.group_norms().clone()
    lasso = GroupLasso([layer], strength=0.5)  # one layer: neighbouring layers' groups overlap with it
    step = 0.1
    lasso.prox_(step)
    expected = (before - step * 0.5).clamp_min(0)
    torch.testing.assert_close(layer.group_norms(), expected)


def test_prox_sets_small_groups_exactly_to_zero(net: PrunableNet) -> None:
    lasso = GroupLasso(net.layers, strength=1.0)
    lasso.weights[0][3] = 10.0
    norm = float(net.layers[0].group_norms()[3].detach())
    lasso.prox_(norm / 10.0 + 1e-3)
    layer = net.layers[0]
    assert torch.all(layer.producer.weight[3] == 0) and float(layer.producer.bias[3].detach()) == 0.0
    assert torch.all(layer.consumers[0].weight[:, 3] == 0)
    assert torch.all(layer.group_norms()[[0, 1, 2]] > 0)


def test_all_zero_scores_give_the_plain_group_lasso(net: PrunableNet) -> None:
    lasso = GroupLasso(net.layers, strength=1.0)
    lasso.set_importance([torch.zeros(8), torch.zeros(8)])
    assert all(torch.equal(w, torch.ones(8)) for w in lasso.weights)
