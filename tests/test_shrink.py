"""Shrinking during training (``pruning.shrink``): a narrower network trains exactly as the masked one would."""

import copy

import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.utils import polyak_update

from prune_rl.config import ConfigError
from prune_rl.core import NeuronMask, PrunableNet, link_mirrors, mlp_layers
from prune_rl.core.surgery import shrink_
from prune_rl.methods import DSPConfig, DynamicStructuredPruner, RandomStructuredPruner
from prune_rl.methods.base import PrunerConfig
from prune_rl.runner.train import run

from conftest import fast, tiny_mlp, train_cfg

ALGO_CLASSES = {"ppo": PPO, "a2c": A2C, "dqn": DQN, "sac": SAC, "td3": TD3}
ENVS = {"ppo": "cartpole", "a2c": "cartpole", "dqn": "cartpole", "sac": "hopper", "td3": "hopper"}
STATES = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))


def _prunable(mlp: torch.nn.Sequential, name: str = "pi") -> PrunableNet:
    layers, linears = mlp_layers(name, mlp)
    return PrunableNet(name, "policy", layers, linears)


def _masks(net: PrunableNet) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return [torch.randperm(layer.n_neurons, generator=generator) < 5 for layer in net.layers]


def _adam_steps(mlp: torch.nn.Sequential, optimizer: torch.optim.Optimizer, n: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(32, 3, generator=generator)
        optimizer.zero_grad()
        mlp(x).pow(2).mean().backward()
        optimizer.step()


def test_an_adam_step_on_the_shrunk_network_equals_one_on_the_masked_network() -> None:
    mlp = tiny_mlp()
    optimizer = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    _adam_steps(mlp, optimizer, 3, seed=0)  # Adam's moments are not zero any more
    net = _prunable(mlp)
    keep = _masks(net)
    for layer, alive in zip(net.layers, keep, strict=True):
        NeuronMask(layer, alive).apply_([optimizer])
    narrow, narrow_optimizer = copy.deepcopy((mlp, optimizer))
    narrow_net = _prunable(narrow)
    params = [id(p) for p in narrow.parameters()]
    shrink_(narrow_net, keep, torch.tanh, [narrow_optimizer])

    assert [p.shape[0] for p in (narrow[0].weight, narrow[2].weight)] == [5, 5]
    assert [id(p) for p in narrow.parameters()] == params, "the optimizer must keep holding the same parameters"
    exp_avg = narrow_optimizer.state[narrow[2].weight]["exp_avg"]
    torch.testing.assert_close(exp_avg, optimizer.state[mlp[2].weight]["exp_avg"][keep[1]][:, keep[0]], rtol=0, atol=0)
    _adam_steps(mlp, optimizer, 5, seed=1)
    _adam_steps(narrow, narrow_optimizer, 5, seed=1)
    torch.testing.assert_close(narrow(STATES), mlp(STATES), rtol=0, atol=1e-6)
    torch.testing.assert_close(narrow[2].weight, mlp[2].weight[keep[1]][:, keep[0]], rtol=0, atol=1e-6)
    assert narrow_net.layers[0].index.tolist() == keep[0].nonzero().squeeze(1).tolist()
    assert narrow_net.n_neurons == 16, "a network still counts the neurons it was built with"


def test_target_networks_shrink_with_their_online_network_and_polyak_stays_exact() -> None:
    online, target = tiny_mlp(seed=0), tiny_mlp(seed=1)
    optimizer = torch.optim.Adam(online.parameters(), lr=1e-2)
    net = _prunable(online)
    link_mirrors(net, _prunable(target, "pi_target"))
    keep = _masks(net)
    for layer, alive in zip(net.layers, keep, strict=True):
        NeuronMask(layer, alive).apply_([optimizer])
    narrow_online, narrow_target, narrow_optimizer = copy.deepcopy((online, target, optimizer))
    narrow_net = _prunable(narrow_online)
    link_mirrors(narrow_net, _prunable(narrow_target, "pi_target"))
    shrink_(narrow_net, keep, torch.tanh, [narrow_optimizer])

    assert narrow_target[0].out_features == narrow_online[0].out_features == 5
    for step in range(3):
        _adam_steps(online, optimizer, 1, seed=step)
        _adam_steps(narrow_online, narrow_optimizer, 1, seed=step)
        polyak_update(online.parameters(), target.parameters(), 0.3)
        polyak_update(narrow_online.parameters(), narrow_target.parameters(), 0.3)
    torch.testing.assert_close(narrow_target(STATES), target(STATES), rtol=0, atol=1e-6)
    torch.testing.assert_close(narrow_target[0].weight, target[0].weight[keep[0]], rtol=0, atol=1e-6)


def _same_stats(stats: dict, reference: dict) -> None:
    """The same counts; the same floats (a penalty, a threshold) up to rounding."""
    assert stats.keys() == reference.keys()
    for name, values in reference.items():
        for key, value in values.items():
            assert stats[name][key] == (pytest.approx(value, rel=1e-4, abs=1e-6) if isinstance(value, float) else value), key


def _probe_of(mlp: torch.nn.Sequential):
    return lambda: [mlp(STATES)]


@pytest.mark.parametrize("pruner_class", [DynamicStructuredPruner, RandomStructuredPruner])
def test_a_pruner_on_shrunk_networks_cuts_as_it_does_on_masked_ones(pruner_class) -> None:
    cfg_class = DSPConfig if pruner_class is DynamicStructuredPruner else PrunerConfig
    cfg = cfg_class(name="x", method="x", sparsity=0.8, begin=0.1, end=0.5, interval=0.1, min_neurons=1)
    masked_mlp = tiny_mlp(hidden=(16, 16))
    narrow_mlp = copy.deepcopy(masked_mlp)
    pruners = []
    for mlp in (masked_mlp, narrow_mlp):
        pruner = pruner_class(cfg, seed=0)
        pruner.setup([_prunable(mlp)])
        pruners.append(pruner)
    for progress in (0.1, 0.2, 0.3, 0.4, 0.5):
        for pruner, mlp in zip(pruners, (masked_mlp, narrow_mlp), strict=True):
            pruner.regularize(progress)
            pruner.step(progress, _probe_of(mlp))
        narrow = pruners[1]
        narrow.shrink_({net.name: narrow.alive_neurons(net) for net in narrow.nets}, torch.tanh)
        masks = pruners[0].masks()
        assert {k: v.tolist() for k, v in narrow.masks().items()} == {k: v.tolist() for k, v in masks.items()}
        torch.testing.assert_close(narrow_mlp(STATES), masked_mlp(STATES), rtol=0, atol=1e-5)
        assert [layer.n_neurons for layer in narrow.nets[0].layers] == [int(m.sum()) for m in masks.values()]
    _same_stats(pruners[1].stats(), pruners[0].stats())

    # the state of a shrunk pruner continues on networks built at the narrow widths
    rebuilt = tiny_mlp(hidden=tuple(layer.n_neurons for layer in pruners[1].nets[0].layers))
    rebuilt.load_state_dict(narrow_mlp.state_dict())
    again = pruner_class(cfg, seed=0)
    again.setup([_prunable(rebuilt)])
    again.load_state_dict(pruners[1].state_dict())
    assert {k: v.tolist() for k, v in again.masks().items()} == {k: v.tolist() for k, v in pruners[0].masks().items()}
    _same_stats(again.stats(), pruners[0].stats())


@pytest.mark.parametrize(
    ("algo", "pruning"), [*[(algo, "dsp") for algo in ALGO_CLASSES], ("sac", "dsp_masks_early"), ("ppo", "l1_structured")]
)
def test_a_shrunk_run_acts_as_the_masked_run_and_saves_a_narrow_model(algo: str, pruning: str, tmp_path) -> None:
    arch = "{pi:[16,16],vf:[16,16]}" if algo in ("ppo", "a2c") else "[16,16]"
    overrides = [
        *fast(algo, ENVS[algo], pruning),
        "n_timesteps=512",
        "pruning.sparsity=0.7",
        f"++algo.policy_kwargs.net_arch={arch}",
    ]
    models, results = {}, {}
    for shrink in (False, True):
        results[shrink] = run(train_cfg([*overrides, f"pruning.shrink={shrink}"]), tmp_path / str(shrink))
        models[shrink] = ALGO_CLASSES[algo].load(tmp_path / str(shrink) / "model.zip", device="cpu")  # plain SB3
    masks = [torch.load(tmp_path / str(shrink) / "masks.pt") for shrink in (False, True)]
    assert {k: v.tolist() for k, v in masks[0].items()} == {k: v.tolist() for k, v in masks[1].items()}
    _same_stats(results[True].sparsity, results[False].sparsity)
    n_params = [sum(p.numel() for p in models[shrink].policy.parameters()) for shrink in (False, True)]
    assert n_params[1] < n_params[0] / 2
    widths = results[True].widths
    deployed = next(iter(widths))
    assert widths[deployed] == [int(masks[1][f"{deployed}.{i}"].sum()) for i in range(2)]

    space = models[True].observation_space
    states = np.random.default_rng(0).normal(size=(500, *space.shape)).astype(np.float32)
    actions = [models[shrink].predict(states, deterministic=True)[0] for shrink in (False, True)]
    np.testing.assert_allclose(actions[1].astype(np.float64), actions[0].astype(np.float64), atol=1e-5)

    header = (tmp_path / "True" / "progress.csv").read_text().splitlines()[0].split(",")
    assert f"prune/width/{deployed}" in header and "prune/fps" in header, "TensorBoard shows the widths and the speed"

    models[True].set_env(_env(algo))
    models[True].learn(64)  # save -> load -> continue on the narrow networks


def _env(algo: str):
    from stable_baselines3.common.env_util import make_vec_env

    return make_vec_env({"cartpole": "CartPole-v1", "hopper": "Hopper-v5"}[ENVS[algo]], n_envs=1, seed=0)


def test_shrinking_is_refused_for_a_method_whose_masks_are_not_neurons_for_good(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"pruning\.shrink=true needs a method that removes whole neurons"):
        run(train_cfg([*fast("ppo", "cartpole", "magnitude"), "pruning.shrink=true"]), tmp_path)
    assert not (tmp_path / "model.zip").exists()
