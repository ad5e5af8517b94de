"""The per-seed ratio script: pairs a row's dense and pruned runs by seed and bootstraps its ratio over seeds."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


def _records() -> list[dict]:
    rows = [("none", 0, 100.0), ("dsp", 0, 90.0), ("none", 1, 300.0), ("dsp", 1, 330.0), ("dsp", 2, 50.0)]
    other = [("none", 0, 1.0), ("dsp", 0, 1.0)]  # another budget: not this row's
    return [
        {"env": "Walker2d-v5", "algo": "ppo", "timesteps": t, "method": m, "seed": s, "mean_return": r}
        for t, runs in ((1000, rows), (500, other))
        for m, s, r in runs
    ]


def test_only_seeds_with_both_runs_pair_up_and_the_ratio_is_the_tables() -> None:
    ratios = load_script("seed_ratios")
    pairs = ratios.paired_returns(_records(), "Walker2d-v5", "ppo", 1000)
    assert pairs == {0: (100.0, 90.0), 1: (300.0, 330.0)}  # seed 2 has no dense run
    assert abs(ratios.ratio_of_means(list(pairs.values())) - 420 / 400) < 1e-12


def test_the_bootstrap_stays_between_the_seeds_ratios_and_repeats_with_its_seed() -> None:
    ratios = load_script("seed_ratios")
    pairs = [(100.0, 90.0), (300.0, 330.0), (200.0, 150.0)]
    boot = ratios.bootstrap(pairs, n=500, seed=1)
    assert boot == sorted(boot) and len(boot) == 500
    # a resample's ratio of means is a dense-weighted mean of per-seed ratios: never outside their range
    assert 0.75 - 1e-12 <= boot[0] and boot[-1] <= 1.1 + 1e-12 and boot[0] < boot[-1]
    assert boot == ratios.bootstrap(pairs, n=500, seed=1)


def test_the_script_prints_each_seed_and_the_interval(tmp_path: Path) -> None:
    runs = tmp_path / "runs.csv"
    with open(runs, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(_records()[0]))
        writer.writeheader()
        writer.writerows(_records())
    cmd = [sys.executable, "scripts/seed_ratios.py", "--runs", str(runs), "--env", "Walker2d-v5", "--timesteps"]
    done = subprocess.run([*cmd, "1000", "--n-boot", "200"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "| 1 | 300.0 | 330.0 | 1.100 |" in done.stdout and "2 seeds: ratio of means 1.050" in done.stdout
    assert "90% interval" in done.stdout
    done = subprocess.run([*cmd, "500"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "1 seed(s)" in done.stderr  # one pair gives no interval


def test_pruned_records_can_come_from_another_file(tmp_path: Path) -> None:
    def write(path: Path, records: list[dict]) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)

    write(tmp_path / "runs.csv", _records())  # pruned 90.0 and 330.0 here ...
    variant = [{**r, "mean_return": 2 * r["mean_return"]} for r in _records() if r["method"] == "dsp"]
    write(tmp_path / "variant.csv", [*variant, {**_records()[0], "mean_return": 1e6}])  # ... its own dense ignored
    cmd = [sys.executable, "scripts/seed_ratios.py", "--runs", str(tmp_path / "runs.csv"), "--env", "Walker2d-v5"]
    cmd += ["--timesteps", "1000", "--n-boot", "200", "--pruned-runs", str(tmp_path / "variant.csv")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "| 0 | 100.0 | 180.0 | 1.800 |" in done.stdout and "2 seeds: ratio of means 2.100" in done.stdout
