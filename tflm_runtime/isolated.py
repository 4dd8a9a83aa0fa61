"""Run TFLM where a crash cannot take the caller down: every attempt in its own process.

The host TFLM (the pip ``tflite-micro`` build) segfaults on some inputs instead of failing: an
arena a little too small (1,800 B crashes where 1,750 B fails cleanly and 1,850 B runs, on a
small MLP), or a malformed flatbuffer. So the arena bisection and the checks of untrusted models
run here: one worker process (``sys.executable -c`` with :data:`_WORKER`, which imports only
numpy and TFLM's runtime, so it starts in about 0.3 s and holds no threads of the caller) forks
one child per attempt; a child killed by a signal is an attempt that *crashed*, reported as such,
never the caller dying. Forking from the small worker costs milliseconds per attempt, so a
bisection of ~20 probes or a batch of fuzzed models pays the process start once.

Outcomes are tuples: ``("ok", outputs)`` (outputs batch first, or None when the job had no
inputs: then TFLM ran one invoke on zeros), ``("refused", message)`` (TFLM failed cleanly) or
``("crashed", message)`` (the attempt died: signal, timeout or no result).
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from unas.errors import DataError

Outcome = tuple[str, Any]

_WORKER = r'''
import os, pickle, signal, sys, tempfile
out = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)  # anything TFLM prints goes to stderr, never into the result stream
request = pickle.load(sys.stdin.buffer)
import numpy as np
from tflite_micro.python.tflite_micro import runtime


def attempt(model, arena, inputs):
    sink = tempfile.TemporaryFile()
    os.dup2(sink.fileno(), 2)
    try:
        interp = runtime.Interpreter.from_bytes(model, arena_size=arena)
        details = interp.get_input_details(0)
        shape = tuple(int(d) for d in details["shape"])
        samples = [np.zeros(shape, details["dtype"])] if inputs is None else list(inputs)
        outputs = []
        for sample in samples:
            interp.set_input(np.asarray(sample, details["dtype"]).reshape(shape), 0)
            interp.invoke()
            outputs.append(np.array(interp.get_output(0))[0])
        return ("ok", None if inputs is None else np.stack(outputs))
    except Exception as exc:
        sink.seek(0)
        log = " ".join(sink.read().decode(errors="replace").split())[-300:]
        return ("refused", log or f"{type(exc).__name__}: {exc}")


def forked(model, arena, inputs, timeout):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        signal.alarm(max(1, int(timeout)))
        try:
            result = attempt(model, arena, inputs)
        except BaseException as exc:
            result = ("refused", f"{type(exc).__name__}: {exc}")
        with os.fdopen(w, "wb") as f:
            f.write(pickle.dumps(result))
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGALRM:
            return ("crashed", f"timed out after {timeout} s")
        return ("crashed", f"killed by signal {sig} ({signal.Signals(sig).name})")
    try:
        return pickle.loads(data)
    except Exception:
        return ("crashed", f"exited with status {os.WEXITSTATUS(status)} and no result")


timeout = request["timeout"]
if request["mode"] == "jobs":
    result = [forked(m, a, x, timeout) for m, a, x in request["jobs"]]
else:
    model, lo, hi = request["bisect"]
    first = forked(model, hi, None, timeout)
    if first[0] != "ok":
        result = first
    else:
        while lo < hi:
            mid = (lo + hi) // 2
            if forked(model, mid, None, timeout)[0] == "ok":
                hi = mid
            else:
                lo = mid + 1
        result = ("ok", lo)
out.write(pickle.dumps(result))
out.close()
'''


def _run_worker(request: dict[str, Any], wall_timeout_s: float) -> Any:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    try:
        proc = subprocess.run([sys.executable, "-c", _WORKER], input=pickle.dumps(request),
                              capture_output=True, timeout=wall_timeout_s, env=env)
    except subprocess.TimeoutExpired as exc:
        raise DataError(f"TFLM worker: no answer within {wall_timeout_s:.0f} s") from exc
    if proc.returncode != 0 or not proc.stdout:
        tail = " ".join(proc.stderr.decode(errors="replace").split())[-300:]
        raise DataError(f"TFLM worker exited with status {proc.returncode}: {tail}")
    return pickle.loads(proc.stdout)


def run_isolated(jobs: Sequence[tuple[bytes, int, np.ndarray | None]],
                 timeout_s: float = 60.0) -> list[Outcome]:
    """One outcome per ``(model_bytes, arena_size, inputs)`` job, each run in its own forked
    process (``inputs`` batch first in the input's dtype, or None for one invoke on zeros);
    ``timeout_s`` bounds each attempt."""
    request = {"mode": "jobs", "timeout": timeout_s,
               "jobs": [(bytes(m), int(a), None if x is None else np.asarray(x))
                        for m, a, x in jobs]}
    return _run_worker(request, 30 + timeout_s * (len(jobs) + 1))


def bisect_isolated(model_bytes: bytes, lo: int, hi: int, timeout_s: float = 60.0) -> Outcome:
    """``("ok", smallest arena in [lo, hi] with which TFLM loads and runs one invoke)``, or the
    failed outcome of the attempt at ``hi``; every probe runs in its own forked process."""
    request = {"mode": "bisect", "timeout": timeout_s,
               "bisect": (bytes(model_bytes), int(lo), int(hi))}
    return _run_worker(request, 30 + timeout_s * 40)
