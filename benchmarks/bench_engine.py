"""Generated C vs TFLM: peak SRAM, Flash and host instructions per inference.

    python benchmarks/bench_engine.py [--count 100] [--profile 4] [--out benchmarks/results/engine.md]

Models: ``--profile`` random architectures of the μNAS CNN space (32x32x3, 10 classes), an
MCUNet-like inverted-residual net, and MobileNetV2 (alpha 0.35, 96x96, random weights). For each:
the SRAM of the generated code (its arena) next to the prediction of
``unas.resources.engine`` and TFLM's measured arena, and how many inverted-residual chains run
fused; Flash (``arm-none-eabi-size`` of model.o + the kernel library's objects for Cortex-M4,
-Os) next to the .tflite size; host instructions per inference of
the generated code (gcc -O2) and of TFLM (the pip tflite-micro build), both counted with
``valgrind --tool=callgrind`` inside ``model_invoke`` / ``MicroInterpreter::Invoke`` only.
Then ``--count`` random CNN-space architectures are checked: bit-exact with TFLM, and SRAM equal
to the prediction from the architecture's resource graph.
"""
from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tflm_runtime.codegen import generate  # noqa: E402
from tflm_runtime.codegen.generator import KERNEL_SOURCES  # noqa: E402
from tflm_runtime.codegen.verify import build_host, compare_with_tflm  # noqa: E402
from tflm_runtime.tflite_model import parse_tflite, resource_graph  # noqa: E402
from unas.resources.engine import peak_memory_bytes  # noqa: E402

CNN_INPUT, CNN_CLASSES = (32, 32, 3), 10

TFLM_SCRIPT = """
import sys
import numpy as np
from tflm_runtime.tflm import TflmRunner
runner = TflmRunner(open(sys.argv[1], 'rb').read())
x = np.load(sys.argv[2])
for sample in x:
    runner.invoke_one(sample)
"""


def _randomise(model, rng):
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([w + rng.normal(scale=0.05, size=w.shape).astype(w.dtype)
                               for w in weights])


def _convert(model, shape, rng) -> bytes:
    from unas.export.quantize import keras_to_int8_tflite
    _randomise(model, rng)
    return keras_to_int8_tflite(model, rng.normal(size=(8, *shape)).astype("float32"))


def mcunet_like():
    """An MCUNet-style net: 3x3 stem, inverted residual blocks (expand 3-6, kernels 3/5/7)."""
    from unas.tfenv import keras
    L = keras.layers
    inp = keras.Input((64, 64, 3))
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu6")(inp)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = L.Conv2D(8, 1)(x)
    for channels, expand, kernel, stride, repeats in [(16, 6, 7, 2, 2), (24, 3, 5, 2, 2),
                                                      (40, 6, 3, 2, 2), (48, 3, 5, 1, 1),
                                                      (96, 6, 5, 2, 2)]:
        for r in range(repeats):
            s = stride if r == 0 else 1
            y = L.Conv2D(x.shape[-1] * expand, 1, activation="relu6")(x)
            y = L.DepthwiseConv2D(kernel, strides=s, padding="same", activation="relu6")(y)
            y = L.Conv2D(channels, 1)(y)
            x = L.Add()([x, y]) if s == 1 and x.shape[-1] == channels else y
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(10)(x)), (64, 64, 3)


def mobilenet_v2():
    """MobileNetV2 0.35 at 96x96 with a 10-class head: with the default 1000 classes TFLM's
    int8 softmax aborts (its RoundingDivideByPOT exponent exceeds 31 once the sum of exps passes
    512, e.g. on near-uniform logits of random weights)."""
    from unas.tfenv import keras
    shape = (96, 96, 3)
    return keras.applications.MobileNetV2(alpha=0.35, input_shape=shape, weights=None,
                                          classes=10), shape


def _callgrind_ir(cmd: list[str], function: str, cwd: Path, env=None, stdin: Path | None = None
                  ) -> int:
    out = cwd / "callgrind.out"
    with open(stdin or os.devnull, "rb") as feed:
        subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=no",
                        f"--toggle-collect={function}", f"--callgrind-out-file={out}", *cmd],
                       cwd=cwd, check=True, capture_output=True, env=env, stdin=feed)
    text = out.read_text(errors="replace")
    match = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M)
    out.unlink()
    return int(match.group(1)) if match else 0


def host_instructions(gen_dir: Path, blob: bytes, x: np.ndarray) -> tuple[float, float]:
    """Instructions per inference: (generated C, TFLM)."""
    exe = build_host([gen_dir], opt="-O2")[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "x.bin").write_bytes(x.tobytes())
        ours = _callgrind_ir([str(exe)], "model_invoke", tmp, stdin=tmp / "x.bin")
        (tmp / "m.tflite").write_bytes(blob)
        np.save(tmp / "x.npy", x)
        (tmp / "run.py").write_text(TFLM_SCRIPT)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        theirs = _callgrind_ir([sys.executable, "run.py", "m.tflite", "x.npy"],
                               "*MicroInterpreter::Invoke*", tmp, env)
    return ours / len(x), theirs / len(x)


def flash_bytes(gen_dir: Path) -> int | None:
    """text + data of model.o + the kernel objects for Cortex-M4 (-Os), or None without the
    toolchain."""
    if shutil.which("arm-none-eabi-gcc") is None:
        return None
    total = 0
    for src in ("model.c", *KERNEL_SOURCES):
        obj = gen_dir / (src[:-2] + ".m4.o")
        subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-Os", "-mcpu=cortex-m4", "-mthumb",
                        "-mfloat-abi=soft", "-c", src, "-o", obj.name], cwd=gen_dir, check=True)
        out = subprocess.run(["arm-none-eabi-size", obj.name], cwd=gen_dir, check=True,
                             capture_output=True, text=True).stdout.splitlines()[1].split()
        total += int(out[0]) + int(out[1])
    return total


def profile_model(name: str, blob: bytes, work: Path, rng: np.random.Generator) -> dict:
    from tflm_runtime.tflm import TflmRunner

    model = parse_tflite(blob, f"{name}.tflite")
    gen = generate(model, work / name, rng=np.random.default_rng(0))
    graph = resource_graph(model)
    shape = model.tensors[model.inputs[0]].shape[1:]
    x = rng.integers(-128, 128, size=(1, *shape), dtype=np.int8)  # callgrind is deterministic
    runner = TflmRunner(blob)
    runner.invoke_one(x[0])  # not zeros: TFLM's int8 softmax aborts on 1000 equal logits
    usage = runner.arena_usage()
    ours_ir, tflm_ir = host_instructions(gen.out_dir, blob, x)
    fused = (gen.out_dir / "model.c").read_text().count("unas_fused_block_s8(")
    return dict(name=name, ops=len(model.operators), fused=fused, sram=gen.sram_bytes,
                arena=gen.arena_bytes, predicted=peak_memory_bytes(graph, "codegen"),
                tflm_predicted=peak_memory_bytes(graph, "tflm"),
                tflm_arena=usage.nonpersistent_bytes, tflm_total=usage.total_bytes,
                flash=flash_bytes(gen.out_dir), consts=gen.const_bytes, tflite=len(blob),
                ir=ours_ir, tflm_ir=tflm_ir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="random CNN archs to verify")
    parser.add_argument("--profile", type=int, default=4, help="CNN archs to profile")
    parser.add_argument("--samples", type=int, default=4, help="inputs per verified arch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/engine.md"))
    args = parser.parse_args(argv)
    from search_spaces import get_space

    rng = np.random.default_rng(args.seed)
    space = get_space("cnn")
    work = Path(tempfile.mkdtemp(prefix="bench_engine_"))
    archs = [space.random_architecture(rng) for _ in range(max(args.count, args.profile))]
    blobs: dict[str, bytes] = {}

    def convert_archs(indices: range) -> None:
        for i in tqdm(indices, desc="convert CNN archs", file=sys.stderr):
            blobs[f"cnn{i}"] = _convert(archs[i].build(CNN_INPUT, CNN_CLASSES), CNN_INPUT, rng)

    convert_archs(range(args.profile))
    rows = []
    named = [("mcunet_like", *mcunet_like()), ("mobilenetv2_0.35_96", *mobilenet_v2())]
    extra = {name: _convert(m, shape, rng) for name, m, shape in named}
    to_profile = [(f"cnn{i}", blobs[f"cnn{i}"]) for i in range(args.profile)] + list(extra.items())
    for name, blob in tqdm(to_profile, desc="profile", file=sys.stderr):
        rows.append(profile_model(name, blob, work, rng))
    for r in rows:
        print(r, file=sys.stderr, flush=True)
    _write(args, rows, ["Verification: running."])
    convert_archs(range(args.profile, args.count))

    verify = {f"cnn{i}": blobs[f"cnn{i}"] for i in range(args.count)}
    verify.update(extra)
    results = compare_with_tflm(verify, work / "verify", rng, samples=args.samples)
    exact = sum(c.bit_exact for c in results.values())
    equal = 0
    for i in range(args.count):
        c = results[f"cnn{i}"]
        pred = peak_memory_bytes(archs[i].resource_graph(CNN_INPUT, CNN_CLASSES), "codegen")
        equal += int(c.generated.sram_bytes == pred
                     and c.generated.arena_bytes == c.generated.predicted_arena_bytes)
    summary = [f"Verification: {exact}/{len(results)} models bit-exact with TFLM on "
               f"{args.samples} random inputs each; {equal}/{args.count} random CNN-space "
               "architectures have generated SRAM == predicted SRAM from the architecture's "
               "resource graph (and arena == the planner's working-set bound).", ""]
    summary += [f"- {n}: {c.first_difference}" for n, c in results.items() if not c.bit_exact]
    _write(args, rows, summary)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _write(args: argparse.Namespace, rows: list[dict], summary: list[str]) -> None:
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Generated C vs TFLM", "",
        f"Command: `python benchmarks/bench_engine.py --count {args.count} --profile "
        f"{args.profile} --seed {args.seed}`  ",
        f"Date: {date}", "",
        "SRAM = the arena of the generated code; *predicted* = "
        "`unas.resources.engine.peak_memory_bytes(graph, 'codegen')` from the resource graph; "
        "TFLM arena = measured non-persistent arena (`print_allocations` head: activations + "
        "scratch, 16-byte aligned); TFLM total adds its persistent structs (64-bit host build). "
        "Fused = inverted-residual chains run as one row-streamed step. "
        "Flash = text+data of model.o + unas_kernels.o + unas_fused.o (arm-none-eabi-gcc -Os, "
        "Cortex-M4). "
        "Instructions = host instructions per inference inside `model_invoke` (gcc -O2) vs "
        "inside `MicroInterpreter::Invoke` (pip tflite-micro), valgrind callgrind.", "",
        "| model | ops | fused | SRAM (arena) | predicted | TFLM arena | SRAM / TFLM "
        "| TFLM total | SRAM / TFLM total | Flash | .tflite | instr/inf C | instr/inf TFLM "
        "| TFLM / C |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['ops']} | {r['fused']} | {r['sram']} | "
            f"{r['predicted']} | {r['tflm_arena']} | {r['sram'] / r['tflm_arena']:.0%} | "
            f"{r['tflm_total']} | {r['sram'] / r['tflm_total']:.0%} | {r['flash']} | "
            f"{r['tflite']} | {r['ir']:,.0f} | {r['tflm_ir']:,.0f} | "
            f"{r['tflm_ir'] / max(r['ir'], 1):.1f}x |")
    lines += [""] + summary
    text = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
