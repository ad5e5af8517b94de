"""The method comparison script: one row per task and method, with the ratio to dense of the same task."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conftest import load_script


def _run(root: Path, method: str, seed: int, ret: float, env: str = "CartPole-v1", kept: int | None = 27) -> None:
    """A finished run directory as the script trains it, with made-up numbers."""
    path = root / "runs" / f"{env.split('-')[0].lower()}__ppo__{method}__seed{seed}"
    path.mkdir(parents=True)
    pruned = method != "none"
    (path / "config.yaml").write_text("seed: 0\n" + ("pruning:\n  sparsity: 0.95\n" if pruned else ""))
    sparsity = {"pi": {"role": "policy", "neuron_sparsity": 0.953, "weight_sparsity": 0.994, "compact_weights": kept}}
    results = {"env_id": env, "algo": "ppo", "pruning": method.split("@")[0], "seed": seed, "n_timesteps": 100000,
               "eval": {"mean_return": ret}, "sparsity": sparsity if pruned else None}  # fmt: skip
    (path / "results.json").write_text(json.dumps(results))


def test_the_table_puts_every_method_beside_dense_of_its_own_task(tmp_path: Path) -> None:
    compare = load_script("compare_methods")
    _run(tmp_path, "scratch", 0, 300.0)
    _run(tmp_path, "none", 0, 400.0)
    _run(tmp_path, "none", 1, 600.0)
    _run(tmp_path, "dsp", 0, 450.0)
    _run(tmp_path, "dsp", 1, 550.0)
    _run(tmp_path, "dsp@strength=0", 0, 200.0)
    _run(tmp_path, "none", 0, 100.0, env="LunarLander-v3")
    _run(tmp_path, "magnitude", 0, 50.0, env="LunarLander-v3", kept=26)
    rows = compare.table(tmp_path, eval_episodes=None)
    assert [(r["env"], r["method"]) for r in rows] == [
        ("CartPole-v1", "none"),
        ("CartPole-v1", "dsp"),
        ("CartPole-v1", "dsp@strength=0"),  # an ablation spec is a row of its own
        ("CartPole-v1", "scratch"),
        ("LunarLander-v3", "none"),
        ("LunarLander-v3", "magnitude"),
    ]
    dsp = rows[1]
    assert (dsp["seeds"], dsp["return"], dsp["std"], dsp["ratio"], dsp["kept_weights"]) == (
        "0,1",
        500.0,
        70.71,
        1.0,
        27,
    )  # sample std
    assert rows[3]["ratio"] == 0.6 and rows[0]["kept_weights"] is None
    assert rows[5]["ratio"] == 0.5  # against LunarLander's dense, not CartPole's
    out = tmp_path / "methods.md"
    compare.write(rows, out, "the command")
    assert out.read_text().startswith("<!-- written by: the command -->")
    assert [r["method"] for r in csv.DictReader(open(out.with_suffix(".csv")))] == [r["method"] for r in rows]


def test_unstructured_methods_are_trained_at_matched_kept_weights(tmp_path: Path, monkeypatch) -> None:
    compare = load_script("compare_methods")
    calls: list[list[str]] = []

    def call(cmd: list[str], **kwargs: object) -> int:
        calls.append(cmd)
        return 0

    monkeypatch.setattr(compare.subprocess, "call", call)
    assert compare.train(tmp_path, "cartpole", "ppo", "magnitude", 1, ["n_timesteps=500"])
    assert compare.train(tmp_path, "cartpole", "ppo", "dsp", 1, [])
    assert compare.train(tmp_path, "cartpole", "ppo", "dsp@strength=0,gamma=0", 1, [])
    assert calls[2][-1].endswith("cartpole__ppo__dsp@strength=0,gamma=0__seed1'")
    assert {"pruning=dsp", "pruning.strength=0", "pruning.gamma=0"} <= set(calls[2])
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(calls[2][4:])  # what `prune-rl train` hands Hydra
    run_dir = next(o for o in parsed if o.key_or_group == "hydra.run.dir")
    assert run_dir.value() == str(compare.run_dir(tmp_path, "cartpole", "ppo", "dsp@strength=0,gamma=0", 1).resolve())
    assert "pruning.matched=true" in calls[0] and "n_timesteps=500" in calls[0] and "seed=1" in calls[0]
    assert not any("matched" in arg for arg in calls[1])
    (compare.run_dir(tmp_path, "cartpole", "ppo", "dsp", 1) / "results.json").write_text("{}")
    assert compare.train(tmp_path, "cartpole", "ppo", "dsp", 1, [])  # done: skipped
    assert len(calls) == 3
    unfinished = compare.run_dir(tmp_path, "cartpole", "ppo", "magnitude", 1)
    (unfinished / "config.yaml").write_text("seed: 1\n")  # killed before its results
    compare.train(tmp_path, "cartpole", "ppo", "magnitude", 1, [])
    assert len(calls) == 4 and not (unfinished / "config.yaml").exists()
    assert [p.name.split(".")[0] for p in (tmp_path / "unfinished").iterdir()] == [unfinished.name]
    stopped = compare.run_dir(tmp_path, "cartpole", "ppo", "l1_structured", 1)
    (stopped / "checkpoint").mkdir(parents=True)
    (stopped / "checkpoint" / "state.json").write_text("{}")  # stopped with a checkpoint: continued, not retrained
    (stopped / "checkpoint" / "model.zip").write_text("")
    assert compare.train(tmp_path, "cartpole", "ppo", "l1_structured", 1, [])
    assert calls[-1][-2:] == ["resume", str(stopped)] and (stopped / "checkpoint").is_dir()


def test_scratch_trains_the_final_widths_of_the_same_seeds_dsp_run(tmp_path: Path, monkeypatch) -> None:
    compare = load_script("compare_methods")
    calls: list[list[str]] = []
    monkeypatch.setattr(compare.subprocess, "call", lambda cmd, **kwargs: calls.append(cmd) or 0)
    assert not compare.train(tmp_path, "hopper", "ppo", "scratch", 2, [])  # its dsp run is not there yet
    assert calls == []
    _run(tmp_path, "dsp", 2, 1000.0, env="Hopper-v5")
    assert compare.train(tmp_path, "hopper", "ppo", "scratch", 2, [])
    pruned = compare.run_dir(tmp_path, "hopper", "ppo", "dsp", 2).resolve()
    assert "pruning=scratch" in calls[0] and f"pruning.from_run='{pruned}'" in calls[0]
