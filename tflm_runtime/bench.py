"""One ``.tflite`` measured in TFLM (the library behind ``python -m unas.measure``).

:func:`bench_tflite` measures, :func:`format_table` prints: int8 test accuracy in TFLM (when
test data is given), TFLM's arena (non-persistent head = activations + scratch; persistent tail =
64-bit host structs; total; and the smallest arena that runs, by bisection), the project's
predictions of the head (working-set peak and exact replay of TFLM's planner), weight bytes,
MACs and mean host latency per inference.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BenchRow:
    """Everything the table shows (bytes, MACs, seconds; accuracy None without data)."""

    int8_accuracy: float | None
    head_bytes: int
    tail_bytes: int
    total_bytes: int
    smallest_arena_bytes: int
    predicted_peak_bytes: int
    predicted_head_bytes: int
    weight_bytes: int
    macs: int
    latency_s: float


def bench_tflite(model_bytes: bytes, x_test: np.ndarray | None = None,
                 y_test: np.ndarray | None = None, repeats: int = 50) -> BenchRow:
    """Measure one ``.tflite`` in TFLM (accuracy only if float ``x_test``/``y_test`` given)."""
    from tqdm import tqdm

    from tflm_runtime.tflite_model import parse_tflite, resource_graph
    from tflm_runtime.tflm import TflmRunner, quantize_float_inputs, smallest_arena
    from tflm_runtime.arena import predicted_head, predicted_peak

    runner = TflmRunner(model_bytes)
    accuracy = None
    sample = np.zeros(tuple(runner.input_details["shape"][1:]), runner.input_details["dtype"])
    if x_test is not None and y_test is not None:
        q = quantize_float_inputs(runner, x_test)
        outputs = runner.run(q, progress=lambda it: tqdm(it, total=len(q), desc="int8 test",
                                                         file=sys.stderr, leave=False))
        accuracy = float(np.mean(np.argmax(outputs.reshape(len(q), -1), axis=-1)
                                 == np.asarray(y_test).reshape(-1)))
        sample = q[0]
    usage = runner.arena_usage()
    model = parse_tflite(model_bytes)
    graph = resource_graph(model)
    return BenchRow(
        int8_accuracy=accuracy,
        head_bytes=usage.nonpersistent_bytes,
        tail_bytes=usage.persistent_bytes,
        total_bytes=usage.total_bytes,
        smallest_arena_bytes=smallest_arena(model_bytes),
        predicted_peak_bytes=predicted_peak(model),
        predicted_head_bytes=predicted_head(model),
        weight_bytes=sum(int(d["size_bytes"]) for _, d in graph.nodes(data=True)),
        macs=sum(int(d["macs"]) for _, d in graph.nodes(data=True)),
        latency_s=runner.mean_latency_s(sample, repeats),
    )


def format_table(row: BenchRow, name: str) -> str:
    """A two-column markdown table of ``row``."""
    accuracy = "n/a (no --data)" if row.int8_accuracy is None else f"{row.int8_accuracy:.4f}"
    lines = [
        f"| {name} | |", "|---|---|",
        f"| int8 test accuracy (TFLM) | {accuracy} |",
        f"| TFLM arena head (activations + scratch) | {row.head_bytes} B |",
        f"| predicted head (replay of TFLM's planner) | {row.predicted_head_bytes} B |",
        f"| predicted peak activations (working set) | {row.predicted_peak_bytes} B |",
        f"| TFLM arena tail (persistent, 64-bit host) | {row.tail_bytes} B |",
        f"| TFLM arena total / smallest that runs | {row.total_bytes} B / "
        f"{row.smallest_arena_bytes} B |",
        f"| weights (int8 + int32 bias) | {row.weight_bytes} B |",
        f"| MACs | {row.macs} |",
        f"| mean latency (host, TFLM reference kernels) | {1e3 * row.latency_s:.3f} ms |",
    ]
    return "\n".join(lines)
