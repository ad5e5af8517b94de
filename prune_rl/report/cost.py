"""What a deployed policy costs: parameters, FLOPs per forward pass, bytes of weights, CPU latency and throughput,
in each runtime it is deployed in.

Runtimes: ``torch`` (the module), ``onnxruntime`` (its ONNX graph), ``onnxruntime_int8`` (the graph with 8-bit
weights) and ``c`` (the C policy, through its compiled benchmark program, :mod:`prune_rl.sb3.c_export`).

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix products: ``2 * m * n * k`` per
``addmm``; activations and additions of biases are not counted). A time is the median of ``repeats`` repeated
measurements with their range (min, max), each repeat timing as many calls as fill ``min_run_time`` seconds, at a
stated number of threads (torch's threads; onnxruntime's ``intra_op_num_threads``, one inter-op thread; C runs on
one). Batch 1 calls cycle over real observations; a batch is those observations repeated to the batch size. C has
no batched call: its batch time is one loop of single calls over the batch's rows. Bytes of weights count every
constant the format stores (weights, biases, normalisation statistics, action bounds; scales and zero points for
int8); a file's size adds the format's own overhead.
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

RUNTIMES = ("torch", "onnxruntime", "onnxruntime_int8", "c")


def flops(module: nn.Module, example: torch.Tensor) -> int:
    """
    :param module: A module.
    :param example: One input batch.
    :return: FLOPs of one forward pass on ``example``.
    """
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(example)
    return int(counter.get_total_flops())


def spread(seconds: list[float], scale: float = 1.0) -> dict[str, float]:
    """:return: ``median``, ``min`` and ``max`` of repeated measurements, times ``scale`` (e.g. 1e6 for us)."""
    return {"median": scale * statistics.median(seconds), "min": scale * min(seconds), "max": scale * max(seconds)}


def repeat(fn: Callable[[], Any], repeats: int, min_run_time: float) -> list[float]:
    """
    :param fn: A call to time.
    :param repeats: Measurements.
    :param min_run_time: Seconds each measurement runs at least (the number of calls is found first).
    :return: Seconds per call, one value per measurement.
    """
    fn()  # warm-up
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_run_time or number >= 1 << 30:
            break
        number *= 2
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return times


def onnx_weight_bytes(path: str | Path) -> int:
    """:return: Bytes of every constant tensor of an ONNX graph (initializers and ``Constant`` nodes)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    tensors = list(graph.initializer) + [a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.t.dims]
    return sum(numpy_helper.to_array(t).nbytes for t in tensors)


def _inputs(observations: np.ndarray, batch: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Up to 64 single observations to cycle over, and the observations repeated to ``batch`` rows."""
    rows = np.ascontiguousarray(observations, dtype=np.float32)
    ones = [rows[i : i + 1].copy() for i in range(min(len(rows), 64))]
    many = np.ascontiguousarray(rows[np.arange(batch) % len(rows)])
    return ones, many


def _torch(module: nn.Module, observations: np.ndarray, threads: int, batch: int, repeats: int, min_run_time: float):
    ones, many = _inputs(observations, batch)
    cycle, big = itertools.cycle([torch.as_tensor(o) for o in ones]), torch.as_tensor(many)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            return repeat(lambda: module(next(cycle)), repeats, min_run_time), repeat(
                lambda: module(big), repeats, min_run_time
            )
    finally:
        torch.set_num_threads(before)


def _onnx(path: Path, observations: np.ndarray, threads: int, batch: int, repeats: int, min_run_time: float):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    ones, many = _inputs(observations, batch)
    cycle, big = itertools.cycle([{"obs": o} for o in ones]), {"obs": many}
    return repeat(lambda: session.run(None, next(cycle)), repeats, min_run_time), repeat(
        lambda: session.run(None, big), repeats, min_run_time
    )


def c_timings(
    binary: str | Path, observations: np.ndarray, batch: int = 4096, repeats: int = 7, min_run_time: float = 0.05
) -> tuple[list[float], list[float], int]:
    """
    Time the C policy with its benchmark program (``clock_gettime`` around many calls, run as a subprocess).

    :param binary: The compiled ``policy_bench`` (:func:`prune_rl.sb3.c_export.compile_c`).
    :param observations: ``(n, *obs_shape)`` raw observations.
    :param batch: Rows of the batch loop.
    :param repeats: Measurements of each.
    :param min_run_time: Seconds each measurement runs at least.
    :return: Seconds per call (batch 1) and per loop over ``batch`` rows, one value per measurement, and the bytes
        of the policy's constant arrays.
    """
    _, many = _inputs(observations, batch)
    with tempfile.TemporaryDirectory() as tmp:
        many.tofile(Path(tmp) / "obs.bin")
        out = subprocess.run(
            [str(binary), "time", str(Path(tmp) / "obs.bin"), str(repeats), repr(min_run_time)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    values: dict[str, list[float]] = {"call": [], "batch": [], "weight_bytes": []}
    for line in filter(None, out):
        key, value = line.split()
        values[key].append(float(value))
    return values["call"], values["batch"], int(values["weight_bytes"][0])


def measure(
    module: nn.Module,
    observations: np.ndarray,
    params: int | None = None,
    onnx_path: str | Path | None = None,
    int8_path: str | Path | None = None,
    c_binary: str | Path | None = None,
    threads: int = 1,
    batch: int = 4096,
    repeats: int = 7,
    min_run_time: float = 0.05,
) -> dict[str, Any]:
    """
    Measure one policy in every runtime it is given in.

    :param module: The policy (observations in, actions out): timed in torch.
    :param observations: ``(n, *obs_shape)`` raw observations to time on (real ones, visited by a policy).
    :param params: Its parameter count (default: every parameter of ``module``; a policy module may hold more
        networks than it runs).
    :param onnx_path: Its ONNX file, timed in onnxruntime.
    :param int8_path: Its ONNX file with 8-bit weights, timed in onnxruntime.
    :param c_binary: Its compiled C benchmark program.
    :param threads: CPU threads for torch and onnxruntime.
    :param batch: The large batch of the throughput measurement.
    :param repeats: Measurements of each time.
    :param min_run_time: Seconds each measurement runs at least.
    :return: ``params``, ``flops`` (batch 1), and per runtime (``torch``, ``onnxruntime``, ``onnxruntime_int8``,
        ``c``, those given) ``latency_us`` (batch 1) and ``batch_ms`` (``batch``) as ``{median, min, max}``,
        ``weight_bytes`` and, for a file, ``file_bytes``.
    """
    n_params = params if params is not None else sum(p.numel() for p in module.parameters())
    example = torch.as_tensor(np.asarray(observations[:1], dtype=np.float32))
    runtimes: dict[str, dict[str, Any]] = {}
    timing = (threads, batch, repeats, min_run_time)
    one, many = _torch(module, observations, *timing)
    runtimes["torch"] = {
        "weight_bytes": 4 * n_params + sum(b.numel() * b.element_size() for b in module.buffers(recurse=False)),
        "latency_us": spread(one, 1e6),
        "batch_ms": spread(many, 1e3),
    }
    for name, path in (("onnxruntime", onnx_path), ("onnxruntime_int8", int8_path)):
        if path is not None:
            one, many = _onnx(Path(path), observations, *timing)
            runtimes[name] = {
                "weight_bytes": onnx_weight_bytes(path),
                "file_bytes": Path(path).stat().st_size,
                "latency_us": spread(one, 1e6),
                "batch_ms": spread(many, 1e3),
            }
    if c_binary is not None:
        one, many, weight_bytes = c_timings(c_binary, observations, batch, repeats, min_run_time)
        runtimes["c"] = {"weight_bytes": weight_bytes, "latency_us": spread(one, 1e6), "batch_ms": spread(many, 1e3)}
    return {"params": n_params, "flops": flops(module, example), "runtimes": runtimes}


def speedups(dense: dict[str, Any], compact: dict[str, Any]) -> dict[str, dict[str, float]]:
    """
    :param dense: :func:`measure` of the dense policy.
    :param compact: :func:`measure` of the compact policy.
    :return: Per runtime both were measured in, dense / compact median time at batch 1 (``latency``) and at the
        large batch (``batch``), both in that runtime, and that batch speed-up as a share of the FLOP ratio
        (``share_of_flop_ratio``); and the compact policy in that runtime against the dense one in torch
        (``latency_vs_dense_torch``, ``batch_vs_dense_torch``), where torch was measured: what deploying it buys
        over the policy SB3 trained, of which the runtime's part is the difference from the same-runtime figure.
    """
    flop_ratio = dense["flops"] / max(compact["flops"], 1)
    reference = dense["runtimes"].get("torch")
    out = {}
    for name, small in compact["runtimes"].items():
        big = dense["runtimes"].get(name)
        if big is not None:
            batch = big["batch_ms"]["median"] / small["batch_ms"]["median"]
            out[name] = {
                "latency": big["latency_us"]["median"] / small["latency_us"]["median"],
                "batch": batch,
                "share_of_flop_ratio": batch / flop_ratio,
            }
            if reference is not None:
                out[name]["latency_vs_dense_torch"] = reference["latency_us"]["median"] / small["latency_us"]["median"]
                out[name]["batch_vs_dense_torch"] = reference["batch_ms"]["median"] / small["batch_ms"]["median"]
    return out
