"""Every command refuses bad input in one line, with exit status 2, no traceback, and no run directory left behind."""

import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from typer.testing import CliRunner

from prune_rl.cli import app

from conftest import fast

runner = CliRunner()
FAST = fast("ppo", "cartpole")


def _refused(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert message in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # unknown group options and keys, and overrides that do not parse (Hydra's 7-20 lines otherwise)
        (["env=nope"], "unknown env option 'nope' (known: cartpole, gym, hopper, lunarlander, pendulum, walker2d)"),
        (["algo.lerning_rate=1"], "unknown config key 'algo.lerning_rate' (did you mean algo.learning_rate?"),
        (["pruning.sparsity"], "an override does not parse: Error parsing override 'pruning.sparsity'"),
        (["seed=0,1"], "seed=0,1 is a sweep: add -m"),
        (["-m", "pruning=dsp,nope", "seed=0,1"], "unknown pruning option 'nope'"),
        # invalid algo/env pairs and tasks
        (["algo=dqn", "env=hopper"], "algo=dqn needs a discrete action space, but Hopper-v5 is continuous"),
        (["env=gym"], "Missing mandatory value: env.id"),
        (["env=gym", "env.id=Nope-v0"], "env.id 'Nope-v0': Environment `Nope` doesn't exist"),
        # values of the wrong type, refused before anything trains ("maybe" would read as true)
        (["env.normalize=maybe"], "env.normalize must be true or false, got maybe"),
        (["eval.deterministic=1"], "eval.deterministic must be true or false, got 1"),
        (["pruning.shrink=yes"], "pruning.shrink must be true or false, got yes"),
        (["env.n_envs=2.5"], "env.n_envs must be an integer, got 2.5"),
        (["n_timesteps=1e5"], "n_timesteps must be an integer, got 100000.0"),
        (["checkpoint.every=often"], "checkpoint.every must be a number, got often"),
        # out-of-range numbers in every group
        (["algo.learning_rate=-1"], "algo.learning_rate must be > 0, got -1"),
        (["algo.learning_rate=lin_0"], "algo.learning_rate must be > 0, got lin_0"),
        (["algo.batch_size=0"], "algo.batch_size must be > 0, got 0"),
        (["algo.n_steps=-5"], "algo.n_steps must be > 0, got -5"),
        (["algo.gamma=1.5"], "algo.gamma must be in [0, 1], got 1.5"),
        (["n_timesteps=-5"], "n_timesteps must be a positive integer, got -5"),
        (["env.n_envs=0"], "env.n_envs must be >= 1, got 0"),
        (["eval.n_episodes=0"], "eval.n_episodes must be >= 1, got 0"),
        (["checkpoint.every=2"], "checkpoint.every must be a fraction of training in [0, 1], got 2"),
        (["pruning.sparsity=1.0"], "pruning.sparsity must be in [0, 1) or auto, got 1.0"),
        (["pruning.begin=0.9", "pruning.end=0.5"], "pruning.begin (0.9) must be before pruning.end (0.5)"),
        (["pruning.min_neurons=8"], "pruning.min_neurons=8 keeps all 8 neurons of pi.0, so pi cannot reach sparsity 0.95"),
        (["pruning=magnitude", "pruning.shrink=true"], "pruning.shrink=true needs a method that removes whole neurons"),
        (["pruning=scratch", "pruning.from_run=/nowhere"], "pruning.from_run: /nowhere/results.json does not exist"),
        # the machine
        (["device=cuda"], "device=cuda, but torch"),
        (["device=tpu"], "device must be auto, cpu, cuda or cuda:<n>, got tpu"),
        (["-m", "hydra/launcher=slurm", "seed=0,1"], "hydra/launcher=slurm needs SLURM, and sbatch is not on PATH here"),
    ],
)
def test_train_refuses_bad_input_in_one_line_and_leaves_no_run_directory(args: list[str], message: str, tmp_path) -> None:
    if "device=cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    if "hydra/launcher=slurm" in args and shutil.which("sbatch"):
        pytest.skip("this machine has SLURM")
    run_dir = tmp_path / "run"
    base = ["n_timesteps=256", "eval.freq=0", "progress_bar=false"] if any(a.startswith("algo=") for a in args) else FAST
    result = runner.invoke(app, ["train", *base, *args, f"hydra.run.dir={run_dir}", f"hydra.sweep.dir={run_dir}"])
    _refused(result, message)
    assert not run_dir.exists(), "a rejected config leaves no run directory"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    result = runner.invoke(app, ["train", *FAST, f"hydra.run.dir={run_dir}"])
    assert result.exit_code == 0, result.output
    return run_dir


def _broken(trained: Path, tmp_path: Path, how: str) -> Path:
    run_dir = tmp_path / how
    shutil.copytree(trained, run_dir)
    if how == "corrupt_model":
        (run_dir / "model.zip").write_bytes((trained / "model.zip").read_bytes()[:300])
    elif how == "empty_model":
        (run_dir / "model.zip").write_bytes(b"")
    elif how == "truncated_config":
        (run_dir / "config.yaml").write_text((trained / "config.yaml").read_text()[:50] + "\n  - [")
    elif how == "other_task":  # a model that acts on CartPole's spaces, for a run now said to be Acrobot's
        config = OmegaConf.load(run_dir / "config.yaml")
        config.env.id = "Acrobot-v1"
        OmegaConf.save(config, run_dir / "config.yaml")
    elif how == "empty":
        shutil.rmtree(run_dir)
        run_dir.mkdir()
    return run_dir


@pytest.mark.parametrize(
    ("command", "how", "message"),
    [
        ("evaluate", "corrupt_model", "model.zip does not load as ppo"),
        ("evaluate", "empty_model", "model.zip does not load as ppo"),
        ("evaluate", "truncated_config", "config.yaml does not read"),
        ("evaluate", "other_task", "but Acrobot-v1 has"),
        ("evaluate", "empty", "is not a run directory: config.yaml is missing"),
        ("export", "corrupt_model", "model.zip does not load"),
        ("export", "truncated_config", "config.yaml does not read"),
        ("export", "empty", "config.yaml is missing"),
        ("report", "truncated_config", "config.yaml does not read"),
        ("report", "empty", "no run directory"),
        ("resume", "empty", "config.yaml is missing"),
        ("resume", "corrupt_model", "finished already"),
    ],
)
def test_commands_on_a_run_refuse_broken_runs_in_one_line(
    command: str, how: str, message: str, trained: Path, tmp_path: Path
) -> None:
    _refused(runner.invoke(app, [command, str(_broken(trained, tmp_path, how))]), message)


@pytest.mark.parametrize("n", ["-3", "0"])
def test_evaluate_refuses_fewer_than_one_episode(n: str, trained: Path) -> None:
    _refused(runner.invoke(app, ["evaluate", str(trained), "-n", n]), f"n_episodes must be >= 1, got {n}")


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--repeats", "0"], "--repeats must be >= 1, got 0"), (["--episodes", "-1"], "--episodes must be >= 0, got -1"),
     (["--threads", "0"], "--threads must be >= 1, got 0"), (["--min-run-time", "0"], "--min-run-time must be > 0, got 0.0")],
)  # fmt: skip
def test_export_refuses_counts_and_times_out_of_range(option: list[str], message: str, trained: Path) -> None:
    _refused(runner.invoke(app, ["export", str(trained), *option]), message)


@pytest.mark.parametrize("command", ["evaluate", "export", "resume", "report"])
def test_commands_on_a_run_refuse_a_missing_directory(command: str, tmp_path: Path) -> None:
    result = runner.invoke(app, [command, str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
