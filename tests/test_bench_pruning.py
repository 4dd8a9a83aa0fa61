"""The pure helpers of benchmarks/bench_pruning.py: configs of the two arms, fronts, hypervolume."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.bench_pruning import (SearchOutcome, ablation_config, error_size_hypervolume,
                                      front_line, results_table, scaled_schedule, search_sizes)
from unas.config import parse_config
from unas.search.objectives import Objectives
from unas.search.pareto import non_dominated
from unas.search.records import EvaluationRecord

DIGITS = Path(__file__).resolve().parents[1] / "experiments" / "digits.yaml"


def _record(i: int, error: float, size: int, peak: int = 10, macs: int = 10,
            status: str = "ok") -> EvaluationRecord:
    return EvaluationRecord(id=i, round=i, arch={}, status=status, seed=0,
                            objectives=Objectives(error, peak, size, macs))


def test_arms_differ_only_in_pruning_enabled_and_parse() -> None:
    raw = yaml.safe_load(DIGITS.read_text())
    off = ablation_config(raw, False, epochs=6, size_bound=900, error_bound=0.3, sparsity=(0.1, 0.7))
    on = ablation_config(raw, True, epochs=6, size_bound=900, error_bound=0.3, sparsity=(0.1, 0.7))
    assert off["pruning"]["enabled"] is False and on["pruning"]["enabled"] is True
    on["pruning"]["enabled"] = False
    assert on == off
    assert off["objectives"]["model_size_bytes"] == 900 and off["objectives"]["error"] == 0.3
    assert off["pruning"]["target_sparsity"] == [0.1, 0.7]
    p = on["pruning"]
    assert 0 <= p["start_epoch"] < p["end_epoch"] <= on["training"]["epochs"] == 6
    parse_config(ablation_config(raw, True, epochs=6), str(DIGITS))  # a valid config
    assert raw["pruning"]["enabled"] is False  # the input is not modified


@given(start=st.integers(0, 20), length=st.integers(1, 20), extra=st.integers(0, 20),
       new_epochs=st.integers(1, 60))
def test_scaled_schedule_stays_a_valid_window(start: int, length: int, extra: int, new_epochs: int) -> None:
    end = start + length
    s, e = scaled_schedule(start, end, end + extra, new_epochs)
    assert 0 <= s < e <= new_epochs


def test_search_sizes_keeps_evolution_in_a_short_search() -> None:
    raw = {"search": {"population_size": 100, "sample_size": 25, "initial_population": 100}}
    search = search_sizes(raw, 30)["search"]
    assert search["initial_population"] == 10 < 30
    assert search["sample_size"] <= search["population_size"] == 10


def test_hypervolume_counts_only_models_within_all_bounds() -> None:
    bounds = (0.2, 100, 1000, 1000)
    inside = _record(0, 0.1, 500)                        # covers (1 - 0.5) * (1 - 0.5) = 0.25
    too_big = _record(1, 0.01, 2000)                     # model size over the bound
    too_much_memory = _record(2, 0.01, 100, peak=101)    # peak memory over the bound
    assert error_size_hypervolume([inside], bounds) == pytest.approx(0.25)
    assert error_size_hypervolume([inside, too_big, too_much_memory], bounds) == pytest.approx(0.25)
    better = _record(3, 0.05, 250)                       # dominates ``inside``
    assert error_size_hypervolume([inside, better], bounds) == pytest.approx(0.75 * 0.75)
    assert error_size_hypervolume([], bounds) == 0.0


@settings(max_examples=50)
@given(st.lists(st.tuples(st.floats(0, 1), st.integers(1, 10_000)), min_size=1, max_size=30))
def test_front_line_is_the_sorted_non_dominated_set(points: list[tuple[float, int]]) -> None:
    pts = np.array(points, dtype=float)
    front = front_line(pts)
    assert np.all(np.diff(front[:, 1]) >= 0)                  # sorted by size
    assert np.all(np.diff(front[:, 0]) <= 0)                  # error falls as size grows
    expected = {tuple(p) for p in pts[non_dominated(pts)]}
    assert {tuple(p) for p in front} == expected


def test_outcome_counts_and_table() -> None:
    bounds = (0.2, 100, 1000, 1000)
    records = [_record(0, 0.1, 500), _record(1, 0.9, 300), _record(2, 1.0, 5000, status="skipped: size"),
               _record(3, 0.05, 2000)]
    outcome = SearchOutcome(setting="with pruning", seed=0, records=records, bounds=bounds,
                            wall_s=1.0, num_classes=10)
    assert len(outcome.trained) == 3 and outcome.skipped == 1 and outcome.at_chance == 1
    assert outcome.best_error() == pytest.approx(0.1)            # 0.05 is over the size bound
    assert outcome.hypervolume() == pytest.approx(0.25)
    table = results_table({"with pruning": [outcome], "without pruning": []})
    assert "| 0 | with pruning | 0.2500 | 0.1000 | 500 | 3 | 1 | 1 | 0 |" in table
    assert len({row.count("|") for row in table.splitlines()}) == 1  # every row has every column
