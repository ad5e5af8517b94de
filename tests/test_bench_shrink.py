"""The shrinking benchmark: four runs per task, one table of wall times split by phase, with ratios."""

import csv
import re
from pathlib import Path

from conftest import FAST_ALGO, load_script


def test_the_shrink_benchmark_times_dense_masked_shrunk_and_scratch(tmp_path: Path) -> None:
    bench = load_script("bench_shrink")
    small = [*FAST_ALGO["ppo"], "eval.n_episodes=2", "pruning.probe_size=64", "pruning.interval=0.1"]
    bench.main(["--tasks", "cartpole", "--n-timesteps", "1024", "--root", str(tmp_path), "--repeats", "2", *small])
    rows = {r["variant"]: r for r in csv.DictReader(open(tmp_path / "shrink.csv"))}
    assert list(rows) == ["dense", "masked", "shrunk", "scratch"] and {r["repeats"] for r in rows.values()} == {"2"}
    assert rows["dense"]["ratio_to_dense"] == "1.000" and rows["scratch"]["ratio_to_scratch"] == "1.000"
    assert rows["shrunk"]["return"] == rows["masked"]["return"], "shrinking changes nothing but the speed"
    assert rows["shrunk"]["widths"] == rows["scratch"]["widths"] != rows["masked"]["widths"]
    median, low, high = (float(x) for x in re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", rows["shrunk"]["wall_s"]).groups())
    assert 0 < low <= median <= high  # the median of the repeats with its range
    phases = [float(rows["shrunk"][key].split()[0]) for key in ("env_s", "rollout_other_s", "gradient_s")]
    assert phases[2] > 0 and min(phases) >= 0 and sum(phases) <= high + 0.2
    text = (tmp_path / "shrink.md").read_text()
    assert (
        text.startswith("<!-- written by: python scripts/bench_shrink.py --tasks cartpole")
        and "| cartpole | shrunk | " in text
    )
    assert (tmp_path / "runs" / "cartpole__shrunk_rep1" / "results.json").is_file()
