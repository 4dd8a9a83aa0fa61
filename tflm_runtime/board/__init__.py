"""Run generated C models on an emulated Cortex-M board (QEMU mps2) and measure them.

The model (``model.h`` + C files behind the stable API ``model_input()``, ``model_output()``,
``model_invoke()``, ``MODEL_*_BYTES``) is cross-compiled with ``arm-none-eabi-gcc`` for a
Cortex-M4 or M7, linked into the target board's Flash/SRAM sizes, run under
``qemu-system-arm -icount shift=6`` with semihosting, checked bit-exact against a host build of
the same code, and measured: instructions per inference, Flash and SRAM. See docs/board.md.

Command line: ``python -m tflm_runtime.board model.tflite --cpu cortex-m4 --board stm32f746``.
"""
from tflm_runtime.board.errors import BoardError, ModelDoesNotFitError
from tflm_runtime.board.measure import (DEFAULT_STACK_BYTES, BoardMeasurement, Calibration,
                                        MemoryUsage, measure_c_model)
from tflm_runtime.board.targets import BOARDS, CPUS, DEFAULT_BOARD, Board, Cpu
from tflm_runtime.board.generate_and_measure import generate_model_sources, measure_tflite

__all__ = ["BOARDS", "CPUS", "DEFAULT_BOARD", "DEFAULT_STACK_BYTES", "Board", "BoardError",
           "BoardMeasurement", "Calibration", "Cpu", "MemoryUsage", "ModelDoesNotFitError",
           "generate_model_sources", "measure_c_model", "measure_tflite"]
