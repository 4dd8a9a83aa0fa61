"""The emulated-board harness on hand-written C models (tiny int8 dense networks written by the
tests): bit-exact against numpy and the host build, deterministic instruction counts, one-line
errors for boards that are too small, the heap, mismatches, timeouts and a missing toolchain."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tflm_runtime.board import BoardError, ModelDoesNotFitError, measure_c_model
from tflm_runtime.board.__main__ import main as board_main
from tflm_runtime.board.linker import parse_memory_usage, section_bytes_by_file
from tflm_runtime.board.sources import read_model_sources
from unas.errors import UnasError

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="board toolchain missing: run `bash scripts/setup.sh`")

SHIFT = 10


def _c_array(values: np.ndarray) -> str:
    return "{" + ", ".join(str(int(v)) for v in values.ravel()) + "}"


def write_dense_model(directory: Path, layers: list[tuple[np.ndarray, np.ndarray]],
                      multiplier: int = 700, body_extra: str = "", arena_extra: int = 0,
                      top_extra: str = "") -> Path:
    """A C model of int8 dense layers (weights (out, in) int8, bias int32) with ReLU between
    layers, requantised as clamp((acc * multiplier + 2^(SHIFT-1)) >> SHIFT), behind model.h."""
    directory.mkdir(parents=True, exist_ok=True)
    sizes = [layers[0][0].shape[1]] + [w.shape[0] for w, _ in layers]
    arena = sum(sizes) + arena_extra
    (directory / "model.h").write_text(
        "#ifndef MODEL_H\n#define MODEL_H\n#include <stdint.h>\n"
        f"#define MODEL_INPUT_BYTES {sizes[0]}\n#define MODEL_OUTPUT_BYTES ({sizes[-1]} * 1)\n"
        f"#define MODEL_ARENA_BYTES {arena}u\n"
        "int8_t *model_input(void);\nint8_t *model_output(void);\nvoid model_invoke(void);\n"
        "#endif\n")
    parts = ["#include \"model.h\"\n", "#ifndef MODEL_LAYER_HOOK\n#define MODEL_LAYER_HOOK(i) "
             "((void)0)\n#endif\n", top_extra, f"static int8_t arena[{arena}];\n"]
    offsets = np.cumsum([0] + sizes)
    calls = []
    for k, (weights, bias) in enumerate(layers):
        n_out, n_in = weights.shape
        parts.append(f"static const int8_t w{k}[{n_out * n_in}] = {_c_array(weights)};\n"
                     f"static const int32_t b{k}[{n_out}] = {_c_array(bias)};\n")
        low = 0 if k < len(layers) - 1 else -128
        parts.append(
            f"static void dense{k}(const int8_t *x, int8_t *y)\n{{\n"
            f"    for (int o = 0; o < {n_out}; o++) {{\n"
            f"        int32_t acc = b{k}[o];\n"
            f"        for (int i = 0; i < {n_in}; i++) {{ acc += x[i] * w{k}[o * {n_in} + i]; }}\n"
            f"        int64_t scaled = ((int64_t)acc * {multiplier} + {1 << (SHIFT - 1)}) >> {SHIFT};\n"
            f"        y[o] = (int8_t)(scaled > 127 ? 127 : scaled < {low} ? {low} : scaled);\n"
            f"    }}\n}}\n")
        calls.append(f"    dense{k}(arena + {offsets[k]}, arena + {offsets[k + 1]});\n"
                     f"    MODEL_LAYER_HOOK({k});\n")
    parts.append(f"int8_t *model_input(void) {{ return arena; }}\n"
                 f"int8_t *model_output(void) {{ return arena + {offsets[-2]}; }}\n"
                 f"void model_invoke(void)\n{{\n{''.join(calls)}{body_extra}}}\n")
    (directory / "model.c").write_text("".join(parts))
    return directory


def dense_reference(x: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]],
                    multiplier: int = 700) -> np.ndarray:
    """numpy version of :func:`write_dense_model`'s C code."""
    values = x.astype(np.int64)
    for k, (weights, bias) in enumerate(layers):
        acc = values @ weights.astype(np.int64).T + bias
        scaled = (acc * multiplier + (1 << (SHIFT - 1))) >> SHIFT
        values = np.clip(scaled, 0 if k < len(layers) - 1 else -128, 127)
    return values.astype(np.int8)


def random_layers(rng: np.random.Generator, sizes: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(rng.integers(-128, 128, size=(n_out, n_in), dtype=np.int8),
             rng.integers(-2000, 2000, size=n_out).astype(np.int32))
            for n_in, n_out in zip(sizes, sizes[1:])]


@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m7"])
def test_outputs_bit_exact_and_instructions_deterministic(tmp_path, rng, cpu):
    layers = random_layers(rng, [48, 24, 10])
    model = write_dense_model(tmp_path / "model", layers)
    x = rng.integers(-128, 128, size=(3, 48), dtype=np.int8)
    first = measure_c_model(model, cpu=cpu, inputs=x, build_dir=tmp_path / "first")
    second = measure_c_model(model, cpu=cpu, inputs=x, build_dir=tmp_path / "second")
    np.testing.assert_array_equal(first.outputs, dense_reference(x, layers))
    np.testing.assert_array_equal(first.outputs, first.host_outputs)
    assert first.instructions == second.instructions
    assert first.cpu == cpu and first.machine == {"cortex-m4": "mps2-an386",
                                                  "cortex-m7": "mps2-an500"}[cpu]
    macs = 48 * 24 + 24 * 10
    assert macs < first.instructions[0] < 20 * macs
    # The calibration loop runs 2 instructions per iteration plus its call and return.
    assert first.calibration.ticks_per_instruction == pytest.approx(1.6, rel=1e-3)
    assert 0 <= first.calibration.spin_instructions - 2 * first.calibration.spin_iterations <= 6


def test_instructions_grow_linearly_with_work(tmp_path, rng):
    counts = []
    for outputs in (8, 16, 24):
        # Zero weights: every output takes the same path through the clamp's branches.
        layers = [(np.zeros((outputs, 32), np.int8), np.zeros(outputs, np.int32))]
        model = write_dense_model(tmp_path / f"m{outputs}", layers)
        counts.append(measure_c_model(model, cpu="cortex-m4", rng=rng, samples=1).instructions[0])
    # The same loop body runs 8 more times each step: equal increments (to a timer tick).
    assert abs((counts[2] - counts[1]) - (counts[1] - counts[0])) <= 1
    assert counts[1] - counts[0] >= 8 * 32


def test_memory_usage_attributes_weights_code_and_arena(tmp_path, rng):
    layers = random_layers(rng, [64, 32])
    model = write_dense_model(tmp_path / "model", layers, arena_extra=1000)
    memory = measure_c_model(model, cpu="cortex-m7", rng=rng).memory
    assert memory.model_const_bytes == 64 * 32 + 4 * 32
    assert memory.model_bss_bytes == 64 + 32 + 1000
    assert 0 < memory.model_code_bytes < 1024
    assert memory.flash_capacity == 1024 * 1024 and memory.ram_capacity == 320 * 1024
    assert memory.flash_bytes >= (memory.model_code_bytes + memory.model_const_bytes
                                  + memory.harness_bytes)
    assert memory.ram_bytes >= memory.model_bss_bytes + memory.stack_reserved_bytes
    assert 0 < memory.stack_used_bytes <= memory.stack_reserved_bytes
    assert memory.peak_ram_bytes < memory.ram_bytes


@pytest.mark.parametrize("region, board, kwargs", [
    ("RAM", "stm32f746", {"arena_extra": 330 * 1024}),
    ("FLASH", "stm32f446", {"top_extra": "const int8_t big[600 * 1024] = {1};\n",
                            "body_extra": "    arena[0] = big[arena[1] & 1023];\n"}),
])
def test_oversized_model_fails_to_link_with_one_line(tmp_path, rng, region, board, kwargs):
    model = write_dense_model(tmp_path / "model", random_layers(rng, [8, 4]), **kwargs)
    with pytest.raises(ModelDoesNotFitError) as raised:
        measure_c_model(model, board=board, cpu="cortex-m4", rng=rng)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"the model does not fit {board}: {region} overflowed by ")
    overflow = int(message.split("overflowed by ")[1].split()[0])
    assert overflow > 0


def test_host_mismatch_is_reported(tmp_path, rng):
    model = write_dense_model(tmp_path / "model", random_layers(rng, [8, 4]),
                              body_extra="#ifdef __arm__\n    model_output()[2] ^= 1;\n#endif\n")
    with pytest.raises(BoardError, match=r"^output mismatch: board \(cortex-m4\) and host build "
                                         r"differ in 2 bytes; first at sample 0 byte 2"):
        measure_c_model(model, cpu="cortex-m4", rng=rng, samples=2)


def test_heap_use_is_refused(tmp_path, rng):
    model = write_dense_model(tmp_path / "model", random_layers(rng, [8, 4]),
                              top_extra="#include <stdlib.h>\n",
                              body_extra="    int8_t *p = malloc(4); arena[0] = p ? 1 : 0; "
                                         "free(p);\n")
    with pytest.raises(BoardError, match="uses the heap"):
        measure_c_model(model, cpu="cortex-m4", rng=rng)


def test_qemu_timeout_is_reported(tmp_path, rng):
    model = write_dense_model(tmp_path / "model", random_layers(rng, [8, 4]),
                              body_extra="    for (volatile int spin = 1; spin;) { }\n")
    with pytest.raises(BoardError, match=r"^QEMU mps2-an386 timed out after 2 s"):
        measure_c_model(model, cpu="cortex-m4", rng=rng, timeout_s=2)


def test_missing_toolchain_says_how_to_install(tmp_path, rng, monkeypatch):
    model = write_dense_model(tmp_path / "model", random_layers(rng, [8, 4]))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BoardError, match=r"arm-none-eabi-gcc not found.*bash scripts/setup\.sh"):
        measure_c_model(model, rng=rng)


def test_per_layer_mode_splits_the_instructions(tmp_path, rng):
    layers = random_layers(rng, [64, 32, 4])
    model = write_dense_model(tmp_path / "model", layers)
    plain = measure_c_model(model, cpu="cortex-m7", rng=np.random.default_rng(1))
    timed = measure_c_model(model, cpu="cortex-m7", rng=np.random.default_rng(1), per_layer=True)
    np.testing.assert_array_equal(plain.outputs, timed.outputs)
    (first, second), = set(timed.layer_instructions)
    assert first > 8 * second  # 64x32 MACs against 32x4
    # Marks are subtracted: per-layer and total counts agree with the plain build to a few
    # instructions per mark.
    assert abs(timed.instructions[0] - plain.instructions[0]) <= 20
    assert abs(first + second - plain.instructions[0]) <= 40


def test_cli_prints_json_and_one_line_errors(tmp_path, rng, capsys):
    layers = random_layers(rng, [16, 4])
    model = write_dense_model(tmp_path / "model", layers)
    inputs = rng.integers(-128, 128, size=(2, 16), dtype=np.int8)
    np.save(tmp_path / "x.npy", inputs)
    assert board_main([str(model), "--cpu", "cortex-m4", "--inputs", str(tmp_path / "x.npy"),
                       "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["bit_exact_with_host"] and record["cpu"] == "cortex-m4"
    assert record["outputs"] == dense_reference(inputs, layers).tolist()
    assert len(record["instructions"]) == 2 and min(record["instructions"]) > 16 * 4

    np.save(tmp_path / "bad.npy", inputs.astype(np.float32))
    assert board_main([str(model), "--inputs", str(tmp_path / "bad.npy")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "expected int8" in error


def test_model_header_sizes_are_read(tmp_path, rng):
    model = write_dense_model(tmp_path / "model", random_layers(rng, [16, 4]))
    sources = read_model_sources(model)
    assert (sources.input_bytes, sources.output_bytes) == (16, 4)
    assert sources.arena_bytes == 20
    (model / "model.h").write_text("#define MODEL_INPUT_BYTES 4\n")
    with pytest.raises(UnasError, match=r"model\.h: MODEL_OUTPUT_BYTES: expected a #define"):
        read_model_sources(model)


def test_linker_reports_are_parsed():
    report = ("Memory region         Used Size  Region Size  %age Used\n"
              "           FLASH:       12345 B         1 MB      1.18%\n"
              "             RAM:          20 KB       320 KB      6.25%\n")
    assert parse_memory_usage(report) == {"FLASH": (12345, 1024 ** 2), "RAM": (20480, 327680)}
    map_text = ("Linker script and memory map\n\n"
                ".text           0x00000040      0x100\n"
                " .text.f        0x00000040       0x20 /b/board_model/model.o\n"
                " .text.some_long_function_name\n"
                "                0x00000060       0x30 /b/board_model/model.o\n"
                " *fill*         0x00000090        0x4 \n"
                ".rodata         0x00000100       0x80\n"
                " .rodata.w0     0x00000100       0x80 /b/board_model/model.o\n"
                ".data           0x20000000       0x10 load address 0x00000cbc\n"
                " .data.x        0x20000000        0x4 /usr/lib/libc.a(lib_a-impure.o)\n"
                ".bss            0x20000010       0x50 load address 0x00000ccc\n"
                " .bss.arena     0x20000010       0x50 /b/board_model/model.o\n")
    files = section_bytes_by_file(map_text)
    model = files["/b/board_model/model.o"]
    assert (model.text, model.rodata, model.data, model.bss) == (0x50, 0x80, 0, 0x50)
    assert files["/usr/lib/libc.a(lib_a-impure.o)"].data == 4
