"""The shrinking benchmark: four runs per task, one table of wall times split by phase, with ratios."""

import csv
from pathlib import Path

from conftest import FAST_ALGO, load_script


def test_the_shrink_benchmark_times_dense_masked_shrunk_and_scratch(tmp_path: Path) -> None:
    bench = load_script("bench_shrink")
    small = [*FAST_ALGO["ppo"], "eval.n_episodes=2", "pruning.probe_size=64", "pruning.interval=0.1"]
    bench.main(["--tasks", "cartpole", "--n-timesteps", "1024", "--root", str(tmp_path), *small])
    rows = {r["variant"]: r for r in csv.DictReader(open(tmp_path / "shrink.csv"))}
    assert list(rows) == ["dense", "masked", "shrunk", "scratch"]
    assert rows["dense"]["ratio_to_dense"] == "1.000" and rows["scratch"]["ratio_to_scratch"] == "1.000"
    assert rows["shrunk"]["return"] == rows["masked"]["return"], "shrinking changes nothing but the speed"
    assert rows["shrunk"]["widths"] == rows["scratch"]["widths"] != rows["masked"]["widths"]
    phases = [float(rows["shrunk"][key]) for key in ("env_s", "rollout_other_s", "gradient_s")]
    assert phases[2] > 0 and min(phases) >= 0 and sum(phases) <= float(rows["shrunk"]["wall_s"]) + 0.2
    assert "| cartpole | shrunk |" in (tmp_path / "shrink.md").read_text()
