"""What a compact policy buys at inference: dense against compact in each runtime (torch, onnxruntime, int8
onnxruntime, C), measured in one run.

With ``--run``, each pruned run directory is exported (:func:`prune_rl.runner.export.export_run`: every format, the
exactness check, the int8 policy's return against the float one's over ``--episodes`` seeded episodes) and its cost
card becomes a table. Without, an SB3 PPO model of ``--env`` with ``--widths`` is built and ``--keep`` neurons of
each hidden layer of its deployed network are kept (the first ones; the cost depends on the shapes, not the
weights), timed on observations the dense policy visits; a third module, the *floor*, returns the observation
unchanged: the fixed cost of a call in torch and onnxruntime, which no pruning removes (measured in both modes).

Each time is the median of ``--repeats`` measurements with its range [min, max] (:mod:`prune_rl.report.cost`),
at one thread by default; C runs on one core through its compiled benchmark program, and has no batched call (its
batch time is a loop of single calls over the batch's rows).

Example::

    python scripts/bench_export.py --run runs/hopper runs/walker2d --out results/export_cost.md
    python scripts/bench_export.py --env Hopper-v5 --widths 256 256 --keep 12
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from torch import nn

from prune_rl.core import NeuronMask
from prune_rl.runner.export import FORMATS, export_run, observations, write_formats
from prune_rl.report.cost import measure, speedups
from prune_rl.sb3.deployed import DeployedPolicy, compact_model
from prune_rl.sb3.networks import prunable_nets

RUNTIME_NAMES = {"torch": "torch", "onnxruntime": "onnxruntime", "onnxruntime_int8": "onnxruntime int8", "c": "C"}


class Floor(nn.Module):
    """Returns its input: the cost of calling a policy at all."""

    def __init__(self, observation_space: gymnasium.spaces.Space) -> None:
        super().__init__()
        self.policy = SimpleNamespace(observation_space=observation_space)  # for export_onnx's observation shape

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs * 1.0


def floor_cost(observation_space: gymnasium.spaces.Space, timing: dict[str, Any]) -> dict[str, Any]:
    """:return: :func:`measure` of :class:`Floor` in torch and onnxruntime (on zeros: it does not look at them)."""
    floor = Floor(observation_space)
    raw = np.zeros((64, *(observation_space.shape or ())), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        write_formats(floor, Path(tmp), ("onnx",), Path(tmp))  # type: ignore[arg-type]
        return measure(floor, raw, 0, Path(tmp) / "policy.onnx", **timing)


def synthetic_card(args: argparse.Namespace) -> dict[str, Any]:
    """A cost card (as ``export_run`` writes) of a model of ``args.env`` at ``args.widths`` cut to ``args.keep``."""
    policy_kwargs = {"net_arch": {"pi": args.widths, "vf": args.widths}}
    model = PPO("MlpPolicy", args.env, policy_kwargs=policy_kwargs, device="cpu", seed=0)
    for layer in prunable_nets(model)[0].layers:
        NeuronMask(layer, torch.arange(layer.n_neurons) < args.keep).apply_()
    compact = compact_model(model)
    dense_policy, compact_policy = DeployedPolicy(model).eval(), DeployedPolicy(compact).eval()
    env = make_vec_env(args.env, n_envs=1, seed=0)
    raw = observations(env, dense_policy, 2000)
    env.close()
    timing = {"threads": args.threads, "batch": args.batch, "repeats": args.repeats, "min_run_time": args.min_run_time}
    costs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, policy in (("dense", dense_policy), ("compact", compact_policy)):
            folder = Path(tmp) / name
            folder.mkdir()
            files = write_formats(policy, folder, FORMATS, folder)
            costs[name] = measure(policy, raw, policy.n_params, files.get("onnx"), files.get("int8"), files.get("c"), **timing)
            print(name, json.dumps(costs[name]), flush=True)
    costs["floor"] = floor_cost(model.observation_space, timing)
    return {
        "run": f"synthetic {args.env} PPO {args.widths} -> {[args.keep] * len(args.widths)}",
        "env_id": args.env,
        "algo": "ppo",
        "net_arch": compact.policy_kwargs["net_arch"],
        **timing,
        **costs,
        "ratios": {
            "params": costs["dense"]["params"] / costs["compact"]["params"],
            "flops": costs["dense"]["flops"] / costs["compact"]["flops"],
        },
        "speedup": speedups(costs["dense"], costs["compact"]),
    }


def _time(stats: dict[str, float], digits: int) -> str:
    return f"{stats['median']:.{digits}f} [{stats['min']:.{digits}f}, {stats['max']:.{digits}f}]"


def headline(card: dict[str, Any]) -> dict[str, float]:
    """The figures the issue's targets name, for one card."""
    compact = card["compact"]["runtimes"]
    out: dict[str, float] = {"flop_ratio": card["ratios"]["flops"]}
    speedup = card["speedup"]
    out["onnx_latency_speedup"] = speedup["onnxruntime"]["latency"]  # compact / dense, both in onnxruntime
    out["onnx_vs_dense_torch_latency"] = speedup["onnxruntime"]["latency_vs_dense_torch"]
    if "c" in compact:
        out["c_latency_us"] = compact["c"]["latency_us"]["median"]
        out["c_latency_speedup"] = speedup["c"]["latency"]  # compact / dense, both in C
        out["c_vs_dense_torch_latency"] = speedup["c"]["latency_vs_dense_torch"]
    out["onnx_batch_share_of_flop_ratio"] = card["speedup"]["onnxruntime"]["share_of_flop_ratio"]
    if "onnxruntime_int8" in compact:
        out["int8_weight_bytes_ratio"] = compact["onnxruntime_int8"]["weight_bytes"] / compact["onnxruntime"]["weight_bytes"]
    returns = card.get("int8", {}).get("returns")
    if returns is not None:
        out["int8_return_gap"] = returns["relative_gap"]
    return out


def card_lines(card: dict[str, Any]) -> list[str]:
    """A markdown section for one cost card."""
    dense, compact, batch = card["dense"], card["compact"], card["batch"]
    lines = [
        f"### {card['env_id']} {card['algo']}: {card['net_arch']}",
        "",
        f"From `{card['run']}`. Parameters {dense['params']} -> {compact['params']} ({card['ratios']['params']:.1f}x), "
        f"FLOPs at batch 1 {dense['flops']} -> {compact['flops']} ({card['ratios']['flops']:.1f}x).",
        "",
        f"| runtime | dense batch 1 (us) | compact batch 1 (us) | speed-up | dense batch {batch} (ms) "
        f"| compact batch {batch} (ms) | speed-up | share of FLOP ratio | weight bytes dense -> compact |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, small in compact["runtimes"].items():
        big, speed = dense["runtimes"][name], card["speedup"][name]
        lines.append(
            f"| {RUNTIME_NAMES[name]} | {_time(big['latency_us'], 2)} | {_time(small['latency_us'], 2)} "
            f"| {speed['latency']:.1f}x | {_time(big['batch_ms'], 3)} | {_time(small['batch_ms'], 3)} "
            f"| {speed['batch']:.1f}x | {100 * speed['share_of_flop_ratio']:.1f}% | {big['weight_bytes']} -> "
            f"{small['weight_bytes']} |"
        )
    if "floor" in card:
        floor = card["floor"]["runtimes"]
        lines.append(
            f"| floor (a call that returns its input) | torch {_time(floor['torch']['latency_us'], 2)}, onnxruntime "
            f"{_time(floor['onnxruntime']['latency_us'], 2)} | | | torch {_time(floor['torch']['batch_ms'], 3)}, "
            f"onnxruntime {_time(floor['onnxruntime']['batch_ms'], 3)} | | | | |"
        )
    int8 = card.get("int8")
    if int8 is not None:
        agree = ", ".join(f"{k} {v:.4g}" for k, v in int8["agreement_with_float"].items())
        lines += ["", f"int8 against the float compact policy on {card['check']['states']} observations: {agree}."]
        returns = int8.get("returns")
        if returns is not None:
            lines[-1] += (
                f" Return over {returns['episodes']} episodes (seeds {returns['seed']}..): int8 "
                f"{returns['int8']['mean']:.1f} +- {returns['int8']['std']:.1f}, float {returns['float']['mean']:.1f} +- "
                f"{returns['float']['std']:.1f} ({100 * returns['relative_gap']:+.2f}%)."
            )
    if "check" in card:
        lines += ["", f"Check against the masked model: `{json.dumps(card['check'])}`."]
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="+", type=Path, help="pruned run directories to export and measure")
    parser.add_argument("--env", default="Hopper-v5", help="without --run: the task of the synthetic model")
    parser.add_argument("--widths", nargs="+", type=int, default=[256, 256])
    parser.add_argument("--keep", type=int, default=12, help="neurons kept per hidden layer of the deployed network")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=15, help="measurements of each time")
    parser.add_argument("--min-run-time", type=float, default=0.1, help="seconds each measurement runs at least")
    parser.add_argument("--episodes", type=int, default=20, help="int8 against float return, episodes (with --run)")
    parser.add_argument("--out", type=Path, help="markdown file for the tables (and .json beside it)")
    args = parser.parse_args()

    timing = {"threads": args.threads, "batch": args.batch, "repeats": args.repeats, "min_run_time": args.min_run_time}
    if args.run:
        cards = [export_run(run, None, episodes=args.episodes, **timing) for run in args.run]
        for card in cards:
            card["floor"] = floor_cost(gymnasium.make(card["env_id"]).observation_space, timing)
    else:
        cards = [synthetic_card(args)]
    command = shlex.join(["python", "scripts/bench_export.py", *sys.argv[1:]])
    lines = [
        f"Made by `{command}`",
        "",
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread, C by "
        f"`{shutil.which('cc') or 'no cc'} -O2`. Each time: median [min, max] of {args.repeats} measurements of at "
        f"least {args.min_run_time} s. Speed-up: dense / compact median in the same runtime.",
        "",
        "Batch 1 speed-ups of the compact policy: against dense in the same runtime, and against dense torch (the policy "
        "SB3 trained).",
        "",
        "| task | compact net | FLOP ratio | onnxruntime: vs dense onnxruntime | vs dense torch | C batch 1 (us) "
        f"| C: vs dense C | vs dense torch | onnxruntime batch {args.batch}: share of FLOP ratio "
        "| int8 weight bytes / float | int8 return vs float |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for card in cards:
        h = headline(card)
        gap = f"{100 * h['int8_return_gap']:+.2f}%" if "int8_return_gap" in h else "-"
        lines.append(
            f"| {card['env_id']} {card['algo']} | {card['net_arch']} | {h['flop_ratio']:.1f}x "
            f"| {h['onnx_latency_speedup']:.1f}x | {h['onnx_vs_dense_torch_latency']:.1f}x "
            f"| {h.get('c_latency_us', float('nan')):.3f} | {h.get('c_latency_speedup', float('nan')):.1f}x "
            f"| {h.get('c_vs_dense_torch_latency', float('nan')):.1f}x "
            f"| {100 * h['onnx_batch_share_of_flop_ratio']:.1f}% | {h.get('int8_weight_bytes_ratio', float('nan')):.2f} "
            f"| {gap} |"
        )
    lines.append("")
    for card in cards:
        lines += card_lines(card)
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        summary = [{"run": card["run"], **headline(card)} for card in cards]
        args.out.with_suffix(".json").write_text(json.dumps({"summary": summary, "cards": cards}, indent=2) + "\n")


if __name__ == "__main__":
    main()
