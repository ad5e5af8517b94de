"""The export benchmark: dense and compact measured in every runtime in one run, the FLOP ratio from the shapes."""

import json
import shutil
import sys
from pathlib import Path

import pytest

from conftest import load_script

QUICK = ["--repeats", "2", "--min-run-time", "0.001", "--batch", "64"]


def test_the_export_benchmark_measures_dense_compact_and_the_floor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_script("bench_export")
    out = tmp_path / "cost.md"
    argv = ["bench_export.py", "--widths", "16", "16", "--keep", "4", *QUICK, "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    card = json.loads(out.with_suffix(".json").read_text())["cards"][0]
    dense, compact = card["dense"], card["compact"]
    assert dense["flops"] == 2 * (11 * 16 + 16 * 16 + 16 * 3)  # Hopper-v5: 11 observations, 3 actions
    assert compact["flops"] == 2 * (11 * 4 + 4 * 4 + 4 * 3)
    assert card["ratios"]["flops"] == pytest.approx(dense["flops"] / compact["flops"])
    assert compact["params"] == (11 * 4 + 4) + (4 * 4 + 4) + (4 * 3 + 3)  # its Linear layers
    runtimes = {"torch", "onnxruntime", "onnxruntime_int8"} | ({"c"} if shutil.which("cc") else set())
    assert set(card["speedup"]) == runtimes and set(card["floor"]["runtimes"]) == {"torch", "onnxruntime"}
    assert compact["runtimes"]["torch"]["weight_bytes"] == 4 * compact["params"] + 4 * 2 * 3  # and the action bounds
    text = out.read_text()
    assert text.startswith("Made by `python scripts/bench_export.py --widths 16 16")
    assert "| onnxruntime int8 | " in text and "| floor " in text
    summary = json.loads(out.with_suffix(".json").read_text())["summary"][0]
    onnx = card["speedup"]["onnxruntime"]
    assert summary["onnx_latency_speedup"] == onnx["latency"]  # compact against dense, both in onnxruntime
    assert onnx["latency_vs_dense_torch"] == pytest.approx(
        dense["runtimes"]["torch"]["latency_us"]["median"] / compact["runtimes"]["onnxruntime"]["latency_us"]["median"]
    )


def test_the_export_benchmark_reads_pruned_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_export import _trained

    bench = load_script("bench_export")
    run, out = _trained(tmp_path), tmp_path / "cost.md"
    monkeypatch.setattr(sys, "argv", ["bench_export.py", "--run", str(run), *QUICK, "--episodes", "1", "--out", str(out)])
    bench.main()
    summary = json.loads(out.with_suffix(".json").read_text())["summary"][0]
    assert summary["run"] == str(run) and "int8_return_gap" in summary and summary["flop_ratio"] > 1
    assert (run / "export" / "cost.json").is_file() and "CartPole-v1 ppo" in out.read_text()
