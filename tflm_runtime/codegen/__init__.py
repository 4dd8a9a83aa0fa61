"""TinyEngine-style code generator: ``.tflite`` → plain C (``model.c``/``model.h``), bit-exact
with TFLM, with in-place depthwise convolution, row-streamed (fused) inverted-residual blocks and
an exact static memory plan.

    python -m tflm_runtime.codegen model.tflite -o out/ [--verbose]

See ``docs/codegen.md``.
"""
from tflm_runtime.codegen.generator import SOURCES, GeneratedModel, generate
from tflm_runtime.codegen.planner import MemoryPlan, PlanError, plan_memory

__all__ = ["SOURCES", "GeneratedModel", "MemoryPlan", "PlanError", "generate", "plan_memory"]
