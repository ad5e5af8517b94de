"""Short training runs of every valid (algo, env) pair, through the same code path as ``prune-rl train``."""

import json

import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3

from prune_rl.config import ConfigError
from prune_rl.runner.train import run

from conftest import fast, train_cfg

ALGO_CLASSES = {"ppo": PPO, "a2c": A2C, "dqn": DQN, "sac": SAC, "td3": TD3}
VALID = [
    *[(algo, env) for algo in ("ppo", "a2c") for env in ("cartpole", "lunarlander", "hopper", "walker2d")],
    ("dqn", "cartpole"),
    ("dqn", "lunarlander"),
    ("sac", "pendulum"),
    ("sac", "hopper"),
    ("sac", "walker2d"),
    ("td3", "hopper"),
    ("td3", "walker2d"),
]


@pytest.mark.parametrize(("algo", "env"), VALID)
def test_valid_pair_trains_and_writes_a_loadable_run(algo: str, env: str, tmp_path) -> None:
    cfg = train_cfg(fast(algo, env, pruning="none"))
    results = run(cfg, tmp_path)
    model = ALGO_CLASSES[algo].load(tmp_path / "model.zip", device="cpu")  # plain SB3
    assert model.num_timesteps >= 256
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results.to_dict()))
    for key in ("env_id", "algo", "seed", "timesteps", "wall_seconds"):
        assert key in on_disk
    assert on_disk["eval"]["n_episodes"] == 2 and on_disk["eval"]["std_return"] >= 0
    assert on_disk["prune_seconds"] == on_disk["pruning_events"] == 0 and on_disk["sparsity"] is None  # dense
    assert (tmp_path / "vecnormalize.pkl").is_file() == cfg.env.normalize
    assert list(tmp_path.glob("events.out.tfevents.*")), "TensorBoard events missing"
    assert (tmp_path / "evaluations.npz").is_file(), "periodic evaluation missing"
    import stable_baselines3

    assert on_disk["versions"]["stable_baselines3"] == stable_baselines3.__version__ and on_disk["device"] == "cpu"
    assert on_disk["git_commit"] is None or len(on_disk["git_commit"].split("+")[0]) == 40


@pytest.mark.parametrize(("algo", "env"), [("dqn", "hopper"), ("sac", "cartpole"), ("td3", "lunarlander")])
def test_invalid_pairs_are_refused(algo: str, env: str, tmp_path) -> None:
    with pytest.raises(ConfigError, match=f"algo={algo} needs a"):
        run(train_cfg(fast(algo, env, pruning="none")), tmp_path)


def test_unknown_sb3_argument_is_named(tmp_path) -> None:
    with pytest.raises(ConfigError, match="learning_rat"):
        run(train_cfg([*fast("ppo", "cartpole", "none"), "+algo.learning_rat=0.1"]), tmp_path)


def test_same_seed_same_result(tmp_path) -> None:
    overrides = [*fast("ppo", "cartpole"), "n_timesteps=512", "seed=5"]
    first = run(train_cfg(overrides), tmp_path / "a")
    second = run(train_cfg(overrides), tmp_path / "b")
    assert first.eval == second.eval
    assert first.sparsity == second.sparsity
    a = PPO.load(tmp_path / "a" / "model.zip").policy.state_dict()
    b = PPO.load(tmp_path / "b" / "model.zip").policy.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    run(train_cfg([*fast("ppo", "cartpole"), "n_timesteps=512", "seed=6"]), tmp_path / "c")
    c = PPO.load(tmp_path / "c" / "model.zip").policy.state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)
