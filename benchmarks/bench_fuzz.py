"""Fuzz the .tflite reader, TFLM and the code generator with mutated models (issue #23).

Mutants (bit flips, byte insertions and overwrites, int32 overwrites, cuts) of two small valid
int8 models (:func:`unas.export.demo.small_int8_tflite`, a CNN, and a Dense MLP with SOFTMAX)
go through the reader, TFLM (each attempt in a forked child) and the generator (in a spawned
worker, then gcc and the generated program on random inputs, compared with TFLM bit for bit);
the harness is :func:`tflm_runtime.fuzz.fuzz`, the same as ``tests/test_fuzz_tflite.py``.

Writes the counts to ``benchmarks/results/fuzz.md`` with the command, commit and date::

    PYTHONPATH=$PWD python3 benchmarks/bench_fuzz.py --mutants 2000
"""
from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def mlp_softmax_tflite() -> bytes:
    """A small Dense MLP with SOFTMAX (the model whose arena probes crashed TFLM)."""
    import numpy as np

    from unas.export.quantize import keras_to_int8_tflite
    from unas.tfenv import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(4), keras.layers.Softmax()])
    rng = np.random.default_rng(0)
    return keras_to_int8_tflite(model, rng.normal(size=(16, 16)).astype("float32"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=int, default=2000, help="how many (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="numpy default_rng seed")
    parser.add_argument("--jobs", type=int, default=2, help="generator workers and gcc jobs")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fuzz.md"))
    args = parser.parse_args(argv)

    import numpy as np

    from tflm_runtime.fuzz import fuzz
    from unas.export.demo import small_int8_tflite

    models = {"cnn": small_int8_tflite(), "mlp": mlp_softmax_tflite()}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        report = fuzz(models, args.mutants, np.random.default_rng(args.seed), work,
                      jobs=args.jobs)
    seconds = time.perf_counter() - start
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or "unknown"
    lines = ["# Fuzzing the .tflite reader, TFLM and the code generator", "",
             f"Command: `PYTHONPATH=$PWD python3 benchmarks/bench_fuzz.py "
             f"{' '.join(sys.argv[1:] if argv is None else argv)}`".rstrip() + "  ",
             f"Commit: {commit}, date: {datetime.date.today().isoformat()}, "
             f"{seconds:.0f} s on this machine.", "",
             "| | count |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in report.counts().items()]
    lines += ["", "Reading the table: the reader refuses what is structurally malformed (one "
              "`DataError` naming the file); TFLM's crashes are contained in a child process "
              "(what `TflmRunner` and `python -m unas.measure` turn into an error); the "
              "generator refuses models whose tensors contradict their operators "
              "(`tflm_runtime/codegen/validate.py`). Every mutant the generator accepts must be "
              "bit-exact with TFLM, and every mutant TFLM refuses (or crashes on) must be refused "
              "by the generator too: the last four rows are failures, listed below when not 0."]
    for title, items in (("Not bit-exact", report.mismatched),
                         ("Generator accepts, TFLM refuses", report.generator_accepts_tflm_refuses),
                         ("Crashes", report.crashes), ("Tracebacks", report.tracebacks)):
        if items:
            lines += ["", f"## {title} (first 10)", ""]
            lines += [f"- `{' '.join(item.split())[:400]}`" for item in items[:10]]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
