"""The bring-your-own-agent benchmark: a dense agent, pruned after training and while training, in one table."""

import csv
from pathlib import Path

from conftest import FAST_ALGO, load_script


def test_the_benchmark_prunes_a_trained_agent_and_compares_pruning_while_training(tmp_path: Path) -> None:
    bench = load_script("bench_prune")
    # unguarded: the benchmark's mechanics at an exact sparsity (a guard may stop a run this short early)
    small = [*FAST_ALGO["ppo"], "n_timesteps=1280", "eval.n_episodes=2", "pruning.probe_size=64", "pruning.guard=false"]
    table = tmp_path / "bench.md"
    argv = ["--tasks", "cartpole_ppo", "--methods", "l1_structured", "none", "--finetune", "0.2", "--root", str(tmp_path),
            "--table", str(table), *small]  # fmt: skip
    bench.main(argv)
    rows = {r["method"]: r for r in csv.DictReader(open(tmp_path / "bench.csv"))}
    assert list(rows) == ["l1_structured", "none"]
    pruned, control = rows["l1_structured"], rows["none"]
    assert pruned["after_steps"] == control["after_steps"] == "256"  # 0.2 of 1280
    assert pruned["during_steps"] == "1280" and control["during_return"] == ""  # training with none is the dense run
    assert float(pruned["after_neuron_sparsity"]) == float(pruned["during_neuron_sparsity"]) == 0.75  # 2 of 8 left
    assert control["after_neuron_sparsity"] == "0" and "after_wall_s" not in pruned  # returns, not times
    dense = float(pruned["dense_return"].split(" ± ")[0])
    assert abs(float(pruned["after_ratio"]) - float(pruned["after_return"].split(" ± ")[0]) / dense) < 1e-3
    text = table.read_text()
    assert text.startswith("<!-- written by: python scripts/bench_prune.py --tasks cartpole_ppo --methods l1_structured")
    assert "| cartpole_ppo | l1_structured |" in text
    # the fine-tuned agent kept the dense agent's own hyperparameters (FAST_ALGO's n_steps=64, not the zoo's 32)
    from stable_baselines3 import PPO

    assert PPO.load(tmp_path / "runs" / "cartpole_ppo__after__l1_structured" / "model.zip", device="cpu").n_steps == 64
