"""Read a ``.tflite`` flatbuffer into plain frozen dataclasses, and its resource graph.

The flatbuffer is parsed with the schema bindings that the ``tflite-micro`` wheel ships
(``tflite_micro.tensorflow.lite.micro.python.schema_py_generated``, object API
``ModelT.InitFromPackedBuf``). That module only needs the ``flatbuffers`` package, so reading a
model never imports TensorFlow (importing the wheel loads TFLM's small runtime library, no TF).

Example (the small int8 model of :func:`unas.export.demo.small_int8_tflite`, written
to a temporary folder)::

    >>> from unas.export.demo import small_int8_tflite
    >>> blob = small_int8_tflite()
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "model.tflite"
    >>> _ = path.write_bytes(blob)
    >>> model = read_tflite(path)
    >>> [op.opcode for op in model.operators]
    ['CONV_2D', 'DEPTHWISE_CONV_2D', 'MEAN', 'FULLY_CONNECTED']
    >>> g = resource_graph(model)
    >>> sorted(g.graph["operator_index"].values())
    [0, 1, 2, 3]

Resource-graph conventions (see ``docs/architecture.md`` and :mod:`unas.resources.graph`):

* one node per operator, named after the operator's output tensor (``Tensor.name``); when two
  tensors share a name, the later ones are suffixed ``#<tensor index>``; graph inputs are
  ``INPUT`` nodes named after the subgraph's input tensors;
* ``shape`` is the output shape without the batch dimension (a rank-1 tensor keeps its shape);
* ``size_bytes`` = bytes of int8 (or other) constant weight tensors + 4 * int32 bias elements,
  i.e. the bytes of every constant input of the operator as stored; ``params`` = their elements;
* ``macs``: CONV_2D / DEPTHWISE_CONV_2D the taps inside the input
  (:func:`unas.resources.macs.conv_macs`: ``H*W*Cout*kh*kw*Cin`` / ``H*W*Cout*kh*kw`` less the
  taps over 'same' padding), FULLY_CONNECTED ``in*out``; every other operator 0;
* ``graph.graph["operator_index"]`` maps each operator node to its index in the subgraph, and
  ``graph.graph["tensor_index"]`` maps every node to its output tensor index.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import networkx as nx
import numpy as np

from unas.errors import DataError, UnsupportedOperatorError
from unas.resources.graph import add_op, new_graph
from unas.resources.macs import conv_macs

#: Operators :func:`resource_graph` understands (the code generator supports exactly these).
SUPPORTED_OPS = frozenset({
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "AVERAGE_POOL_2D", "ADD",
    "CONCATENATION", "MEAN", "RESHAPE", "SOFTMAX", "PAD", "QUANTIZE", "DEQUANTIZE",
})

_DTYPES = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64, "INT32": np.int32,
    "UINT8": np.uint8, "INT64": np.int64, "BOOL": np.bool_, "INT16": np.int16, "INT8": np.int8,
    "UINT32": np.uint32, "UINT16": np.uint16, "UINT64": np.uint64,
}


@cache
def _schema() -> ModuleType:
    """The flatbuffer schema bindings shipped with tflite-micro (TF-free)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated
    return schema_py_generated


@cache
def _enum_names(enum_class_name: str) -> dict[int, str]:
    enum_class = getattr(_schema(), enum_class_name)
    return {value: name for name, value in vars(enum_class).items()
            if not name.startswith("_") and isinstance(value, int)}


@dataclass(frozen=True)
class Tensor:
    """One tensor of the subgraph. ``data`` is the constant content (numpy, read-only) or None."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name, e.g. "int8", "int32", "float32"
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0
    data: np.ndarray | None = field(default=None, compare=False, repr=False)
    is_variable: bool = False  # a state tensor (TFLM keeps it between invocations)

    @property
    def scale(self) -> float:
        """The (first) quantisation scale; 0.0 for a non-quantised tensor."""
        return self.scales[0] if self.scales else 0.0

    @property
    def zero_point(self) -> int:
        """The (first) zero point; 0 for a non-quantised tensor."""
        return self.zero_points[0] if self.zero_points else 0

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor's content (``prod(shape) * itemsize``)."""
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


def quantize_input(x: np.ndarray, scale: float, zero_point: int, dtype: str = "int8") -> np.ndarray:
    """Float inputs → integer ``dtype`` with an input tensor's (``scale``, ``zero_point``):
    ``round(x / scale) + zero_point`` in float32, saturated to the type's range."""
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, dtype=np.float32) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def as_model_input(model: "TfliteModel", inputs: np.ndarray) -> np.ndarray:
    """``inputs`` as ``model``'s int8 input: float data is quantised with the input tensor's
    scale and zero point (:func:`quantize_input`); integer data is returned unchanged. Raises
    :class:`~unas.errors.DataError` for float data when the input is not int8-quantised."""
    array = np.asarray(inputs)
    if not np.issubdtype(array.dtype, np.floating):
        return array
    tensor = model.tensors[model.inputs[0]]
    if tensor.dtype != "int8" or not tensor.scales:
        raise DataError(f"{model.path}: input tensor is {tensor.dtype} without int8 "
                        f"quantisation; give int8 inputs")
    return quantize_input(array, tensor.scale, tensor.zero_point)


@dataclass(frozen=True)
class Operator:
    """One operator: builtin name, tensor indices (-1 = optional input absent), options dict."""

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class TfliteModel:
    """The first subgraph of a ``.tflite`` model as plain values."""

    path: str
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    #: per-tensor arena offsets of the model's ``OfflineMemoryAllocation`` metadata, if any
    offline_plan: tuple[int, ...] | None = None

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return tuple(value.tolist())
    if isinstance(value, list):
        return tuple(value)
    return value


def _options(op: Any) -> dict[str, Any]:
    """Builtin options as a plain dict with snake_case keys; padding/activation as names."""
    opts = op.builtinOptions
    if opts is None:
        return {}
    result: dict[str, Any] = {}
    for key, value in vars(opts).items():
        name = _snake(key)
        if name == "padding":
            value = _enum_names("Padding").get(value, f"UNKNOWN_{value}")
        elif name == "fused_activation_function":
            value = _enum_names("ActivationFunctionType").get(value, f"UNKNOWN_{value}")
        result[name] = _plain(value)
    return result


def _buffer_bytes(model_t: Any, raw: bytes, buffer_index: int) -> bytes | None:
    if buffer_index <= 0 or buffer_index >= len(model_t.buffers or []):
        return None
    buf = model_t.buffers[buffer_index]
    if buf.data is not None and len(buf.data) > 0:
        return np.asarray(buf.data, dtype=np.uint8).tobytes()
    if buf.offset > 1 and buf.size > 0:  # large models keep buffers after the flatbuffer
        if buf.offset + buf.size > len(raw):
            raise DataError(f"buffer {buffer_index} lies outside the file (bytes {buf.offset} to "
                            f"{buf.offset + buf.size} of {len(raw)})")
        return raw[buf.offset:buf.offset + buf.size]
    return None


def _text(value: Any, what: str, path: str) -> str:
    """A flatbuffer string as text (DataError naming ``what`` if it is not UTF-8)."""
    if not isinstance(value, bytes):
        return str(value)
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: {what} is not UTF-8 text ({exc.reason} at byte {exc.start})"
                        ) from exc


def _tensor(model_t: Any, raw: bytes, index: int, t: Any, path: str) -> Tensor:
    type_name = _enum_names("TensorType").get(t.type)
    if type_name is None:
        raise DataError(f"{path}: tensor {index} has an unknown type code {t.type}")
    if type_name not in _DTYPES:
        raise UnsupportedOperatorError(
            f"{path}: tensor {index} has unsupported type {type_name}")
    dtype = np.dtype(_DTYPES[type_name])
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
    if any(d < 0 for d in shape):
        raise DataError(f"{path}: tensor {index} has a negative dimension in its shape {shape}")
    name = _text(t.name, f"the name of tensor {index}", path) if t.name else f"tensor_{index}"
    buffers = len(model_t.buffers or [])
    if not 0 <= t.buffer < max(buffers, 1):
        raise DataError(f"{path}: tensor {index} refers to buffer {t.buffer}; the model has "
                        f"{buffers} buffers")
    q = t.quantization
    scales: tuple[float, ...] = ()
    zeros: tuple[int, ...] = ()
    qdim = 0
    if q is not None and q.scale is not None and len(q.scale) > 0:
        scales = tuple(float(s) for s in q.scale)
        zeros = tuple(int(z) for z in (q.zeroPoint if q.zeroPoint is not None else ()))
        qdim = int(q.quantizedDimension)
        if len(zeros) != len(scales):
            raise DataError(f"{path}: tensor {index} has {len(scales)} quantisation scales but "
                            f"{len(zeros)} zero points")
        if not all(math.isfinite(x) for x in scales):
            raise DataError(f"{path}: tensor {index} has a non-finite quantisation scale")
        if np.issubdtype(dtype, np.integer):
            if not all(x > 0 for x in scales):
                raise DataError(f"{path}: tensor {index} ({type_name}) has quantisation scale "
                                f"{min(scales)!r}; scales must be > 0")
            info = np.iinfo(dtype)
            bad = [z for z in zeros if not info.min <= z <= info.max]
            if bad:
                raise DataError(f"{path}: tensor {index} ({type_name}) has zero point {bad[0]}, "
                                f"outside [{info.min}, {info.max}]")
    content = _buffer_bytes(model_t, raw, t.buffer)
    data = None
    if content is not None:
        expected = math.prod(shape) * dtype.itemsize
        if len(content) != expected:
            raise DataError(f"{path}: tensor {index} ({type_name}, shape {shape}) needs "
                            f"{expected} bytes of data; its buffer {t.buffer} holds {len(content)}")
        data = np.frombuffer(content, dtype=dtype).reshape(shape).copy()
        data.setflags(write=False)
    return Tensor(index, name, shape, dtype.name, scales, zeros, qdim, data,
                  bool(t.isVariable))


#: Metadata name TFLM looks up for offline-planned tensor offsets.
OFFLINE_PLAN_METADATA = "OfflineMemoryAllocation"


def offline_plan_of(model_t: Any, path: str = "the model") -> list[int] | None:
    """The per-tensor offsets of an unpacked model's (``ModelT``) ``OfflineMemoryAllocation``
    metadata (int32 ``[version, subgraph, n_tensors, offsets...]``), or None; DataError naming
    ``path`` if the metadata is malformed."""
    for entry in model_t.metadata or []:
        name = entry.name.encode() if isinstance(entry.name, str) else entry.name
        if name != OFFLINE_PLAN_METADATA.encode():
            continue
        buffers = model_t.buffers or []
        if not 0 <= entry.buffer < len(buffers) or buffers[entry.buffer].data is None:
            raise DataError(f"{path}: {OFFLINE_PLAN_METADATA} metadata refers to buffer "
                            f"{entry.buffer}, which holds no data")
        data = np.asarray(buffers[entry.buffer].data, dtype=np.uint8)
        words = np.frombuffer(data.tobytes()[:len(data) // 4 * 4], dtype="<i4")
        if len(words) < 3 or not 0 <= int(words[2]) <= len(words) - 3:
            raise DataError(f"{path}: {OFFLINE_PLAN_METADATA} metadata is truncated "
                            f"({len(data)} bytes)")
        return [int(w) for w in words[3:3 + int(words[2])]]
    return None


def parse_tflite(raw: bytes, path: str = "<bytes>") -> TfliteModel:
    """Parse the bytes of a ``.tflite`` file; ``path`` names it in error messages (callers that
    hold only bytes pass the file they came from).

    Every malformed input is one :class:`~unas.errors.DataError` naming ``path`` and what is
    wrong: a flatbuffer the schema cannot read, a tensor, buffer or opcode index out of range,
    constant data whose size does not match its tensor's shape, text that is not UTF-8.
    """
    schema = _schema()
    try:
        model_t = schema.ModelT.InitFromPackedBuf(bytearray(raw), 0)
    except Exception as exc:  # flatbuffers raises assorted errors on garbage
        raise DataError(f"{path}: not a valid .tflite flatbuffer "
                        f"({type(exc).__name__}: {str(exc)[:100]})") from exc
    try:
        return _parse_model(model_t, bytes(raw), path)
    except DataError as exc:
        message = str(exc)
        raise DataError(message if message.startswith(f"{path}: ") else f"{path}: {message}"
                        ) from exc
    except (ValueError, IndexError, KeyError, TypeError, AttributeError, OverflowError) as exc:
        raise DataError(f"{path}: malformed .tflite ({type(exc).__name__}: {str(exc)[:100]})"
                        ) from exc


def _index_list(values: Any, what: str, count: int, path: str, optional: bool = False
                ) -> tuple[int, ...]:
    """Tensor indices as ints, each in ``[0, count)`` (or -1 where ``optional``)."""
    indices = tuple(int(x) for x in (values if values is not None else ()))
    for i in indices:
        if not (0 <= i < count or (optional and i == -1)):
            raise DataError(f"{path}: {what} refers to tensor {i}; the subgraph has {count} "
                            "tensors")
    return indices


def _parse_model(model_t: Any, raw: bytes, path: str) -> TfliteModel:
    if not model_t.subgraphs:
        raise DataError(f"{path}: the model has no subgraph")
    sub = model_t.subgraphs[0]
    tensors = tuple(_tensor(model_t, raw, i, t, path) for i, t in enumerate(sub.tensors or []))
    count = len(tensors)
    inputs = _index_list(sub.inputs, "the subgraph's input list", count, path)
    outputs = _index_list(sub.outputs, "the subgraph's output list", count, path)
    if not inputs or not outputs:
        raise DataError(f"{path}: the subgraph has {len(inputs)} inputs and {len(outputs)} "
                        "outputs; expected at least one of each")
    op_names = _enum_names("BuiltinOperator")
    codes = model_t.operatorCodes or []
    operators = []
    for i, op in enumerate(sub.operators or []):
        if not 0 <= op.opcodeIndex < len(codes):
            raise DataError(f"{path}: operator {i} has opcode index {op.opcodeIndex}; the model "
                            f"has {len(codes)} operator codes")
        code = codes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = op_names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM:{_text(code.customCode, f'the custom code of operator {i}', path)}"
        op_inputs = _index_list(op.inputs, f"operator {i} ({name})", count, path, optional=True)
        op_outputs = _index_list(op.outputs, f"operator {i} ({name})", count, path)
        if not op_outputs:
            raise DataError(f"{path}: operator {i} ({name}) has no output")
        operators.append(Operator(i, name, op_inputs, op_outputs, _options(op)))
    plan = offline_plan_of(model_t, path)
    return TfliteModel(path, tensors, tuple(operators), inputs, outputs,
                       None if plan is None else tuple(plan))


def read_tflite(path: str | os.PathLike[str]) -> TfliteModel:
    """Read and parse a ``.tflite`` file (raises :class:`unas.errors.DataError` if unreadable)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the .tflite file ({exc.strerror})") from exc
    return parse_tflite(raw, str(path))


def operator_macs(model: TfliteModel, op: Operator) -> int:
    """The resource graph's ``macs`` of one operator (conventions in the module docstring)."""
    out = model.tensors[op.outputs[0]].shape
    if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        geometry = _geometry(model, op)
        if not geometry:
            raise UnsupportedOperatorError(
                f"{model.path}: operator {op.index} ({op.opcode}) has no rank-4 filter input")
        return conv_macs(model.tensors[op.inputs[0]].shape[1:], out[1:], geometry["kernel"],
                         geometry["stride"], geometry["dilation"],
                         depthwise=op.opcode == "DEPTHWISE_CONV_2D")
    if op.opcode == "FULLY_CONNECTED":
        units, depth = model.tensors[op.inputs[1]].shape
        rows = math.prod(out) // units
        return rows * units * depth
    return 0


def _unbatched(shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape[1:] if len(shape) > 1 else shape


def check_supported(model: TfliteModel, supported: frozenset[str] = SUPPORTED_OPS) -> None:
    """Raise :class:`UnsupportedOperatorError` naming the first operator not in ``supported``."""
    for op in model.operators:
        if op.opcode not in supported:
            raise UnsupportedOperatorError(
                f"{model.path}: operator {op.index} ({op.opcode}) is not supported; "
                f"supported: {', '.join(sorted(supported))}")


def node_names(model: TfliteModel) -> dict[int, str]:
    """Resource-graph node name of every activation tensor index (graph inputs and op outputs)."""
    names: dict[int, str] = {}
    taken: set[str] = set()
    produced = list(model.inputs) + [op.outputs[0] for op in model.operators]
    for index in produced:
        name = model.tensors[index].name
        if name in taken:
            name = f"{name}#{index}"
        taken.add(name)
        names[index] = name
    return names


def _geometry(model: TfliteModel, op: Operator) -> dict[str, tuple[int, int]]:
    """Kernel, stride and dilation of a CONV_2D / DEPTHWISE_CONV_2D (resource-graph attributes);
    nothing for other operators."""
    if op.opcode not in ("CONV_2D", "DEPTHWISE_CONV_2D") or len(op.inputs) < 2:
        return {}
    weights = model.tensors[op.inputs[1]].shape  # (out, kh, kw, in) / (1, kh, kw, out)
    if len(weights) != 4:
        return {}
    o = op.options
    return dict(kernel=(weights[1], weights[2]),
                stride=(o.get("stride_h", 1), o.get("stride_w", 1)),
                dilation=(o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1)))


def resource_graph(model: TfliteModel) -> nx.DiGraph:
    """The resource graph of ``model`` (conventions in the module docstring)."""
    check_supported(model)
    names = node_names(model)
    for index in model.outputs:
        if index not in names:
            raise DataError(f"{model.path}: the subgraph's output tensor {index} is neither an "
                            "input nor produced by an operator")
    graph = new_graph()
    graph.graph["operator_index"] = {}
    graph.graph["tensor_index"] = {}
    for index in model.inputs:
        try:
            add_op(graph, names[index], "INPUT", _unbatched(model.tensors[index].shape))
        except ValueError as exc:
            raise DataError(f"{model.path}: input tensor {index}: {exc}") from exc
        graph.graph["tensor_index"][names[index]] = index
    for op in model.operators:
        if len(op.outputs) != 1:
            raise UnsupportedOperatorError(
                f"{model.path}: operator {op.index} ({op.opcode}) has {len(op.outputs)} outputs")
        activations = [names[i] for i in op.inputs if i >= 0 and i in names]
        consts = [model.tensors[i] for i in op.inputs
                  if i >= 0 and i not in names and model.tensors[i].is_constant]
        missing = [i for i in op.inputs if i >= 0 and i not in names
                   and not model.tensors[i].is_constant]
        if missing:
            raise UnsupportedOperatorError(
                f"{model.path}: operator {op.index} ({op.opcode}) reads tensor {missing[0]}, "
                "which is neither constant nor produced earlier (unsorted or multi-output graph)")
        # RESHAPE/PAD/MEAN take shape/axes/paddings as int32 constants: not weights
        weight_consts = consts if op.opcode in {"CONV_2D", "DEPTHWISE_CONV_2D",
                                                "FULLY_CONNECTED", "ADD", "CONCATENATION"} else []
        out = op.outputs[0]
        name = names[out]
        try:
            macs, geometry = operator_macs(model, op), _geometry(model, op)
        except (ValueError, IndexError, TypeError) as exc:  # tensor ranks the operator cannot have
            shapes = [model.tensors[i].shape for i in op.inputs if i >= 0]
            raise DataError(f"{model.path}: operator {op.index} ({op.opcode}) has inconsistent "
                            f"tensor shapes: inputs {shapes}, output "
                            f"{model.tensors[out].shape}") from exc
        try:
            add_op(graph, name, op.opcode, _unbatched(model.tensors[out].shape), activations,
                   macs=macs, params=sum(math.prod(t.shape) for t in weight_consts),
                   size_bytes=sum(t.nbytes for t in weight_consts), **geometry)
        except ValueError as exc:  # e.g. an empty shape, or an input produced later
            raise DataError(f"{model.path}: operator {op.index} ({op.opcode}): {exc}") from exc
        graph.graph["operator_index"][name] = op.index
        graph.graph["tensor_index"][name] = out
    return graph
