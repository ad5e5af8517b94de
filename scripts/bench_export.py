"""What a compact policy buys at inference: dense vs compact, torch vs onnxruntime, ratios measured in one run.

Builds an SB3 model of the given algorithm, env and hidden widths (or reads a pruned run with ``--run``), keeps
``--keep`` neurons of each hidden layer of the deployed network (the first ones; the cost depends on the shapes,
not the weights), and measures with :func:`prune_rl.report.cost.measure` the dense policy and the compact one
(:func:`prune_rl.sb3.export.compact_model`), each in torch and in onnxruntime, at one thread. A third module, the
*floor*, returns the observation unchanged (the same normalisation-free input, one trivial op): the fixed cost
of a call, which no pruning removes.

Reported: latency at batch 1, time per batch of 4096, the FLOP ratio, the compact policy's throughput speed-up over
the dense torch policy and the share of the FLOP ratio it reaches, and how much of the compact call is the floor.

Example::

    python scripts/bench_export.py --env Hopper-v5 --widths 256 256 --keep 12 --out results/export_cost.md
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shlex
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from stable_baselines3 import PPO
from torch import nn

from prune_rl.core import NeuronMask
from prune_rl.report.cost import measure
from prune_rl.sb3.export import DeployedPolicy, compact_model, export_onnx
from prune_rl.sb3.networks import prunable_nets


class Floor(nn.Module):
    """Returns its input: the cost of calling a policy at all."""

    def __init__(self, policy: DeployedPolicy) -> None:
        super().__init__()
        self.policy = policy.policy  # for export_onnx's observation shape

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs * 1.0


def _onnx(module: nn.Module, path: Path) -> None:
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx(module, path)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--widths", nargs="+", type=int, default=[256, 256])
    parser.add_argument("--keep", type=int, default=12, help="neurons kept per hidden layer of the deployed network")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--min-run-time", type=float, default=2.0, help="seconds each timing runs at least")
    parser.add_argument("--out", type=Path, help="markdown file for the table (and .json beside it)")
    args = parser.parse_args()

    model = PPO("MlpPolicy", args.env, policy_kwargs={"net_arch": {"pi": args.widths, "vf": args.widths}}, device="cpu")
    for layer in prunable_nets(model)[0].layers:
        NeuronMask(layer, torch.arange(layer.n_neurons) < args.keep).apply_()
    compact = compact_model(model)
    dense_policy, compact_policy = DeployedPolicy(model).eval(), DeployedPolicy(compact).eval()
    obs_shape = tuple(model.observation_space.shape or ())
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, module, params in [
            ("dense", dense_policy, dense_policy.n_params),
            ("compact", compact_policy, compact_policy.n_params),
            ("floor", Floor(dense_policy), 0),
        ]:
            path = Path(tmp) / f"{name}.onnx"
            _onnx(module, path)
            results[name] = measure(module, obs_shape, params, path, args.threads, args.batch, args.min_run_time)
            print(name, json.dumps(results[name]), flush=True)

    dense, small, floor = results["dense"], results["compact"], results["floor"]
    flop_ratio = dense["flops"] / small["flops"]
    best_batch = min(small["torch_batch_ms"], small["onnx_batch_ms"])
    speedup = dense["torch_batch_ms"] / best_batch
    summary = {
        "flop_ratio": flop_ratio,
        "batch_speedup_vs_dense_torch": speedup,
        "share_of_flop_limit": speedup / flop_ratio,
        "onnx_latency_speedup_vs_dense_torch": dense["torch_latency_us"] / small["onnx_latency_us"],
        "floor_share_of_compact_onnx_latency": floor["onnx_latency_us"] / small["onnx_latency_us"],
        "floor_share_of_compact_onnx_batch": floor["onnx_batch_ms"] / small["onnx_batch_ms"],
    }
    command = shlex.join(["python", "scripts/bench_export.py", *sys.argv[1:]])
    lines = [
        f"Made by `{command}` ({platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} thread; deployed network {args.widths} -> {[args.keep] * len(args.widths)}).",
        "",
        f"| policy | params | FLOPs (batch 1) | torch batch 1 (us) | ONNX batch 1 (us) | torch batch {args.batch} (ms) "
        f"| ONNX batch {args.batch} (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['params']} | {r['flops']} | {r['torch_latency_us']:.1f} | {r['onnx_latency_us']:.1f} "
            f"| {r['torch_batch_ms']:.3f} | {r['onnx_batch_ms']:.3f} |"
        )
    lines += ["", *(f"- {key}: {value:.3f}" for key, value in summary.items())]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps({"results": results, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
