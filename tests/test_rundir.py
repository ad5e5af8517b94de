"""Run directories: one module names and reads every file; never shared or overwritten, never left half-written;
and a run directory laid out as before this package existed still evaluates, exports and resumes."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from stable_baselines3 import PPO
from typer.testing import CliRunner

from prune_rl.cli import app
from prune_rl.config import ConfigError
from prune_rl.runner import rundir
from prune_rl.runner.checkpoint import Interrupted
from prune_rl.runner.evaluate import evaluate_run
from prune_rl.runner.export import export_run
from prune_rl.runner.rundir import LOCK_FILE, atomic, claim
from prune_rl.runner.train import run

from conftest import FAST, SignalAfter, compose, fast, train_cfg

runner = CliRunner()


def test_a_directory_holding_a_run_or_claimed_by_one_is_refused(tmp_path: Path) -> None:
    claim(tmp_path / "new")  # a fresh (even missing) directory is taken
    with pytest.raises(ConfigError, match="is taken by another run"):
        claim(tmp_path / "new")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "results.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"already holds a run \(results.json\)"):
        claim(tmp_path / "done")
    assert (tmp_path / "new" / LOCK_FILE).read_text().strip().isdigit()


def test_an_interrupted_write_leaves_the_previous_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic(path) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]
    with atomic(path) as tmp:
        tmp.write_text("new")
    assert path.read_text() == "new" and list(tmp_path.iterdir()) == [path]


def test_training_again_into_a_run_directory_is_refused_in_one_line(tmp_path: Path) -> None:
    args = ["train", "pruning=none", *FAST, f"hydra.run.dir={tmp_path}"]
    assert runner.invoke(app, args).exit_code == 0
    before = (tmp_path / "model.zip").read_bytes()
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and f"{tmp_path} already holds a run (results.json)" in result.output
    assert (tmp_path / "model.zip").read_bytes() == before


def test_runs_started_together_get_directories_of_their_own(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "prune_rl.cli", "train", "pruning=none", *FAST]
    jobs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    assert all(job.wait(timeout=300) == 0 for job in jobs)
    runs = sorted(p.parent for p in tmp_path.glob("outputs/*/*/results.json"))
    assert len(runs) == 2 and all((run / "model.zip").is_file() for run in runs)


# What a run directory held before prune_rl/runner/ existed (main at 9f0361b): runs written then must still load.
FINISHED_LAYOUT = {"config.yaml", "model.zip", "vecnormalize.pkl", "masks.pt", "pruner.pt", "results.json",
                   "evaluations.npz", "progress.csv"}  # fmt: skip
CHECKPOINT_LAYOUT = {"model.zip", "vecnormalize.pkl", "venv.pkl", "pruning.pt", "rng.pt", "state.json"}
NAMES = ("results.json", "model.zip", "masks.pt", "pruner.pt", "config.yaml", "vecnormalize.pkl", "progress.csv",
         "evaluations.npz", "train.log", "error.txt")  # fmt: skip
# A pruned run that normalises: every file of the layout (checkpoints every quarter of the budget).
RUN = [*fast("ppo", "cartpole"), "env.normalize=true", "n_timesteps=1024", "checkpoint.every=0.25", "seed=7"]
ROOT = Path(__file__).resolve().parents[1]


def _data(overrides: list[str]) -> dict:
    """The resolved config as plain data, as the app writes it."""
    data = OmegaConf.to_container(compose(overrides), resolve=True)
    assert isinstance(data, dict)
    return {str(k): v for k, v in data.items()}


def test_no_module_outside_the_runner_spells_a_run_file() -> None:
    allowed = {Path("prune_rl/methods/scratch.py")}  # pure torch, below the runner: reads the widths of from_run
    found = []
    for path in sorted((ROOT / "prune_rl").rglob("*.py")):
        relative = path.relative_to(ROOT)
        if "runner" in relative.parts or relative in allowed:
            continue
        tree = ast.parse(path.read_text())
        documented = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, documented) and node.body and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                found += [f"{relative}:{node.lineno} {name}" for name in NAMES if name in node.value]
    assert not found
    assert {getattr(rundir, n) for n in dir(rundir) if n.endswith("_FILE")} >= set(NAMES)


def test_results_are_written_atomically_and_read_back(tmp_path: Path) -> None:
    rundir.write_results(tmp_path, {"eval": {"mean_return": 1.5}})
    with pytest.raises(TypeError):  # fails halfway (an object JSON cannot write): the previous results stay whole
        rundir.write_results(tmp_path, {"eval": object()})
    assert rundir.read_results(tmp_path) == {"eval": {"mean_return": 1.5}}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"] and rundir.is_finished(tmp_path)


def test_a_config_is_written_and_read_back_and_a_bad_one_is_refused_in_one_line(tmp_path: Path) -> None:
    data = _data(fast("ppo", "cartpole"))
    rundir.write_config(tmp_path, data)
    assert rundir.read_config(tmp_path).algo.name == "ppo" and rundir.read_config_data(tmp_path)["env"]["id"] == "CartPole-v1"
    (tmp_path / "config.yaml").write_text("env: [unclosed")
    with pytest.raises(ConfigError, match=r"config\.yaml does not read") as info:
        rundir.read_config(tmp_path)
    assert "\n" not in str(info.value)
    (tmp_path / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(ConfigError, match="no env or algo section"):
        rundir.read_config(tmp_path)


def test_a_run_directory_without_its_files_reads_as_empty(tmp_path: Path) -> None:
    assert rundir.missing_file(tmp_path) == "config.yaml" and not rundir.is_finished(tmp_path)
    assert rundir.read_evaluations(tmp_path) is None and rundir.read_progress(tmp_path) == []
    assert rundir.progress_until(tmp_path, 100) == [] and not rundir.has_masks(tmp_path)
    (tmp_path / "progress.csv").write_text("a,time/total_timesteps\n1,64\n2,128\n3,\n4,192\n")
    assert rundir.progress_until(tmp_path, 128) == ["a,time/total_timesteps", "1,64", "2,128", "3,"]
    assert [row["a"] for row in rundir.read_progress(tmp_path)] == ["1", "2", "4"]
    nested = tmp_path / "sweep" / "0_run"
    nested.mkdir(parents=True)
    (nested / "results.json").write_text("{}")
    assert rundir.find_finished(tmp_path) == []  # no config.yaml: not a run the report can read
    (nested / "config.yaml").write_text("seed: 0\n")
    assert rundir.find_finished(tmp_path) == [nested] and rundir.find_finished(nested) == [nested]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run and the same run stopped at a checkpoint, each with its config.yaml as the app writes it."""
    root = tmp_path_factory.mktemp("layout")
    for name in ("finished", "stopped"):
        rundir.claim(root / name)
        rundir.write_config(root / name, _data(RUN))
    run(train_cfg(RUN), root / "finished")
    with pytest.MonkeyPatch.context() as patch, pytest.raises(Interrupted):
        patch.setattr("prune_rl.runner.train.PhaseTimeCallback", SignalAfter)
        run(train_cfg(RUN), root / "stopped")
    return root


def test_a_run_writes_the_layout_runs_were_written_in_before(runs: Path) -> None:
    finished = {p.name for p in (runs / "finished").iterdir() if not p.name.startswith(("events.out", "."))}
    assert finished == FINISHED_LAYOUT
    assert {p.name for p in (runs / "stopped" / "checkpoint").iterdir()} == CHECKPOINT_LAYOUT
    assert not (runs / "stopped" / "results.json").exists()


def test_a_run_in_that_layout_loads_evaluates_and_exports(runs: Path) -> None:
    finished = runs / "finished"
    cfg = rundir.read_config(finished)
    model = rundir.load_model(finished, cfg)
    assert model.num_timesteps == 1024 and rundir.vecnormalize_file(finished, cfg) == finished / "vecnormalize.pkl"
    masks = rundir.load_masks(finished)
    assert set(masks) == set(rundir.load_pruner_state(finished)["masks"])
    assert all(m.dtype == torch.bool for m in masks.values())
    results = rundir.read_results(finished)
    again = evaluate_run(finished)
    assert again["mean_return"] == results["eval"]["mean_return"]  # the same seeds: the final evaluation repeats
    with np.load(finished / "evaluations.npz") as saved:
        assert rundir.read_evaluations(finished)["timesteps"].tolist() == saved["timesteps"].tolist()  # type: ignore[index]
    card = export_run(finished, ("onnx",), repeats=1, min_run_time=0.01, episodes=0, n_states=64, batch=8)
    assert card["check"]["onnx"]["identical"] == 1.0 and (finished / "export" / "vecnormalize.pkl").is_file()


def test_a_run_stopped_in_that_layout_resumes_to_the_run_never_stopped(runs: Path) -> None:
    result = runner.invoke(app, ["resume", str(runs / "stopped")])
    assert result.exit_code == 0, result.output
    whole, resumed = (PPO.load(runs / name / "model.zip", device="cpu") for name in ("finished", "stopped"))
    for key, value in whole.policy.state_dict().items():
        torch.testing.assert_close(resumed.policy.state_dict()[key], value, rtol=0, atol=0, msg=key)
    assert rundir.read_results(runs / "stopped")["resumed"] and not (runs / "stopped" / "checkpoint").exists()
    assert (runs / "stopped" / "train.log").is_file()
