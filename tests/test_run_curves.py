"""The training-curve script: windowed means of progress.csv columns and the periodic evaluation at each checkpoint."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "root" / "runs" / "walker2d__ppo__dsp__seed4_3000"
    run_dir.mkdir(parents=True)
    rows = [  # steps, training reward, clip fraction
        ("500", "5", ""),
        ("1000", "10", "0.5"),  # on the first window's end: in it
        ("", "", ""),  # no step count: dropped
        ("1500", "15", ""),  # on the open edge of a 500-step window ending at 2000: not in it
        ("2000", "", "0.25"),  # an evaluation's or event's record: no training reward
        ("2500", "25", ""),
    ]
    with open(run_dir / "progress.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["time/total_timesteps", "rollout/ep_rew_mean", "train/clip_fraction"])
        writer.writerows(rows)
    np.savez(
        run_dir / "evaluations.npz",
        timesteps=np.array([1000, 1500, 2000, 3000]),
        results=np.array([[1.0, 3.0], [5.0, 5.0], [7.0, 9.0], [11.0, 11.0]]),
    )
    return run_dir


def test_window_means_cover_the_steps_ending_at_each_checkpoint(tmp_path: Path) -> None:
    curves = load_script("run_curves")
    rows = curves.read_progress(_run(tmp_path))
    assert len(rows) == 5  # the row without a step count is dropped
    # (0, 1000] holds 500 and 1000; (1000, 2000] 1500 and 2000, which has no reward; (2000, 3000] holds 2500
    assert curves.window_means(rows, "rollout/ep_rew_mean", [1000, 2000, 3000], 1000) == [7.5, 15.0, 25.0]
    assert curves.window_means(rows, "rollout/ep_rew_mean", [2000], 500) == [None]  # 1500 is on the open edge
    assert curves.window_means(rows, "train/clip_fraction", [2000], 2000) == [0.375]  # empty cells are not zeros


def test_the_evaluation_of_a_checkpoint_is_the_last_one_in_its_step(tmp_path: Path) -> None:
    curves = load_script("run_curves")
    evals = curves.periodic_evals(_run(tmp_path))
    assert evals == [(1000, 2.0), (1500, 5.0), (2000, 8.0), (3000, 11.0)]
    # (1000, 2000] holds 1500 and 2000: the later one; (0, 1000] holds 1000; (3000, 4000] none
    assert curves.evals_at(evals, [1000, 2000, 4000], 1000) == [2.0, 8.0, None]


def test_the_command_prints_one_row_per_run_and_key_and_refuses_an_unknown_key(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    script = [sys.executable, str(ROOT / "scripts" / "run_curves.py"), str(run_dir)]
    span = ["--start", "1000", "--stop", "3000", "--step", "1000", "--window", "1000"]
    out = subprocess.run([*script, *span, "--evals"], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "| run | value | 1k | 2k | 3k |"
    assert out[2] == "| root/walker2d__ppo__dsp__seed4_3000 | rollout/ep_rew_mean | 7.5 | 15 | 25 |"
    assert out[3] == "| root/walker2d__ppo__dsp__seed4_3000 | evaluation | 2 | 8 | 11 |"
    typo = subprocess.run([*script, *span, "--key", "rollout/ep_rew"], capture_output=True, text=True)
    assert typo.returncode == 2 and "has no value of 'rollout/ep_rew'" in typo.stderr


def test_a_run_without_the_key_is_an_error_not_a_blank_row(tmp_path: Path) -> None:
    curves = load_script("run_curves")
    with pytest.raises(ValueError, match="no value of 'train/std'"):
        curves.table([_run(tmp_path)], ["train/std"], [1000], 1000, 1000, evals=False)
