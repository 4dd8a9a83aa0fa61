"""Fuzz the ``.tflite`` reader, the TFLM runner and the code generator with mutated models.

Used by ``tests/test_fuzz_tflite.py`` (a few dozen mutants) and ``benchmarks/bench_fuzz.py``
(thousands). Each mutant of a valid model (bit flips, byte insertions and overwrites, int32
overwrites with boundary values, cuts) goes through:

1. the reader (:func:`tflm_runtime.tflite_model.parse_tflite`, in this process: pure Python):
   a :class:`~unas.errors.UnasError` is a refusal, any other exception a *traceback*;
2. TFLM on random int8 inputs, each attempt in a forked child (:mod:`tflm_runtime.isolated`):
   ok, refused, or crashed (TFLM's own crash, contained: what the product turns into a
   ``DataError`` by probing in a child before loading in-process);
3. the generator (:func:`tflm_runtime.codegen.generator.generate`) in a spawned worker process,
   then gcc and the generated program on the same inputs: a refusal (``UnasError``), a
   traceback, a *crash* (the worker or the generated program dying), or outputs that must be
   bit-exact with TFLM's. A mutant the generator accepts while TFLM refuses it is counted as
   ``generator_accepts_tflm_refuses`` (the generator should refuse it too).
"""
from __future__ import annotations

import os
import subprocess
import traceback
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from unas.errors import UnasError

#: int32 values written over a random aligned word (counts, offsets, indices at their edges)
BOUNDARY_INT32 = (0, 1, -1, 2, 3, 127, 128, 255, 4096, 65535, 2 ** 31 - 1, -2 ** 31)
#: inputs per mutant; bigger inputs than this many bytes are not fed (only one invoke on zeros)
SAMPLES = 3
MAX_INPUT_BYTES = 1 << 16


def mutate(blob: bytes, rng: np.random.Generator) -> bytes:
    """One to three mutations of one kind: bit flip, byte insertion, byte overwrite, int32
    overwrite (aligned, boundary or random value), or a cut."""
    b = bytearray(blob)
    kind = int(rng.choice(5, p=[0.3, 0.1, 0.2, 0.3, 0.1]))
    for _ in range(int(rng.integers(1, 4))):
        if len(b) < 8:
            break
        if kind == 0:
            b[int(rng.integers(len(b)))] ^= 1 << int(rng.integers(8))
        elif kind == 1:
            at = int(rng.integers(len(b) + 1))
            b[at:at] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
        elif kind == 2:
            b[int(rng.integers(len(b)))] = int(rng.integers(256))
        elif kind == 3:
            at = int(rng.integers(len(b) // 4)) * 4
            value = (int(rng.choice(BOUNDARY_INT32)) if rng.random() < 0.7
                     else int(rng.integers(-2 ** 31, 2 ** 31)))
            b[at:at + 4] = value.to_bytes(4, "little", signed=True)
        else:
            b = b[:int(rng.integers(len(b)))]
    return bytes(b)


@dataclass
class FuzzReport:
    """Counts (and the first few descriptions of each failure kind)."""

    mutants: int = 0
    reader_refused: int = 0
    tflm_refused: int = 0
    tflm_crashed: int = 0  # contained in a child: TFLM's own crash on a malformed model
    tflm_crashed_models: dict[str, bytes] = field(default_factory=dict, repr=False)
    generator_refused: int = 0
    accepted: int = 0  # generated, compiled and ran
    bit_exact: int = 0
    mismatched: list[str] = field(default_factory=list)
    generator_accepts_tflm_refuses: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)  # our code or the generated program died
    tracebacks: list[str] = field(default_factory=list)  # non-UnasError exceptions

    def counts(self) -> dict[str, int]:
        return {"mutants": self.mutants, "refused by the reader": self.reader_refused,
                "refused by TFLM": self.tflm_refused,
                "TFLM crashed (contained in a child)": self.tflm_crashed,
                "refused by the generator": self.generator_refused,
                "accepted (generated, built, ran)": self.accepted, "bit-exact": self.bit_exact,
                "not bit-exact": len(self.mismatched),
                "generator accepts, TFLM refuses": len(self.generator_accepts_tflm_refuses),
                "crashes": len(self.crashes), "tracebacks": len(self.tracebacks)}


def _describe(exc: BaseException) -> str:
    """``Type: message`` first (reports cut long lines), then the innermost three frames."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = "; ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames)
    return f"{type(exc).__name__}: {str(exc)[:200]} (at {where})"


def _generate_one(blob: bytes, name: str, out_dir: str) -> tuple[str, str]:
    """In the worker process: ('ok', '') / ('refused', message) / ('traceback', text)."""
    from tflm_runtime.codegen.generator import generate
    from tflm_runtime.tflite_model import parse_tflite

    try:
        generate(parse_tflite(blob, name), out_dir)
    except UnasError as exc:
        return "refused", str(exc)
    except Exception as exc:  # noqa: BLE001 - the fuzz test reports it
        return "traceback", _describe(exc)
    return "ok", ""


def _run_program(exe: Path, x: np.ndarray, timeout_s: float) -> tuple[str, bytes]:
    try:
        proc = subprocess.run([str(exe)], input=np.ascontiguousarray(x).tobytes(),
                              capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return "crashed", b"timed out"
    if proc.returncode != 0:
        return "crashed", f"exit status {proc.returncode}".encode()
    return "ok", proc.stdout


def fuzz(models: dict[str, bytes], count: int, rng: np.random.Generator,
         work_dir: str | os.PathLike[str], jobs: int = 2, timeout_s: float = 60.0) -> FuzzReport:
    """``count`` mutants of ``models`` (round robin) through reader, TFLM and generator."""
    from tflm_runtime.codegen.verify import BuildError, build_host
    from tflm_runtime.isolated import run_isolated
    from tflm_runtime.tflite_model import parse_tflite
    from tflm_runtime.tflm import default_arena_size

    work = Path(work_dir)
    report = FuzzReport(mutants=count)
    blobs = list(models.items())
    parsed = {}
    for i in range(count):
        source, blob = blobs[i % len(blobs)]
        mutant = mutate(blob, rng)
        name = f"mutant{i:05d}_{source}.tflite"
        try:
            model = parse_tflite(mutant, name)
        except UnasError:
            report.reader_refused += 1
            continue
        except Exception as exc:  # noqa: BLE001
            report.tracebacks.append(f"reader, {name}: {_describe(exc)}")
            continue
        t = model.tensors[model.inputs[0]]
        x = None
        if t.dtype == "int8" and 0 < t.nbytes <= MAX_INPUT_BYTES:
            shape = t.shape[1:] if len(t.shape) > 1 else t.shape
            x = rng.integers(-128, 128, size=(SAMPLES, *shape), dtype=np.int8)
        parsed[name] = (mutant, model, x)

    names = list(parsed)
    outcomes = dict(zip(names, run_isolated(
        [(parsed[n][0], default_arena_size(parsed[n][0]), parsed[n][2]) for n in names],
        timeout_s)))
    for n, (status, _) in outcomes.items():
        report.tflm_refused += status == "refused"
        report.tflm_crashed += status == "crashed"
        if status == "crashed":
            report.tflm_crashed_models[n] = parsed[n][0]

    generated = []
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"))
    try:
        futures = {n: pool.submit(_generate_one, parsed[n][0], n, str(work / n[:-7]))
                   for n in names}
        for n, future in futures.items():
            try:
                status, text = future.result(timeout=timeout_s)
            except BrokenProcessPool:
                report.crashes.append(f"generator worker died on {n}")
                pool.shutdown(cancel_futures=True)
                pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"))
                continue
            except TimeoutError:
                report.crashes.append(f"generator: no answer within {timeout_s} s on {n}")
                continue
            if status == "refused":
                report.generator_refused += 1
            elif status == "traceback":
                report.tracebacks.append(f"generator, {n}: {text}")
            else:
                generated.append(n)
    finally:
        pool.shutdown(cancel_futures=True)

    dirs = [work / n[:-7] for n in generated]
    try:
        executables = dict(zip(generated, build_host(dirs, jobs=jobs)))
    except BuildError:  # every model was still attempted: those without a program failed
        executables = {n: d / "model_host" for n, d in zip(generated, dirs)
                       if (d / "model_host").is_file()}
        for n, d in zip(generated, dirs):
            if n not in executables:
                try:
                    executables[n] = build_host([d], jobs=1)[0]
                except BuildError as exc:
                    report.crashes.append(f"gcc rejected the generated code of {n}: "
                                          f"{str(exc)[:300]}")
    for n, exe in executables.items():
        mutant, model, x = parsed[n]
        tflm_status, tflm_value = outcomes[n]
        if tflm_status != "ok":
            report.generator_accepts_tflm_refuses.append(
                f"{n}: TFLM {tflm_status}: {str(tflm_value)[:200]}")
        if x is None:
            continue  # nothing to feed: generation and the build are what was checked
        status, out = _run_program(exe, x, timeout_s)
        if status != "ok":
            report.crashes.append(f"the generated program of {n}: {out.decode()}")
            continue
        report.accepted += 1
        if tflm_status != "ok":
            continue
        theirs = np.asarray(tflm_value)
        ours = np.frombuffer(out, dtype=theirs.dtype) if theirs.size else np.zeros(0)
        if ours.size == theirs.size and np.array_equal(ours.reshape(theirs.shape), theirs):
            report.bit_exact += 1
        else:
            report.mismatched.append(f"{n}: {ours.size} output values vs TFLM's {theirs.size}")
    return report
