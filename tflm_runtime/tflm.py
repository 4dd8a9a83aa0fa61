"""Run a ``.tflite`` model in TensorFlow Lite Micro (the pip ``tflite-micro`` host build) and
measure the tensor arena it really uses.

TFLM's Python interpreter has no getter for the arena figures: ``print_allocations()`` makes the
``RecordingMicroAllocator`` print them with ``MicroPrintf`` to the C-level stderr. We capture them
by pointing file descriptor 2 at a temporary file for the duration of the call, then parse:

* ``head`` = non-persistent section: TFLM's memory plan of the activation tensors (every buffer
  rounded up to 16 bytes, ``MicroArenaBufferAlignment``) and the kernels' scratch buffers;
* ``tail`` = persistent section: ``TfLiteEvalTensor`` / ``TfLiteTensor`` / node structs, op data,
  the allocator objects themselves.

The host build is 64-bit: the structs in the tail hold pointers and ``size_t`` and are larger
than on a 32-bit Cortex-M (``TfLiteEvalTensor`` is 24 bytes here, 12 there). The head holds only
int8 tensor data at 16-byte-aligned offsets, identical on both, so the head is what the project's
predicted peak memory is compared with; the tail is reported separately as host overhead.

Example (the small int8 model of :func:`unas.export.demo.small_int8_tflite`)::

    >>> import numpy as np
    >>> from unas.export.demo import small_int8_tflite
    >>> blob = small_int8_tflite()
    >>> x = np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype("float32")
    >>> runner = TflmRunner(blob)
    >>> runner.run(quantize_float_inputs(runner, x)).shape
    (16, 10)
    >>> runner.arena_usage().nonpersistent_bytes
    208
"""
from __future__ import annotations

import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unas.errors import DataError, UnsupportedOperatorError

#: TFLM aligns every planned buffer (and the arena start) to this many bytes.
TFLM_BUFFER_ALIGNMENT = 16
#: Below this the host build segfaults instead of failing: the arena cannot even hold TFLM's own
#: allocator objects (about 0.5 KiB on 64-bit), so smaller arenas are refused up front.
MIN_ARENA_BYTES = 1024

_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
_HEAD = re.compile(r"Arena allocation head (\d+) bytes")
_TAIL = re.compile(r"Arena allocation tail (\d+) bytes")
_RECORD = re.compile(r"'([^']+)' used (\d+) bytes with alignment overhead "
                     r"\(requested (\d+) bytes for (\d+) ")


@dataclass(frozen=True)
class ArenaUsage:
    """TFLM's arena figures for one loaded model (bytes; see the module docstring).

    ``records`` maps each ``RecordingMicroAllocator`` category (e.g. ``'TfLiteEvalTensor data'``)
    to ``(used_bytes, requested_bytes, count)``.
    """

    total_bytes: int
    nonpersistent_bytes: int
    persistent_bytes: int
    records: dict[str, tuple[int, int, int]] = field(default_factory=dict)


@contextmanager
def capture_c_stderr() -> Iterator[list[str]]:
    """Redirect file descriptor 2 (what C code writes to) into a buffer; yields a one-item list
    that holds the captured text after the ``with`` block."""
    captured: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


def parse_allocations(text: str) -> ArenaUsage:
    """Parse the lines ``print_allocations()`` writes (raises DataError if they are missing)."""
    figures = [p.search(text) for p in (_TOTAL, _HEAD, _TAIL)]
    if not all(figures):
        raise DataError("TFLM print_allocations(): expected 'Arena allocation total/head/tail' "
                        f"lines, got {text.strip()[:200]!r}")
    total, head, tail = (int(m.group(1)) for m in figures)  # type: ignore[union-attr]
    records = {m.group(1): (int(m.group(2)), int(m.group(3)), int(m.group(4)))
               for m in _RECORD.finditer(text)}
    return ArenaUsage(total, head, tail, records)


def default_arena_size(model_bytes: bytes) -> int:
    """A generous arena for measuring: 4x the model file plus 1 MiB."""
    return 4 * len(model_bytes) + (1 << 20)


class TflmRunner:
    """One TFLM interpreter over ``model_bytes`` with a fixed ``arena_size``.

    Raises :class:`unas.errors.DataError` naming ``path`` (the file the bytes came from) if the
    bytes are no well-formed ``.tflite`` (checked by :func:`tflm_runtime.tflite_model.parse_tflite`
    before TFLM sees them) or TFLM does not load the model (with TFLM's own message). The host
    TFLM crashes (SIGSEGV, SIGABRT) instead of failing on some inconsistent models and arena
    sizes, so by default (``isolated_check``) the model is first loaded and run once on zeros in
    a child process (:mod:`tflm_runtime.isolated`, ~0.3 s): a crash there is a DataError, not
    this process dying. Pass ``isolated_check=False`` only for bytes already checked so.
    """

    def __init__(self, model_bytes: bytes, arena_size: int | None = None,
                 path: str = "the model", isolated_check: bool = True) -> None:
        from tflite_micro.python.tflite_micro import runtime

        from tflm_runtime.tflite_model import parse_tflite

        self.path = str(path)
        self.model_bytes = bytes(model_bytes)
        try:
            parse_tflite(self.model_bytes, self.path)  # one DataError for malformed bytes
        except UnsupportedOperatorError:
            pass  # a tensor type the reader does not model: TFLM decides
        self.arena_size = int(arena_size or default_arena_size(self.model_bytes))
        if self.arena_size < MIN_ARENA_BYTES:
            raise DataError(f"arena_size: expected at least {MIN_ARENA_BYTES} bytes (TFLM's own "
                            f"allocator objects must fit), got {self.arena_size}")
        if isolated_check:
            from tflm_runtime.isolated import run_isolated

            status, message = run_isolated([(self.model_bytes, self.arena_size, None)])[0]
            if status != "ok":
                what = "crashed loading" if status == "crashed" else "cannot load"
                raise DataError(f"{self.path}: TFLM {what} the model (and one invoke on zeros) "
                                f"with a {self.arena_size}-byte arena: {message}")
        with capture_c_stderr() as log:
            try:
                self._interp = runtime.Interpreter.from_bytes(self.model_bytes,
                                                              arena_size=self.arena_size)
                error = None
            except (RuntimeError, ValueError) as exc:
                error = exc
        if error is not None:
            message = " ".join(log[0].split())[-300:] or str(error)
            raise DataError(f"{self.path}: TFLM cannot load the model with a "
                            f"{self.arena_size}-byte arena: {message}")
        self.input_details = self._interp.get_input_details(0)
        self.output_details = self._interp.get_output_details(0)
        self._invoked = False

    def invoke_one(self, sample: np.ndarray) -> np.ndarray:
        """Run one sample (without batch dim, input dtype) and return the output (no batch dim)."""
        shape = tuple(int(d) for d in self.input_details["shape"])
        dtype = self.input_details["dtype"]
        x = np.asarray(sample)
        if x.dtype != dtype or x.size != math.prod(shape):
            raise DataError(f"TFLM input: expected {math.prod(shape)} values of {np.dtype(dtype).name}"
                            f" (shape {shape}), got {x.size} of {x.dtype}")
        self._interp.set_input(x.reshape(shape), 0)
        with capture_c_stderr() as log:
            try:
                self._interp.invoke()
                error = None
            except RuntimeError as exc:
                error = exc
        if error is not None:
            raise DataError(f"TFLM invoke failed: {' '.join(log[0].split())[-300:] or error}")
        self._invoked = True
        return np.array(self._interp.get_output(0))[0]

    def run(self, inputs: np.ndarray, progress: Callable[[Iterator], Iterator] | None = None
            ) -> np.ndarray:
        """Outputs for a batch of quantised ``inputs`` (batch first), one invoke per sample."""
        samples = iter(inputs) if progress is None else progress(iter(inputs))
        return np.stack([self.invoke_one(s) for s in samples])

    def arena_usage(self) -> ArenaUsage:
        """TFLM's recorded arena figures (invokes once on zeros first if never invoked)."""
        if not self._invoked:
            shape = tuple(int(d) for d in self.input_details["shape"])
            self.invoke_one(np.zeros(shape[1:], dtype=self.input_details["dtype"]))
        with capture_c_stderr() as log:
            self._interp.print_allocations()
        return parse_allocations(log[0])

    def mean_latency_s(self, sample: np.ndarray, repeats: int = 20) -> float:
        """Mean host wall time of one invoke over ``repeats`` runs (after one warm-up run)."""
        self.invoke_one(sample)
        shape = tuple(int(d) for d in self.input_details["shape"])
        self._interp.set_input(np.asarray(sample).reshape(shape), 0)
        start = time.perf_counter()
        for _ in range(repeats):
            self._interp.invoke()
        return (time.perf_counter() - start) / repeats


def loads_and_runs(model_bytes: bytes, arena_size: int) -> bool:
    """True if TFLM loads ``model_bytes`` with ``arena_size`` bytes and one invoke succeeds.

    The attempt runs in a child process (:mod:`tflm_runtime.isolated`): where the host TFLM
    crashes (some arena sizes just too small, malformed models) that is an attempt that failed.
    """
    from tflm_runtime.isolated import run_isolated

    return run_isolated([(model_bytes, int(arena_size), None)])[0][0] == "ok"


def smallest_arena(model_bytes: bytes, upper: int | None = None, path: str = "the model") -> int:
    """The smallest ``arena_size`` with which TFLM loads and runs the model (bisection).

    This is the figure to give a device: it includes the persistent tail, the planned head and
    the transient scratch TFLM needs while preparing (temporary TfLiteTensors, planner state).
    Every probe runs in a child process (:func:`tflm_runtime.isolated.bisect_isolated`): the
    host TFLM crashes at some sizes instead of failing (e.g. 1,800 B crashes where 1,750 B fails
    and 1,850 B runs), which must be a probe that failed, not the caller dying. Raises
    :class:`~unas.errors.DataError` naming ``path`` if TFLM cannot run the model at ``upper``.
    """
    from tflm_runtime.isolated import bisect_isolated

    hi = int(upper or default_arena_size(model_bytes))
    status, value = bisect_isolated(model_bytes, MIN_ARENA_BYTES, max(hi, MIN_ARENA_BYTES))
    if status != "ok":
        verb = "crashed" if status == "crashed" else "failed"
        raise DataError(f"{path}: TFLM {verb} running the model with a {hi}-byte arena: {value}")
    return int(value)


def quantize_float_inputs(runner: TflmRunner, x: np.ndarray) -> np.ndarray:
    """Float inputs → the model input's integer type using its (scale, zero_point)
    (:func:`tflm_runtime.tflite_model.quantize_input`)."""
    from tflm_runtime.tflite_model import quantize_input

    params: dict[str, Any] = runner.input_details["quantization_parameters"]
    return quantize_input(x, float(params["scales"][0]), int(params["zero_points"][0]),
                          np.dtype(runner.input_details["dtype"]).name)
