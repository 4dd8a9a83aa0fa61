"""The staleness benchmark's pieces: the virtual-time executor, the surrogate and its report."""
from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.bench_staleness import (SECTION, SurrogateEvaluator, VirtualTimeExecutor,
                                        paired, quality, replace_section, section_of,
                                        surrogate_error, virtual_duration)
from search_spaces import get_space
from unas.config import ObjectiveBounds
from unas.evaluation import EvalTask
from unas.search.objectives import Objectives
from unas.search.records import EvaluationRecord


def _tasks(count: int, rng: np.random.Generator) -> list[EvalTask]:
    space = get_space("cnn", max_blocks=2, max_layers=2, max_channels=16, max_units=16)
    return [EvalTask(id=i, arch=json.loads(space.random_architecture(rng).to_json()),
                     seed=int(rng.integers(0, 2**31 - 1))) for i in range(count)]


def test_virtual_workers_return_results_in_the_order_they_finish(rng):
    evaluator = SurrogateEvaluator((8, 8, 1), 10, "codegen")
    executor = VirtualTimeExecutor(evaluator, capacity=3)
    tasks = _tasks(9, rng)
    finish: dict[int, float] = {}
    free_at = [0.0, 0.0, 0.0]  # a reference simulation of three workers
    queue, order = list(tasks), []
    for task in queue[:3]:
        executor.submit(task)
    with pytest.raises(RuntimeError, match="in flight"):
        executor.submit(queue[3])
    for task, start in zip(queue[:3], free_at):
        finish[task.id] = start + virtual_duration(task, evaluator.resources(task.arch)[1][2])
    queue = queue[3:]
    while finish:
        result = executor.next_result()
        assert result.id == min(finish, key=finish.get)  # the earliest to finish comes first
        assert executor.now == pytest.approx(finish.pop(result.id))
        order.append(result.id)
        assert result.val_error == surrogate_error(*_surrogate_inputs(evaluator, tasks[result.id]))
        if queue:
            task = queue.pop(0)
            executor.submit(task)
            finish[task.id] = executor.now + virtual_duration(
                task, evaluator.resources(task.arch)[1][2])
    assert sorted(order) == list(range(9)) and executor.next_result() is None


def _surrogate_inputs(evaluator: SurrogateEvaluator, task: EvalTask) -> tuple[str, int, int]:
    text, (_, size, macs) = evaluator.resources(task.arch)
    return text, size, macs


def test_surrogate_error_falls_with_capacity_and_is_fixed_per_architecture():
    small, big = surrogate_error("a", 500, 2000), surrogate_error("a", 4000, 30000)
    assert 0.0 <= big < small <= 1.0
    assert surrogate_error("a", 500, 2000) == small  # the same every time
    offsets = {surrogate_error(str(i), 1000, 10000) for i in range(50)}
    assert len(offsets) > 40 and max(offsets) - min(offsets) <= 0.04 + 1e-12


def test_quality_counts_trained_candidates_within_the_resource_bounds():
    bounds = ObjectiveBounds(error=0.2, peak_memory_bytes=100, model_size_bytes=100, macs=100)

    def record(i: int, error: float, size: int, status: str = "ok") -> EvaluationRecord:
        return EvaluationRecord(id=i, round=i, arch={}, status=status, seed=0,
                                objectives=Objectives(error, 50, size, 50))

    records = [record(0, 0.1, 500), record(1, 0.3, 50), record(2, 0.05, 50, "skipped: x")]
    q = quality(records, bounds, cap=10.0)
    assert q.best_error == 0.3 and q.trained == 2  # the oversized one is not "in bounds"
    better = quality(records + [record(3, 0.2, 10)], bounds, cap=10.0)
    assert better.scalarised < q.scalarised


def test_paired_comparison_counts_and_tests_per_seed_differences():
    result = paired([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.2, 0.3, 0.4, 0.5, 0.6, 0.6])
    assert (result["better"], result["equal"], result["worse"]) == (0, 1, 5)
    assert result["mean"] == pytest.approx(0.5 / 6) and 0.0 < result["p"] < 0.1


def test_the_benchmark_replaces_only_its_own_section():
    text = f"# Title\n\nintro\n\n## A\na\n\n{SECTION}\nold\n\n## B\nb\n"
    updated = replace_section(text, SECTION, f"{SECTION}\n\nnew\n")
    assert updated == f"# Title\n\nintro\n\n## A\na\n\n{SECTION}\n\nnew\n\n## B\nb\n"
    assert section_of(updated, SECTION) == f"{SECTION}\n\nnew\n"
    assert replace_section("# T\n", SECTION, f"{SECTION}\nx\n") == f"# T\n\n{SECTION}\nx\n"
    titled = replace_section(updated, f"{SECTION}: more seeds", f"{SECTION}: more seeds\nm\n")
    assert section_of(titled, SECTION) == f"{SECTION}\n\nnew\n\n{SECTION}: more seeds\nm\n"
    assert section_of("# T\n\n## A\na\n", SECTION) is None
