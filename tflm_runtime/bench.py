"""One ``.tflite`` measured in TFLM (the library behind ``python -m unas.measure``).

:func:`bench_tflite` measures, :func:`format_table` prints: int8 test accuracy in TFLM (when
test data is given), TFLM's arena (non-persistent head = activations + scratch; persistent tail =
64-bit host structs; total; and the smallest arena that runs, by bisection), the project's
predictions of the head (working-set peak and exact replay of TFLM's planner), weight bytes,
MACs and mean host latency per inference.

The measurement is whatever TFLM runs: it does not depend on the code generator's operator
coverage. The predictions need the project's resource model, which knows the generator's
operators (:data:`tflm_runtime.tflite_model.SUPPORTED_OPS`); for a model with another operator
they are None and :attr:`BenchRow.unsupported` says what the generator would refuse.

TFLM first runs the model in a child process (the arena bisection,
:func:`tflm_runtime.tflm.smallest_arena`), so a model on which the host TFLM crashes is a
:class:`~unas.errors.DataError`, not the measuring process dying.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

#: Operators with weights (their constant inputs count as weight bytes; as in the resource graph)
_WEIGHT_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD",
                         "CONCATENATION"})


@dataclass(frozen=True)
class BenchRow:
    """Everything the table shows (bytes, MACs, seconds; accuracy None without data; the
    predictions None, with ``unsupported`` saying why, when the resource model does not cover
    an operator)."""

    int8_accuracy: float | None
    head_bytes: int
    tail_bytes: int
    total_bytes: int
    smallest_arena_bytes: int
    predicted_peak_bytes: int | None
    predicted_head_bytes: int | None
    weight_bytes: int
    macs: int
    latency_s: float
    unsupported: str | None = None


def _weights_and_macs(model) -> tuple[int, int]:
    """Weight bytes and MACs with the resource graph's conventions, for any operators (MACs of
    CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED; constants of the weight operators)."""
    from tflm_runtime.tflite_model import operator_macs
    from unas.errors import UnasError

    weights = macs = 0
    for op in model.operators:
        if op.opcode in _WEIGHT_OPS:
            weights += sum(model.tensors[i].nbytes for i in op.inputs
                           if i >= 0 and model.tensors[i].is_constant)
        if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            try:
                macs += operator_macs(model, op)
            except (UnasError, ValueError, IndexError):
                pass  # an operator shape the resource model does not read: counted as 0
    return weights, macs


def bench_tflite(model_bytes: bytes, x_test: np.ndarray | None = None,
                 y_test: np.ndarray | None = None, repeats: int = 50,
                 path: str = "the model") -> BenchRow:
    """Measure one ``.tflite`` in TFLM (accuracy only if float ``x_test``/``y_test`` given);
    ``path`` names the model in errors."""
    from tqdm import tqdm

    from tflm_runtime.arena import predicted_head, predicted_peak
    from tflm_runtime.tflite_model import parse_tflite, resource_graph
    from tflm_runtime.tflm import TflmRunner, quantize_float_inputs, smallest_arena
    from unas.errors import UnsupportedOperatorError

    model = parse_tflite(model_bytes, path)  # one DataError for malformed bytes
    smallest = smallest_arena(model_bytes, path=path)  # in a child: TFLM may crash
    runner = TflmRunner(model_bytes, path=path, isolated_check=False)  # checked just above
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
    peak = head = None
    unsupported = None
    try:
        resource_graph(model)
        peak, head = predicted_peak(model), predicted_head(model)
    except UnsupportedOperatorError as exc:
        unsupported = str(exc)
    weights, macs = _weights_and_macs(model)
    return BenchRow(
        int8_accuracy=accuracy,
        head_bytes=usage.nonpersistent_bytes,
        tail_bytes=usage.persistent_bytes,
        total_bytes=usage.total_bytes,
        smallest_arena_bytes=smallest,
        predicted_peak_bytes=peak,
        predicted_head_bytes=head,
        weight_bytes=weights,
        macs=macs,
        latency_s=runner.mean_latency_s(sample, repeats),
        unsupported=unsupported,
    )


def format_table(row: BenchRow, name: str) -> str:
    """A two-column markdown table of ``row``."""
    accuracy = "n/a (no --data)" if row.int8_accuracy is None else f"{row.int8_accuracy:.4f}"

    def predicted(value: int | None) -> str:
        return "n/a (operator not modelled, see below)" if value is None else f"{value} B"

    lines = [
        f"| {name} | |", "|---|---|",
        f"| int8 test accuracy (TFLM) | {accuracy} |",
        f"| TFLM arena head (activations + scratch) | {row.head_bytes} B |",
        f"| predicted head (replay of TFLM's planner) | {predicted(row.predicted_head_bytes)} |",
        f"| predicted peak activations (working set) | {predicted(row.predicted_peak_bytes)} |",
        f"| TFLM arena tail (persistent, 64-bit host) | {row.tail_bytes} B |",
        f"| TFLM arena total / smallest that runs | {row.total_bytes} B / "
        f"{row.smallest_arena_bytes} B |",
        f"| weights (int8 + int32 bias) | {row.weight_bytes} B |",
        f"| MACs | {row.macs} |",
        f"| mean latency (host, TFLM reference kernels) | {1e3 * row.latency_s:.3f} ms |",
        "| code generator (python -m tflm_runtime.codegen) | "
        + ("supports every operator |" if row.unsupported is None
           else f"would refuse: {row.unsupported.replace('|', '/')} |"),
    ]
    return "\n".join(lines)
