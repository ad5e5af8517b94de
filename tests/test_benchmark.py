"""The dense-vs-pruned benchmark script: resumable, refuses to mix configs, writes its tables."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from conftest import FAST, FAST_ALGO, FAST_PRUNING

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "benchmark_pruning.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("benchmark_pruning", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_differences_names_changed_added_and_removed_keys() -> None:
    bench = _load_script()
    old = {"seed": 0, "pruning": {"name": "dsp", "sparsity": 0.95, "begin": 0.1}}
    new = {"seed": 0, "pruning": {"name": "dsp", "sparsity": 0.9, "allocation": "layer"}}
    assert bench.differences(old, new) == [
        "pruning.allocation: <absent> -> layer",
        "pruning.begin: 0.1 -> <absent>",
        "pruning.sparsity: 0.95 -> 0.9",
    ]
    assert bench.differences(old, old) == []


def _bench(root: Path, *extra: str) -> str:
    fast = [o for o in [*FAST, *FAST_ALGO["ppo"], *FAST_PRUNING] if not o.startswith(("n_timesteps", "progress_bar"))]
    cmd = [sys.executable, str(SCRIPT), "--envs", "cartpole", "--seeds", "0", "--methods", "dsp"]
    cmd += ["--n-timesteps", "256", "--root", str(root), "--table", str(root / "table.md"), *fast, *extra]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_benchmark_resumes_and_retrains_only_stale_runs(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "cartpole__ppo__dsp__seed0_256"
    out = _bench(tmp_path)
    assert "run: train env=cartpole algo=ppo pruning=dsp seed=0" in out
    rows = list(csv.DictReader(open(tmp_path / "table.csv")))
    assert [(r["env"], r["seeds_pruned"], r["timesteps"]) for r in rows] == [("CartPole-v1", "1", "256")]
    assert (tmp_path / "table.md").read_text().count("| CartPole-v1 | ppo | 256 |") == 1

    assert "skip (done): cartpole__ppo__dsp__seed0_256" in _bench(tmp_path)

    out = _bench(tmp_path, "eval.n_episodes=3")  # the same run, composed differently: stale, kept by default
    assert "stale: cartpole__ppo__dsp__seed0_256" in out and "eval.n_episodes: 2 -> 3" in out
    assert "run:" not in out and (run / "results.json").is_file()

    out = _bench(tmp_path, "--rerun-stale", "eval.n_episodes=3")
    assert "run: train" in out
    assert (run / "results.json").is_file()
    assert len(list((tmp_path / "stale").glob("cartpole__ppo__dsp__seed0_256.*/results.json"))) == 1


def test_eval_episodes_evaluates_every_run_again_once_and_tabulates_it(tmp_path: Path) -> None:
    _bench(tmp_path)
    run = tmp_path / "runs" / "cartpole__ppo__dsp__seed0_256"
    final = json.loads((run / "results.json").read_text())["eval"]
    [row] = csv.DictReader(open(tmp_path / "table.csv"))
    assert row["eval_episodes"] == str(final["n_episodes"])

    out = _bench(tmp_path, "--table-only", "--eval-episodes", "3")
    assert "evaluated cartpole__ppo__dsp__seed0_256 over 3 episodes" in out
    again = json.loads((run / "eval_3ep.json").read_text())
    assert again["n_episodes"] == 3 and again["env_id"] == "CartPole-v1"
    [row] = csv.DictReader(open(tmp_path / "table.csv"))
    assert row["eval_episodes"] == "3" and row["return_pruned"] == f"{again['mean_return']:.1f}"

    assert "evaluated" not in _bench(tmp_path, "--table-only", "--eval-episodes", "3")  # cached


def test_a_run_made_before_a_key_existed_is_read_with_that_keys_old_behaviour(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    bench = _load_script()
    overrides = bench.overrides("cartpole", "ppo", "dsp", 0, None, [])
    saved = bench.composed(overrides)
    del saved["pruning"]["regularizer"]["anchor"]  # written before the key was added
    OmegaConf.save(OmegaConf.create(saved), tmp_path / "config.yaml")
    assert bench.stale(tmp_path, overrides) == []
    assert bench.stale(tmp_path, [*overrides, "pruning.regularizer.anchor=keep"]) == [
        "pruning.regularizer.anchor: mean -> keep"
    ]


def test_a_run_made_when_compensate_was_a_switch_is_not_stale(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    bench = _load_script()
    overrides = bench.overrides("cartpole", "ppo", "dsp", 0, None, ["pruning.compensate=mean"])
    saved = bench.composed(overrides)
    saved["pruning"]["compensate"] = True  # how the same setting was written before 2026-11-22
    OmegaConf.save(OmegaConf.create(saved), tmp_path / "config.yaml")
    assert bench.stale(tmp_path, overrides) == []
    linear = [*overrides, "pruning.compensate=linear"]
    assert bench.stale(tmp_path, linear) == ["pruning.compensate: mean -> linear"]


def test_an_added_key_is_not_read_into_a_config_that_never_has_it(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    bench = _load_script()
    overrides = bench.overrides("cartpole", "ppo", "none", 0, None, [])
    OmegaConf.save(OmegaConf.create(bench.composed(overrides)), tmp_path / "config.yaml")
    assert bench.stale(tmp_path, overrides) == []  # a dense run has no pruning.compensate, then or now
