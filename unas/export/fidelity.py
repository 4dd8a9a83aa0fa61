"""Fidelity of the deployment path: int8 export → reorder → offline plan → TFLM, per model.

For one ``.tflite`` (and a batch of int8 inputs) :func:`check_tflite` establishes

* the reordered (and offline-planned) model gives *exactly* the outputs of the original in TFLM;
* how far TFLM is from TFLite's reference kernels (``OpResolverType.BUILTIN_REF``); where they
  differ, :func:`first_divergence` names the first operator whose output differs and by how
  much (later operators can amplify a 1-LSB difference);
* TFLM's non-persistent arena ("head") equals the prediction, in the converter's order and in
  the optimal order (TFLM's greedy planner replayed on the lifetimes) and with the project's
  offline plan (its extent); and how far each is above the working-set peak of the resource
  model (the difference is fragmentation: holes the placement cannot fill).

:func:`random_cnn_tflite` makes the models: a random architecture of the CNN space, trained for
a couple of steps on random data (so that weights and batch-norm statistics are not at their
initial values), quantised to int8.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from unas.export.flatbuffer import reorder_operators, with_offline_plan
from tflm_runtime.arena import (offline_plan, optimal_operator_order, predicted_head,
                                     predicted_peak)


@dataclass(frozen=True)
class FidelityRow:
    """One model's fidelity figures (bytes; LSB = one step of the int8 output)."""

    n_ops: int
    reordered_equal: bool          # TFLM outputs: reordered == original, exactly
    planned_equal: bool            # TFLM outputs: offline-planned == original, exactly
    max_lsb_vs_tflite: int         # max |TFLM - TFLite BUILTIN_REF| over all outputs
    differing_outputs: float       # fraction of output values that differ from TFLite
    divergence_op: str             # first operator whose output differs from TFLite, or ""
    divergence_lsb: int            # max difference at that operator's output (0 if none)
    divergence_explained: bool     # it is a FULLY_CONNECTED and TFLM = double, TFLite = single
                                   # rounding recomputed from its input (unas.export.rounding)
    peak_original: int             # working-set peak (resource model), converter order
    predicted_original: int        # TFLM's greedy planner replayed, converter order
    tflm_original: int             # TFLM head, converter order
    peak_optimal: int              # min_peak_schedule peak (TFLM view)
    predicted_reordered: int       # TFLM's greedy planner replayed, optimal order
    tflm_reordered: int            # TFLM head after reordering (online planner)
    plan_extent: int               # offline plan extent (project planner), optimal order
    tflm_planned: int              # TFLM head with the offline plan

    def as_dict(self) -> dict:
        return asdict(self)


def tflite_reference_outputs(model_bytes: bytes, inputs: np.ndarray,
                             preserve_all: bool = False) -> tuple[np.ndarray, object]:
    """Outputs of TFLite's reference kernels (BUILTIN_REF) for a batch of int8 inputs."""
    from unas.tfenv import tf

    interp = tf.lite.Interpreter(
        model_content=model_bytes,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=preserve_all)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    outputs = []
    for sample in inputs:
        interp.set_tensor(inp["index"], sample[None].astype(inp["dtype"]))
        interp.invoke()
        outputs.append(interp.get_tensor(out["index"])[0])
    return np.stack(outputs), interp


def first_divergence(model_bytes: bytes, sample: np.ndarray) -> tuple[str, int, bool]:
    """``("op <i> <OPCODE>", max LSB difference, explained)`` for the first operator (file
    order) whose output in TFLM differs from TFLite's reference kernels on ``sample``;
    ``("", 0, False)`` if none. ``explained``: the operator is a FULLY_CONNECTED whose TFLM
    output is the double-rounded and TFLite's the single-rounded requantisation of the same
    accumulators (:mod:`unas.export.rounding`).

    Operators after it see different inputs, so their (and the model's) differences can be
    larger than this first one."""
    from unas.export.rounding import explain_fully_connected

    from tflite_micro.python.tflite_micro import runtime

    from tflm_runtime.tflite_model import parse_tflite
    from tflm_runtime.tflm import default_arena_size

    model = parse_tflite(model_bytes)
    micro = runtime.Interpreter.from_bytes(
        model_bytes, arena_size=default_arena_size(model_bytes),
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    shape = tuple(int(d) for d in micro.get_input_details(0)["shape"])
    micro.set_input(np.asarray(sample).reshape(shape), 0)
    micro.invoke()
    _, ref = tflite_reference_outputs(model_bytes, np.asarray(sample)[None], preserve_all=True)
    for op in model.operators:
        got = np.asarray(micro.GetTensor(op.outputs[0], 0)["tensor_data"]).astype(np.int64)
        want = np.asarray(ref.get_tensor(op.outputs[0])).astype(np.int64)  # type: ignore[attr-defined]
        if got.shape == want.shape and not np.array_equal(got, want):
            explained = op.opcode == "FULLY_CONNECTED" and explain_fully_connected(
                model, op, micro.GetTensor(op.inputs[0], 0)["tensor_data"], got, want)
            return f"op {op.index} {op.opcode}", int(np.max(np.abs(got - want))), explained
    return "", 0, False


def check_tflite(model_bytes: bytes, inputs: np.ndarray) -> FidelityRow:
    """All fidelity figures of one int8 model on a batch of int8 ``inputs`` (batch first)."""
    from tflm_runtime.tflite_model import parse_tflite
    from tflm_runtime.tflm import TflmRunner

    model = parse_tflite(model_bytes)
    order, optimal = optimal_operator_order(model)
    reordered = reorder_operators(model_bytes, order)
    reordered_model = parse_tflite(reordered)
    offsets, extent = offline_plan(reordered_model)
    planned = with_offline_plan(reordered, offsets)

    original_runner = TflmRunner(model_bytes)
    original = original_runner.run(inputs)
    reordered_runner = TflmRunner(reordered)
    planned_runner = TflmRunner(planned)
    reference, _ = tflite_reference_outputs(model_bytes, inputs)
    diff = np.abs(original.astype(np.int64) - reference.astype(np.int64))
    divergence: tuple[str, int, bool] = ("", 0, False)
    if diff.max() > 0:
        divergence = first_divergence(model_bytes, inputs[int(np.argmax(diff.reshape(len(diff), -1)
                                                                   .max(axis=1)))])
    return FidelityRow(
        n_ops=len(model.operators),
        reordered_equal=bool(np.array_equal(original, reordered_runner.run(inputs))),
        planned_equal=bool(np.array_equal(original, planned_runner.run(inputs))),
        max_lsb_vs_tflite=int(diff.max()),
        differing_outputs=float(np.mean(diff > 0)),
        divergence_op=divergence[0],
        divergence_lsb=divergence[1],
        divergence_explained=divergence[2],
        peak_original=predicted_peak(model),
        predicted_original=predicted_head(model),
        tflm_original=original_runner.arena_usage().nonpersistent_bytes,
        peak_optimal=optimal,
        predicted_reordered=predicted_head(reordered_model),
        tflm_reordered=reordered_runner.arena_usage().nonpersistent_bytes,
        plan_extent=extent,
        tflm_planned=planned_runner.arena_usage().nonpersistent_bytes,
    )


def random_cnn_tflite(rng: np.random.Generator, input_shape: tuple[int, int, int] = (16, 16, 1),
                      classes: int = 4, steps: int = 2, space_bounds: dict | None = None
                      ) -> tuple[bytes, np.ndarray, str]:
    """A random CNN-space architecture trained ``steps`` steps on random data, as int8 .tflite.

    Returns the model bytes, a few int8 test inputs (quantised random floats) and the
    architecture JSON.
    """
    from search_spaces import get_space
    from tflm_runtime.tflite_model import quantize_input
    from unas.export.quantize import keras_to_int8_tflite
    from unas.tfenv import keras

    space = get_space("cnn", **(space_bounds or {}))
    arch = space.random_architecture(rng)
    keras.utils.set_random_seed(int(rng.integers(2**31 - 1)))
    model = arch.build(input_shape, classes)
    batch = 16
    x = rng.normal(size=(batch * steps, *input_shape)).astype(np.float32)
    y = rng.integers(0, classes, size=batch * steps)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    blob = keras_to_int8_tflite(model, x, num_samples=len(x))
    from unas.export.flatbuffer import unpack

    sub = unpack(blob).subgraphs[0]
    q = sub.tensors[int(sub.inputs[0])].quantization
    test = rng.normal(size=(8, *input_shape)).astype(np.float32)
    return blob, quantize_input(test, float(q.scale[0]), int(q.zeroPoint[0])), arch.to_json()
