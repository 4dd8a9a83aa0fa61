"""Benchmark: the direct k x k convolution kernel (unas_conv2d_s8) on the layers of issue 8 where
'same' padding makes most output pixels border pixels (large kernels on 7x7 / 14x14 images).

Each layer is its own one-convolution model (Input -> Conv2D 'same' -> ReLU, int8, random
weights: instruction counts do not depend on the values), generated as C, built for the emulated
Cortex-M4 and timed per kernel; outputs are checked bit-exact against the host build. Prints one
line per layer: instructions of the convolution, its MACs and instructions per MAC.

    python benchmarks/bench_conv_border.py            # every layer
    python benchmarks/bench_conv_border.py --layers 2 # the first two
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tflm_runtime.board import generate_model_sources, measure_c_model

#: (input h = w, input channels, output channels, kernel, stride) of the issue's worst layers.
LAYERS = [
    (7, 68, 119, 7, 1),
    (7, 81, 57, 5, 1),
    (7, 44, 89, 5, 1),
    (7, 89, 34, 5, 1),
    (14, 48, 86, 5, 2),
    (14, 23, 122, 5, 2),
    (14, 6, 73, 7, 2),
    (7, 227, 1, 7, 1),
]


def _export(size: int, c_in: int, c_out: int, k: int, stride: int, path: Path,
            rng: np.random.Generator) -> None:
    from unas.export.quantize import keras_to_int8_tflite
    from unas.tfenv import keras

    inputs = keras.Input((size, size, c_in))
    x = keras.layers.Conv2D(c_out, k, strides=stride, padding="same")(inputs)
    model = keras.Model(inputs, keras.layers.ReLU()(x))
    calibration = rng.normal(size=(32, size, size, c_in)).astype("float32")
    path.write_bytes(keras_to_int8_tflite(model, calibration))


def measure_layer(layer: tuple[int, int, int, int, int], rng: np.random.Generator,
                  cpu: str = "cortex-m4") -> tuple[int, int]:
    """(instructions of the CONV_2D kernel, its MACs) of one layer on ``cpu``."""
    size, c_in, c_out, k, stride = layer
    out = -(-size // stride)
    with tempfile.TemporaryDirectory(prefix="bench-conv-") as temporary:
        model = Path(temporary) / "conv.tflite"
        _export(size, c_in, c_out, k, stride, model, rng)
        sources = generate_model_sources(model, Path(temporary) / "c")
        m = measure_c_model(sources, cpu=cpu, rng=rng, samples=1, per_layer=True)
    conv = [count for count, name in zip(m.layer_instructions[0], m.layer_names or ())
            if "CONV_2D" in name]
    return sum(conv), out * out * c_out * k * k * c_in


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=len(LAYERS), help="measure the first N")
    parser.add_argument("--cpu", default="cortex-m4")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for layer in tqdm(LAYERS[:args.layers], file=sys.stderr, desc="layers"):
        instructions, macs = measure_layer(layer, rng, args.cpu)
        rows.append((layer, instructions, macs))
    print("| input | filter | stride | instructions | MACs | instr/MAC |")
    print("|---|---|---|---:|---:|---:|")
    for (size, c_in, c_out, k, stride), instructions, macs in rows:
        print(f"| {size}x{size}x{c_in} | {c_out}x{k}x{k}x{c_in} | {stride} | {instructions} "
              f"| {macs} | {instructions / macs:.2f} |")
    total_i = sum(r[1] for r in rows)
    total_m = sum(r[2] for r in rows)
    print(f"| all | | | {total_i} | {total_m} | {total_i / total_m:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
