"""prune-rl prune: agents that no prune-rl code trained (plain SB3 scripts, rl_zoo3's own command) pruned into runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from sb3_contrib import TQC, RecurrentPPO
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.policies import ActorCriticCnnPolicy
from typer.testing import CliRunner

from prune_rl.agent import find_vecnormalize, identify_algo, read_agent
from prune_rl.app import compose_config, fine_tuning, prune_overrides
from prune_rl.runner.checkpoint import Interrupted
from prune_rl.cli import app
from prune_rl.config import ConfigError, train_config
from prune_rl.runner.evaluate import evaluate_run
from prune_rl.runner.train import run

from conftest import SignalAfter


runner = CliRunner()
QUICK = ["n_timesteps=256", "eval.n_episodes=2", "eval.freq=2", "progress_bar=false", "pruning.probe_size=64"]
PURL_QUICK = ["pruning.episodes=2", "pruning.return_check=0", "pruning.distill_steps=5"]


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small agents trained and saved by plain SB3, as a user's script would (a few hundred steps each)."""
    root = tmp_path_factory.mktemp("agents")
    relu = {"net_arch": {"pi": [16, 8], "vf": [8]}, "activation_fn": torch.nn.ReLU, "ortho_init": False}
    made = {
        "ppo": PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=32, n_epochs=2, policy_kwargs=relu, seed=0),
        "dqn": DQN("MlpPolicy", "CartPole-v1", learning_starts=32, buffer_size=1000, exploration_final_eps=0.02,
                   policy_kwargs={"net_arch": [16, 16]}, seed=0),
        "sac": SAC("MlpPolicy", "Pendulum-v1", learning_starts=32, buffer_size=1000, batch_size=16,
                   policy_kwargs={"net_arch": {"pi": [8, 8], "qf": [16, 8]}}, seed=0),
        "tqc": TQC("MlpPolicy", "Pendulum-v1", learning_starts=32, buffer_size=1000, batch_size=16,
                   policy_kwargs={"net_arch": [8, 8], "n_quantiles": 5}, seed=0),
    }  # fmt: skip
    paths = {}
    for name, model in made.items():
        model.learn(200)
        env_id = model.get_env().envs[0].spec.id  # type: ignore[union-attr]
        paths[name] = root / name / f"{env_id}.zip"  # named after its task, as the zoo does
        model.save(paths[name])
    return paths


def _prune(model: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["prune", str(model), *args])
    return result.exit_code, result.output


def test_a_plain_sb3_ppo_agent_keeps_its_networks_and_hyperparameters(agents: dict[str, Path], tmp_path: Path) -> None:
    # masked, not shrunk: the saved model then holds the agent's own widths
    code, out = _prune(agents["ppo"], *QUICK, "pruning.shrink=false", f"hydra.run.dir={tmp_path}")
    assert code == 0, out
    log = (tmp_path / "train.log").read_text()
    assert f"{agents['ppo']}: a ppo agent, fine-tuned on CartPole-v1" in log and "no VecNormalize statistics found" in log
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["init_model"] == str(agents["ppo"].resolve()) and results["timesteps"] >= 256
    assert results["sparsity"]["pi"]["neuron_sparsity"] > 0.5 and results["pruning_events"] >= 1
    pruned = PPO.load(tmp_path / "model.zip", device="cpu")
    assert pruned.policy.net_arch == {"pi": [16, 8], "vf": [8]}
    assert pruned.policy.activation_fn is torch.nn.ReLU and pruned.policy.ortho_init is False
    assert (pruned.n_steps, pruned.n_epochs, pruned.batch_size) == (64, 2, 32)  # the file's, not conf/algo_env's
    config = OmegaConf.load(tmp_path / "config.yaml")
    assert OmegaConf.to_container(config.algo) == {"name": "ppo"}  # no hyperparameter was changed
    assert evaluate_run(tmp_path, n_episodes=1)["env_id"] == "CartPole-v1"
    assert runner.invoke(app, ["export", str(tmp_path)]).exit_code == 0


def test_hyperparameters_given_on_the_command_line_replace_the_files(agents: dict[str, Path], tmp_path: Path) -> None:
    code, out = _prune(agents["ppo"], *QUICK, "algo.learning_rate=0.0001", "algo.n_steps=32", f"hydra.run.dir={tmp_path}")
    assert code == 0, out
    pruned = PPO.load(tmp_path / "model.zip", device="cpu")
    assert pruned.n_steps == 32 and pruned.learning_rate == 0.0001 and pruned.n_epochs == 2
    assert OmegaConf.to_container(OmegaConf.load(tmp_path / "config.yaml").algo) == {
        "name": "ppo", "learning_rate": 0.0001, "n_steps": 32,
    }  # fmt: skip


def test_the_budget_defaults_to_a_fraction_of_the_tasks_training_budget() -> None:
    overrides = ["algo=ppo", "env=cartpole", "init.model=x.zip"]
    composed = OmegaConf.to_container(compose_config(overrides, name="prune"), resolve=True)
    assert isinstance(composed, dict)
    data = fine_tuning(composed, ["algo=ppo", "env=cartpole"])
    assert data["n_timesteps"] == 10_000  # 0.1 of CartPole's 100k
    assert fine_tuning(composed, ["n_timesteps=555"])["n_timesteps"] == composed["n_timesteps"]
    cfg = train_config(data)
    assert (cfg.pruning.begin, cfg.pruning.end) == (0.0, 0.5) and cfg.init.model == "x.zip"


@pytest.mark.parametrize("method", ["dsp", "l1_structured", "random_structured", "magnitude", "global_magnitude", "purl"])
def test_every_method_that_can_start_from_a_trained_network_prunes_one(
    method: str, agents: dict[str, Path], tmp_path: Path
) -> None:
    extra = PURL_QUICK if method == "purl" else []
    code, out = _prune(agents["ppo"], f"pruning={method}", *QUICK, *extra, f"hydra.run.dir={tmp_path}")
    assert code == 0, out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["pruning_method"] == method and results["pruning_events"] >= 1
    assert results["sparsity"]["pi"]["weight_sparsity"] > 0.3


@pytest.mark.parametrize(("algo", "method"), [("dqn", "l1_structured"), ("sac", "dsp"), ("tqc", "magnitude")])
def test_off_policy_agents_fill_their_replay_buffer_before_pruning_begins(
    algo: str, method: str, agents: dict[str, Path], tmp_path: Path
) -> None:
    code, out = _prune(
        agents[algo], f"pruning={method}", *QUICK, "n_timesteps=200", "pruning.shrink=false", f"hydra.run.dir={tmp_path}"
    )
    assert code == 0, out
    log = (tmp_path / "train.log").read_text()
    assert "the replay buffer starts empty: the loaded agent acts for learning_starts=32 steps" in log
    assert "pruning begins at 0.160 of the budget" in log  # learning_starts / n_timesteps
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["algo"] == algo and results["pruning_events"] >= 1
    assert read_agent(tmp_path).algo == algo  # the run's zip reads as the same algorithm
    if algo == "dqn":  # a trained DQN explores at its final rate, not from 1.0
        model = DQN.load(tmp_path / "model.zip", device="cpu")
        assert model.exploration_initial_eps == model.exploration_final_eps == 0.02
    if algo == "sac":
        assert SAC.load(tmp_path / "model.zip", device="cpu").policy.net_arch == {"pi": [8, 8], "qf": [16, 8]}


def test_a_pruned_fine_tuning_run_resumes_like_any_other(
    agents: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overrides = prune_overrides(agents["ppo"], None, [])
    composed = OmegaConf.to_container(compose_config([*overrides, *QUICK, "n_timesteps=512", "checkpoint.every=0.25"],
                                                     name="prune"), resolve=True)  # fmt: skip
    assert isinstance(composed, dict)
    cfg = train_config(fine_tuning(composed, ["n_timesteps=512"]))
    whole = run(cfg, tmp_path / "whole")
    monkeypatch.setattr("prune_rl.runner.train.PhaseTimeCallback", SignalAfter)
    with pytest.raises(Interrupted):
        run(cfg, tmp_path / "stopped")
    monkeypatch.undo()
    resumed = run(cfg, tmp_path / "stopped", resume=True)
    assert resumed.resumed and resumed.timesteps == whole.timesteps and resumed.sparsity == whole.sparsity
    first, second = (PPO.load(tmp_path / d / "model.zip", device="cpu") for d in ("whole", "stopped"))
    for key, value in first.policy.state_dict().items():
        torch.testing.assert_close(second.policy.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_a_prune_rl_run_directory_is_a_model_too(agents: dict[str, Path], tmp_path: Path) -> None:
    assert _prune(agents["ppo"], *QUICK, f"hydra.run.dir={tmp_path / 'first'}")[0] == 0
    code, out = _prune(tmp_path / "first", "pruning=magnitude", *QUICK, f"hydra.run.dir={tmp_path / 'second'}")
    assert code == 0, out
    assert "a ppo agent, fine-tuned on CartPole-v1" in (tmp_path / "second" / "train.log").read_text()  # its config's task
    assert read_agent(tmp_path / "first" / "model.zip").env_id == "CartPole-v1"  # its model.zip, named as the run


@pytest.mark.parametrize(("algo", "env", "found"), [("ppo", "CartPole-v1", False), ("ppo", "Acrobot-v1", True)])
def test_agents_trained_by_the_zoos_own_command_are_pruned_with_their_normalisation(
    algo: str, env: str, found: bool, tmp_path: Path
) -> None:
    pytest.importorskip("rl_zoo3")
    train = [sys.executable, "-m", "rl_zoo3.train", "--algo", algo, "--env", env, "-n", "2000", "-f", str(tmp_path / "logs"),
             "--seed", "1", "--eval-freq", "-1", "--log-interval", "-1", "-params", "n_envs:2", "n_steps:64"]  # fmt: skip
    subprocess.run(train, check=True, capture_output=True, timeout=300)
    model = tmp_path / "logs" / algo / f"{env}_1" / f"{env}.zip"  # where the zoo saves it
    stats = model.parent / env / "vecnormalize.pkl"  # the zoo normalises Acrobot (hyperparams/ppo.yml)
    assert stats.is_file() == found
    code, out = _prune(model, *QUICK, f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, out
    log = (tmp_path / "run" / "train.log").read_text()
    assert (f"VecNormalize statistics {stats.resolve()}" if found else "no VecNormalize statistics found") in log
    config = OmegaConf.load(tmp_path / "run" / "config.yaml")
    assert config.env.id == env and config.env.normalize == found
    assert (tmp_path / "run" / "vecnormalize.pkl").is_file() == found
    assert evaluate_run(tmp_path / "run", n_episodes=1)["env_id"] == env


def test_vecnormalize_is_found_by_the_names_sb3_and_the_zoo_give_it(tmp_path: Path) -> None:
    model = tmp_path / "rl_model_1000_steps.zip"
    assert find_vecnormalize(model, None) is None
    for name in ("vec_normalize.pkl", "Hopper-v5/vecnormalize.pkl", "rl_model_vecnormalize_1000_steps.pkl"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
        assert find_vecnormalize(model, "Hopper-v5") == tmp_path / name  # each name found before the ones above


def _refused(code: int, out: str, message: str) -> None:
    assert code == 2, out
    lines = out.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out, out
    assert message in lines[0], lines[0]


def test_bad_models_are_refused_in_one_line_and_leave_no_run_directory(agents: dict[str, Path], tmp_path: Path) -> None:
    text = tmp_path / "CartPole-v1.zip"
    text.write_text("not a zip")
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("readme.txt", "hello")
    recurrent = tmp_path / "recurrent" / "CartPole-v1.zip"
    RecurrentPPO("MlpLstmPolicy", "CartPole-v1", n_steps=16).save(recurrent)
    renamed = tmp_path / "agent.zip"
    shutil.copy(agents["ppo"], renamed)
    cases = [
        ([str(text)], "is not an SB3 model (BadZipFile"),
        ([str(other), "env=cartpole"], "is not an SB3 model (a zip without SB3's data and policy.pth)"),
        ([str(tmp_path / "missing.zip")], "missing.zip does not exist"),
        ([str(recurrent)], "holds a sb3_contrib.common.recurrent.policies.RecurrentActorCriticPolicy, which prune-rl "
                           "cannot prune: it prunes the MlpPolicy of a2c, dqn, ppo, sac, td3, tqc"),
        ([str(renamed)], "is not in its name or folder: pass env=NAME (cartpole, hopper, lunarlander, pendulum, walker2d)"),
        ([str(agents["ppo"]), "env=lunarlander"],
         "CartPole-v1.zip acts on Box(4,) -> Discrete(2), but LunarLander-v3 has Box(8,) -> Discrete(4)"),
        ([str(agents["ppo"]), "algo=dqn"], "holds a ppo agent: the algorithm is read from the file"),
        ([str(agents["ppo"]), "pruning=scratch"], "pruning=scratch builds or loads its own networks"),
        ([str(agents["ppo"]), "++algo.policy_kwargs.net_arch=[4]"], "the networks come from the model"),
        ([str(agents["sac"]), "--vecnormalize", str(tmp_path / "nope.pkl")], "nope.pkl does not exist"),
        ([str(agents["sac"]), "n_timesteps=20"], "n_timesteps=20 leaves no room to prune after filling the replay buffer"),
    ]  # fmt: skip
    for args, message in cases:
        run_dir = tmp_path / "run"
        code, out = _prune(Path(args[0]), *args[1:], *QUICK[1:], f"hydra.run.dir={run_dir}")
        _refused(code, out, message)
        assert not run_dir.exists(), args


@pytest.mark.parametrize("cls", [PPO, A2C, DQN, SAC, TD3, TQC])
def test_the_algorithm_is_read_from_the_file(cls: type, tmp_path: Path) -> None:
    env = "CartPole-v1" if cls in (PPO, A2C, DQN) else "Pendulum-v1"
    cls("MlpPolicy", env, policy_kwargs={"net_arch": [4]}).save(tmp_path / "agent.zip")  # PPO and A2C share a policy
    agent = read_agent(tmp_path / "agent.zip")
    assert agent.algo == cls.__name__.lower() and agent.env_id is None and agent.vecnormalize is None


def test_a_cnn_policy_is_refused_naming_what_can_be_pruned() -> None:
    with pytest.raises(ConfigError, match=r"ActorCriticCnnPolicy \(CnnPolicy of a2c\), which prune-rl cannot prune"):
        identify_algo(ActorCriticCnnPolicy, {})


@pytest.fixture(scope="module")
def converged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """PPO trained to 500 on CartPole with the zoo's hyperparameters (100k steps, about a minute on one core)."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.utils import LinearSchedule

    model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=8, seed=0), n_steps=32, batch_size=256, gae_lambda=0.8,
                gamma=0.98, n_epochs=20, learning_rate=LinearSchedule(1e-3, 0, 1), clip_range=LinearSchedule(0.2, 0, 1),
                seed=0)  # fmt: skip
    model.learn(100_000)
    dense, _ = evaluate_policy(model, make_vec_env("CartPole-v1", seed=123), n_eval_episodes=10)
    path = tmp_path_factory.mktemp("converged") / "CartPole-v1.zip"
    model.save(path)
    return path, float(dense)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["l1_structured", "dsp_masks_early"])
def test_a_cartpole_agent_at_500_keeps_its_return_when_pruned(
    method: str, converged: tuple[Path, float], tmp_path: Path
) -> None:
    """
    Pruned with the command's defaults (95% of the policy's neurons, 10k steps). Plain dsp at these defaults does
    not hold it, nor did magnitude this agent (9.9; it held the benchmark's): docs/prune.md.
    """
    model, dense = converged
    assert dense >= 475
    code, out = _prune(model, f"pruning={method}", f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, out
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["sparsity"]["pi"]["weight_sparsity"] >= 0.9
    assert results["eval"]["mean_return"] >= 0.95 * dense


def test_prune_help_names_the_model_and_its_statistics() -> None:
    result = runner.invoke(app, ["prune", "--help"])
    assert result.exit_code == 0
    assert "MODEL" in result.output and "--vecnormalize" in result.output and "scratch" in result.output
