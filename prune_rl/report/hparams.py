"""One row per run in TensorBoard's HParams tab: the run's choices and its final metrics, with the same keys always.

Every run logs the same hyperparameter keys (a dense run has ``sparsity = 0``) and the same metric tags, so no
column goes missing when runs of different methods sit in one table. The metrics are scalars logged once at the
end of the run under ``final/``; the HParams plugin reads a metric's value from the scalar of the same tag.
"""

from __future__ import annotations

from typing import Any

from prune_rl.config import TrainConfig
from prune_rl.methods.base import AUTO

METRICS = ("final/return", "final/neuron_sparsity", "final/weight_sparsity", "final/kept_weights")


def hparams(cfg: TrainConfig) -> dict[str, Any]:
    """
    :param cfg: The run's config.
    :return: ``env, algo, pruning, method, seed, n_timesteps, sparsity, value_sparsity`` (dense: sparsities 0;
        ``sparsity: auto``: -1, its reached sparsity is a metric).
    """
    dense = cfg.pruning.method == "none"
    return {
        "env": cfg.env.id,
        "algo": cfg.algo.name,
        "pruning": cfg.pruning.name,
        "method": cfg.pruning.method,
        "seed": cfg.seed,
        "n_timesteps": cfg.n_timesteps,
        "sparsity": 0.0 if dense else -1.0 if cfg.pruning.sparsity == AUTO else float(cfg.pruning.sparsity),
        "value_sparsity": 0.0 if dense else float(cfg.pruning.value_sparsity),
    }


def final_metrics(results: dict[str, Any], dense_weights: int) -> dict[str, float]:
    """
    :param results: The run's ``results.json`` content.
    :param dense_weights: Weights of the deployed network as configured (a dense run keeps them all).
    :return: The values of :data:`METRICS`: final return, and the deployed network's sparsity and kept weights.
    """
    sparsity = results.get("sparsity") or {}
    deployed = next((stats for stats in sparsity.values() if stats.get("role") == "policy"), None)
    return {
        "final/return": float(results["eval"]["mean_return"]),
        "final/neuron_sparsity": float(deployed["neuron_sparsity"]) if deployed else 0.0,
        "final/weight_sparsity": float(deployed["weight_sparsity"]) if deployed else 0.0,
        "final/kept_weights": float(deployed["compact_weights"]) if deployed else float(dense_weights),
    }
