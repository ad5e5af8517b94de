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


def test_every_pruning_option_builds_its_methods_config() -> None:
    from prune_rl.pruners import PRUNERS

    for option in _options("pruning"):
        cfg = train_cfg([f"pruning={option}"]).pruning
        assert cfg.name == option
        assert cfg.method == "none" or type(cfg) is PRUNERS[cfg.method].config_class


def test_dsp_is_the_papers_method_on_every_task() -> None:
    # No per-task file turns the regularizer off behind the user's back: recipes are options with their own names.
    for env in ("cartpole", "lunarlander", "hopper", "walker2d"):
        cfg = train_cfg([f"env={env}"]).pruning
        assert (cfg.name, cfg.method, cfg.strength, cfg.repair.fold) == ("dsp", "dsp", 0.0, "none")  # type: ignore[attr-defined]
    recipe = train_cfg(["env=walker2d", "pruning=dsp_masks_distill"]).pruning
    assert (recipe.name, recipe.method, recipe.strength) == ("dsp_masks_distill", "dsp", 0.0)  # type: ignore[attr-defined]
    assert train_cfg(["pruning=dsp_masks_distill"]).run_name == "cartpole__ppo__dsp_masks_distill__seed0"


def test_the_config_files_a_run_was_composed_from_are_named() -> None:
    from prune_rl.app import config_files

    choices = {"env": "hopper", "algo": "ppo", "pruning": "dsp", "algo_env": "ppo_hopper", "pruning_env": "dsp_ppo_hopper"}
    assert config_files({**choices, "experiment": None}) == [
        "env/hopper.yaml",
        "algo/ppo.yaml",
        "algo_env/ppo_hopper.yaml",  # the tuned values, applied automatically, named
        "pruning/dsp.yaml",
    ]  # pruning_env/dsp_ppo_hopper.yaml does not exist: not listed


def test_pruning_none_has_no_method_keys() -> None:
    assert OmegaConf.to_container(compose(["env=walker2d", "pruning=none"]).pruning) == {"name": "none"}
    assert train_cfg(["pruning=none"]).pruning.method == "none"


@pytest.mark.parametrize("launcher", _options("hydra/launcher"))
def test_launcher_profiles_compose(launcher: str) -> None:
    cfg = compose([f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert "_target_" in cfg.hydra.launcher


def test_defaults() -> None:
    cfg = train_cfg([])
    assert (cfg.env.id, cfg.algo.name, cfg.pruning.name) == ("CartPole-v1", "ppo", "dsp")
    assert cfg.n_timesteps == 100_000 and cfg.seed == 0
    assert cfg.run_name == "cartpole__ppo__dsp__seed0"


def test_env_ids_are_gymnasium_1x() -> None:
    ids = {name: train_cfg([f"env={name}"]).env.id for name in ("cartpole", "lunarlander", "pendulum", "hopper", "walker2d")}
    assert ids == {
        "cartpole": "CartPole-v1",
        "lunarlander": "LunarLander-v3",
        "pendulum": "Pendulum-v1",
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
        ("env.normalize=maybe", "env.normalize must be true or false, got maybe"),
        ("pruning.repair.distill_steps=1.5", "pruning.repair.distill_steps must be an integer, got 1.5"),
        ("seed=true", "seed must be an integer, got true"),
        ("+pruning.typo=1", "unknown key(s) in pruning: typo"),
        ("+pruning.repair.typo=1", "unknown key(s) in pruning.repair: typo"),
        ("pruning.repair.fold=exact", "unknown pruning.repair.fold 'exact' (known: none, mean, linear)"),
        ("pruning.importance=size", "unknown pruning.importance 'size'"),
        ("pruning.method=lottery", "unknown pruning method 'lottery'"),
        ("pruning.schedule=linear", "unknown pruning.schedule 'linear' (known: cubic, geometric)"),
        ("pruning.probe_window=all", "unknown pruning.probe_window 'all' (known: rollout, interval, recent)"),
    ],
)
def test_invalid_values_are_named(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        train_cfg([override])
    assert message in str(info.value)


@pytest.mark.parametrize(("compensate", "fold"), [(True, "mean"), (False, "none"), ("linear", "linear")])
def test_run_directories_written_before_the_knobs_were_cut_still_read(compensate: object, fold: str) -> None:
    old = {  # a dsp section as config.yaml held it until 2026-12-02 (compensate was a switch until 2026-11-22)
        "name": "dsp",
        "importance": "activation",
        "sparsity": 0.95,
        "value_sparsity": 0.5,
        "begin": 0.1,
        "end": 0.75,
        "schedule": "cubic",
        "interval": 0.02,
        "min_neurons": 2,
        "allocation": "layer",
        "probe_size": 2048,
        "probe_window": "rollout",
        "compensate": compensate,
        "fan_in_lr": 1.0,
        "distill_steps": 0,
        "distill_lr": 0.001,
        "regularizer": {
            "strength": 0.0,
            "value_strength": 0.0,
            "gamma": 1.0,
            "max_weight": 10.0,
            "anchor": "mean",
            "begin": 0.1,
            "end": 0.75,
        },
    }
    data = OmegaConf.to_container(compose([]), resolve=True)
    assert isinstance(data, dict)
    cfg = train_config({**data, "pruning": old}).pruning
    assert (cfg.strength, cfg.repair.fold, cfg.repair.fan_in_lr) == (0.0, fold, 1.0)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="allocation=global is no longer available"):
        train_config({**data, "pruning": {**old, "allocation": "global"}})


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


@pytest.mark.parametrize("method", [{"method": "l1_structured"}, {}])
def test_a_run_made_when_l2_structured_was_named_l1_structured_still_reads(method: dict) -> None:
    from prune_rl.methods import L2StructuredPruner
    from prune_rl.pruners import PRUNERS

    data = OmegaConf.to_container(compose(["pruning=l1_structured"]), resolve=True)
    assert isinstance(data, dict)
    old = {"name": "l1_structured", "sparsity": 0.95, "begin": 0.1, "end": 0.75, "shrink": True, **method}  # as written
    cfg = train_config({**data, "pruning": old})
    assert (cfg.pruning.name, cfg.pruning.method, cfg.pruning.shrink) == ("l1_structured", "l1_structured", True)
    assert PRUNERS[cfg.pruning.method] is L2StructuredPruner and type(cfg.pruning) is L2StructuredPruner.config_class
    assert cfg.run_name == "cartpole__ppo__l1_structured__seed0"


def test_the_old_name_l1_structured_still_works_on_the_command_line() -> None:
    old, new = train_cfg(["pruning=l1_structured"]), train_cfg(["pruning=l2_structured"])
    assert (old.pruning.name, old.pruning.method, new.pruning.method) == ("l1_structured", "l1_structured", "l2_structured")
    assert old.run_name == "cartpole__ppo__l1_structured__seed0" and new.run_name == "cartpole__ppo__l2_structured__seed0"
    assert {**vars(old.pruning), "name": "l2_structured", "method": "l2_structured"} == vars(new.pruning)
    with pytest.raises(ConfigError, match=r"known: none, dsp, l2_structured, random_structured") as info:
        train_cfg(["pruning.method=l3_structured"])
    assert "l1_structured" not in str(info.value)  # the old name is read, not offered


def test_the_config_module_composing_and_help_import_neither_torch_nor_sb3() -> None:
    import subprocess
    import sys

    heavy = "print(sorted(m for m in ('torch', 'stable_baselines3', 'sb3_contrib') if m in sys.modules))"
    compose_default = f"import sys, prune_rl.config; from prune_rl.app import compose_config; compose_config(); {heavy}"
    cli_help = (  # python -m prune-rl.cli --help, then prune-rl train --help
        "import runpy, sys\n"
        "for argv in (['--help'], ['train', '--help']):\n"
        "    sys.argv = ['prune-rl', *argv]\n"
        "    try:\n"
        "        runpy.run_module('prune_rl.cli', run_name='__main__')\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        f"{heavy}"
    )
    for code in (compose_default, cli_help):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.strip().splitlines()[-1] == "[]", code
