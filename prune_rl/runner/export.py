"""``prune-rl export RUN_DIR``: a pruned run's compact SB3 model, its deployable policies and what they cost.

Writes ``RUN_DIR/export/``: ``compact.zip`` (plain SB3, pruned neurons removed), ``vecnormalize.pkl`` (a copy, for
runs that normalise), the deterministic policy in each format asked for (:data:`FORMATS`; raw observations in, the
action out, normalisation and action post-processing included): ``policy.onnx``, ``policy.int8.onnx`` (8-bit
weights) and ``policy.h`` + ``policy.c`` (C99, with the benchmark program ``policy_bench.c``), and ``cost.json``:
the dense and the compact policy's parameters, FLOPs, bytes of weights, latency and throughput in each runtime
(:func:`prune_rl.report.cost.measure`; the dense policy is written in the same formats in a temporary folder),
compact against dense in the same runtime, a check that every format acts as the masked model does on real
observations (visited by the masked policy on a separately seeded env), and the int8 policy's return against the
float one's over the same evaluation episodes.
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
from prune_rl.report.cost import measure, onnx_weight_bytes, speedups
from prune_rl.runner import rundir
from prune_rl.runner.build import build_model
from prune_rl.sb3.c_export import c_actions, c_sources, compile_c, write_c
from prune_rl.sb3.deployed import (
    DeployedPolicy,
    compact_model,
    export_onnx,
    load_vecnormalize,
    quantize_onnx,
    widen_,
)

CHECK_SEED = 30_000  # the check's env seed: apart from training (seed), evaluation (+10000) and PuRL's states
FORMATS = ("onnx", "int8", "c")  # what --format accepts; the default writes every one that applies
COMPACT_FILE = "compact.zip"
CARD_FILE = "cost.json"
FILES = {"onnx": ("policy.onnx",), "int8": ("policy.int8.onnx",), "c": ("policy.h", "policy.c", "policy_bench.c")}


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
    data = path.with_name(path.name + ".data")  # the exporter leaves an empty external-data file beside small graphs
    if data.is_file() and data.stat().st_size == 0:
        data.unlink()


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
    """:return: ``identical`` (share of equal actions) or ``max_abs_diff`` and ``mean_abs_diff`` (continuous)."""
    if discrete:
        return {"identical": float(np.mean(actions.reshape(-1) == reference.reshape(-1)))}
    diff = np.abs(actions.reshape(reference.shape) - reference)
    return {"max_abs_diff": float(np.max(diff)), "mean_abs_diff": float(np.mean(diff))}


def episode_returns(env: Any, act: Any, episodes: int, seed: int) -> list[float]:
    """
    :param env: A raw (unnormalised) one-env VecEnv.
    :param act: Raw observations ``(1, *obs_shape)`` float32 -> actions.
    :param episodes: Episodes to run; episode ``k`` starts from ``env.seed(seed + k)``, the same for every policy.
    :param seed: Seed of the first episode.
    :return: The undiscounted return of each episode.
    """
    returns = []
    for k in range(episodes):
        env.seed(seed + k)
        obs, total, done = env.reset(), 0.0, False
        while not done:
            obs, reward, dones, _ = env.step(act(np.asarray(obs, dtype=np.float32)))
            total, done = total + float(reward[0]), bool(dones[0])
        returns.append(total)
    return returns


def parse_formats(values: list[str] | None) -> tuple[str, ...] | None:
    """
    :param values: ``--format`` values, each one format or a comma-separated list (``None``: the default).
    :return: The formats in :data:`FORMATS` order, or ``None`` for every one that applies.
    :raises ConfigError: On an unknown format.
    """
    if not values:
        return None
    names = {name.strip().lower() for value in values for name in value.split(",") if name.strip()}
    unknown = sorted(names - set(FORMATS))
    if unknown:
        raise ConfigError(f"unknown export format {', '.join(unknown)} (known: {', '.join(FORMATS)})")
    return tuple(f for f in FORMATS if f in names)


def write_formats(
    policy: DeployedPolicy, directory: Path, formats: tuple[str, ...], build: Path, description: str = ""
) -> dict[str, Path]:
    """
    Write a policy in the given formats and build what times and checks them.

    :param policy: The deterministic policy.
    :param directory: Where its files go.
    :param formats: Some of :data:`FORMATS`.
    :param build: A scratch folder: the float ONNX graph that int8 is quantized from when ``onnx`` is not asked
        for, and the compiled C benchmark program.
    :param description: A line for the C files' opening comment.
    :return: ``onnx``, ``int8`` (their files) and ``c`` (the compiled program; absent without a C compiler).
    """
    out: dict[str, Path] = {}
    if "onnx" in formats or "int8" in formats:
        onnx_path = (directory if "onnx" in formats else build) / FILES["onnx"][0]
        _onnx(policy, onnx_path)
        if "onnx" in formats:
            out["onnx"] = onnx_path
        if "int8" in formats:
            quantize_onnx(onnx_path, directory / FILES["int8"][0])
            out["int8"] = directory / FILES["int8"][0]
    if "c" in formats:
        write_c(policy, directory, description)
        if shutil.which("cc") is not None:
            out["c"] = compile_c(directory, build / "policy_bench")
    return out


def _session(path: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _masked_dense(cfg: Any, narrow: Any, run_dir: Path) -> Any:
    """The model at the configured widths holding a shrunk run's deployed network, removed neurons as zeros."""
    env = make_env(cfg.env, seed=cfg.seed, n_envs=1, training=False)
    try:
        dense = build_model(cfg, env)
        widen_(dense, narrow, rundir.load_masks(run_dir), deployed_only=True)
    except ValueError as exc:
        raise ConfigError(f"{run_dir}: {exc}") from None
    finally:
        env.close()
    dense.policy.to("cpu")
    return dense


def _check_measurement(threads: int, repeats: int, episodes: int, min_run_time: float) -> None:
    """:raises ConfigError: On a count or time that cannot be measured with (one line, naming the option)."""
    for name, value, least in (("threads", threads, 1), ("repeats", repeats, 1), ("episodes", episodes, 0)):
        if value < least:
            raise ConfigError(f"--{name} must be >= {least}, got {value}")
    if min_run_time <= 0:
        raise ConfigError(f"--min-run-time must be > 0, got {min_run_time}")


def export_run(
    run_dir: str | Path,
    formats: tuple[str, ...] | None = None,
    threads: int = 1,
    n_states: int = 2000,
    repeats: int = 7,
    min_run_time: float = 0.05,
    episodes: int = 20,
    batch: int = 4096,
) -> dict[str, Any]:
    """
    Export a pruned run: compact model, deployable policies, cost card.

    :param run_dir: A run directory of ``prune-rl train`` with ``masks.pt``.
    :param formats: Some of :data:`FORMATS` (``None``: every one that applies; ``c`` only for an MLP policy).
    :param threads: CPU threads of the torch and onnxruntime timings.
    :param n_states: Real observations the exactness check and the timings run on.
    :param repeats: Measurements of each time (the card gives their median and range).
    :param min_run_time: Seconds each measurement runs at least.
    :param episodes: Evaluation episodes of the int8 policy and the float one, on the same seeds (0: none).
    :param batch: The large batch of the throughput measurement.
    :return: The content of ``export/cost.json``.
    :raises ConfigError: On a directory that is not a pruned run, a model that does not load, a format the policy
        cannot be written in, or a count or time out of range (one line).
    """
    _check_measurement(threads, repeats, episodes, min_run_time)
    run_dir = Path(run_dir)
    missing = rundir.missing_file(run_dir)
    if missing is not None:
        raise ConfigError(f"{run_dir} is not a run directory: {missing} is missing")
    if not rundir.has_masks(run_dir):
        raise ConfigError(f"{run_dir} has no {rundir.MASKS_FILE}: it is a dense run, with nothing to remove")
    cfg = rundir.read_config(run_dir, lenient_pruning=True)
    model = rundir.load_model(run_dir, cfg)
    stats = rundir.vecnormalize_file(run_dir, cfg)
    vecnormalize = None
    if stats is not None:
        try:
            vecnormalize = load_vecnormalize(stats, model.observation_space)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError) as exc:
            raise ConfigError(f"{stats} does not load ({str(exc).splitlines()[0]})") from None

    formats = _applicable(DeployedPolicy(model, vecnormalize), formats, run_dir)
    compact = compact_model(model)
    compact_policy = DeployedPolicy(compact, vecnormalize).eval()
    if cfg.pruning.shrink:  # model.zip holds the narrow networks: measure against the masked dense network they were
        model = _masked_dense(cfg, model, run_dir)
    dense_policy = DeployedPolicy(model, vecnormalize).eval()
    out = run_dir / rundir.EXPORT_DIR
    out.mkdir(exist_ok=True)
    for name in (n for f in FORMATS if f not in formats for n in FILES[f]):  # a format written before, not now
        (out / name).unlink(missing_ok=True)
    compact.save(out / COMPACT_FILE)
    if stats is not None:
        shutil.copyfile(stats, out / stats.name)

    env = make_env(cfg.env, seed=cfg.seed + CHECK_SEED, n_envs=1, training=False)
    raw_env = env.venv if isinstance(env, VecNormalize) else env
    raw = observations(raw_env, dense_policy, n_states)
    env.close()
    seen = vecnormalize.normalize_obs(raw) if vecnormalize is not None else raw
    reference, _ = model.predict(seen, deterministic=True)
    discrete = dense_policy.discrete
    about = f"{cfg.env.id} {cfg.algo.name}, net_arch {compact.policy_kwargs['net_arch']}, from {run_dir}"
    timing: dict[str, Any] = {"threads": threads, "batch": batch, "repeats": repeats, "min_run_time": min_run_time}
    with tempfile.TemporaryDirectory() as tmp:
        build, dense_dir = Path(tmp) / "compact", Path(tmp) / "dense"
        build.mkdir()
        dense_dir.mkdir()
        files = write_formats(compact_policy, out, formats, build, about)
        check: dict[str, Any] = {
            "states": n_states,
            "compact": agreement(compact.predict(seen, deterministic=True)[0], reference, discrete),
        }
        for name in ("onnx", "int8"):
            if name in files:
                check[name] = agreement(_session(files[name]).run(None, {"obs": raw})[0], reference, discrete)
        if "c" in files:
            check["c"] = agreement(_c_actions(files["c"], raw, discrete), reference, discrete)
        elif "c" in formats:
            check["c"] = "not compiled: no C compiler (cc) on PATH"
        int8 = _int8_card(files, build, raw, discrete, cfg, episodes) if "int8" in files else None

        dense_files = write_formats(dense_policy, dense_dir, formats, dense_dir)
        dense = measure(dense_policy, raw, dense_policy.n_params, dense_files.get("onnx"), dense_files.get("int8"),
                        dense_files.get("c"), **timing)  # fmt: skip
        compact_cost = measure(compact_policy, raw, compact_policy.n_params, files.get("onnx"), files.get("int8"),
                               files.get("c"), **timing)  # fmt: skip
    dense["model_bytes"] = rundir.model_file(run_dir).stat().st_size
    compact_cost["model_bytes"] = (out / COMPACT_FILE).stat().st_size
    card = {
        "run": str(run_dir),
        "env_id": cfg.env.id,
        "algo": cfg.algo.name,
        "net_arch": compact.policy_kwargs["net_arch"],
        "formats": list(formats),
        **timing,
        "dense": dense,
        "compact": compact_cost,
        "ratios": {  # dense / compact: how many times smaller
            "params": dense["params"] / compact_cost["params"],
            "flops": dense["flops"] / max(compact_cost["flops"], 1),
        },
        "speedup": speedups(dense, compact_cost),  # dense / compact in the same runtime
        "check": check,
    }
    if int8 is not None:
        card["int8"] = int8
    (out / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    return card


def _applicable(policy: DeployedPolicy, formats: tuple[str, ...] | None, run_dir: Path) -> tuple[str, ...]:
    """The formats to write: those asked for (refusing C for a policy it cannot express), or every one that applies."""
    try:
        c_sources(policy)
    except ValueError as exc:
        if formats is not None and "c" in formats:
            raise ConfigError(f"{run_dir}: the policy cannot be written as C: {exc}") from None
        return tuple(f for f in formats or FORMATS if f != "c")
    return formats or FORMATS


def _c_actions(binary: Path, raw: np.ndarray, discrete: bool) -> np.ndarray:
    actions = c_actions(binary, raw)
    return actions[:, 0].astype(np.int64) if discrete else actions


def _int8_card(files: dict[str, Path], build: Path, raw: np.ndarray, discrete: bool, cfg: Any, episodes: int) -> dict:
    """The int8 policy against the float one: action agreement, bytes of weights, returns over the same episodes."""
    float_path = files.get("onnx", build / FILES["onnx"][0])
    sessions = {"float": _session(float_path), "int8": _session(files["int8"])}
    card: dict[str, Any] = {
        "agreement_with_float": agreement(
            sessions["int8"].run(None, {"obs": raw})[0], sessions["float"].run(None, {"obs": raw})[0], discrete
        ),
        "weight_bytes_ratio": onnx_weight_bytes(files["int8"]) / onnx_weight_bytes(float_path),
    }
    if episodes > 0:
        seed = cfg.seed + cfg.eval.seed_offset
        env = make_env(cfg.env, seed=seed, n_envs=1, training=False)
        raw_env = env.venv if isinstance(env, VecNormalize) else env
        returns = {
            name: episode_returns(raw_env, lambda obs, s=session: s.run(None, {"obs": obs})[0], episodes, seed)
            for name, session in sessions.items()
        }
        env.close()
        means = {name: float(np.mean(r)) for name, r in returns.items()}
        card["returns"] = {
            "episodes": episodes,
            "seed": seed,
            **{name: {"mean": means[name], "std": float(np.std(r))} for name, r in returns.items()},
            "relative_gap": (means["int8"] - means["float"]) / max(abs(means["float"]), 1e-9),
        }
    return card


def _runtime_line(card: dict[str, Any], name: str) -> str:
    dense, compact = card["dense"]["runtimes"][name], card["compact"]["runtimes"][name]
    speed = card["speedup"][name]
    return (
        f"{name} {compact['latency_us']['median']:.2f} us (dense {dense['latency_us']['median']:.2f}, "
        f"{speed['latency']:.1f}x) / {compact['batch_ms']['median']:.3f} ms ({speed['batch']:.1f}x)"
    )


def written_files(card: dict[str, Any]) -> list[str]:
    """:return: The files :func:`export_run` wrote into ``RUN_DIR/export/`` (besides a copy of the statistics)."""
    return [COMPACT_FILE, *(name for f in card["formats"] for name in FILES[f]), CARD_FILE]


def summary_line(card: dict[str, Any]) -> str:
    """:return: One line for the terminal: sizes, FLOPs, and per runtime the compact policy's times and speed-ups."""
    dense, compact, ratios = card["dense"], card["compact"], card["ratios"]
    times = "; ".join(_runtime_line(card, name) for name in compact["runtimes"])
    line = (
        f"compact {card['net_arch']}: {compact['params']} params (dense {dense['params']}), {ratios['flops']:.1f}x fewer "
        f"FLOPs; median batch 1 / batch {card['batch']}, {card['threads']} thread, against dense in the same runtime: "
        f"{times}"
    )
    returns = card.get("int8", {}).get("returns")
    if returns is not None:
        line += (
            f"; int8 return {returns['int8']['mean']:.1f} vs float {returns['float']['mean']:.1f} "
            f"({100 * returns['relative_gap']:+.1f}%, {returns['episodes']} episodes)"
        )
    return line
