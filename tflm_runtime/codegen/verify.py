"""Build generated models on the host and compare them with TFLM byte for byte.

Used by the tests and by ``benchmarks/bench_engine.py`` (here on the small int8 model
of :func:`unas.export.demo.small_int8_tflite`)::

    >>> import numpy as np
    >>> from unas.export.demo import small_int8_tflite
    >>> blob = small_int8_tflite()
    >>> import tempfile
    >>> from tflm_runtime.codegen.generator import generate
    >>> from tflm_runtime.tflite_model import parse_tflite
    >>> gen = generate(parse_tflite(blob), tempfile.mkdtemp())
    >>> exe = build_host([gen.out_dir])[0]
    >>> x_int8 = random_inputs((8, 8, 1), 4, np.random.default_rng(0))
    >>> y = run_host(exe, x_int8, (10,))
    >>> y.shape, bool((y == run_tflm(blob, x_int8)).all())
    ((4, 10), True)

The harness (``harness.c``, written next to the model) reads ``MODEL_INPUT_BYTES``-byte samples
from stdin until EOF and writes ``MODEL_OUTPUT_BYTES`` bytes per sample to stdout.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tflm_runtime.codegen.generator import (KERNEL_FILES, KERNEL_SOURCES, GeneratedModel,
                                            generate)
from tflm_runtime.tflite_model import TfliteModel, parse_tflite
from unas.errors import UnasError

#: gcc flags every generated model must build with (host, strict)
STRICT_CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror")
SANITIZE_CFLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g")

HARNESS_C = """/* Host harness: stdin -> model -> stdout, one sample per MODEL_INPUT_BYTES bytes. */
#include <stdio.h>
#include <string.h>

#include "model.h"

int main(void) {
  static int8_t sample[MODEL_INPUT_BYTES];
  int runs = 0;
  while (fread(sample, 1, MODEL_INPUT_BYTES, stdin) == MODEL_INPUT_BYTES) {
    memcpy(model_input(), sample, MODEL_INPUT_BYTES);
    model_invoke();
    if (fwrite(model_output(), 1, MODEL_OUTPUT_BYTES, stdout) != MODEL_OUTPUT_BYTES) return 1;
    ++runs;
  }
  return runs > 0 ? 0 : 1;
}
"""


class BuildError(UnasError):
    """gcc rejected a generated model (the message holds the compiler's first lines)."""


def _compile(args: list[str], cwd: Path) -> None:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        first = " ".join((proc.stderr or proc.stdout).split())[:500]
        raise BuildError(f"{cwd}: {' '.join(args[:2])} ... failed: {first}")


def build_host(out_dirs: Sequence[str | os.PathLike[str]], *, sanitize: bool = False,
               opt: str = "-O2", jobs: int | None = None, cc: str = "gcc") -> list[Path]:
    """Compile each generated directory with the harness into ``<dir>/model_host``.

    The kernel library is compiled once and linked into every model; models build in parallel
    (``jobs`` defaults to the CPU count).
    """
    if shutil.which(cc) is None:
        raise BuildError(f"{cc}: compiler not found; install gcc")
    dirs = [Path(d).resolve() for d in out_dirs]
    if not dirs:
        return []
    flags = [*STRICT_CFLAGS, opt, *(SANITIZE_CFLAGS if sanitize else ())]
    lib_dir = Path(tempfile.mkdtemp(prefix="unas_kernels_"))
    for name in KERNEL_FILES:
        shutil.copy(dirs[0] / name, lib_dir)
    libs = []
    for source in KERNEL_SOURCES:
        obj = source[:-2] + ".o"
        _compile([cc, *flags, "-c", source, "-o", obj], lib_dir)
        libs.append(str(lib_dir / obj))

    def one(d: Path) -> Path:
        (d / "harness.c").write_text(HARNESS_C)
        _compile([cc, *flags, "model.c", "harness.c", *libs, "-lm", "-o", "model_host"], d)
        return d / "model_host"

    try:
        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
            return list(pool.map(one, dirs))
    finally:
        shutil.rmtree(lib_dir, ignore_errors=True)


def run_host(executable: str | os.PathLike[str], inputs: np.ndarray, output_shape: Sequence[int],
             output_dtype: str = "int8") -> np.ndarray:
    """Run the host build on ``inputs`` (batch first, raw tensor dtype); outputs batch first."""
    data = np.ascontiguousarray(inputs).tobytes()
    proc = subprocess.run([str(executable)], input=data, capture_output=True)
    if proc.returncode != 0:
        raise BuildError(f"{executable}: exited with {proc.returncode}: "
                         f"{proc.stderr.decode(errors='replace')[:800]}")
    return np.frombuffer(proc.stdout, dtype=output_dtype).reshape(len(inputs), *output_shape)


def run_tflm(model_bytes: bytes, inputs: np.ndarray) -> np.ndarray:
    """TFLM's outputs for ``inputs`` (batch first, no batch dim per sample)."""
    from tflm_runtime.tflm import TflmRunner

    return TflmRunner(model_bytes).run(inputs)


def random_inputs(shape: Sequence[int], count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` uniformly random int8 samples of ``shape`` (no batch dim)."""
    return rng.integers(-128, 128, size=(count, *shape), dtype=np.int8)


@dataclass(frozen=True)
class Comparison:
    """Generated C vs TFLM on the same random inputs."""

    name: str
    generated: GeneratedModel
    samples: int
    mismatched_samples: int
    first_difference: str  # "" when bit-exact

    @property
    def bit_exact(self) -> bool:
        return self.mismatched_samples == 0


def _model_inputs(model: TfliteModel, count: int, rng: np.random.Generator) -> np.ndarray:
    t = model.tensors[model.inputs[0]]
    shape = t.shape[1:] if len(t.shape) > 1 else t.shape
    if t.dtype == "int8":
        return random_inputs(shape, count, rng)
    return rng.normal(size=(count, *shape)).astype(t.dtype)


def compare_with_tflm(models: Mapping[str, bytes], work_dir: str | os.PathLike[str],
                      rng: np.random.Generator, *, samples: int = 8, sanitize: bool = False,
                      jobs: int | None = None) -> dict[str, Comparison]:
    """Generate, build (all models in one parallel batch) and run every model on ``samples``
    random inputs, in the host build and in TFLM; report per model how many outputs differ."""
    work = Path(work_dir)
    generated: dict[str, GeneratedModel] = {}
    parsed: dict[str, TfliteModel] = {}
    for name, blob in models.items():
        parsed[name] = parse_tflite(blob, f"{name}.tflite")
        generated[name] = generate(parsed[name], work / name)
    executables = build_host([g.out_dir for g in generated.values()], sanitize=sanitize, jobs=jobs)
    results = {}
    for (name, blob), exe in zip(models.items(), executables):
        model = parsed[name]
        out_t = model.tensors[model.outputs[0]]
        x = _model_inputs(model, samples, rng)
        ours = run_host(exe, x, out_t.shape[1:] if len(out_t.shape) > 1 else out_t.shape,
                        out_t.dtype)
        theirs = run_tflm(blob, x).reshape(ours.shape)
        bad = [i for i in range(samples) if not np.array_equal(ours[i], theirs[i])]
        first = ""
        if bad:
            i = bad[0]
            diff = np.flatnonzero(ours[i].reshape(-1) != theirs[i].reshape(-1))
            first = (f"sample {i}: {len(diff)} elements differ, e.g. index {diff[0]}: "
                     f"C {ours[i].reshape(-1)[diff[0]]} vs TFLM {theirs[i].reshape(-1)[diff[0]]}")
        results[name] = Comparison(name, generated[name], samples, len(bad), first)
    return results
