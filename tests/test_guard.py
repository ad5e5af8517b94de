"""The guard (``prune_rl.sb3.guard``): cuts measured on the policy's behaviour, made smaller or undone exactly."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from prune_rl.core import GroupLasso, PrunableNet, mlp_layers
from prune_rl.methods import DSPConfig, DynamicStructuredPruner, PrunerConfig
from prune_rl.methods.structured import L1StructuredPruner, RandomStructuredPruner
from prune_rl.sb3.guard import CutGuard, Decision, behaviour_change


class ToyProbe:
    """A probe over fixed states of a one-network 'policy' whose action is the argmax of its outputs."""

    def __init__(self, net: nn.Module, states: torch.Tensor) -> None:
        self.net, self.states = net, states

    def __call__(self) -> list[torch.Tensor]:
        return [self.net(self.states)]

    def actions(self) -> torch.Tensor:
        with torch.no_grad():
            return self.net(self.states).argmax(dim=-1)


def _toy(needed: int = 3, useless: int = 5) -> tuple[nn.Sequential, PrunableNet]:
    """
    A policy over ``needed`` actions that must read ``needed`` hidden neurons: neuron ``i`` computes ``tanh(x_i)`` and
    alone drives action ``i``'s logit; the ``useless`` others barely touch the outputs (1e-3).
    """
    width = needed + useless
    mlp = nn.Sequential(nn.Linear(needed, width), nn.Tanh(), nn.Linear(width, needed))
    torch.manual_seed(0)
    with torch.no_grad():
        mlp[0].weight.normal_(0, 0.1)
        mlp[0].weight[:needed] = torch.eye(needed)
        mlp[0].bias.zero_()
        mlp[2].weight.zero_()
        mlp[2].weight[:, :needed] = 2 * torch.eye(needed)
        mlp[2].weight[:, needed:] = 1e-3
        mlp[2].bias.zero_()
    layers, linears = mlp_layers("pi", mlp)
    return mlp, PrunableNet("pi", "policy", layers, linears)


def _states(n: int = 4000, dim: int = 3) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(1))


def _guard(mlp: nn.Module, pruner, tolerance: float) -> CutGuard:
    return CutGuard(SimpleNamespace(policy=mlp), pruner, tolerance)  # type: ignore[arg-type]


def test_behaviour_change_is_the_share_of_the_action_gap_given_up_or_of_the_variance_lost() -> None:
    assert behaviour_change(torch.tensor([0, 1, 2, 1]), torch.tensor([0, 1, 1, 1])) == 0.25
    # with the scores before the cut: a flip between near-tied actions gives up little of the action gap
    scores = torch.tensor([[1.0, 0.9], [0.0, 1.0]])
    assert behaviour_change(torch.tensor([0, 1]), torch.tensor([1, 1]), scores) == pytest.approx(0.05 / 0.55)
    assert behaviour_change(torch.tensor([0, 1]), torch.tensor([0, 0]), scores) == pytest.approx(0.5 / 0.55)
    before = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])  # variance 1
    assert behaviour_change(before, before) == 0.0
    assert behaviour_change(before, before + 0.5) == pytest.approx(0.25)  # error 0.25 of variance 1
    assert behaviour_change(before, torch.zeros_like(before)) == pytest.approx(1.0)


def _equal_neurons(width: int) -> tuple[nn.Sequential, PrunableNet]:
    """``width`` equal neurons push action 1 against a bias of 0.8: keeping k of them puts the boundary at -0.8 / k."""
    mlp = nn.Sequential(nn.Linear(1, width), nn.Tanh(), nn.Linear(width, 2))
    with torch.no_grad():
        mlp[0].weight.fill_(1.0)
        mlp[0].bias.zero_()
        mlp[2].weight.zero_()
        mlp[2].weight[1] = 1.0
        mlp[2].bias.copy_(torch.tensor([0.0, 0.8]))
    layers, linears = mlp_layers("pi", mlp)
    return mlp, PrunableNet("pi", "policy", layers, linears)


def test_the_guard_reduces_a_cut_that_destroys_a_known_policy() -> None:
    # Eight equal neurons push action 1 against a bias: keeping k of them moves the decision boundary to
    # tanh(x) = -0.8 / k, so the scheduled cut to one neuron changes 17% of the actions, half of it (4) 1.7%.
    mlp, net = _equal_neurons(8)
    pruner = L1StructuredPruner(PrunerConfig(name="l1_structured", sparsity=0.875, begin=0.0, end=0.5, min_neurons=1))
    pruner.setup([net])
    probe = ToyProbe(mlp, torch.linspace(-3, 3, 6001).unsqueeze(1))
    decision = _guard(mlp, pruner, tolerance=0.05).cut(0.5, probe)  # type: ignore[arg-type]
    assert decision is not None
    assert (decision.outcome, decision.cut_scale, decision.tries) == ("reduced", 0.5, 2)  # the whole cut was undone
    assert 0 < decision.change <= 0.05
    assert int(pruner.masks()["pi.0"].sum()) == 4  # half the cut: 8 -> 4 neurons
    assert pruner.reached["pi"] == pytest.approx(0.4375)


def test_the_guard_halves_a_cut_down_to_a_single_neuron() -> None:
    def cut(tolerance: float) -> tuple[Decision | None, L1StructuredPruner]:
        mlp, net = _equal_neurons(16)
        cfg = PrunerConfig(name="l1_structured", sparsity=15 / 16, begin=0.0, end=0.5, min_neurons=1)
        pruner = L1StructuredPruner(cfg)
        pruner.setup([net])
        probe = ToyProbe(mlp, torch.linspace(-3, 3, 6001).unsqueeze(1))
        return _guard(mlp, pruner, tolerance=tolerance).cut(0.5, probe), pruner  # type: ignore[arg-type]

    # the scheduled cut removes 15 neurons; halved: 8, 4, 2, 1 (five cuts); none holds at a zero tolerance
    rejected, _ = cut(1e-9)
    assert rejected is not None and (rejected.outcome, rejected.tries) == ("rejected", 5) and rejected.change > 0
    decision, pruner = cut(rejected.change)  # the single neuron's change is within this tolerance
    assert decision is not None and (decision.outcome, decision.tries, decision.cut_scale) == ("reduced", 5, 1 / 16)
    assert int(pruner.masks()["pi.0"].sum()) == 15


class NoisyPruner(RandomStructuredPruner):
    """Draws from every global generator as it cuts, as a method with random repair steps would."""

    def prune(self, progress: float, probe) -> None:
        torch.rand(3), np.random.rand(3), random.random()
        super().prune(progress, probe)


def test_a_rejected_cut_leaves_weights_masks_optimizer_state_and_random_streams_as_before() -> None:
    mlp, net = _toy()
    optimizer = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    probe = ToyProbe(mlp, _states())
    for _ in range(3):  # some optimizer state to keep
        optimizer.zero_grad()
        probe()[0].pow(2).mean().backward()
        optimizer.step()
    pruner = NoisyPruner(PrunerConfig(name="random_structured", sparsity=0.6, begin=0.0, end=0.5, min_neurons=1), seed=3)
    pruner.setup([net], [optimizer])
    params = {k: v.clone() for k, v in mlp.state_dict().items()}
    adam = {p: {k: v.clone() for k, v in s.items()} for p, s in optimizer.state.items()}
    masks = pruner.masks()
    rng = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate(), pruner.generator.get_state())

    guard = _guard(mlp, pruner, tolerance=1e-9)  # nothing random holds: every needed neuron is a candidate
    decision = guard.cut(0.5, probe)  # type: ignore[arg-type]

    assert decision is not None and decision.outcome == "rejected" and decision.tries == 4
    assert guard.stopped is not None and "no cut held at the schedule's end" in guard.stopped and pruner.stopped
    assert all(torch.equal(v, params[k]) for k, v in mlp.state_dict().items())
    assert all(torch.equal(m, masks[k]) for k, m in pruner.masks().items())
    for param, state in optimizer.state.items():
        assert all(torch.equal(v, adam[param][k]) for k, v in state.items())
    assert torch.equal(torch.get_rng_state(), rng[0]) and np.array_equal(np.random.get_state()[1], rng[1])
    assert random.getstate() == rng[2] and torch.equal(pruner.generator.get_state(), rng[3])
    assert (pruner.n_events, pruner.last_event, pruner.reached) == (0, 0.5, {})  # the event is spent, nothing cut
    assert not pruner.due(0.6)  # stopped: no more events


def test_a_cut_rejected_before_the_schedule_ends_is_tried_again_an_interval_later() -> None:
    mlp, net = _toy()
    cfg = PrunerConfig(name="random_structured", sparsity=0.6, begin=0.0, end=0.5, interval=0.1, min_neurons=1)
    pruner = RandomStructuredPruner(cfg, seed=3)
    pruner.setup([net])
    masks = pruner.masks()
    guard = _guard(mlp, pruner, tolerance=1e-9)
    decision = guard.cut(0.2, ToyProbe(mlp, _states()))  # type: ignore[arg-type]
    assert decision is not None and decision.outcome == "rejected"
    assert guard.stopped is None and not pruner.stopped  # not the end of pruning: training may yet make room
    assert all(torch.equal(m, masks[k]) for k, m in pruner.masks().items())
    assert not pruner.due(0.25) and pruner.due(0.31)  # the next event keeps the schedule's interval


def test_sparsity_auto_stops_at_the_width_the_toy_task_needs() -> None:
    mlp, net = _toy(needed=3, useless=5)
    pruner = L1StructuredPruner(
        PrunerConfig(name="l1_structured", sparsity="auto", begin=0.0, end=0.5, interval=0.05, min_neurons=1)
    )
    pruner.setup([net])
    guard, probe = _guard(mlp, pruner, tolerance=0.05), ToyProbe(mlp, _states())
    for step in range(1, 21):
        if pruner.due(step / 20):
            guard.cut(step / 20, probe)  # type: ignore[arg-type]
    assert pruner.masks()["pi.0"].tolist() == [True] * 3 + [False] * 5  # the three neurons the actions need
    assert guard.stopped is not None and "no cut held at the schedule's end" in guard.stopped
    assert guard.counts()["rejected"] >= 1 and guard.decisions[-1].outcome == "rejected"


def _cut_after_ten_episodes_at_100() -> tuple[L1StructuredPruner, CutGuard]:
    """A guarded pruner on the toy that has cut once, at 10% of training, after ten episodes returning 100."""
    mlp, net = _toy()
    pruner = L1StructuredPruner(
        PrunerConfig(name="l1_structured", sparsity=0.5, begin=0.0, end=0.5, interval=0.1, min_neurons=1)
    )
    pruner.setup([net])
    guard = _guard(mlp, pruner, tolerance=0.05)
    for r in [100.0] * 10:
        guard.observe(r)
    assert guard.ready(0.1)
    guard.cut(0.1, ToyProbe(mlp, _states()))  # type: ignore[arg-type]
    return pruner, guard


def test_the_return_must_recover_before_the_next_cut() -> None:
    pruner, guard = _cut_after_ten_episodes_at_100()
    assert not guard.ready(0.2)  # no episode since the cut yet
    for r in [90.0] * 5:  # 10% below the level before the cut: more than the tolerance
        guard.observe(r)
    assert not guard.ready(0.3) and pruner.held and guard.counts()["deferred"] == 1  # one event, deferred once
    for r in [100.0] * 20:  # the latest episodes are back at the level
        guard.observe(r)
    assert guard.ready(0.4) and not pruner.held
    guard.observe(-50.0)  # a negative return: the budget becomes a share of the range seen (150)
    assert guard.allowed_drop(100.0) == pytest.approx(0.05 * 150)


def test_a_wait_that_outlasts_the_schedule_stops_pruning() -> None:
    pruner, guard = _cut_after_ten_episodes_at_100()
    for r in [50.0] * 10:
        guard.observe(r)
    assert not guard.ready(0.55) and guard.stopped is None
    assert not guard.ready(0.61) and guard.stopped is not None and "had not recovered" in guard.stopped
    assert pruner.stopped and not pruner.held


def test_regularizer_zeroed_neurons_count_as_removed_and_are_absorbed() -> None:
    _, net = _toy()
    pruner = L1StructuredPruner(PrunerConfig(name="l1_structured", sparsity=0.5, min_neurons=1))
    pruner.setup([net])
    net.layers[0].scale_(torch.tensor([1.0] * 6 + [0.0, 0.0]))  # what the group lasso does to a whole group
    stats = pruner.stats()["pi"]
    assert stats["alive_neurons"] == 6 and stats["alive_per_layer"] == {"pi.0": 6}  # the mask still keeps 8
    assert bool(pruner.masks()["pi.0"].all())
    assert pruner.absorb_dead_() == 2
    assert pruner.masks()["pi.0"].tolist() == [True] * 6 + [False] * 2


def test_the_regularizer_never_takes_a_layer_below_its_floor(net: PrunableNet) -> None:
    lasso = GroupLasso(net.layers, strength=1e6, floors=[3, 5])
    lasso.prox_(1.0)  # would zero every group
    assert [int((layer.group_norms() > 0).sum()) for layer in net.layers] == [3, 5]


def test_dsp_removes_neurons_only_through_its_cuts(mlp: nn.Sequential) -> None:
    layers, linears = mlp_layers("pi", mlp)
    net = PrunableNet("pi", "policy", layers, linears)
    pruner = DynamicStructuredPruner(DSPConfig(name="dsp", sparsity=0.5, strength=1e4, begin=0.0, end=0.5, min_neurons=1))
    pruner.setup([net])
    pruner.regularize(0.2)  # a huge shrinkage before any cut: every group would be zero
    assert all(bool((layer.group_norms() > 0).all()) for layer in net.layers)
    pruner.step(0.5, lambda: [mlp(torch.randn(64, 3))])  # the cut to 50%: 4 of 8 neurons per layer
    pruner.regularize(0.5)
    assert [int((layer.group_norms() > 0).sum()) for layer in net.layers] == [4, 4]
    assert [s for s in pruner.stats()["pi"]["alive_per_layer"].values()] == [4, 4]


def test_a_rejected_weight_cut_leaves_the_gradients_of_its_weights_unmasked() -> None:
    from prune_rl.methods import MagnitudeConfig, MagnitudePruner

    mlp, net = _toy()
    pruner = MagnitudePruner(MagnitudeConfig(name="magnitude", sparsity=0.9, begin=0.0, end=0.5))
    pruner.setup([net])
    pruner.start()  # masks the gradients of pruned weights from now on
    probe = ToyProbe(mlp, _states())
    decision = _guard(mlp, pruner, tolerance=-1.0).cut(0.5, probe)  # type: ignore[arg-type]  # no cut can hold
    assert decision is not None and decision.outcome == "rejected"
    probe()[0].pow(2).sum().backward()
    assert bool((mlp[0].weight.grad != 0).all()), "no hook of an undone cut masks the gradients"
    pruner.close()
