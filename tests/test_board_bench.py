"""The pure helpers of benchmarks/bench_board.py: where ``--out`` writes, the fits it reports."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.bench_board import output_paths, r_squared
from tflm_runtime.tflite_model import read_tflite


def test_out_md_file_is_the_report_and_the_plot_goes_next_to_it(tmp_path: Path) -> None:
    markdown, png = output_paths(tmp_path / "rerun" / "board_m4.md")
    assert markdown == tmp_path / "rerun" / "board_m4.md"
    assert png == tmp_path / "rerun" / "board_m4.png"


def test_out_folder_gets_board_md_and_png(tmp_path: Path) -> None:
    assert output_paths(tmp_path) == (tmp_path / "board.md", tmp_path / "board.png")


@settings(max_examples=30, deadline=None)
@given(st.floats(0.5, 20), st.floats(-1e6, 1e6))
def test_r_squared_of_an_exact_line_is_one(slope: float, intercept: float) -> None:
    x = np.array([1e5, 3e5, 2e6, 7e6, 1.5e7])
    fitted_slope, fitted_intercept, r2 = r_squared(x, slope * x + intercept)
    assert np.isclose(fitted_slope, slope) and np.isclose(fitted_intercept, intercept, atol=1e-3)
    assert np.isclose(r2, 1.0)


def test_kernel_totals_count_every_operator_of_a_fused_block() -> None:
    from types import SimpleNamespace

    from benchmarks.bench_board import ModelRow, kernel_totals
    from tflm_runtime.board.instrument import _label
    names = (
        _label("/* step 0: CONV_2D #0 -> (1, 4, 4, 8) at arena 0 (c) */",
               "unas_conv2d_1x1_s8(&op0_p, A(0), A(64));", 0),
        _label("/* step 1: FUSED_BLOCK #2 (CONV_2D #1 -> DEPTHWISE_CONV_2D #2 -> CONV_2D #3) -> "
               "(1, 4, 4, 8) at arena 0, rows at 128 (f) */",
               "unas_fused_block_s8(&op2f_p, A(64), A(0), A(128));", 1))
    assert names[1].startswith("unas_fused_block_s8 FUSED_BLOCK #2 (CONV_2D #1")
    run = SimpleNamespace(layer_instructions=[[100, 900]], layer_names=names)
    row = ModelRow("m", 60, 0, {}, {0: 10, 1: 20, 2: 5, 3: 25}, {}, {"cortex-m4": run})
    totals = kernel_totals([row], "cortex-m4")
    assert totals["unas_conv2d_1x1_s8"] == (1, 100, 10)
    assert totals["unas_fused_block_s8"] == (1, 900, 50)


def test_export_is_reproducible_from_the_seed(tmp_path: Path) -> None:
    """The benchmark's random weights come from its seed, so a rerun measures the same models."""
    from benchmarks.bench_board import export
    from unas.tfenv import keras

    def build() -> object:
        inputs = keras.Input((6, 6, 1))
        x = keras.layers.Conv2D(3, 3, padding="same", activation="relu")(inputs)
        return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))

    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        export(build, tmp_path / f"{name}.tflite", np.random.default_rng(seed))

    def content(name: str) -> list[tuple]:  # tensor names differ: Keras numbers its layers
        model = read_tflite(tmp_path / f"{name}.tflite")
        return [(t.shape, t.dtype, t.scales, t.zero_points,
                 None if t.data is None else t.data.tobytes()) for t in model.tensors]

    assert content("b") == content("a")
    assert content("c") != content("a")
