"""Edit a ``.tflite`` flatbuffer: reorder the operators of subgraph 0, attach an offline memory plan.

Uses the flatbuffer object API of the TFLite schema (the bindings shipped with ``tflite-micro``,
identical to ``tensorflow.lite.python.schema_py_generated`` and TF-free):
``ModelT.InitFromPackedBuf`` → edit → ``flatbuffers.Builder`` → ``Pack`` → ``Finish(b"TFL3")``.
The Python packer does not honour the schema's ``force_align: 16`` on buffer data, so the result
is re-aligned with TFLM's own ``tflite_flatbuffer_align`` tool (C++ object API), which keeps
weights 16-byte aligned as the converter writes them.

Example (the small int8 model of :func:`unas.export.demo.small_int8_tflite`; the
offsets come from :func:`tflm_runtime.arena.offline_plan`)::

    >>> from unas.export.demo import small_int8_tflite
    >>> blob = small_int8_tflite()
    >>> from tflm_runtime.arena import offline_plan
    >>> from tflm_runtime.tflite_model import parse_tflite
    >>> operator_count(blob)
    4
    >>> edited = reorder_operators(blob, [0, 1, 2, 3])
    >>> offsets, extent = offline_plan(parse_tflite(edited))
    >>> planned = with_offline_plan(edited, offsets)
    >>> read_offline_plan(planned) == list(offsets)
    True
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from tflm_runtime.tflite_model import OFFLINE_PLAN_METADATA, offline_plan_of
from unas.errors import DataError

#: ``-1`` in the plan = let TFLM's online planner place this tensor.
ONLINE = -1


def _schema() -> ModuleType:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated
    return schema_py_generated


def unpack(model_bytes: bytes) -> Any:
    """The mutable object tree (``ModelT``) of a ``.tflite`` flatbuffer."""
    try:
        return _schema().ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    except Exception as exc:  # flatbuffers raises assorted errors on garbage
        raise DataError(f"model: not a valid .tflite flatbuffer ({exc})") from exc


def pack(model_t: Any) -> bytes:
    """Serialise a ``ModelT`` (file identifier ``TFL3``) with buffers re-aligned to 16 bytes."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.tools import tflite_flatbuffer_align_wrapper

    builder = flatbuffers.Builder(1024)
    builder.Finish(model_t.Pack(builder), file_identifier=b"TFL3")
    raw = bytes(builder.Output())
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.tflite"), Path(tmp, "out.tflite")
        src.write_bytes(raw)
        tflite_flatbuffer_align_wrapper.align_tflite_model(os.fspath(src), os.fspath(dst))
        return dst.read_bytes()


def _check_order(model_t: Any, order: Sequence[int]) -> list[int]:
    sub = model_t.subgraphs[0]
    count = len(sub.operators or [])
    order = [int(i) for i in order]
    if sorted(order) != list(range(count)):
        raise DataError(f"operator order: expected a permutation of 0..{count - 1}, got {order}")
    produced_by = {int(t): i for i, op in enumerate(sub.operators) for t in op.outputs}
    done: set[int] = set()
    for index in order:
        for tensor in sub.operators[index].inputs:
            producer = produced_by.get(int(tensor))
            if producer is not None and producer not in done:
                raise DataError(f"operator order: operator {index} runs before operator "
                                f"{producer}, which produces its input tensor {int(tensor)}")
        done.add(index)
    return order


def reorder_operators(model_bytes: bytes, order: Sequence[int]) -> bytes:
    """The same model with subgraph 0's operators in ``order`` (old operator indices).

    Tensors, buffers and everything else stay as they are, so the outputs are identical; TFLM
    executes operators in file order, so the order decides the arena TFLM plans. Raises
    :class:`DataError` unless ``order`` is a topological permutation.
    """
    model_t = unpack(model_bytes)
    order = _check_order(model_t, order)
    sub = model_t.subgraphs[0]
    sub.operators = [sub.operators[i] for i in order]
    return pack(model_t)


def operator_count(model_bytes: bytes) -> int:
    """Number of operators in subgraph 0."""
    return len(unpack(model_bytes).subgraphs[0].operators or [])


def with_offline_plan(model_bytes: bytes, offsets: Sequence[int]) -> bytes:
    """Attach TFLM's ``OfflineMemoryAllocation`` metadata: one arena offset per tensor of
    subgraph 0 (``-1`` = planned online by TFLM; ignored for constant tensors).

    The metadata buffer is int32 little-endian ``[version=0, subgraph=0, n_tensors, offsets...]``
    (TFLM ``memory_planner`` docs, "offline planned tensor allocations"). An existing plan is
    replaced.
    """
    schema = _schema()
    model_t = unpack(model_bytes)
    n_tensors = len(model_t.subgraphs[0].tensors or [])
    offsets = [int(o) for o in offsets]
    if len(offsets) != n_tensors or any(o < ONLINE for o in offsets):
        raise DataError(f"offline plan: expected {n_tensors} offsets >= -1 (one per tensor), "
                        f"got {len(offsets)}")
    words = np.array([0, 0, n_tensors, *offsets], dtype="<i4")
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(words.tobytes(), dtype=np.uint8).copy()
    model_t.buffers = list(model_t.buffers or [])
    model_t.metadata = [m for m in (model_t.metadata or [])
                        if _name(m.name) != OFFLINE_PLAN_METADATA]
    model_t.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = OFFLINE_PLAN_METADATA
    entry.buffer = len(model_t.buffers) - 1
    model_t.metadata.append(entry)
    return pack(model_t)


def read_offline_plan(model_bytes: bytes) -> list[int] | None:
    """The per-tensor offsets of the model's ``OfflineMemoryAllocation`` metadata, or None."""
    return offline_plan_of(unpack(model_bytes))


def _name(name: Any) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)
