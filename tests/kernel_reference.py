"""TFLite Micro's reference int8 arithmetic in Python, and a small harness that compiles a C
snippet against the generated code's kernel library, for the kernel tests (the compiled library
itself is conftest's ``kernels_object`` fixture)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

KERNELS = Path(__file__).resolve().parents[1] / "tflm_runtime" / "codegen" / "c"

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def srdhm(a: int, b: int) -> int:
    """TFLM SaturatingRoundingDoublingHighMul."""
    if a == b == INT32_MIN:
        return INT32_MAX
    total = a * b + (2**30 if a * b >= 0 else 1 - 2**30)
    quotient = abs(total) // 2**31
    return quotient if total >= 0 else -quotient


def rdbypot(x: int, exponent: int) -> int:
    """TFLM RoundingDivideByPOT."""
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if (x & mask) > threshold else 0)


def mbqm(x: int, multiplier: int, shift: int) -> int:
    """TFLM MultiplyByQuantizedMultiplier."""
    return rdbypot(srdhm(x * (1 << max(shift, 0)), multiplier), max(-shift, 0))


def requantize(acc: int, mult: int, shift: int, out_zp: int, lo: int, hi: int) -> int:
    return min(max(mbqm(acc, mult, shift) + out_zp, lo), hi)


def _reference(c, bias, mult, shift, tap) -> np.ndarray:
    """TFLM's reference loop shared by convolutions: for every output (oy, ox, oc) the bias plus
    ``tap(oc, ky, kx, iy, ix)`` over the filter taps inside the image (dilation ``c["dil_h"]`` /
    ``c["dil_w"]``, default 1), requantised to int8."""
    dil_h, dil_w = c.get("dil_h", 1), c.get("dil_w", 1)
    out = np.zeros((c["out_h"], c["out_w"], c["out_c"]), dtype=np.int8)
    for oy in range(c["out_h"]):
        for ox in range(c["out_w"]):
            taps = [(ky, kx, iy, ix)
                    for ky in range(c["k_h"]) for kx in range(c["k_w"])
                    for iy, ix in [(oy * c["stride_h"] - c["pad_t"] + ky * dil_h,
                                    ox * c["stride_w"] - c["pad_l"] + kx * dil_w)]
                    if 0 <= iy < c["in_h"] and 0 <= ix < c["in_w"]]
            for oc in range(c["out_c"]):
                acc = int(bias[oc]) + sum(tap(oc, *t) for t in taps)
                out[oy, ox, oc] = requantize(acc, int(mult[oc]), int(shift[oc]), c["out_zp"],
                                             c["act_min"], c["act_max"])
    return out


def reference_conv(x, w, bias, mult, shift, c) -> np.ndarray:
    """TFLM reference int8 CONV_2D (NHWC input, [out_c][k_h][k_w][in_c] filter); dilation
    ``c["dil_h"]`` / ``c["dil_w"]`` (default 1), taps outside the image skipped."""
    return _reference(c, bias, mult, shift, lambda oc, ky, kx, iy, ix: int(np.dot(
        w[oc, ky, kx].astype(np.int64), x[iy, ix].astype(np.int64) - c["in_zp"])))


def reference_depthwise(x, w, bias, mult, shift, c) -> np.ndarray:
    """TFLM reference int8 DEPTHWISE_CONV_2D (filter [k_h][k_w][out_c], ``c["depth_mult"]``
    outputs per input channel)."""
    return _reference(c, bias, mult, shift, lambda oc, ky, kx, iy, ix: int(w[ky, kx, oc]) * (
        int(x[iy, ix, oc // c["depth_mult"]]) - c["in_zp"]))


def quantization(rng: np.random.Generator, out_c: int, depth: int, shifts: str = "normal",
                 dead_channel: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel multipliers in [2^30, 2^31) and shifts: ``normal`` right shifts keep outputs
    mostly inside int8 (some saturate), ``mixed`` right shifts from 1 (saturating) to well above
    the product, ``left`` makes channel 0 scale up (generic requantisation). With
    ``dead_channel`` and more than two channels, channel 1 gets TFLM's zero multiplier."""
    mult = rng.integers(2**30, 2**31 - 1, size=out_c, dtype=np.int64)
    base = int(np.ceil(np.log2(max(depth, 1)))) + 6
    if shifts == "mixed":
        shift = -rng.integers(1, base + 3, size=out_c)
    elif shifts == "left":
        shift = -rng.integers(base - 2, base + 2, size=out_c)
        shift[0] = 1
    else:
        shift = -rng.integers(base - 2, base + 2, size=out_c)
    if dead_channel and out_c > 2:
        mult[1], shift[1] = 0, 0
    return mult, shift


def c_array(name: str, ctype: str, values: np.ndarray) -> str:
    return f"static const {ctype} {name}[] = {{{', '.join(str(int(v)) for v in values.ravel())}}};"


def compile_kernels(out_dir: Path) -> Path:
    """unas_kernels.c compiled for the host into ``out_dir/unas_kernels.o``."""
    obj = out_dir / "unas_kernels.o"
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-c",
                    str(KERNELS / "unas_kernels.c"), "-o", str(obj)],
                   check=True, capture_output=True, text=True)
    return obj


def run_c(obj: Path, tmp_path: Path, decls: list[str], call: str, out_size: int) -> np.ndarray:
    """Compile decls + a main() that runs ``call`` into ``out``, link with the kernels object
    ``obj`` and return ``out``."""
    source = tmp_path / "case.c"
    source.write_text("\n".join([
        '#include <stdio.h>', '#include "unas_kernels.h"', *decls,
        f"static int8_t out[{out_size}];",
        "int main(void) {", f"  {call}",
        f"  for (int i = 0; i < {out_size}; ++i) printf(\"%d\\n\", out[i]);",
        "  return 0;", "}"]))
    binary = tmp_path / "case"
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(KERNELS), str(source),
                    str(obj), "-lm", "-o", str(binary)],
                   check=True, capture_output=True, text=True)
    done = subprocess.run([str(binary)], check=True, capture_output=True, text=True)
    return np.array([int(v) for v in done.stdout.split()], dtype=np.int8)
