"""Every pruning method behind the Pruner interface, on tiny networks (pure PyTorch, milliseconds)."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from prune_rl.core import PrunableNet, compact_weight_count, layer_quota, link_mirrors, mlp_layers
from prune_rl.methods import (
    PRUNERS,
    DSPConfig,
    MagnitudeConfig,
    Pruner,
    PrunerConfig,
    RepairConfig,
    ScratchConfig,
    matched_weight_sparsity,
)

from conftest import tiny_mlp

STRUCTURED = ["dsp", "l2_structured", "random_structured"]
UNSTRUCTURED = ["magnitude", "global_magnitude"]
EVENTS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75]


def _config(method: str, **kwargs: object) -> PrunerConfig:
    cls = PRUNERS[method].config_class
    return cls(name=method, sparsity=0.75, value_sparsity=0.5, begin=0.1, end=0.75, interval=0.1, **kwargs)  # type: ignore[arg-type]


class Setup:
    """A policy and a value MLP (the value one with a target copy), an Adam optimizer and a probe."""

    def __init__(self, seed: int = 0, hidden: tuple[int, ...] = (8, 8)) -> None:
        self.pi = tiny_mlp(seed, hidden=hidden)
        self.vf = tiny_mlp(seed + 1, hidden=hidden, n_out=1)
        self.vf_target = copy.deepcopy(self.vf)
        self.optimizer = torch.optim.Adam([*self.pi.parameters(), *self.vf.parameters()], lr=1e-2)
        self.x = torch.randn(64, 3, generator=torch.Generator().manual_seed(seed))
        self.nets = [self._net("pi", "policy", self.pi), self._net("vf", "value", self.vf)]
        link_mirrors(self.nets[1], self._net("vf_target", "value", self.vf_target))

    @staticmethod
    def _net(name: str, role: str, mlp: nn.Sequential) -> PrunableNet:
        layers, linears = mlp_layers(name, mlp)
        return PrunableNet(name, role, layers, linears)

    def probe(self) -> list[torch.Tensor]:
        return [self.pi(self.x), self.vf(self.x)]

    def train_steps(self, n: int = 5) -> None:
        for _ in range(n):
            self.optimizer.zero_grad()
            loss = sum((out - 1.0).pow(2).mean() for out in self.probe())
            loss.backward()
            self.optimizer.step()

    def polyak(self, tau: float = 0.5) -> None:
        with torch.no_grad():
            for t, p in zip(self.vf_target.parameters(), self.vf.parameters(), strict=True):
                t.mul_(1 - tau).add_(p, alpha=tau)


def _pruner(method: str, setup: Setup, seed: int = 0, **kwargs: object) -> Pruner:
    pruner = PRUNERS[method](_config(method, **kwargs), seed=seed)
    pruner.setup(setup.nets, [setup.optimizer])
    pruner.start()
    return pruner


def _train_through(pruner: Pruner, setup: Setup, events: list[float] = EVENTS) -> None:
    for progress in events:
        setup.train_steps()
        setup.polyak()
        pruner.regularize(progress)
        if pruner.due(progress):
            pruner.step(progress, setup.probe)


def _pruned_then_trained(method: str) -> tuple[Setup, Pruner]:
    """Prune through the whole schedule, then train and update the target a while longer."""
    setup = Setup()
    pruner = _pruner(method, setup)
    _train_through(pruner, setup)
    setup.train_steps(10)
    setup.polyak()
    return setup, pruner


@pytest.mark.parametrize("method", STRUCTURED)
def test_structured_methods_reach_the_schedule_and_masked_groups_stay_zero(method: str) -> None:
    setup, pruner = _pruned_then_trained(method)
    stats = pruner.stats()
    assert list(stats["pi"]["alive_per_layer"].values()) == [layer_quota(0.75, 8, 2)] * 2 == [2, 2]
    assert list(stats["vf"]["alive_per_layer"].values()) == [4, 4]
    assert stats["pi"]["neuron_sparsity"] == pytest.approx(0.75)
    masks = pruner.masks()
    for net in setup.nets:
        for layer in net.layers:
            dead = ~masks[layer.name]
            for copy_ in [layer, *layer.mirrors]:
                assert torch.all(copy_.group_norms()[dead] == 0)
            for param, view in layer.factor_views(dead.float()):  # Adam's moments of the dead groups
                for value in setup.optimizer.state[param].values():
                    if value.shape == param.shape:
                        assert torch.all(value * view == 0)


@pytest.mark.parametrize("method", UNSTRUCTURED)
def test_unstructured_masks_are_per_weight_and_stay_zero_with_their_adam_state(method: str) -> None:
    setup, pruner = _pruned_then_trained(method)
    masks = pruner.masks()
    linears = {
        f"{net.name}.linear{i}": (lin, [t.linears[i] for t in net.targets])
        for net in setup.nets
        for i, lin in enumerate(net.linears)
    }
    assert set(masks) == set(linears)
    for name, alive in masks.items():
        linear, targets = linears[name]
        assert alive.shape == linear.weight.shape
        for copy_ in [linear, *targets]:
            assert torch.all(copy_.weight[~alive] == 0), name
        for value in setup.optimizer.state[linear.weight].values():
            if value.shape == linear.weight.shape:
                assert torch.all(value[~alive] == 0), name
    stats = pruner.stats()
    assert stats["pi"]["weight_sparsity"] == pytest.approx(0.75, abs=0.02)
    assert stats["vf"]["weight_sparsity"] == pytest.approx(0.5, abs=0.02)
    assert stats["pi"]["compact_weights"] == sum(int(m.sum()) for n, m in masks.items() if n.startswith("pi."))


def test_per_layer_magnitude_keeps_each_layers_largest_weights() -> None:
    setup = Setup()
    before = {f"{n.name}.linear{i}": lin.weight.detach().abs().clone() for n in setup.nets for i, lin in enumerate(n.linears)}
    pruner = _pruner("magnitude", setup)
    pruner.step(0.75, setup.probe)  # straight to the final sparsity
    for name, alive in pruner.masks().items():
        target = 0.75 if name.startswith("pi.") else 0.5
        magnitude = before[name]
        assert int(alive.sum()) == max(int((1 - target) * magnitude.numel() + 1e-6), 1)
        assert magnitude[alive].min() >= magnitude[~alive].max()  # every kept weight outranked every pruned one


def test_global_magnitude_ranks_across_layers_and_keeps_a_minimum_per_layer() -> None:
    setup = Setup()
    with torch.no_grad():
        setup.pi[2].weight.mul_(100.0)  # the middle layer dominates a global ranking
    before = {id(m): m.weight.detach().abs().clone() for m in setup.pi if isinstance(m, nn.Linear)}
    pruner = _pruner("global_magnitude", setup, min_weights=3)
    pruner.step(0.75, setup.probe)
    masks = pruner.masks()
    kept = [int(masks[f"pi.linear{i}"].sum()) for i in range(3)]
    total = sum(m.weight.numel() for m in setup.pi if isinstance(m, nn.Linear))
    assert sum(kept) == int(0.25 * total + 1e-6)
    assert kept[0] == kept[2] == 3 and kept[1] == sum(kept) - 6  # the minimum, and the rest to the large layer
    middle = before[id(setup.pi[2])]
    assert torch.equal(masks["pi.linear1"], middle >= middle.flatten().sort(descending=True).values[kept[1] - 1])


@pytest.mark.parametrize("method", UNSTRUCTURED)
def test_matched_unstructured_methods_keep_the_weights_a_structured_cut_keeps(method: str) -> None:
    setup = Setup(hidden=(16, 16))
    structured = compact_weight_count(setup.nets[0], [torch.arange(16) < 4] * 2)
    dense = compact_weight_count(setup.nets[0])
    assert matched_weight_sparsity(setup.nets[0], 0.75, 2) == pytest.approx(1 - structured / dense)
    pruner = _pruner(method, setup, matched=True)
    pruner.step(0.75, setup.probe)
    assert pruner.stats()["pi"]["compact_weights"] == pytest.approx(structured, abs=3)  # per-layer rounding


def test_unstructured_neuron_sparsity_counts_the_neurons_it_emptied() -> None:
    setup = Setup()
    pruner = _pruner("magnitude", setup)
    mask = pruner.weight_masks["pi"][0]  # type: ignore[attr-defined]
    mask.alive[:3] = False  # neurons 0-2 of the first layer lose every input
    pruner.weight_masks["pi"][1].alive[:, 3] = False  # type: ignore[attr-defined]  # neuron 3 loses every output
    stats = pruner.stats()["pi"]
    assert stats["alive_per_layer"] == {"pi.0": 4, "pi.1": 8}
    assert stats["neuron_sparsity"] == pytest.approx(4 / 16)


def test_a_restored_unstructured_pruner_keeps_masking_gradients() -> None:
    setup = Setup()
    pruner = _pruner("magnitude", setup)  # started: gradient hooks on
    pruner.step(0.75, setup.probe)
    pruner.load_state_dict(pruner.state_dict())  # new masks: they must hook their gradients too
    setup.train_steps(5)
    for mask in pruner.weight_masks["pi"]:  # type: ignore[attr-defined]
        assert torch.all(mask.linear.weight[~mask.alive] == 0)


@pytest.mark.parametrize(("method", "other"), [("l2_structured", "magnitude"), ("magnitude", "l2_structured")])
def test_masks_of_another_kind_are_refused(method: str, other: str) -> None:
    setup = Setup()
    pruner = PRUNERS[method](_config(method))
    source = PRUNERS[other](_config(other))  # per weight for a per-neuron method, and the reverse
    source.setup(Setup().nets)
    with pytest.raises(ValueError, match="do not fit"):
        pruner.setup(setup.nets, [setup.optimizer], source.masks())


def test_random_structured_is_reproducible_with_its_seed() -> None:
    def masks(seed: int) -> dict[str, torch.Tensor]:
        setup = Setup(seed=0)
        pruner = _pruner("random_structured", setup, seed=seed)
        _train_through(pruner, setup)
        return pruner.masks()

    a, b, c = masks(1), masks(1), masks(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_l2_structured_keeps_the_largest_groups() -> None:
    setup = Setup()
    norms = [layer.group_norms().detach() for layer in setup.nets[0].layers]
    pruner = _pruner("l2_structured", setup)
    pruner.step(0.75, setup.probe)
    for layer, norm in zip(setup.nets[0].layers, norms, strict=True):
        kept = pruner.masks()[layer.name]
        assert set(torch.nonzero(kept).flatten().tolist()) == set(norm.topk(2).indices.tolist())


@pytest.mark.parametrize("method", [*STRUCTURED, *UNSTRUCTURED])
def test_a_state_dict_round_trip_continues_exactly_where_it_stopped(method: str) -> None:
    kwargs: dict[str, object] = {}
    if method == "dsp":
        kwargs = {"repair": RepairConfig(fold="linear", distill_steps=3, fan_in_lr=1.0), "value_strength": 1.0}
    first = Setup()
    pruner = _pruner(method, first, **kwargs)
    _train_through(pruner, first, EVENTS[:3])
    state = copy.deepcopy(pruner.state_dict())
    second = copy.deepcopy(first)  # the weights and optimizer as a checkpoint would hold them
    second.nets = [second._net("pi", "policy", second.pi), second._net("vf", "value", second.vf)]
    link_mirrors(second.nets[1], second._net("vf_target", "value", second.vf_target))
    second.optimizer = torch.optim.Adam([*second.pi.parameters(), *second.vf.parameters()], lr=1e-2)
    second.optimizer.load_state_dict(copy.deepcopy(first.optimizer.state_dict()))  # as from a file: no shared step
    resumed = PRUNERS[method](_config(method, **kwargs), seed=123)  # the seed is overwritten by the state
    resumed.setup(second.nets, [second.optimizer])
    resumed.load_state_dict(state)
    resumed.start()
    assert resumed.n_events == pruner.n_events and resumed.last_event == pruner.last_event
    _train_through(pruner, first, EVENTS[3:])
    _train_through(resumed, second, EVENTS[3:])
    assert all(torch.equal(pruner.masks()[k], resumed.masks()[k]) for k in pruner.masks())
    params = [(first.pi, second.pi), (first.vf, second.vf), (first.vf_target, second.vf_target)]
    for a, b in params:
        assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    pruner.close()
    resumed.close()


def test_dsp_regularizer_shrinks_groups_and_logs_its_penalty() -> None:
    setup = Setup()
    before = [layer.group_norms().sum().item() for layer in setup.nets[0].layers]
    pruner = _pruner("dsp", setup, strength=0.5)
    pruner.regularize(0.5)
    after = [layer.group_norms().sum().item() for layer in setup.nets[0].layers]
    assert all(a < b for a, b in zip(after, before, strict=True))
    assert pruner.stats()["pi"]["penalty"] > 0
    assert pruner.stats()["vf"]["penalty"] == 0  # value networks take value_strength, 0 by default: not shrunk
    assert [la.group_norms().sum().item() for la in setup.nets[1].layers] == pytest.approx(
        [la.group_norms().sum().item() for la in Setup().nets[1].layers]
    )


def test_schedule_position_comes_from_the_progress_it_is_told() -> None:
    setup = Setup()
    pruner = _pruner("l2_structured", setup)
    assert not pruner.due(0.05) and pruner.due(0.1)
    pruner.step(0.1, setup.probe)
    assert not pruner.due(0.15) and pruner.due(0.2)
    pruner.step(0.75, setup.probe)
    assert not pruner.due(0.9) and not pruner.listening(0.9)


def test_scratch_builds_the_final_widths_and_reports_against_the_dense_networks(tmp_path) -> None:
    dense = Setup(hidden=(16, 16))
    pruner = PRUNERS["scratch"](_config("scratch"))
    widths = pruner.architecture(dense.nets)
    assert widths == {"pi": [4, 4], "vf": [8, 8]}
    narrow = Setup(hidden=(4, 4))
    pruner.setup(narrow.nets, [narrow.optimizer])
    assert not pruner.due(0.5)
    stats = pruner.stats()["pi"]
    assert stats["neurons"] == 32 and stats["alive_neurons"] == 8 and stats["neuron_sparsity"] == pytest.approx(0.75)
    assert stats["weights"] == compact_weight_count(dense.nets[0])
    assert stats["compact_weights"] == compact_weight_count(narrow.nets[0])

    run = tmp_path / "run"
    run.mkdir()
    sparsity = {"pi": {"alive_per_layer": {"pi.0": 5, "pi.1": 3}}, "vf": {"alive_per_layer": {"vf.0": 9, "vf.1": 2}}}
    (run / "results.json").write_text(json.dumps({"sparsity": sparsity}))
    from_run = PRUNERS["scratch"](ScratchConfig(name="scratch", from_run=str(run)))
    assert from_run.architecture(dense.nets) == {"pi": [5, 3], "vf": [9, 2]}
    with pytest.raises(ValueError, match="does not exist"):
        PRUNERS["scratch"](ScratchConfig(name="scratch", from_run=str(tmp_path / "nope"))).architecture(dense.nets)


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (PrunerConfig, {"name": "x", "sparsity": 1.0}, "pruning.sparsity must be in [0, 1)"),
        (PrunerConfig, {"name": "x", "begin": 0.8, "end": 0.5}, "must be before pruning.end"),
        (PrunerConfig, {"name": "x", "schedule": "linear"}, "unknown pruning.schedule 'linear'"),
        (PrunerConfig, {"name": "x", "probe_window": "all"}, "unknown pruning.probe_window 'all'"),
        (DSPConfig, {"name": "dsp", "importance": "size"}, "unknown pruning.importance 'size'"),
        (DSPConfig, {"name": "dsp", "strength": -1.0}, "must be >= 0"),
        (MagnitudeConfig, {"name": "magnitude", "min_weights": -1}, "min_weights must be >= 0"),
    ],
)
def test_configs_check_their_own_values(cls: type, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        cls(**kwargs)
    assert message in str(info.value)
    with pytest.raises(ValueError, match=r"unknown pruning\.repair\.fold 'exact'"):
        RepairConfig(fold="exact")
