"""Where returns are negative, the ratio to dense counts from a random policy's return."""

import json
from pathlib import Path

import pytest

from prune_rl.report import collect
from prune_rl.report.baseline import random_return, ratio_zero
from prune_rl.report.tables import aggregate_rows, markdown, rows


def _run(root: Path, env: str, method: str, seed: int, ret: float) -> None:
    path = root / f"{env}__sac__{method}__seed{seed}"
    path.mkdir(parents=True)
    pruned = method != "none"
    (path / "config.yaml").write_text("seed: 0\n" + ("pruning:\n  sparsity: 0.95\n" if pruned else ""))
    sparsity = {"actor": {"role": "policy", "neuron_sparsity": 0.9, "weight_sparsity": 0.98, "compact_weights": 99}}
    results = {"env_id": env, "algo": "sac", "pruning": method, "seed": seed, "n_timesteps": 20000,
               "eval": {"mean_return": ret}, "sparsity": sparsity if pruned else None}  # fmt: skip
    (path / "results.json").write_text(json.dumps(results))


def test_a_random_policy_is_seeded_and_scores_what_the_task_gives_for_nothing() -> None:
    assert random_return("Pendulum-v1") == random_return("Pendulum-v1", n_episodes=20) < -800
    assert 10 < random_return("CartPole-v1") < 40  # a random cart falls after about 20 steps
    assert random_return("NoSuchTask-v0") is None


def test_the_ratio_counts_from_zero_where_dense_is_positive_and_from_random_where_it_is_not() -> None:
    assert ratio_zero("CartPole-v1", 500.0) == 0.0
    assert ratio_zero("Pendulum-v1", -150.0) == random_return("Pendulum-v1")
    assert ratio_zero("Pendulum-v1", -5000.0) is None  # dense worse than random: no ratio means anything
    assert ratio_zero("NoSuchTask-v0", -150.0) is None


def test_a_negative_return_task_gets_a_ratio_of_improvements_over_random(tmp_path: Path) -> None:
    for seed, (dense, pruned) in enumerate([(-150.0, -160.0), (-170.0, -200.0)]):
        _run(tmp_path, "Pendulum-v1", "none", seed, dense)
        _run(tmp_path, "Pendulum-v1", "dsp", seed, pruned)
        _run(tmp_path, "NoSuchTask-v0", "none", seed, dense)
        _run(tmp_path, "NoSuchTask-v0", "dsp", seed, pruned)
    records = collect([tmp_path])
    table = {(r["env"], r["method"]): r for r in rows(records)}
    zero = random_return("Pendulum-v1")
    dsp = table[("Pendulum-v1", "dsp")]
    assert dsp["ratio"] == round((-180.0 - zero) / (-160.0 - zero), 3) and dsp["ratio"] < 1
    assert dsp["ratio_low"] < dsp["ratio"] < dsp["ratio_high"] and dsp["ratio_zero"] == round(zero, 1)
    assert table[("Pendulum-v1", "none")]["ratio"] == 1.0
    assert f"| {dsp['ratio']} [{dsp['ratio_low']}, {dsp['ratio_high']}] from {round(zero, 1)} |" in markdown(rows(records))
    assert table[("NoSuchTask-v0", "dsp")]["ratio"] is None
    aggregate = {r["method"]: r for r in aggregate_rows(records)}
    assert aggregate["dsp"]["tasks"] == 1 and aggregate["dsp"]["iqm"] == pytest.approx(dsp["ratio"], abs=2e-3)
