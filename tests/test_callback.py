"""The pruning callback driving pruners inside real SB3 training runs."""

import dataclasses

import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure

from prune_rl.core import SCHEDULES, NeuronMask, layer_quota
from prune_rl.environment import make_env
from prune_rl.methods import DynamicStructuredPruner, Pruner
from prune_rl.sb3.callback import PruningCallback, load_masks, load_state
from prune_rl.sb3.networks import prunable_nets
from prune_rl.sb3.probe import Probe
from prune_rl.runner.build import build_model, build_pruner
from prune_rl.runner.train import run

from conftest import fast, train_cfg

ALGO_CLASSES = {"ppo": PPO, "a2c": A2C, "dqn": DQN, "sac": SAC, "td3": TD3}


def _callback(cfg, **kwargs) -> PruningCallback:
    pruner = build_pruner(cfg)
    assert pruner is not None
    return PruningCallback(pruner, **kwargs)


CASES = [("ppo", "cartpole"), ("a2c", "cartpole"), ("dqn", "cartpole"), ("sac", "hopper"), ("td3", "hopper")]


def _dead_groups_are_zero(model, masks: dict[str, torch.Tensor]) -> None:
    for net in prunable_nets(model):
        for layer in net.layers:
            dead = ~masks[layer.name]
            for copy in [layer, *layer.mirrors]:
                norms = copy.group_norms()
                assert torch.all(norms[dead] == 0), f"{copy.name}: pruned neurons are not zero"


@pytest.mark.parametrize(("algo", "env"), CASES)
def test_short_run_ends_with_masked_neurons(algo: str, env: str, tmp_path) -> None:
    cfg = train_cfg([*fast(algo, env), "pruning.sparsity=0.5", "pruning.value_sparsity=0.5"])
    results = run(cfg, tmp_path)
    masks = load_masks(tmp_path / "masks.pt")
    model = ALGO_CLASSES[algo].load(tmp_path / "model.zip", device="cpu")  # plain SB3
    policy_net = next(s for s in results.sparsity.values() if s["role"] == "policy")
    assert policy_net["neuron_sparsity"] == pytest.approx(0.5)
    assert policy_net["compact_weights"] < policy_net["weights"]
    assert 0 < policy_net["weight_sparsity"] < 1
    _dead_groups_are_zero(model, masks)  # includes target networks (DQN, SAC, TD3)
    for stats in results.sparsity.values():
        assert all(n >= cfg.pruning.min_neurons for n in stats["alive_per_layer"].values())
        assert set(stats["alive_per_layer"].values()) == {4}  # layer allocation: half of each [8, 8] layer


@pytest.mark.parametrize(
    ("algo", "env", "arch", "fold"),
    [
        ("ppo", "cartpole", "{pi:[8,4],vf:[8,4]}", "mean"),
        ("sac", "hopper", "[8,4]", "mean"),
        ("ppo", "cartpole", "{pi:[8,4],vf:[8,4]}", "linear"),
        ("sac", "hopper", "[8,4]", "linear"),
    ],
)
def test_folds_keep_pruned_neurons_zero(algo: str, env: str, arch: str, fold: str, tmp_path) -> None:
    # [8, 4] at 75%: the second layer reaches its 2 neurons before the first, so later cuts of the first layer
    # fold into a layer with dead neurons; those must stay zero.
    overrides = [*fast(algo, env), f"++algo.policy_kwargs.net_arch={arch}", f"pruning.repair.fold={fold}"]
    cfg = train_cfg([*overrides, "pruning.sparsity=0.75", "pruning.value_sparsity=0.75"])
    results = run(cfg, tmp_path)
    model = ALGO_CLASSES[algo].load(tmp_path / "model.zip", device="cpu")
    _dead_groups_are_zero(model, load_masks(tmp_path / "masks.pt"))
    for stats in results.sparsity.values():
        assert list(stats["alive_per_layer"].values()) == [2, 2]  # 8 * 0.25, and the 2-neuron floor of 4


def test_tensorboard_gets_pruning_tags(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(train_cfg(fast("ppo", "cartpole")), tmp_path)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for net in ("pi", "vf"):
        for key in ("neuron_sparsity", "weight_sparsity", "threshold", "penalty", "cut_share"):
            assert f"prune/{key}/{net}" in tags
    assert {"prune/alive/pi.0", "prune/alive/pi.1", "prune/alive/vf.0"} <= tags


@pytest.mark.parametrize(("algo", "env"), [("ppo", "cartpole"), ("sac", "hopper")])
def test_distilled_cuts_keep_pruned_neurons_zero_and_are_logged(algo: str, env: str, tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    overrides = [*fast(algo, env), "pruning.sparsity=0.5", "pruning.value_sparsity=0.5", "pruning.repair.distill_steps=5"]
    results = run(train_cfg([*overrides, "pruning.repair.fold=linear"]), tmp_path)
    model = ALGO_CLASSES[algo].load(tmp_path / "model.zip", device="cpu")
    _dead_groups_are_zero(model, load_masks(tmp_path / "masks.pt"))  # target networks included (SAC)
    for stats in results.sparsity.values():
        assert set(stats["alive_per_layer"].values()) == {4}
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    before, after = (events.Scalars(f"prune/distill_loss_{when}") for when in ("before", "after"))
    assert len(before) == len(after) > 0
    assert all(a.value <= b.value for a, b in zip(after, before, strict=True))
    # the time of pruning events is reported, distillation's share of it apart
    assert 0.0 < results.pruning_summary["distill_seconds"] < results.prune_seconds < results.train_seconds


def test_save_load_continue_keeps_masks(tmp_path) -> None:
    cfg = train_cfg([*fast("ppo", "cartpole"), "pruning.sparsity=0.5"])
    run(cfg, tmp_path / "first")
    masks = load_masks(tmp_path / "first" / "masks.pt")
    env = make_env(cfg.env, seed=1)
    model = PPO.load(tmp_path / "first" / "model.zip", env=env, device="cpu")
    model.set_logger(configure(None, []))
    # Continue with pruning over again (a later window), starting from the saved masks.
    pruner = DynamicStructuredPruner(dataclasses.replace(cfg.pruning, sparsity=0.75))
    callback = PruningCallback(pruner, masks=masks)  # no budget: this learn() call's total
    model.learn(256, callback=callback, reset_num_timesteps=False)
    after = pruner.masks()
    for name, alive in masks.items():
        assert not torch.any(after[name] & ~alive), f"{name}: a pruned neuron came back"
    assert sum(int(a.sum()) for n, a in after.items() if n.startswith("pi")) == 4  # 25% of 16
    _dead_groups_are_zero(model, after)


def test_continue_without_pruning_keeps_pruned_neurons_zero(tmp_path) -> None:
    """Pruned neurons stay exactly zero under plain SB3 training: their gradients are zero."""
    cfg = train_cfg([*fast("ppo", "cartpole"), "pruning.sparsity=0.5"])
    run(cfg, tmp_path)
    masks = load_masks(tmp_path / "masks.pt")
    model = PPO.load(tmp_path / "model.zip", env=make_env(cfg.env, seed=2), device="cpu")
    model.learn(256)
    _dead_groups_are_zero(model, masks)


def test_regularizer_shrinks_groups_and_schedule_is_followed(tmp_path) -> None:
    cfg = train_cfg([*fast("ppo", "cartpole"), "pruning.sparsity=0.5", "pruning.strength=0"])
    env = make_env(cfg.env, seed=0)
    dense = build_model(cfg, env)
    before = sum(float(n.layers[0].group_norms().sum().detach()) for n in prunable_nets(dense))
    reg_cfg = train_cfg([*fast("ppo", "cartpole"), "pruning.sparsity=0.01", "pruning.strength=2"])
    model = build_model(reg_cfg, env)
    callback = _callback(reg_cfg)
    model.learn(512, callback=callback)
    after = sum(float(n.layers[0].group_norms().sum().detach()) for n in prunable_nets(model))
    assert after < before  # same init (same seed), shrunk by the proximal steps
    assert callback.pruner.n_events >= 3


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_masks_follow_the_configured_schedule(schedule: str) -> None:
    overrides = ["pruning.sparsity=0.9", "pruning.begin=0.1", "pruning.end=0.9", "pruning.min_neurons=1"]
    arch = ["++algo.policy_kwargs.net_arch={pi:[32,32],vf:[8,8]}", f"pruning.schedule={schedule}"]
    cfg = train_cfg([*fast("ppo", "cartpole"), *overrides, *arch])
    model = build_model(cfg, make_env(cfg.env, seed=0))
    callback = _callback(cfg, total_timesteps=640)
    pruner = callback.pruner
    expected = SCHEDULES[schedule](0.9, 0.1, 0.9)
    seen: list[tuple[int, int]] = []
    original_step = pruner.step

    def step(progress: float, probe) -> None:
        original_step(progress, probe)
        seen.append((int(pruner.masks()["pi.0"].sum()), layer_quota(expected(progress), 32)))

    pruner.step = step  # type: ignore[method-assign]
    model.learn(640, callback=callback)
    assert pruner.nets[0].role == "policy" and len(seen) >= 4
    assert all(kept == quota for kept, quota in seen)
    assert seen[-1] == (3, 3)


@pytest.mark.parametrize("method", ["magnitude", "global_magnitude"])
@pytest.mark.parametrize(("algo", "env"), [("sac", "hopper"), ("dqn", "cartpole")])
def test_unstructured_runs_keep_pruned_weights_zero_in_target_networks_too(method: str, algo: str, env: str, tmp_path) -> None:
    cfg = train_cfg([*fast(algo, env, method), "pruning.sparsity=0.8", "pruning.value_sparsity=0.6"])
    results = run(cfg, tmp_path)
    masks = load_masks(tmp_path / "masks.pt")
    model = ALGO_CLASSES[algo].load(tmp_path / "model.zip", device="cpu")
    for net in prunable_nets(model):
        for i, linear in enumerate(net.linears):
            alive = masks[f"{net.name}.linear{i}"]
            for copy_ in [linear, *(t.linears[i] for t in net.targets)]:
                assert torch.all(copy_.weight[~alive] == 0)
    policy = next(s for s in results.sparsity.values() if s["role"] == "policy")
    assert policy["weight_sparsity"] == pytest.approx(0.8, abs=0.02)


def test_progress_is_the_runs_budget_so_a_continued_run_follows_one_schedule() -> None:
    # constant learning rate and clip range: SB3's own schedules restart with every learn() call
    overrides = [*fast("ppo", "cartpole"), "pruning.sparsity=0.75", "algo.learning_rate=0.001", "algo.clip_range=0.2"]
    cfg = train_cfg([*overrides, "n_timesteps=512"])
    events: dict[str, list[float]] = {}
    masks = {}
    for how in ("once", "twice"):
        model = build_model(cfg, make_env(cfg.env, seed=0))
        model.set_logger(configure(None, []))
        callback = _callback(cfg, total_timesteps=512)
        original_step = callback.pruner.step
        events[how] = []

        def step(progress: float, probe, seen: list[float] = events[how], original=original_step) -> None:
            seen.append(progress)
            original(progress, probe)

        callback.pruner.step = step  # type: ignore[method-assign]
        if how == "once":
            model.learn(512, callback=callback)
        else:
            model.learn(256, callback=callback)
            model.learn(256, callback=callback, reset_num_timesteps=False)
        masks[how] = callback.pruner.masks()
    assert events["once"] == events["twice"] and len(events["once"]) >= 4
    assert events["once"][-1] >= cfg.pruning.end
    assert all(torch.equal(masks["once"][k], masks["twice"][k]) for k in masks["once"])


class _EveryOtherNeuron(Pruner):
    """A method written in a test: no edit to the callback is needed to drive it."""

    def _setup(self, masks: dict[str, torch.Tensor]) -> None:
        self.neuron_masks = [NeuronMask(la, masks.get(la.name)) for n in self.nets for la in n.layers]

    def prune(self, progress: float, probe) -> None:
        probe()  # the probe runs
        for mask in self.neuron_masks:
            mask.alive = torch.arange(mask.layer.n_neurons) % 2 == 0
            mask.apply_(self.optimizers)

    def masks(self) -> dict[str, torch.Tensor]:
        return {mask.layer.name: mask.alive.clone() for mask in self.neuron_masks}

    def stats(self) -> dict:
        return {n.name: {"role": n.role, "neuron_sparsity": 0.5, "alive_per_layer": {}} for n in self.nets}


def test_any_pruner_is_driven_by_the_callback() -> None:
    cfg = train_cfg([*fast("ppo", "cartpole"), "algo.learning_rate=0.001"])  # constant: revival would show
    model = build_model(cfg, make_env(cfg.env, seed=0))
    pruner = _EveryOtherNeuron(cfg.pruning)
    model.learn(256, callback=PruningCallback(pruner))
    assert pruner.n_events > 0
    _dead_groups_are_zero(model, pruner.masks())


def test_sde_sac_is_refused() -> None:
    cfg = train_cfg([*fast("sac", "hopper"), "+algo.use_sde=true"])
    model = build_model(cfg, make_env(cfg.env, seed=0))
    with pytest.raises(ValueError, match="gSDE"):
        prunable_nets(model)


def test_ppo_without_shared_features_extractor_is_pruned(tmp_path) -> None:
    cfg = train_cfg([*fast("ppo", "cartpole"), "pruning.sparsity=0.5", "+algo.policy_kwargs.share_features_extractor=false"])
    results = run(cfg, tmp_path)
    assert results.sparsity["pi"]["neuron_sparsity"] == pytest.approx(0.5)


def test_second_learn_with_the_same_callback_keeps_masks() -> None:
    cfg = train_cfg([*fast("ppo", "cartpole"), "pruning.sparsity=0.5"])
    model = build_model(cfg, make_env(cfg.env, seed=0))
    callback = _callback(cfg)
    model.learn(256, callback=callback)
    first = callback.pruner.masks()
    model.learn(256, callback=callback, reset_num_timesteps=False)
    second = callback.pruner.masks()
    assert sum(int(a.sum()) for a in first.values()) == sum(int(a.sum()) for a in second.values())
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert callback.pruner.stats()["pi"]["neuron_sparsity"] == pytest.approx(0.5)


def test_pruning_happens_after_training_not_between_rollout_and_update() -> None:
    """PPO trains on the rollout collected by the same policy: no mask change in between."""
    cfg = train_cfg([*fast("ppo", "cartpole"), "pruning.sparsity=0.5"])
    model = build_model(cfg, make_env(cfg.env, seed=0))
    callback = _callback(cfg)
    pruner = callback.pruner
    changes: list[str] = []
    original_train = model.train

    def train() -> None:
        before = pruner.masks() if pruner.nets else {}
        original_train()
        changes.append("train")
        assert all(torch.equal(before[k], v) for k, v in pruner.masks().items() if k in before)

    model.train = train  # type: ignore[method-assign]
    original_step = pruner.step

    def step(progress: float, probe) -> None:
        changes.append("prune")
        original_step(progress, probe)

    pruner.step = step  # type: ignore[method-assign]
    model.learn(256, callback=callback)
    assert "prune" in changes
    # each pruning event directly follows a gradient phase (or ends training)
    assert all(changes[i - 1] == "train" for i, c in enumerate(changes) if c == "prune" and i > 0)


@pytest.mark.parametrize(("algo", "env"), [("ppo", "cartpole"), ("sac", "hopper")])
def test_fan_in_lr_scales_layers_fed_by_pruned_layers(algo: str, env: str) -> None:
    overrides = ["pruning.sparsity=0.5", "pruning.value_sparsity=0.75", "pruning.repair.fan_in_lr=1.0"]
    cfg = train_cfg([*fast(algo, env), *overrides])
    model = build_model(cfg, make_env(cfg.env, seed=0))
    callback = _callback(cfg)
    pruner = callback.pruner
    assert isinstance(pruner, DynamicStructuredPruner)
    seen: list[dict[int, float]] = []
    installed = []
    original_train = model.train

    def train(*args, **kwargs) -> None:
        installed.extend(hooks for hooks in pruner.fan_in if hooks not in installed)
        seen.append({id(p): s for hooks in pruner.fan_in for p, s in hooks.scales})
        original_train(*args, **kwargs)

    model.train = train  # type: ignore[method-assign]
    model.learn(256, callback=callback)
    assert len(installed) == len(pruner.optimizers)
    readers = {id(c.weight): net.role for net in pruner.nets for layer in net.layers for c in layer.consumers}
    # [8, 8] layers: half of the policy's neurons left (scale 2), a quarter of the critics' (scale 4)
    assert {readers[k]: s for k, s in seen[-1].items()} == {"policy": 2.0, "value": 4.0}
    assert set(seen[-1]) == set(readers)
    assert all(not hooks._handles for hooks in installed)  # removed when learn() ends
    _dead_groups_are_zero(model, pruner.masks())


def _marked_rollouts(model: PPO, probe: Probe, marks: range) -> None:
    """Pass ``probe`` one rollout per mark, every state of rollout ``k`` filled with ``k``."""
    for k in marks:
        model.rollout_buffer.observations[:] = k
        probe.collect()


def test_interval_probe_pools_a_uniform_sample_of_the_rollouts_since_its_reset() -> None:
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(64)  # a full rollout buffer of 64 states
    probe = Probe(model, n_states=96, window="interval", seed=1)
    rng_before = torch.get_rng_state()
    _marked_rollouts(model, probe, range(4))
    assert torch.equal(torch.get_rng_state(), rng_before)  # training's random stream untouched
    probe.capture()
    assert probe.batch is not None
    obs = probe.batch[0]
    assert obs.shape == (96, 4)
    counts = torch.bincount(obs[:, 0].long(), minlength=4)
    assert all(10 <= int(c) <= 40 for c in counts), counts  # 24 expected from each of the 4 rollouts
    probe.reset()
    _marked_rollouts(model, probe, range(7, 8))
    probe.capture()
    assert probe.batch is not None and set(probe.batch[0][:, 0].tolist()) == {7.0}  # only rollouts after reset
    assert len(probe.batch[0]) == 64

    last = Probe(model, n_states=96)  # the rollout window: the last rollout alone, nothing pooled
    _marked_rollouts(model, last, range(4))
    last.capture()
    assert last.batch is not None and set(last.batch[0][:, 0].tolist()) == {3.0} and len(last.batch[0]) == 64


def test_recent_probe_keeps_the_last_states_since_its_reset() -> None:
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(64)
    probe = Probe(model, n_states=160, window="recent", seed=1)
    rng_before = torch.get_rng_state()
    _marked_rollouts(model, probe, range(5))
    assert torch.equal(torch.get_rng_state(), rng_before)
    probe.capture()
    assert probe.batch is not None
    # the last 160 states: rollout 4 and 3 whole, the newest 32 of rollout 2, oldest first
    assert probe.batch[0][:, 0].tolist() == [2.0] * 32 + [3.0] * 64 + [4.0] * 64
    probe.reset()
    _marked_rollouts(model, probe, range(8, 9))
    probe.capture()
    assert probe.batch is not None and probe.batch[0][:, 0].tolist() == [8.0] * 64  # nothing from before the reset

    small = Probe(model, n_states=48, window="recent", seed=1)  # one rollout fills it: a sample of the last
    _marked_rollouts(model, small, range(3))
    model.rollout_buffer.observations[:, 1] = np.arange(64)  # tell the states of the last rollout apart
    small.collect()
    small.capture()
    assert small.batch is not None and small.batch[0][:, 0].tolist() == [2.0] * 48
    assert len(set(small.batch[0][:, 1].tolist())) == 48


def test_recent_probe_trims_the_oldest_time_steps_of_every_env() -> None:
    model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=0), n_steps=32, batch_size=64, n_epochs=1)
    model.learn(64)
    buffer = model.rollout_buffer
    probe = Probe(model, n_states=80, window="recent", seed=1)
    for k, flattened in enumerate([True, False]):  # the buffer as after training (env-major), as at rollout end
        obs = np.zeros((32, 2, 4), dtype=np.float32)  # (time step, env, observation): [rollout, step, env, 0]
        obs[..., 0], obs[..., 1], obs[..., 2] = k, np.arange(32)[:, None], np.arange(2)
        buffer.observations = buffer.swap_and_flatten(obs) if flattened else obs
        buffer.generator_ready = flattened
        probe.collect()
    probe.capture()
    assert probe.batch is not None
    kept = [tuple(int(v) for v in row[:3]) for row in probe.batch[0].tolist()]
    # rollout 1 whole and rollout 0's last 8 time steps of both envs, by time step, oldest first
    assert kept == [(k, t, e) for k, first in [(0, 24), (1, 0)] for t in range(first, 32) for e in range(2)]


@pytest.mark.parametrize("window", ["interval", "recent"])
def test_pooled_probe_window_in_training_prunes_and_empties_its_pool_at_each_event(tmp_path, window: str) -> None:
    # 16 rollouts of 64 steps; events at progress 0.125, 0.375, 0.625 and 0.75 (every 0.25 from 0.1 to 0.75)
    overrides = [*fast("ppo", "cartpole"), "n_timesteps=1024", "pruning.interval=0.25", "pruning.sparsity=0.5"]
    overrides += ["pruning.value_sparsity=0.5", f"pruning.probe_window={window}", "pruning.probe_size=1000"]
    cfg = train_cfg([*overrides, "pruning.repair.distill_steps=3"])
    env = make_env(cfg.env, seed=0)
    model = build_model(cfg, env)
    model.set_logger(configure(None, []))
    callback = _callback(cfg)
    sizes: list[int] = []
    capture = Probe.capture

    def spy(self: Probe, lazy: bool = False) -> None:
        capture(self, lazy)
        assert self.batch is not None
        sizes.append(len(self.batch[0]))

    Probe.capture = spy  # type: ignore[method-assign]
    try:
        model.learn(cfg.n_timesteps, callback=callback)
    finally:
        Probe.capture = capture  # type: ignore[method-assign]
    assert callback.pruner.n_events > 0 and sizes
    assert sizes == [2 * 64, 4 * 64, 4 * 64, 2 * 64]  # every rollout since the previous event, none before it
    for stats in callback.pruner.stats().values():
        assert set(stats["alive_per_layer"].values()) == {4}


@pytest.mark.parametrize(("algo", "env"), [("ppo", "cartpole"), ("dqn", "cartpole"), ("sac", "hopper"), ("td3", "hopper")])
def test_scratch_trains_networks_built_at_the_final_widths(algo: str, env: str, tmp_path) -> None:
    arch = "{pi:[16,8],vf:[16,8]}" if algo == "ppo" else "[16,8]"
    overrides = [f"++algo.policy_kwargs.net_arch={arch}", "pruning.sparsity=0.75", "pruning.value_sparsity=0.5"]
    results = run(train_cfg([*fast(algo, env, "scratch"), *overrides]), tmp_path)
    model = ALGO_CLASSES[algo].load(tmp_path / "model.zip", device="cpu")
    for net in prunable_nets(model):
        expected = [4, 2] if net.role == "policy" else [8, 4]
        assert [layer.n_neurons for layer in net.layers] == expected, net.name
    policy = next(s for s in results.sparsity.values() if s["role"] == "policy")
    assert (policy["neurons"], policy["alive_neurons"], results.pruning_events) == (24, 6, 0)
    assert policy["neuron_sparsity"] == pytest.approx(0.75) and policy["compact_weights"] < policy["weights"]


@pytest.mark.parametrize("method", ["dsp", "magnitude"])
def test_a_run_saves_its_pruner_state_and_a_new_callback_continues_from_it(method: str, tmp_path) -> None:
    overrides = [*fast("ppo", "cartpole", method), "pruning.sparsity=0.5", "algo.learning_rate=0.001"]
    cfg = train_cfg(overrides)
    run(cfg, tmp_path)
    state = load_state(tmp_path / "pruner.pt")
    assert state["n_events"] > 0 and state["last_event"] >= cfg.pruning.end
    model = PPO.load(tmp_path / "model.zip", env=make_env(cfg.env, seed=1), device="cpu")
    model.set_logger(configure(None, []))
    pruner = build_pruner(cfg)
    assert pruner is not None
    model.learn(256, callback=PruningCallback(pruner, state=state), reset_num_timesteps=False)
    assert pruner.n_events == state["n_events"]  # the schedule was over: nothing new
    masks = pruner.masks()
    assert all(torch.equal(masks[k], state["masks"][k]) for k in masks)
    for net in prunable_nets(model):  # still exactly zero after more training with a constant learning rate
        if method == "dsp":
            assert all(torch.all(la.group_norms()[~masks[la.name]] == 0) for la in net.layers)
        else:
            assert all(torch.all(lin.weight[~masks[f"{net.name}.linear{i}"]] == 0) for i, lin in enumerate(net.linears))
