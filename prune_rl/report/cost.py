"""What a deployed policy costs: parameters, FLOPs per forward pass, file size, CPU latency and throughput.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix products: ``2 * m * n * k`` per
``addmm``; activations and additions of biases are not counted). Times are medians of
``torch.utils.benchmark.Timer.blocked_autorange`` at a stated number of threads, for the torch module and for its
ONNX graph in onnxruntime (``intra_op_num_threads`` = the same number, one inter-op thread).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.benchmark import Timer
from torch.utils.flop_counter import FlopCounterMode


def flops(module: nn.Module, example: torch.Tensor) -> int:
    """
    :param module: A module.
    :param example: One input batch.
    :return: FLOPs of one forward pass on ``example``.
    """
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(example)
    return int(counter.get_total_flops())


def _median_seconds(stmt: str, scope: dict[str, Any], threads: int, min_run_time: float) -> float:
    timer = Timer(stmt=stmt, globals=scope, num_threads=threads)
    return float(timer.blocked_autorange(min_run_time=min_run_time).median)


def measure(
    module: nn.Module,
    obs_shape: tuple[int, ...],
    params: int | None = None,
    onnx_path: str | Path | None = None,
    threads: int = 1,
    batch: int = 4096,
    min_run_time: float = 0.5,
) -> dict[str, Any]:
    """
    Measure one policy.

    :param module: The policy (observations in, actions out).
    :param obs_shape: Shape of one observation.
    :param params: Its parameter count (default: every parameter of ``module``; a policy module may hold more
        networks than it runs).
    :param onnx_path: Its ONNX file, also timed in onnxruntime (``None``: torch only).
    :param threads: CPU threads for torch and onnxruntime.
    :param batch: The large batch of the throughput measurement.
    :param min_run_time: Seconds each timing runs at least.
    :return: ``params``, ``flops`` (batch 1), ``torch_latency_us`` (batch 1), ``torch_batch_ms`` (``batch``), and with
        ONNX ``onnx_bytes``, ``onnx_latency_us``, ``onnx_batch_ms``; ``threads`` and ``batch``.
    """
    one, many = torch.zeros(1, *obs_shape), torch.randn(batch, *obs_shape, generator=torch.Generator().manual_seed(0))
    out: dict[str, Any] = {
        "params": params if params is not None else sum(p.numel() for p in module.parameters()),
        "flops": flops(module, one),
        "threads": threads,
        "batch": batch,
    }
    with torch.no_grad():
        scope = {"f": module, "one": one, "many": many}
        out["torch_latency_us"] = 1e6 * _median_seconds("f(one)", scope, threads, min_run_time)
        out["torch_batch_ms"] = 1e3 * _median_seconds("f(many)", scope, threads, min_run_time)
    if onnx_path is not None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        scope = {"s": session, "one": {"obs": one.numpy()}, "many": {"obs": many.numpy()}}
        out["onnx_bytes"] = Path(onnx_path).stat().st_size
        out["onnx_latency_us"] = 1e6 * _median_seconds("s.run(None, one)", scope, threads, min_run_time)
        out["onnx_batch_ms"] = 1e3 * _median_seconds("s.run(None, many)", scope, threads, min_run_time)
    return out
