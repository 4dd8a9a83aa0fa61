"""``.tflite`` → ``model.c`` / ``model.h``: a straight list of int8 kernel calls over one arena.

Steps: read the model (:mod:`tflm_runtime.tflite_model`), build its resource graph, mark the
operators this engine runs in place (:func:`unas.resources.engine.engine_graph`), take the exact
minimum-peak execution order (:func:`unas.resources.schedule.min_peak_schedule`), place every
activation in the arena (:func:`tflm_runtime.codegen.planner.plan_memory`, self-checked), and lower
each operator to one kernel call with literal parameters (:mod:`tflm_runtime.codegen.lowering`).

Example (the small int8 model of :func:`unas.export.demo.small_int8_tflite`, the C
written to a temporary folder)::

    >>> from unas.export.demo import small_int8_tflite
    >>> blob = small_int8_tflite()
    >>> import tempfile
    >>> from tflm_runtime.tflite_model import parse_tflite
    >>> result = generate(parse_tflite(blob), tempfile.mkdtemp())
    >>> result.sram_bytes
    208
    >>> sorted(p.name for p in result.out_dir.glob("model.*"))
    ['model.c', 'model.h']
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from tflm_runtime.codegen.lowering import LOWERINGS, LoweredOp, OpContext
from tflm_runtime.codegen.lowering_fused import FusedPlacement, lower_fused_block
from tflm_runtime.codegen.planner import MemoryPlan, plan_memory
from tflm_runtime.codegen.validate import validate
from tflm_runtime.tflite_model import TfliteModel, check_supported, read_tflite, resource_graph
from unas.errors import UnsupportedOperatorError
from unas.resources.engine import FUSED_OP, PLANE_SUFFIX, SCHEDULE_ATTR, engine_graph
from unas.resources.schedule import min_peak_schedule
from unas.files import atomic_write_text

#: C files of the kernel library copied next to the generated model.
KERNEL_FILES = ("unas_kernels.h", "unas_kernels.c", "unas_fused.h", "unas_fused.c")
#: Every .c file to compile, in the order given to the compiler.
SOURCES = ("model.c", "unas_kernels.c", "unas_fused.c")
#: The kernel library's headers and sources.
KERNEL_HEADERS = tuple(f for f in KERNEL_FILES if f.endswith(".h"))
KERNEL_SOURCES = tuple(f for f in KERNEL_FILES if f.endswith(".c"))


@dataclass(frozen=True)
class GeneratedModel:
    """What :func:`generate` wrote and the memory it needs."""

    out_dir: Path
    sources: tuple[str, ...]   # .c files to compile (relative to out_dir)
    arena_bytes: int           # static activation arena (depthwise planes and fused-step buffers too)
    predicted_arena_bytes: int # min-peak working set of the order (the planner's lower bound)
    const_bytes: int           # weights, biases, multipliers, parameter blocks (Flash)
    input_bytes: int
    output_bytes: int
    plan: MemoryPlan

    @property
    def sram_bytes(self) -> int:
        """Peak SRAM of the generated code: the arena (nothing lives beside it)."""
        return self.arena_bytes


def _comment(text: str) -> str:
    return text.replace("*/", "* /")


def _planning_graph(model: TfliteModel):
    """The engine graph with the model's real tensor sizes; if a size changes (float I/O: 4 B per
    element), the schedule :func:`engine_graph` found is dropped (it must be recomputed)."""
    graph = engine_graph(resource_graph(model), "codegen")
    for node, index in graph.graph["tensor_index"].items():
        if node in graph:  # tensors inside fused chains are never materialised
            nbytes = model.tensors[index].nbytes  # float I/O: 4 B/elem
            if graph.nodes[node]["bytes"] != nbytes:
                graph.nodes[node]["bytes"] = nbytes
                graph.graph.pop(SCHEDULE_ATTR, None)
    return graph


def generate(model: TfliteModel | str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
             rng: np.random.Generator | None = None) -> GeneratedModel:
    """Write ``model.h``, ``model.c``, the kernel library and ``manifest.json`` into ``out_dir``.

    Raises :class:`unas.errors.UnsupportedOperatorError` naming the first operator (or tensor)
    the generator cannot handle, or one that disagrees with its tensors
    (:func:`tflm_runtime.codegen.validate.validate`, TFLM's Prepare checks).
    """
    if not isinstance(model, TfliteModel):
        model = read_tflite(model)
    check_supported(model)
    validate(model)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedOperatorError(
            f"{model.path}: {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
            "expected exactly one of each")
    for index in (model.inputs[0], model.outputs[0]):
        if model.tensors[index].shape[:1] not in ((1,), ()) and len(model.tensors[index].shape) > 1:
            raise UnsupportedOperatorError(
                f"{model.path}: tensor {model.tensors[index].name!r} has batch "
                f"{model.tensors[index].shape[0]}; expected batch 1")
    graph = _planning_graph(model)
    schedule = graph.graph.get(SCHEDULE_ATTR)
    if schedule is None:
        schedule = min_peak_schedule(graph)
    plan = plan_memory(graph, schedule.order, rng=rng if rng is not None else np.random.default_rng(0))
    tensor_of = graph.graph["tensor_index"]
    node_of = {index: node for node, index in tensor_of.items()}

    def pointer(tensor_index: int) -> str:
        return f"A({plan.tensors[node_of[tensor_index]].offset})"

    lowered: list[tuple[str, LoweredOp]] = []
    for step, node in enumerate(schedule.order):
        if graph.nodes[node]["op"] == FUSED_OP:
            lowered.append(_lower_fused(model, graph, plan, step, node))
            continue
        if node not in graph.graph["operator_index"]:
            continue
        op = model.operators[graph.graph["operator_index"][node]]
        plane = plan.tensors.get(f"{node}{PLANE_SUFFIX}")
        ctx = OpContext(model, op, pointer, plan.tensors[node].in_place_of is not None,
                        None if plane is None else f"A({plane.offset})")
        low = LOWERINGS[op.opcode](ctx, f"op{op.index}")
        out_t = model.tensors[op.outputs[0]]
        header = (f"/* step {step}: {op.opcode} #{op.index} -> {tuple(out_t.shape[1:])} "
                  f"at arena {plan.tensors[node].offset} ({_comment(node)}) */")
        lowered.append((header, low))

    in_t, out_t = model.tensors[model.inputs[0]], model.tensors[model.outputs[0]]
    const_bytes = sum(low.const_bytes for _, low in lowered)
    out_path = Path(out_dir)
    out_path.mkdir(parents=True, exist_ok=True)
    source_name = _comment(Path(model.path).name)
    header = f"""/* Generated by unas (python -m tflm_runtime.codegen) from {source_name}. Do not edit.
 * Compile together: {' '.join(SOURCES)} (see manifest.json).
 * Peak SRAM = MODEL_ARENA_BYTES; weights are const (Flash).
 * Input: int8 {tuple(in_t.shape)} scale {in_t.scale!r} zero point {in_t.zero_point}.
 * Output: {out_t.dtype} {tuple(out_t.shape)} scale {out_t.scale!r} zero point {out_t.zero_point}.
 */
#ifndef UNAS_MODEL_H
#define UNAS_MODEL_H

#include <stdint.h>

#define MODEL_INPUT_BYTES {in_t.nbytes}
#define MODEL_OUTPUT_BYTES {out_t.nbytes}
#define MODEL_ARENA_BYTES {plan.arena_bytes}
#define MODEL_INPUT_SCALE {in_t.scale!r}
#define MODEL_INPUT_ZERO_POINT {in_t.zero_point}
#define MODEL_OUTPUT_SCALE {out_t.scale!r}
#define MODEL_OUTPUT_ZERO_POINT {out_t.zero_point}

/* The input tensor (write MODEL_INPUT_BYTES bytes here before model_invoke). */
int8_t *model_input(void);
/* The output tensor (MODEL_OUTPUT_BYTES bytes, valid after model_invoke). */
int8_t *model_output(void);
/* Run one inference. The input buffer may be overwritten. */
void model_invoke(void);

#endif /* UNAS_MODEL_H */
"""
    decls = "\n\n".join("\n".join(low.decls) for _, low in lowered if low.decls)
    calls = "\n".join(f"  {h}\n" + "\n".join(f"  {line}" for line in low.body)
                      for h, low in lowered)
    in_node, out_node = node_of[model.inputs[0]], node_of[model.outputs[0]]
    source = f"""/* Generated by unas (python -m tflm_runtime.codegen) from {source_name}. Do not edit.
 * Execution order: the exact minimum-peak schedule; arena offsets: a checked static plan
 * (arena {plan.arena_bytes} bytes = predicted working set {plan.lower_bound} bytes).
 */
#include <string.h>

#include "model.h"
#include "unas_kernels.h"
#include "unas_fused.h"

static union {{
  int8_t bytes[MODEL_ARENA_BYTES];
  int32_t align;
}} unas_arena;
#define A(offset) (unas_arena.bytes + (offset))

{decls}

int8_t *model_input(void) {{ return A({plan.tensors[in_node].offset}); }}

int8_t *model_output(void) {{ return A({plan.tensors[out_node].offset}); }}

void model_invoke(void) {{
{calls}
}}
"""
    atomic_write_text(out_path / "model.h", header)
    atomic_write_text(out_path / "model.c", source)
    kernel_dir = resources.files("tflm_runtime.codegen") / "c"
    for name in KERNEL_FILES:
        atomic_write_text(out_path / name, (kernel_dir / name).read_text())
    manifest = dict(
        source=str(model.path), sources=list(SOURCES), headers=["model.h", *KERNEL_HEADERS],
        arena_bytes=plan.arena_bytes,
        predicted_arena_bytes=plan.lower_bound, const_bytes=const_bytes,
        input=dict(shape=list(in_t.shape), dtype=in_t.dtype, scale=in_t.scale,
                   zero_point=in_t.zero_point, bytes=in_t.nbytes),
        output=dict(shape=list(out_t.shape), dtype=out_t.dtype, scale=out_t.scale,
                    zero_point=out_t.zero_point, bytes=out_t.nbytes),
        order=list(schedule.order))
    atomic_write_text(out_path / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return GeneratedModel(out_path, SOURCES, plan.arena_bytes, plan.lower_bound,
                          const_bytes, in_t.nbytes, out_t.nbytes, plan)


def _lower_fused(model: TfliteModel, graph, plan: MemoryPlan, step: int, node: str
                 ) -> tuple[str, LoweredOp]:
    """Header comment and lowering of one fused chain (engine node ``node``)."""
    chain = graph.nodes[node]["fused"]
    operators = {n: model.operators[graph.graph["operator_index"][n]] for n in chain.nodes}
    temp = plan.tensors[f"{node}#temp"]
    where = FusedPlacement(f"A({plan.tensors[chain.source].offset})",
                           f"A({plan.tensors[node].offset})", f"A({temp.offset})", temp.size)
    ops = " -> ".join(f"{op.opcode} #{op.index}" for op in operators.values())
    shape = tuple(graph.nodes[node]["shape"])
    dw_index = operators[chain.depthwise].index
    header = (f"/* step {step}: {FUSED_OP} #{dw_index} ({ops}) -> {shape} at arena "
              f"{plan.tensors[node].offset}, rows at {temp.offset} ({_comment(node)}) */")
    return header, lower_fused_block(model, chain, operators, where, f"op{dw_index}f")


def copy_kernels(out_dir: str | os.PathLike[str]) -> None:
    """Copy only the kernel library into ``out_dir`` (for hand-written harnesses)."""
    kernel_dir = resources.files("tflm_runtime.codegen") / "c"
    for name in KERNEL_FILES:
        with resources.as_file(kernel_dir / name) as src:
            shutil.copyfile(src, Path(out_dir) / name)
