"""Checkpoints, stop signals and ``prune-rl resume``: a stopped run resumed ends exactly as one never stopped."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from stable_baselines3 import PPO, SAC
from typer.testing import CliRunner

from prune_rl.runner.checkpoint import CHECKPOINT_DIR, Interrupted, latest_checkpoint, write_checkpoint
from prune_rl.cli import app
from prune_rl.runner.train import run

from conftest import SignalAfter, compose, fast, train_cfg

runner = CliRunner()
PPO_RUN = [*fast("ppo", "cartpole"), "n_timesteps=2048", "checkpoint.every=0.25"]
# The defaults: every cut guarded, the networks shrunk after each.
GUARDED_RUN = [*(o for o in PPO_RUN if not o.startswith(("pruning.guard", "pruning.shrink"))), "pruning.tolerance=0.5"]
SAC_RUN = [
    *fast("sac", "hopper"),
    "env=gym",
    "env.id=Pendulum-v1",  # classic control: its environments pickle, so the resumed run is exact
    "n_timesteps=400",
    "checkpoint.every=0.3",
    "pruning.shrink=true",
]


def _same_run(a: Path, b: Path, cls: type) -> None:
    """Same parameters, optimizer state, masks and step count."""
    first, second = cls.load(a / "model.zip", device="cpu"), cls.load(b / "model.zip", device="cpu")
    assert first.num_timesteps == second.num_timesteps
    for key, value in first.policy.state_dict().items():
        torch.testing.assert_close(second.policy.state_dict()[key], value, rtol=0, atol=0, msg=key)
    masks = [torch.load(d / "masks.pt") for d in (a, b)]
    assert {k: v.tolist() for k, v in masks[0].items()} == {k: v.tolist() for k, v in masks[1].items()}


@pytest.mark.parametrize(
    ("algo", "overrides", "signum"),
    [("ppo", PPO_RUN, signal.SIGUSR1), ("ppo", GUARDED_RUN, signal.SIGUSR1), ("sac", SAC_RUN, signal.SIGINT)],
    ids=["ppo", "ppo-guarded-shrunk", "sac"],
)
def test_a_run_stopped_by_a_signal_resumes_to_the_same_parameters_and_masks(
    algo: str, overrides: list[str], signum: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = {"ppo": PPO, "sac": SAC}[algo]
    cfg = train_cfg(overrides)
    whole = run(cfg, tmp_path / "whole")
    assert not (tmp_path / "whole" / CHECKPOINT_DIR).exists(), "a finished run keeps no checkpoint"

    monkeypatch.setattr("prune_rl.runner.train.PhaseTimeCallback", type("Signal", (SignalAfter,), {"signum": signum}))
    with pytest.raises(Interrupted) as stop:
        run(cfg, tmp_path / "stopped")
    assert stop.value.signum == signum and 0 < stop.value.timesteps < cfg.n_timesteps
    assert not (tmp_path / "stopped" / "results.json").exists()
    assert json.loads((tmp_path / "stopped" / CHECKPOINT_DIR / "state.json").read_text())["timesteps"] == stop.value.timesteps
    monkeypatch.undo()

    resumed = run(cfg, tmp_path / "stopped", resume=True)
    _same_run(tmp_path / "whole", tmp_path / "stopped", cls)
    assert resumed.resumed and resumed.timesteps == whole.timesteps
    assert resumed.sparsity == whole.sparsity
    if cfg.pruning.guard:  # the same decisions, the return watched across the stop
        same = ("kept", "reduced", "rejected", "deferred", "stopped", "decisions")
        assert {k: resumed.guard[k] for k in same} == {k: whole.guard[k] for k in same}
        assert whole.guard["kept"] + whole.guard["reduced"] >= 2


def test_sigterm_kills_a_training_process_that_prune_rl_resume_finishes_exactly(tmp_path: Path) -> None:
    args = [*PPO_RUN, "n_timesteps=8192", "progress_bar=false"]
    cli = [sys.executable, "-m", "prune_rl.cli"]
    subprocess.run([*cli, "train", *args, f"hydra.run.dir={tmp_path / 'whole'}"], check=True, capture_output=True)

    stopped = tmp_path / "stopped"
    process = subprocess.Popen([*cli, "train", *args, f"hydra.run.dir={stopped}"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while latest_checkpoint(stopped) is None and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the run finished before the signal came (a very fast machine)")
    assert process.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1].startswith("prune-rl: SIGTERM at ")
    assert f"prune-rl resume {stopped}" in err and "Traceback" not in err
    header = (stopped / "progress.csv").read_text().splitlines()[0]

    done = subprocess.run([*cli, "resume", str(stopped)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    _same_run(tmp_path / "whole", stopped, PPO)
    rows = (stopped / "progress.csv").read_text().splitlines()
    assert rows[0].startswith(header) and len(rows) > 3, "progress.csv continues (new columns may join)"
    column = header.split(",").index("time/total_timesteps")
    steps = [int(r.split(",")[column]) for r in rows[1:] if r.split(",")[column]]
    assert steps == sorted(steps), "no rows written after the checkpoint, before the stop, are kept twice"


def test_a_checkpoint_half_written_when_the_run_was_killed_is_never_loaded(tmp_path: Path) -> None:
    cfg = train_cfg([*PPO_RUN, "checkpoint.every=0.5"])
    run(cfg, tmp_path)
    model = PPO.load(tmp_path / "model.zip", device="cpu")
    first = write_checkpoint(tmp_path, model, model.get_env() or _env(), {"pruning": None, "start_timesteps": 0})
    # killed while writing the next one: the temporary folder is partial, nothing was renamed yet
    partial = tmp_path / f".{CHECKPOINT_DIR}.tmp"
    partial.mkdir()
    (partial / "model.zip").write_bytes(b"PK\x03\x04 truncated")
    assert latest_checkpoint(tmp_path) == first
    # killed between the two renames: only the previous one is complete
    shutil.move(first, tmp_path / f"{CHECKPOINT_DIR}.old")
    (partial / "state.json").write_text("{")
    assert latest_checkpoint(tmp_path) == tmp_path / f"{CHECKPOINT_DIR}.old"


def _env():
    from stable_baselines3.common.env_util import make_vec_env

    return make_vec_env("CartPole-v1", n_envs=1, seed=0)


def test_resume_refuses_what_it_cannot_resume_in_one_line(tmp_path: Path) -> None:
    finished, no_checkpoint = tmp_path / "finished", tmp_path / "no_checkpoint"
    run(train_cfg(PPO_RUN), finished)
    no_checkpoint.mkdir()
    for path in (finished, no_checkpoint):
        OmegaConf.save(compose(PPO_RUN), path / "config.yaml")
    (tmp_path / "empty").mkdir()
    cases = {
        tmp_path / "missing": "is not a directory",
        tmp_path / "empty": "config.yaml is missing",
        finished: "finished already",
        no_checkpoint: "has no checkpoint to resume from",
    }
    for path, message in cases.items():
        result = runner.invoke(app, ["resume", str(path)])
        assert result.exit_code == 2, result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_a_job_slurm_requeued_resumes_its_run_instead_of_refusing_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = train_cfg(PPO_RUN)
    run(cfg, tmp_path / "whole")
    monkeypatch.setattr("prune_rl.runner.train.PhaseTimeCallback", SignalAfter)
    with pytest.raises(Interrupted):
        run(cfg, tmp_path / "stopped")
    monkeypatch.undo()
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # what SLURM sets in a requeued job
    result = runner.invoke(app, ["train", *PPO_RUN, f"hydra.run.dir={tmp_path / 'stopped'}"])
    assert result.exit_code == 0, result.output
    _same_run(tmp_path / "whole", tmp_path / "stopped", PPO)
