"""The pure helpers of benchmarks/bench_board.py: where ``--out`` writes, the fits it reports."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.bench_board import output_paths, r_squared


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
