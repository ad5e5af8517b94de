"""Run directories are never shared or overwritten, and result files are never left half-written."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prune_rl.cli import app
from prune_rl.config import ConfigError
from prune_rl.runner.rundir import LOCK_FILE, atomic, claim

from conftest import FAST

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
