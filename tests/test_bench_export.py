"""The export benchmark: dense, compact and floor measured in one run, with the FLOP ratio computed from the shapes."""

import json
import sys
from pathlib import Path

import pytest

from conftest import load_script


def test_the_export_benchmark_measures_dense_compact_and_the_floor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_script("bench_export")
    out = tmp_path / "cost.md"
    argv = [
        "bench_export.py",
        "--widths",
        "16",
        "16",
        "--keep",
        "4",
        "--batch",
        "64",
        "--min-run-time",
        "0.01",
        "--out",
        str(out),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    data = json.loads(out.with_suffix(".json").read_text())
    dense, compact = data["results"]["dense"], data["results"]["compact"]
    assert dense["flops"] == 2 * (11 * 16 + 16 * 16 + 16 * 3)  # Hopper-v5: 11 observations, 3 actions
    assert compact["flops"] == 2 * (11 * 4 + 4 * 4 + 4 * 3)
    assert data["summary"]["flop_ratio"] == pytest.approx(dense["flops"] / compact["flops"])
    assert compact["params"] == (11 * 4 + 4) + (4 * 4 + 4) + (4 * 3 + 3)  # its Linear layers
    assert "| compact | " in out.read_text()
