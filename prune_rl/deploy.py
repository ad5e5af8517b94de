"""``prune-rl export RUN_DIR``: a pruned run's compact SB3 model, its ONNX policy and what both cost.

Writes ``RUN_DIR/export/``: ``compact.zip`` (plain SB3, pruned neurons removed), ``policy.onnx`` (raw observations
in, the deterministic action out, normalisation and action post-processing included), ``vecnormalize.pkl`` (a copy,
for runs that normalise) and ``cost.json``: the dense and the compact policy's parameters, FLOPs, file sizes,
latency and throughput (:func:`prune_rl.report.cost.measure`), and a check that the compact model and the ONNX
policy act as the masked model does on real observations (visited by the masked policy on a separately seeded env).
"""

from __future__ import annotations

import json
import logging
import pickle
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecNormalize

from prune_rl.config import ConfigError
from prune_rl.environment import make_env
from prune_rl.evaluate import load_run_config, load_run_model
from prune_rl.report.cost import measure
from prune_rl.rundir import missing_file
from prune_rl.sb3.export import DeployedPolicy, compact_model, export_onnx, load_vecnormalize, widen_
from prune_rl.train import MASKS_FILE, MODEL_FILE, VECNORMALIZE_FILE, build_model

EXPORT_DIR = "export"
CHECK_SEED = 30_000  # the check's env seed: apart from training (seed), evaluation (+10000) and PuRL's states


def _onnx(module: DeployedPolicy, path: Path) -> None:
    """Export quietly: the exporter logs its progress and optional dependencies it skips."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx(module, path)
    finally:
        logger.setLevel(level)


def observations(env: Any, policy: DeployedPolicy, n_states: int) -> np.ndarray:
    """
    :param env: A raw (unnormalised) one-env VecEnv.
    :param policy: The policy that acts.
    :param n_states: Observations to collect.
    :return: ``(n_states, *obs_shape)`` raw observations the policy visits.
    """
    obs, states = env.reset(), list[np.ndarray]()
    with torch.no_grad():
        while len(states) < n_states:
            states.append(np.asarray(obs[0], dtype=np.float32))
            action = policy(torch.as_tensor(obs, dtype=torch.float32)).numpy()
            obs, *_ = env.step(action)
    return np.stack(states)


def agreement(actions: np.ndarray, reference: np.ndarray, discrete: bool) -> dict[str, float]:
    """:return: ``identical`` (share of equal actions) or ``max_abs_diff`` (continuous)."""
    if discrete:
        return {"identical": float(np.mean(actions.reshape(-1) == reference.reshape(-1)))}
    return {"max_abs_diff": float(np.max(np.abs(actions - reference)))}


def _masked_dense(cfg: Any, narrow: Any, run_dir: Path) -> Any:
    """The model at the configured widths holding a shrunk run's deployed network, removed neurons as zeros."""
    env = make_env(cfg.env, seed=cfg.seed, n_envs=1, training=False)
    try:
        dense = build_model(cfg, env)
        widen_(dense, narrow, torch.load(run_dir / MASKS_FILE, map_location="cpu", weights_only=True), deployed_only=True)
    except ValueError as exc:
        raise ConfigError(f"{run_dir}: {exc}") from None
    finally:
        env.close()
    dense.policy.to("cpu")
    return dense


def export_run(run_dir: str | Path, threads: int = 1, n_states: int = 2000, min_run_time: float = 0.5) -> dict[str, Any]:
    """
    Export a pruned run: compact model, ONNX policy, cost card.

    :param run_dir: A run directory of ``prune-rl train`` with ``masks.pt``.
    :param threads: CPU threads of the timings.
    :param n_states: Real observations the exactness check runs on.
    :param min_run_time: Seconds each timing runs at least.
    :return: The content of ``export/cost.json``.
    :raises ConfigError: On a directory that is not a pruned run or a model that does not load (one line).
    """
    run_dir = Path(run_dir)
    missing = missing_file(run_dir)
    if missing is not None:
        raise ConfigError(f"{run_dir} is not a run directory: {missing} is missing")
    if not (run_dir / MASKS_FILE).is_file():
        raise ConfigError(f"{run_dir} has no {MASKS_FILE}: it is a dense run, with nothing to remove")
    cfg = load_run_config(run_dir, lenient_pruning=True)
    model = load_run_model(run_dir, cfg)
    vecnormalize = None
    if cfg.env.normalize:
        if not (run_dir / VECNORMALIZE_FILE).is_file():
            raise ConfigError(f"{run_dir} trained with env.normalize but {VECNORMALIZE_FILE} is missing")
        try:
            vecnormalize = load_vecnormalize(run_dir / VECNORMALIZE_FILE, model.observation_space)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError) as exc:
            raise ConfigError(f"{run_dir / VECNORMALIZE_FILE} does not load ({str(exc).splitlines()[0]})") from None

    out = run_dir / EXPORT_DIR
    out.mkdir(exist_ok=True)
    compact = compact_model(model)
    if cfg.pruning.shrink:  # model.zip holds the narrow networks: measure against the masked dense network they were
        model = _masked_dense(cfg, model, run_dir)
    compact.save(out / "compact.zip")
    if vecnormalize is not None:
        shutil.copyfile(run_dir / VECNORMALIZE_FILE, out / VECNORMALIZE_FILE)
    dense_policy, compact_policy = DeployedPolicy(model, vecnormalize).eval(), DeployedPolicy(compact, vecnormalize).eval()
    _onnx(compact_policy, out / "policy.onnx")

    env = make_env(cfg.env, seed=cfg.seed + CHECK_SEED, n_envs=1, training=False)
    raw_env = env.venv if isinstance(env, VecNormalize) else env
    raw = observations(raw_env, dense_policy, n_states)
    env.close()
    seen = vecnormalize.normalize_obs(raw) if vecnormalize is not None else raw
    reference, _ = model.predict(seen, deterministic=True)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(out / "policy.onnx"), providers=["CPUExecutionProvider"])
    discrete = dense_policy.discrete
    check = {
        "states": n_states,
        "compact": agreement(compact.predict(seen, deterministic=True)[0], reference, discrete),
        "onnx": agreement(session.run(None, {"obs": raw})[0], reference, discrete),
    }

    obs_shape = tuple(model.observation_space.shape or ())
    with tempfile.TemporaryDirectory() as tmp:
        _onnx(dense_policy, Path(tmp) / "dense.onnx")
        dense = measure(
            dense_policy, obs_shape, dense_policy.n_params, Path(tmp) / "dense.onnx", threads, min_run_time=min_run_time
        )
    compact_cost = measure(
        compact_policy, obs_shape, compact_policy.n_params, out / "policy.onnx", threads, min_run_time=min_run_time
    )
    dense["model_bytes"] = (run_dir / MODEL_FILE).stat().st_size
    compact_cost["model_bytes"] = (out / "compact.zip").stat().st_size
    card = {
        "run": str(run_dir),
        "env_id": cfg.env.id,
        "algo": cfg.algo.name,
        "net_arch": compact.policy_kwargs["net_arch"],
        "dense": dense,
        "compact": compact_cost,
        "ratios": {  # dense / compact: how many times smaller or faster
            "params": dense["params"] / compact_cost["params"],
            "flops": dense["flops"] / max(compact_cost["flops"], 1),
            "torch_latency": dense["torch_latency_us"] / compact_cost["torch_latency_us"],
            "torch_batch": dense["torch_batch_ms"] / compact_cost["torch_batch_ms"],
            "onnx_latency_vs_dense_torch": dense["torch_latency_us"] / compact_cost["onnx_latency_us"],
            "onnx_batch_vs_dense_torch": dense["torch_batch_ms"] / compact_cost["onnx_batch_ms"],
        },
        "check": check,
    }
    (out / "cost.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def summary_line(card: dict[str, Any]) -> str:
    """:return: One line for the terminal: sizes, FLOPs and speed-ups of the compact policy."""
    dense, compact, ratios = card["dense"], card["compact"], card["ratios"]
    return (
        f"compact {card['net_arch']}: {compact['params']} params (dense {dense['params']}), "
        f"{ratios['flops']:.1f}x fewer FLOPs; {card['dense']['threads']} thread: ONNX batch 1 "
        f"{compact['onnx_latency_us']:.1f} us (dense torch {dense['torch_latency_us']:.1f} us), batch {dense['batch']} "
        f"{compact['onnx_batch_ms']:.3f} ms (dense torch {dense['torch_batch_ms']:.3f} ms)"
    )
