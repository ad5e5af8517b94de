"""The training-curve script: windowed means of progress.csv columns and the periodic evaluations in range."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "root" / "runs" / "walker2d__ppo__dsp__seed4_1000"
    run_dir.mkdir(parents=True)
    rows = [
        {"time/total_timesteps": "100", "rollout/ep_rew_mean": "10", "train/clip_fraction": ""},
        {"time/total_timesteps": "200", "rollout/ep_rew_mean": "20", "train/clip_fraction": "0.5"},
        {"time/total_timesteps": "", "rollout/ep_rew_mean": "", "train/clip_fraction": ""},  # an eval-only dump
        {"time/total_timesteps": "600", "rollout/ep_rew_mean": "60", "train/clip_fraction": "0.25"},
    ]
    with open(run_dir / "progress.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    np.savez(
        run_dir / "evaluations.npz",
        timesteps=np.array([250, 500, 1000]),
        results=np.array([[1.0, 3.0], [5.0, 5.0], [7.0, 9.0]]),
    )
    return run_dir


def test_window_means_average_the_rows_in_each_window_and_skip_rows_without_the_key(tmp_path: Path) -> None:
    curves = load_script("run_curves")
    rows = curves.read_progress(_run(tmp_path))
    assert len(rows) == 3  # the row without a step count is dropped
    assert curves.window_means(rows, "rollout/ep_rew_mean", [0, 500, 800], 500) == [15.0, 60.0, None]
    assert curves.window_means(rows, "train/clip_fraction", [0], 500) == [0.5]  # the empty cell is not a zero


def test_periodic_evals_are_episode_means_in_the_range(tmp_path: Path) -> None:
    curves = load_script("run_curves")
    assert curves.periodic_evals(_run(tmp_path), 300, 1000) == [(500, 5.0), (1000, 8.0)]


def test_the_command_prints_one_row_per_run_and_key(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "run_curves.py"),
            str(run_dir),
            "--start",
            "0",
            "--stop",
            "500",
            "--step",
            "500",
            "--window",
            "500",
            "--evals",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0] == "| run | value | 0 | 500 |"
    assert out[2] == "| root/walker2d__ppo__dsp__seed4_1000 | rollout/ep_rew_mean | 15 | 60 |"
    assert out[3] == "| root/walker2d__ppo__dsp__seed4_1000 | evaluation | 2 | 5 |"
