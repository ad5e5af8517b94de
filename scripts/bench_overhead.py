"""Time cost of the runner and of pruning, as ratios measured in one run.

Trains PPO on CartPole-v1 with rl-baselines3-zoo's tuned hyperparameters (``conf/algo_env/ppo_cartpole.yaml``)
in fresh processes, interleaving the variants over repetitions so that machine noise spreads over all of them:

- ``sb3``: the same hyperparameters through SB3 directly (``PPO(...).learn``), torch's default thread count;
- ``sb3_1thread``: the same with ``torch.set_num_threads(1)`` (prune-rl's default ``torch_threads``);
- ``dense``: ``prune-rl train pruning=none eval.freq=0`` (no periodic evaluation, like the SB3 script);
- ``dsp``: ``prune-rl train pruning=dsp eval.freq=0``;
- ``dsp_fan_in``: the same with ``pruning.repair.fan_in_lr=1.0`` (optimizer step hooks: the one per-step cost);
- ``dsp_linear``: ``dsp`` with the least-squares fold and the selection made for it (``pruning.repair.fold=linear
  pruning.importance=reconstruction``), the costliest pruning events;
- ``dense_eval`` / ``dsp_eval``: the same with the default periodic evaluation (10 evaluations of 10 episodes).

Times are of ``learn()`` alone (``results.json`` ``wall_seconds`` for prune-rl). Writes a markdown table.
``--env`` and ``--n-timesteps`` time the prune-rl variants on another task (the ``sb3`` ones are CartPole's).

``--in-process`` instead times, in one process and interleaved, ``learn()`` of the model SB3 builds directly and of
the model prune-rl builds from its configs (with its TensorBoard/CSV/stdout logger), both on one thread: the
runner's own cost, free of process start-up and of other processes' noise.

    python scripts/bench_overhead.py --reps 3
    python scripts/bench_overhead.py --in-process --reps 3 --n-timesteps 25000
    python scripts/bench_overhead.py --env walker2d --n-timesteps 50000 --variants dsp dsp_fan_in --table /tmp/w.md
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prune_rl.runner import rundir

VARIANTS: dict[str, list[str] | None] = {
    "sb3": None,
    "sb3_1thread": None,
    "dense": ["pruning=none", "eval.freq=0"],
    "dsp": ["pruning=dsp", "eval.freq=0"],
    "dsp_fan_in": ["pruning=dsp", "pruning.repair.fan_in_lr=1.0", "eval.freq=0"],
    "dsp_linear": ["pruning=dsp", "pruning.repair.fold=linear", "pruning.importance=reconstruction", "eval.freq=0"],
    "dense_eval": ["pruning=none"],
    "dsp_eval": ["pruning=dsp"],
}


def sb3_model(seed: int) -> Any:
    """PPO on CartPole-v1 built by SB3 directly, with the zoo's tuned hyperparameters."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.utils import LinearSchedule

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    return PPO(
        "MlpPolicy",
        env,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=LinearSchedule(0.001, 0.0, 1.0),
        clip_range=LinearSchedule(0.2, 0.0, 1.0),
        seed=seed,
        device="cpu",
    )


def runner_model(seed: int, logdir: Path) -> Any:
    """The same run built by prune-rl from its configs, with its logger (``pruning=none``)."""
    from omegaconf import OmegaConf
    from stable_baselines3.common.logger import configure

    from prune_rl.app import compose_config
    from prune_rl.config import train_config
    from prune_rl.environment import make_env
    from prune_rl.runner.build import build_model

    data = OmegaConf.to_container(compose_config(["pruning=none", f"seed={seed}"]), resolve=True)
    cfg = train_config(data)  # type: ignore[arg-type]
    model = build_model(cfg, make_env(cfg.env, seed=seed, gamma=cfg.algo.kwargs["gamma"]))
    model.set_logger(configure(str(logdir), ["stdout", "tensorboard", "csv"]))
    return model


def in_process(reps: int, n_timesteps: int, table: Path) -> None:
    """Interleaved ``learn()`` timings of the SB3-built and the prune-rl-built model: one thread, one process."""
    import torch

    torch.set_num_threads(1)
    times: dict[str, list[float]] = {"sb3": [], "prune-rl": []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(reps):
            for name in ["sb3", "prune-rl"] if rep % 2 == 0 else ["prune-rl", "sb3"]:
                model = sb3_model(rep) if name == "sb3" else runner_model(rep, Path(tmp) / f"log{rep}")
                start = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):
                    model.learn(n_timesteps)
                times[name].append(time.perf_counter() - start)
                print(f"rep {rep} {name:9s} {times[name][-1]:6.1f} s", flush=True)
    sb3, ours = statistics.median(times["sb3"]), statistics.median(times["prune-rl"])
    lines = [
        f"<!-- written by: python scripts/bench_overhead.py {' '.join(sys.argv[1:])} -->",
        f"In one process, interleaved, {reps} repetitions of {n_timesteps} steps, one torch thread:",
        "",
        "| model built by | median learn() s | ratio |",
        "|---|---|---|",
        f"| SB3 directly | {sb3:.1f} | 1.00 |",
        f"| prune-rl (configs + TensorBoard/CSV/stdout logger) | {ours:.1f} | {ours / sb3:.2f} |",
    ]
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def sb3_worker(seed: int, threads: int, out: Path) -> None:
    """Train and evaluate :func:`sb3_model` (a worker process of the subprocess mode)."""
    import numpy as np
    import torch
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    if threads > 0:
        torch.set_num_threads(threads)
    model = sb3_model(seed)
    start = time.perf_counter()
    model.learn(100_000)
    wall = time.perf_counter() - start
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=seed + 10_000)
    returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True, return_episode_rewards=True)
    result = {"wall_seconds": wall, "mean_return": float(np.mean(returns)), "threads": torch.get_num_threads()}
    out.write_text(json.dumps(result))


def run_variant(name: str, seed: int, workdir: Path, env: str = "cartpole", n_timesteps: int | None = None) -> dict:
    out = workdir / f"{name}_seed{seed}"
    overrides = VARIANTS[name]
    if overrides is None:
        if env != "cartpole" or n_timesteps is not None:
            raise SystemExit(f"variant {name} is SB3 on CartPole-v1 for 100k steps only")
        threads = 1 if name == "sb3_1thread" else 0
        out.mkdir(parents=True)
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            "--seed",
            str(seed),
            "--threads",
            str(threads),
            "--out",
            str(out / "r.json"),
        ]
        subprocess.run(cmd, check=True, capture_output=True)
        return json.loads((out / "r.json").read_text())
    cmd = [
        sys.executable,
        "-m",
        "prune_rl.cli",
        "train",
        f"env={env}",
        "algo=ppo",
        f"seed={seed}",
        "progress_bar=false",
        f"hydra.run.dir={out}",
        *([f"n_timesteps={n_timesteps}"] if n_timesteps else []),
        *overrides,
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    results = rundir.read_results(out)
    return {"wall_seconds": results["wall_seconds"], "mean_return": results["eval"]["mean_return"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="repetitions (seeds 0..reps-1)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--table", type=Path, default=None, help="default: results/overhead.md (or overhead_inprocess.md)")
    parser.add_argument("--in-process", action="store_true", help="time SB3-built vs prune-rl-built models in one process")
    parser.add_argument("--n-timesteps", type=int, default=None, help="default: 100000 with --in-process, else the task's")
    parser.add_argument("--env", default="cartpole", help="task of the prune-rl variants")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sb3_worker(args.seed, args.threads, args.out)
        return
    if args.in_process:
        in_process(args.reps, args.n_timesteps or 100_000, args.table or Path("results/overhead_inprocess.md"))
        return
    args.table = args.table or Path("results/overhead.md")

    rows: dict[str, list[dict]] = {v: [] for v in args.variants}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for k, name in enumerate(args.variants):
                # rotate the order each repetition so no variant always runs first
                name = args.variants[(k + rep) % len(args.variants)]
                result = run_variant(name, rep, Path(tmp), args.env, args.n_timesteps)
                rows[name].append(result)
                print(f"rep {rep} {name:12s} {result['wall_seconds']:6.1f} s  return {result['mean_return']:.1f}", flush=True)

    base = statistics.median(r["wall_seconds"] for r in rows[args.variants[0]])
    lines = [
        f"<!-- written by: python scripts/bench_overhead.py {' '.join(sys.argv[1:])} -->",
        f"| variant | median learn() s | ratio to `{args.variants[0]}` | returns (seeds 0..{args.reps - 1}) |",
        "|---|---|---|---|",
    ]
    for name, results in rows.items():
        med = statistics.median(r["wall_seconds"] for r in results)
        returns = ", ".join(f"{r['mean_return']:.0f}" for r in results)
        lines.append(f"| {name} | {med:.1f} | {med / base:.2f} | {returns} |")
    medians = {name: statistics.median(r["wall_seconds"] for r in results) for name, results in rows.items()}
    for variant in ("dsp", "dsp_fan_in"):
        if "dense" in rows and variant in rows:
            ratio = medians[variant] / medians["dense"]
            lines.append(f"\nPruning overhead ({variant} / dense, no periodic evaluation): **{ratio:.2f}x**")
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
