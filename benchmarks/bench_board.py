"""Benchmark: generated C models on the emulated Cortex-M4 and Cortex-M7 (QEMU mps2, icount).

For a fixed set of int8 models (small CNNs of the μNAS CNN space, an MCUNet-like
inverted-residual net, a net of 1x1 convolutions) it reports instructions per inference on both
cores, instructions per MAC, the generated code's Flash (without weights), Flash and SRAM from the
linker; across ``--random`` random CNN-space architectures it fits measured instructions against
MACs (R² of a least-squares line) and draws a scatter plot. Weights are random (0 training steps):
instruction counts do not depend on training. Writes benchmarks/results/board.md and board.png.

    python benchmarks/bench_board.py                # full run (50 random architectures)
    python benchmarks/bench_board.py --random 5     # quick look
"""
from __future__ import annotations

import argparse
import datetime
import re
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from tflm_runtime.board import (BoardMeasurement, ModelDoesNotFitError, generate_model_sources,
                                measure_c_model)
from unas.errors import UnasError
from unas.files import atomic_write_bytes, atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"
CPUS = ("cortex-m4", "cortex-m7")
BOARD = "stm32f746"
INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
#: Random architectures above these are skipped (QEMU time / the board's 1 MB Flash).
MAX_RANDOM_MACS = 20_000_000
MAX_RANDOM_PARAM_BYTES = 700_000
#: Targets from issue 8.
TARGET_INSTRUCTIONS_PER_MAC = 2.5
TARGET_POINTWISE_INSTRUCTIONS_PER_MAC = 2.0
TARGET_CODE_BYTES = 12 * 1024
TARGET_R2 = 0.98


@dataclass(frozen=True)
class ModelRow:
    """One model measured on every CPU (and, for fixed models, per layer on each)."""

    name: str
    macs: int
    pointwise_macs: int
    results: dict[str, BoardMeasurement]
    op_macs: dict[int, int]
    features: dict[str, int]
    layers: dict[str, BoardMeasurement] | None = None
    #: MACs counting whole windows (taps over 'same' padding too): the usual convention
    window_macs: int = 0


def _mcunet_like(keras: Any) -> Any:
    """A small MobileNetV2/MCUNet-style net: conv stem, inverted residual blocks (1x1 expand,
    3x3 depthwise, 1x1 project, residual add), global pooling, classifier (~0.5 M MACs)."""
    layers = keras.layers

    def conv_bn(x: Any, filters: int, kernel: int, stride: int, relu: bool) -> Any:
        x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU(6.0)(x) if relu else x

    def inverted_residual(x: Any, expand: int, out: int, stride: int) -> Any:
        y = conv_bn(x, x.shape[-1] * expand, 1, 1, True) if expand > 1 else x
        y = layers.DepthwiseConv2D(3, stride, padding="same", use_bias=False)(y)
        y = layers.ReLU(6.0)(layers.BatchNormalization()(y))
        y = conv_bn(y, out, 1, 1, False)
        return layers.Add()([x, y]) if stride == 1 and x.shape[-1] == out else y

    inputs = keras.Input((36, 36, 3))
    x = conv_bn(inputs, 8, 3, 2, True)
    for expand, out, stride in ((1, 8, 1), (3, 16, 2), (3, 16, 1), (3, 24, 2), (3, 24, 1)):
        x = inverted_residual(x, expand, out, stride)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(NUM_CLASSES)(x), name="mcunet_like")


def _pointwise_net(keras: Any) -> Any:
    """Mostly 1x1 convolutions (what the < 2 instructions/MAC target is about)."""
    layers = keras.layers
    inputs = keras.Input((16, 16, 16))
    x = inputs
    for filters in (32, 32, 48, 32):
        x = layers.Conv2D(filters, 1, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(NUM_CLASSES)(x), name="pointwise")


def _space_model(seed: int) -> Callable[[Any], Any]:
    def build(keras: Any) -> Any:
        arch = _small_random_architectures(np.random.default_rng(seed), 1)[0]
        return arch.build(INPUT_SHAPE, NUM_CLASSES)
    return build


def _small_random_architectures(rng: np.random.Generator, count: int) -> list[Any]:
    """``count`` random CNN-space architectures within the MAC and parameter caps."""
    from search_spaces import get_space

    space, found = get_space("cnn"), []
    while len(found) < count:
        arch = space.random_architecture(rng)
        graph = arch.resource_graph(INPUT_SHAPE, NUM_CLASSES)
        macs = sum(d["macs"] for _, d in graph.nodes(data=True))
        size = sum(d["size_bytes"] for _, d in graph.nodes(data=True))
        if macs <= MAX_RANDOM_MACS and size <= MAX_RANDOM_PARAM_BYTES:
            found.append(arch)
    return found


FIXED_MODELS: dict[str, Callable[[Any], Any]] = {
    "cnn_space_seed1": _space_model(1),
    "cnn_space_seed2": _space_model(2),
    "mcunet_like": _mcunet_like,
    "pointwise_1x1": _pointwise_net,
}


def export(build: Callable[[], Any] | Any, path: Path, rng: np.random.Generator) -> None:
    """Untrained (random-weight) int8 export to ``path`` of the model ``build()`` returns, its
    initial weights seeded from ``rng``: a rerun with the same seed exports the same models, so
    every layer gets the same requantisation path (which depends on the weights) and count.
    ``build`` may also be a Keras model already built (``export(_mcunet_like(keras), ...)``):
    it is exported as it is, with its own (unseeded) initial weights."""
    from unas.export.quantize import keras_to_int8_tflite
    from unas.tfenv import keras

    keras.utils.set_random_seed(int(rng.integers(2**31 - 1)))
    model = build if isinstance(build, keras.Model) else build()
    shape = (32, *(int(d) for d in model.inputs[0].shape[1:]))
    path.write_bytes(keras_to_int8_tflite(model, rng.normal(size=shape).astype(np.float32)))


#: Features of the per-kernel-type cost model fitted next to the MACs-only line.
FEATURES = ("conv_macs", "conv1x1_macs", "depthwise_macs", "dense_macs", "output_elements")


def mac_counts(path: Path) -> tuple[int, int, dict[int, int], dict[str, int], int]:
    """(all MACs, MACs of 1x1 convolutions, MACs per operator index, cost-model features,
    full-window MACs) of a .tflite model. MACs are the resource model's (taps inside the input,
    :func:`unas.resources.macs.conv_macs`); the last value also counts the taps over 'same'
    padding, as MACs are usually counted. ``output_elements`` counts the elements every
    operator writes."""
    from tflm_runtime.tflite_model import operator_macs, read_tflite

    model = read_tflite(path)
    total = pointwise = window = 0
    per_op: dict[int, int] = {}
    features = dict.fromkeys(FEATURES, 0)
    for op in model.operators:
        out = model.tensors[op.outputs[0]].shape
        features["output_elements"] += int(np.prod(out))
        if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            weights = model.tensors[op.inputs[1]].shape
            macs = operator_macs(model, op)
            if op.opcode == "CONV_2D":
                window += int(np.prod(out[1:])) * int(np.prod(weights[1:]))
                pointwise += macs if weights[1:3] == (1, 1) else 0
                kind = "conv1x1_macs" if weights[1:3] == (1, 1) else "conv_macs"
            elif op.opcode == "DEPTHWISE_CONV_2D":
                window += int(np.prod(out[1:])) * int(np.prod(weights[1:3]))
                kind = "depthwise_macs"
            else:
                window += macs
                kind = "dense_macs"
            total += macs
            per_op[op.index] = macs
            features[kind] += macs
    return total, pointwise, per_op, features, window


def measure_model(name: str, path: Path, rng: np.random.Generator,
                  per_layer: tuple[str, ...] = ()) -> ModelRow:
    """Generate C for one exported model once, measure it on every CPU (2 random input samples
    each; on the CPUs in ``per_layer`` also a per-kernel timed run, whose marks' cost is
    subtracted)."""
    macs, pointwise, per_op, features, window = mac_counts(path)
    with tempfile.TemporaryDirectory(prefix="bench-board-c-") as temporary:
        sources = generate_model_sources(path, Path(temporary))
        results = {cpu: measure_c_model(sources, cpu=cpu, board=BOARD, rng=rng, samples=2,
                                        timeout_s=600) for cpu in CPUS}
        layers = ({cpu: measure_c_model(sources, cpu=cpu, board=BOARD, rng=rng, samples=1,
                                        timeout_s=600, per_layer=True) for cpu in per_layer}
                  if per_layer else None)
    return ModelRow(name, macs, pointwise, results, per_op, features, layers, window)


_OP_INDEX = re.compile(r"#(\d+)")


def kernel_totals(rows: list[ModelRow], cpu: str) -> dict[str, tuple[int, int, int]]:
    """Per kernel function: (calls, instructions, MACs) summed over the per-layer runs."""
    totals: dict[str, list[int]] = {}
    for row in rows:
        if row.layers is None or cpu not in row.layers:
            continue
        run = row.layers[cpu]
        for count, name in zip(run.layer_instructions[0], run.layer_names or ()):
            kernel = name.split()[0]
            # a fused block's label names every operator it runs ("#5 (CONV_2D #4 -> ...)")
            indices = {int(i) for i in _OP_INDEX.findall(name)}
            macs = sum(row.op_macs.get(i, 0) for i in indices)
            entry = totals.setdefault(kernel, [0, 0, 0])
            entry[0] += 1
            entry[1] += count
            entry[2] += macs
    return {kernel: (calls, count, macs) for kernel, (calls, count, macs) in totals.items()}


def r_squared(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(slope, intercept, R²) of the least-squares line y = slope * x + intercept."""
    from scipy.stats import linregress

    fit = linregress(x, y)
    return float(fit.slope), float(fit.intercept), float(fit.rvalue ** 2)


def cost_model_fit(rows: list[ModelRow], cpu: str) -> tuple[dict[str, float], float]:
    """Least-squares instructions ≈ Σ coefficient·feature + constant: (coefficients, R²)."""
    x = np.array([[r.features[f] for f in FEATURES] + [1] for r in rows], dtype=float)
    y = np.array([r.results[cpu].instructions[0] for r in rows], dtype=float)
    coefficients, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ coefficients
    r2 = 1 - float(residual @ residual) / float(((y - y.mean()) ** 2).sum())
    return dict(zip((*FEATURES, "constant"), map(float, coefficients))), r2


def output_paths(out: Path) -> tuple[Path, Path]:
    """(report .md, plot .png) for ``--out``: a ``.md`` file (the plot goes next to it, same stem)
    or a folder (``board.md`` and ``board.png`` inside it)."""
    if out.suffix.lower() == ".md":
        return out, out.with_suffix(".png")
    return out / "board.md", out / "board.png"


def plot(rows: list[ModelRow], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4.5))
    macs = np.array([r.macs for r in rows], dtype=float)
    for cpu, marker in zip(CPUS, ("o", "x")):
        instructions = np.array([r.results[cpu].instructions[0] for r in rows], dtype=float)
        slope, intercept, r2 = r_squared(macs, instructions)
        axes.scatter(macs / 1e6, instructions / 1e6, marker=marker, s=18,
                     label=f"{cpu}: {slope:.2f} instr/MAC, R²={r2:.4f}")
        line = np.geomspace(macs.min(), macs.max(), 50)
        fitted = slope * line + intercept
        axes.plot(line / 1e6, np.where(fitted > 0, fitted, np.nan) / 1e6, linewidth=0.8)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("MACs (millions, log scale)")
    axes.set_ylabel("instructions per inference (millions, log scale)")
    axes.set_title(f"{len(rows)} random CNN-space models, generated C, QEMU icount")
    axes.legend(fontsize=8)
    figure.tight_layout()
    with tempfile.TemporaryDirectory() as temporary:
        figure.savefig(Path(temporary) / "plot.png", dpi=120)
        atomic_write_bytes(path, (Path(temporary) / "plot.png").read_bytes())
    plt.close(figure)


def _ratio(instructions: int, macs: int) -> str:
    return f"{instructions / macs:.2f}" if macs else "–"


def _yes(condition: bool) -> str:
    return "met" if condition else "**not met**"


def code_version() -> str:
    """The commit measured, and whether the code generator had uncommitted changes."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                          text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "tflm_runtime/codegen"], cwd=root,
                           capture_output=True, text=True).stdout.strip()
    return head + (" (tflm_runtime/codegen with uncommitted changes)" if dirty else "")


def report(fixed: list[ModelRow], random_rows: list[ModelRow], skipped: list[str],
           command: str, png_name: str, version: str, failures: list[str]) -> str:
    lines = [
        "# Generated C on the emulated Cortex-M board",
        "",
        f"Command: `{command}`  ",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  ",
        f"Code: commit {version}  ",
        f"Board: {BOARD} sizes (1 MB Flash, 320 KB SRAM) on QEMU mps2-an386 (Cortex-M4) / "
        "mps2-an500 (Cortex-M7), `-icount shift=6`; instructions from the CMSDK timer "
        "(1.6 ticks per instruction, calibrated each run; see docs/board.md). Outputs of every "
        "run were checked bit-exact against the host gcc build of the same generated code.",
        "Weights are random (untrained int8 export, seeded by `--seed`): counts depend on them "
        "only through the requantisation path a layer gets.",
        "",
        "## Fixed models",
        "",
        "MACs are the resource model's: taps inside the input (docs/resources.md); \"window "
        "MACs\" also count the taps over 'same' padding, as MACs are usually counted.",
        "",
        "| model | MACs | window MACs | 1x1 MACs | M4 instr | M4 instr/MAC | M7 instr | "
        "M7 instr/MAC | code B (no weights) | constants B | Flash B | SRAM B linked | "
        "SRAM B peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in fixed:
        m4, m7 = row.results["cortex-m4"], row.results["cortex-m7"]
        mem = m7.memory
        lines.append(
            f"| {row.name} | {row.macs} | {row.window_macs} | {row.pointwise_macs} | "
            f"{m4.instructions[0]} | "
            f"{m4.instructions[0] / row.macs:.2f} | {m7.instructions[0]} | "
            f"{m7.instructions[0] / row.macs:.2f} | {mem.model_code_bytes} | "
            f"{mem.model_const_bytes} | {mem.flash_bytes} | {mem.ram_bytes} | "
            f"{mem.peak_ram_bytes} |")
    lines += ["", "Memory columns are the Cortex-M7 build; \"SRAM linked\" includes the 4 KB "
              "stack reservation, \"peak\" is .data + .bss + the measured stack high-water mark.",
              ""]
    lines += ["## Per kernel (fixed models, per-layer timed runs)", "",
              "Timer marks between kernel calls; each mark's cost is subtracted (the per-layer "
              "sum matches the plain run to a few instructions per layer).", "",
              "| kernel | calls | M4 instr | M4 instr/MAC | M7 instr | M7 instr/MAC | MACs |",
              "|---|---|---|---|---|---|---|"]
    kernels = {cpu: kernel_totals(fixed, cpu) for cpu in CPUS}
    for kernel, (calls, m4_count, macs) in sorted(kernels["cortex-m4"].items()):
        m7_count = kernels["cortex-m7"][kernel][1]
        lines.append(f"| {kernel} | {calls} | {m4_count} | {_ratio(m4_count, macs)} | "
                     f"{m7_count} | {_ratio(m7_count, macs)} | {macs} |")
    lines.append("")
    all_rows = fixed + random_rows
    overall = {cpu: sum(r.results[cpu].instructions[0] for r in all_rows)
               / sum(r.macs for r in all_rows) for cpu in CPUS}
    pointwise_ratio = {}
    for cpu in CPUS:
        picked = [totals for kernel, totals in kernels[cpu].items() if "1x1" in kernel]
        if sum(t[2] for t in picked):
            pointwise_ratio[cpu] = sum(t[1] for t in picked) / sum(t[2] for t in picked)
    max_code = max(r.results[cpu].memory.model_code_bytes for r in all_rows for cpu in CPUS)
    if random_rows:
        macs = np.array([r.macs for r in random_rows], dtype=float)
        fits = {cpu: r_squared(macs, np.array([r.results[cpu].instructions[0]
                                               for r in random_rows], dtype=float))
                for cpu in CPUS}
        per_mac = {cpu: np.array([r.results[cpu].instructions[0] / r.macs for r in random_rows])
                   for cpu in CPUS}
        lines += [f"## {len(random_rows)} random CNN-space architectures", "",
                  f"Input {INPUT_SHAPE}, {NUM_CLASSES} classes; sampled with seed 0 and kept when "
                  f"≤ {MAX_RANDOM_MACS / 1e6:g} M MACs and ≤ {MAX_RANDOM_PARAM_BYTES // 1000} kB "
                  f"of parameters ({len(skipped)} did not fit the board when linked"
                  + (f": {', '.join(skipped)}" if skipped else "") + ").", "",
                  "| cpu | slope (instr/MAC) | intercept (instr) | R² | instr/MAC median | "
                  "min | max |", "|---|---|---|---|---|---|---|"]
        for cpu in CPUS:
            slope, intercept, r2 = fits[cpu]
            lines.append(f"| {cpu} | {slope:.3f} | {intercept:.0f} | {r2:.4f} | "
                         f"{np.median(per_mac[cpu]):.2f} | {per_mac[cpu].min():.2f} | "
                         f"{per_mac[cpu].max():.2f} |")
        window = np.array([r.window_macs for r in random_rows], dtype=float)
        window_r2 = {cpu: r_squared(window, np.array([r.results[cpu].instructions[0]
                                                      for r in random_rows], dtype=float))[2]
                     for cpu in CPUS}
        in_image = np.array([r.macs for r in random_rows], dtype=float)
        ceiling = r_squared(window, in_image)[2]
        lines += ["", "Counting whole windows instead (taps over 'same' padding too), the same "
                  "fit gives R² " + ", ".join(f"{window_r2[cpu]:.4f} ({cpu})" for cpu in CPUS)
                  + ". An engine whose instructions were exactly proportional to the in-image "
                  f"MACs (the padding taps skipped, as here) would score {ceiling:.4f} in that "
                  "reading: the R² of whole-window against in-image MACs on these models."]
        lines += ["", f"![MACs vs instructions]({png_name})", "",
                  "MACs alone leave much unexplained (pooling, adds and requantisation cost per "
                  "output element; depthwise costs more per MAC than dense convolution). A "
                  "per-kernel-type cost model fitted by least squares on the same models:", "",
                  "| cpu | " + " | ".join(f"{f} coef" for f in FEATURES) + " | constant | R² |",
                  "|---|" + "---|" * (len(FEATURES) + 2)]
        for cpu in CPUS:
            coefficients, r2 = cost_model_fit(random_rows, cpu)
            lines.append(f"| {cpu} | " + " | ".join(f"{coefficients[f]:.2f}" for f in FEATURES)
                         + f" | {coefficients['constant']:.0f} | {r2:.4f} |")
        random_kernels = kernel_totals(random_rows, CPUS[0])
        total = sum(count for _, count, _ in random_kernels.values())
        lines += ["", f"Where the instructions of the random models go ({CPUS[0]}, per-layer timed "
                  "runs; a fused step's MACs are all of its operators'):", "",
                  "| kernel | calls | instr | share | instr/MAC | MACs |",
                  "|---|---|---|---|---|---|"]
        for kernel, (calls, count, kernel_macs) in sorted(random_kernels.items(),
                                                         key=lambda item: -item[1][1]):
            lines.append(f"| {kernel} | {calls} | {count} | {100 * count / total:.1f}% | "
                         f"{_ratio(count, kernel_macs)} | {kernel_macs} |")
        lines.append("")
    if failures:
        lines += ["## Failures", "", *(f"- {failure}" for failure in failures), ""]
    mismatches = [f for f in failures if "output mismatch" in f]
    lines += ["## Targets (issue 8)", "",
              f"- bit-exact with the host build: {_yes(not mismatches)} (every run is checked; "
              f"{len(mismatches)} mismatching models)",
              *(f"- < {TARGET_INSTRUCTIONS_PER_MAC} instructions/MAC overall ({cpu}, all models "
                f"above, total instructions / total MACs): {overall[cpu]:.2f}, "
                f"{_yes(overall[cpu] < TARGET_INSTRUCTIONS_PER_MAC)}" for cpu in CPUS),
              *(f"- < {TARGET_POINTWISE_INSTRUCTIONS_PER_MAC} instructions/MAC for 1x1 convs "
                f"({cpu}, 1x1 convolution kernel over the fixed models): "
                f"{pointwise_ratio[cpu]:.2f}, "
                f"{_yes(pointwise_ratio[cpu] < TARGET_POINTWISE_INSTRUCTIONS_PER_MAC)}"
                for cpu in pointwise_ratio),
              f"- generated code (no weights) < {TARGET_CODE_BYTES // 1024} KB Flash: largest "
              f"{max_code} B, {_yes(max_code < TARGET_CODE_BYTES)}"]
    if random_rows:
        lines += [f"- R² ≥ {TARGET_R2} (MACs vs instructions, {cpu}): {fits[cpu][2]:.4f}, "
                  f"{_yes(fits[cpu][2] >= TARGET_R2)}" for cpu in CPUS]
    lines += ["", "References (from the issue): TFLM with CMSIS-NN on this emulated board "
              "3.4–7.6 instructions/MAC; TinyEngine 2.12 M instructions for an MCUNet-like "
              "483 K MAC model (4.39 instructions/MAC).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--random", type=int, default=50, help="random CNN architectures")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="report file (.md; the plot is written next to it as .png) or a "
                             "folder for board.md and board.png (default: benchmarks/results)")
    parser.add_argument("--code-version", default=None,
                        help="commit measured, when run from an exported snapshot (default: git)")
    args = parser.parse_args(argv)
    command = "python benchmarks/bench_board.py " + shlex.join(argv or sys.argv[1:])
    from unas.tfenv import keras

    rng = np.random.default_rng(args.seed)
    fixed: list[ModelRow] = []
    random_rows: list[ModelRow] = []
    skipped: list[str] = []
    failures: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-board-") as temporary:
            folder = Path(temporary)
            for name, build in tqdm(FIXED_MODELS.items(), desc="fixed models", file=sys.stderr):
                export(lambda: build(keras), folder / f"{name}.tflite", rng)
                try:
                    fixed.append(measure_model(name, folder / f"{name}.tflite", rng,
                                               per_layer=CPUS))
                except UnasError as error:
                    failures.append(f"{name}: {error}")
            archs = _small_random_architectures(np.random.default_rng(args.seed), args.random)
            for index, arch in enumerate(tqdm(archs, desc="random CNNs", file=sys.stderr)):
                path = folder / f"random{index}.tflite"
                export(lambda: arch.build(INPUT_SHAPE, NUM_CLASSES), path, rng)
                try:
                    random_rows.append(measure_model(f"random{index}", path, rng,
                                                     per_layer=CPUS[:1]))
                except ModelDoesNotFitError:
                    skipped.append(f"random{index}")
                except UnasError as error:  # a generator or board failure: report, go on
                    failures.append(f"random{index}: {error}")
    except UnasError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    markdown, png = output_paths(args.out)
    if random_rows:
        plot(random_rows, png)
    text = report(fixed, random_rows, skipped, command.strip(), png.name,
                  args.code_version or code_version(), failures)
    atomic_write_text(markdown, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
