"""Every config composes, and bad configs fail with a clear message."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from prune_rl.app import CONFIG_PATH
from prune_rl.config import ConfigError, train_config

from conftest import compose, train_cfg

CONF = Path(CONFIG_PATH)


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["env", "algo", "pruning", "experiment"])
def test_every_group_option_composes(group: str) -> None:
    options = _options(group)
    assert options, f"conf/{group} is empty"
    for option in options:
        extra = ["env.id=Acrobot-v1"] if (group, option) == ("env", "gym") else []
        cfg = train_cfg([f"{group}={option}", *extra])
        if group in ("env", "algo", "pruning"):
            assert getattr(cfg, group).name in (option, "Acrobot-v1")


@pytest.mark.parametrize("name", _options("algo_env"))
def test_every_tuned_pair_composes_and_applies(name: str) -> None:
    algo, env = name.split("_", 1)
    cfg = train_cfg([f"algo={algo}", f"env={env}"])
    tuned = OmegaConf.load(CONF / "algo_env" / f"{name}.yaml")
    assert cfg.n_timesteps == tuned.n_timesteps
    for key, value in tuned.get("algo", {}).items():
        expected = OmegaConf.to_object(value) if OmegaConf.is_config(value) else value
        assert cfg.algo.kwargs[key] == expected


def _leaves(node: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in node.items():
        out.update(_leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


@pytest.mark.parametrize("name", _options("pruning_env"))
def test_every_tuned_pruning_applies_to_its_pair_only(name: str) -> None:
    method, algo, env = name.split("_", 2)
    tuned = _leaves(OmegaConf.to_container(OmegaConf.load(CONF / "pruning_env" / f"{name}.yaml")))  # type: ignore[arg-type]
    assert tuned
    paired = compose([f"pruning={method}", f"algo={algo}", f"env={env}"])
    other = compose([f"pruning={method}", f"algo={'a2c' if algo != 'a2c' else 'ppo'}", f"env={env}"])
    for key, value in tuned.items():
        assert OmegaConf.select(paired, f"pruning.{key}") == value
        assert OmegaConf.select(other, f"pruning.{key}") != value, f"{key} leaks to another algo"


def test_tuned_pruning_yields_to_the_command_line_and_to_other_methods() -> None:
    assert compose(["env=walker2d", "pruning.regularizer.strength=2.5"]).pruning.regularizer.strength == 2.5
    assert OmegaConf.to_container(compose(["env=walker2d", "pruning=none"]).pruning) == {"name": "none"}


@pytest.mark.parametrize("launcher", _options("hydra/launcher"))
def test_launcher_profiles_compose(launcher: str) -> None:
    cfg = compose([f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert "_target_" in cfg.hydra.launcher


def test_defaults() -> None:
    cfg = train_cfg([])
    assert (cfg.env.id, cfg.algo.name, cfg.pruning.name) == ("CartPole-v1", "ppo", "dsp")
    assert cfg.n_timesteps == 100_000 and cfg.seed == 0
    assert cfg.run_name == "cartpole__ppo__dsp__seed0"


def test_regularizer_window_follows_the_pruning_window_unless_set() -> None:
    reg = train_cfg(["pruning.begin=0.2", "pruning.end=0.5"]).pruning.regularizer
    assert (reg.begin, reg.end) == (0.2, 0.5)
    reg = train_cfg(["pruning.end=0.5", "pruning.regularizer.end=0.6"]).pruning.regularizer
    assert (reg.begin, reg.end) == (0.1, 0.6)


def test_env_ids_are_gymnasium_1x() -> None:
    ids = {name: train_cfg([f"env={name}"]).env.id for name in ("cartpole", "lunarlander", "hopper", "walker2d")}
    assert ids == {
        "cartpole": "CartPole-v1",
        "lunarlander": "LunarLander-v3",
        "hopper": "Hopper-v5",
        "walker2d": "Walker2d-v5",
    }


@pytest.mark.parametrize(
    ("algo", "env", "normalize"),
    [("ppo", "cartpole", False), ("ppo", "lunarlander", True), ("dqn", "lunarlander", False), ("ppo", "hopper", True)],
)
def test_observation_and_reward_normalization_is_per_algo_and_env(algo: str, env: str, normalize: bool) -> None:
    # PPO on LunarLander normalizes (unlike the zoo) so that its tanh critic does not saturate: algo_env only.
    assert train_cfg([f"algo={algo}", f"env={env}"]).env.normalize is normalize


def test_command_line_overrides_win_over_tuned_values() -> None:
    cfg = train_cfg(["env=lunarlander", "algo=dqn", "seed=3", "n_timesteps=200000", "algo.batch_size=7"])
    assert (cfg.seed, cfg.n_timesteps, cfg.algo.kwargs["batch_size"]) == (3, 200000, 7)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("n_timesteps=-5", "n_timesteps must be a positive integer"),
        ("seed=-1", "seed must be"),
        ("pruning.sparsity=1.5", "pruning.sparsity must be in [0, 1)"),
        ("pruning.begin=0.9", "must be before pruning.end"),
        ("eval.n_episodes=0", "eval.n_episodes"),
        ("+pruning.typo=1", "unknown key(s) in pruning: typo"),
        ("+pruning.regularizer.typo=1", "unknown key(s) in pruning.regularizer: typo"),
    ],
)
def test_invalid_values_are_named(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        train_cfg([override])
    assert message in str(info.value)


@pytest.mark.parametrize(("value", "read"), [("true", "mean"), ("false", "none"), ("linear", "linear")])
def test_compensate_reads_the_switch_it_used_to_be(value: str, read: str) -> None:
    # Run directories written before `linear` existed say `compensate: true` (mean replacement) or `false`.
    assert train_cfg([f"pruning.compensate={value}"]).pruning.compensate == read


def test_unknown_top_level_key_is_named() -> None:
    data = OmegaConf.to_container(compose([]), resolve=True)
    assert isinstance(data, dict)
    data["n_timestep"] = 3
    with pytest.raises(ConfigError, match="n_timestep"):
        train_config(data)


def test_compose_from_parallel_threads() -> None:
    # The benchmark script checks finished runs from parallel jobs; Hydra's global state allows one at a time.
    envs = ["cartpole", "lunarlander", "hopper", "walker2d"]
    with ThreadPoolExecutor(max_workers=len(envs)) as pool:
        names = list(pool.map(lambda env: compose([f"env={env}"]).env.name, envs))
    assert names == envs
