"""Aging evolution's logic with small test doubles (a toy space and an in-process executor).

The end-to-end tests with the real space, trainer and serial executor are in test_run.py.
"""
from __future__ import annotations

import errno
import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_spaces.base import Architecture, SearchSpace
from unas.config import ObjectiveBounds, PruningConfig, SearchConfig
from unas.search.evolution import AgingEvolution, ResumeError, over_bounds, pareto_front
from unas.evaluation import EvalResult, EvalTask
from unas.files import JsonLines
from unas.search.executor import InfrastructureError, failure_of


@dataclass(frozen=True)
class ToyArch(Architecture):
    space: ClassVar[str] = "toy_for_tests"
    width: int
    depth: int

    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width, "depth": self.depth}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ToyArch":
        return cls(width=int(data["width"]), depth=int(data["depth"]))

    def build(self, input_shape, num_classes):  # pragma: no cover - never trained here
        raise NotImplementedError

    def resource_graph(self, input_shape, num_classes):  # pragma: no cover
        raise NotImplementedError


class ToySpace(SearchSpace):
    name: ClassVar[str] = "toy_for_tests"

    def __init__(self, max_width: int = 20, max_depth: int = 5) -> None:
        self.max_width, self.max_depth = max_width, max_depth

    def random_architecture(self, rng: np.random.Generator) -> ToyArch:
        return ToyArch(int(rng.integers(1, self.max_width + 1)), int(rng.integers(1, self.max_depth + 1)))

    def mutate(self, arch: ToyArch, rng: np.random.Generator) -> ToyArch:
        while True:
            if rng.random() < 0.5:
                child = ToyArch(int(np.clip(arch.width + rng.choice([-1, 1]), 1, self.max_width)), arch.depth)
            else:
                child = ToyArch(arch.width, int(np.clip(arch.depth + rng.choice([-1, 1]), 1, self.max_depth)))
            if child != arch:
                return child


def toy_measure(arch: ToyArch) -> tuple[int, int, int]:
    return arch.width * 100, arch.width * arch.depth * 10, arch.width * arch.depth * 1000


def toy_error(arch_dict: dict[str, Any]) -> float:
    """Bigger is better, with diminishing returns."""
    return float(1.0 / (1.0 + 0.3 * arch_dict["width"] * arch_dict["depth"]))


class FakeExecutor:
    """Evaluates in-process; with capacity > 1 results come back newest first (out of order)."""

    def __init__(self, capacity: int = 1, fail_ids: frozenset[int] = frozenset()) -> None:
        self.capacity = capacity
        self.fail_ids = fail_ids
        self.queue: list[EvalTask] = []
        self.seen: list[EvalTask] = []

    def submit(self, task: EvalTask) -> None:
        assert len(self.queue) < self.capacity
        self.queue.append(task)
        self.seen.append(task)

    def next_result(self, timeout: float | None = None) -> EvalResult | None:
        if not self.queue:
            return None
        task = self.queue.pop()  # LIFO: out of submission order when capacity > 1
        if task.id in self.fail_ids:
            return EvalResult(id=task.id, status="failed: NaN loss")
        err = toy_error(task.arch)
        return EvalResult(id=task.id, status="ok", val_error=err, test_error=err + 0.01,
                          curve={"loss": [1.0, 0.5]}, wall_time_s=0.0)

    def close(self) -> None:
        pass


BOUNDS = ObjectiveBounds(error=0.2, peak_memory_bytes=1000, model_size_bytes=600, macs=60_000)


def make_search(tmp_path, **overrides: Any) -> AgingEvolution:
    pruning = overrides.pop("pruning", PruningConfig())
    bounds = overrides.pop("bounds", BOUNDS)
    measure = overrides.pop("measure", toy_measure)
    space = overrides.pop("space", ToySpace())
    prune = overrides.pop("prune", None)
    count_in_flight = overrides.pop("count_in_flight", True)
    search = SearchConfig(**{**dict(population_size=8, sample_size=3, initial_population=8,
                                    rounds=30, seed=7), **overrides})
    return AgingEvolution(space, search, bounds, pruning, measure, tmp_path, prune=prune,
                          count_in_flight=count_in_flight)


def comparable(records) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.to_dict().items() if k != "wall_time_s"} for r in records]


def test_every_proposal_yields_one_record_and_population_is_bounded(tmp_path):
    search = make_search(tmp_path)
    sizes = []
    records = search.run(FakeExecutor(), on_progress=lambda s: sizes.append(len(s.population)))
    assert [r.id for r in records] == list(range(38))
    assert max(sizes) <= 8
    logged = JsonLines(tmp_path / "evaluations.jsonl").read()
    assert sorted(line["id"] for line in logged) == list(range(38))
    assert all(r.parent is None for r in records[:8])
    assert any(r.parent is not None for r in records[8:])


def test_no_architecture_is_trained_twice(tmp_path):
    search = make_search(tmp_path, space=ToySpace(max_width=3, max_depth=2), rounds=40,
                         bounds=replace(BOUNDS, peak_memory_bytes=10**6, model_size_bytes=10**6,
                                        macs=10**9))
    executor = FakeExecutor()
    records = search.run(executor)
    trained = [json.dumps(t.arch, sort_keys=True) for t in executor.seen]
    assert len(trained) == len(set(trained)) <= 6
    reused = [r for r in records if r.reused_from is not None]
    assert reused, "a 6-architecture space must produce repeats"
    for r in reused:
        original = search.records[r.reused_from]
        assert r.arch == original.arch and r.objectives == original.objectives


def test_children_that_cannot_fit_are_not_trained(tmp_path):
    search = make_search(tmp_path)
    executor = FakeExecutor()
    records = search.run(executor)
    for task in executor.seen:
        assert over_bounds(toy_measure(ToyArch.from_dict(task.arch)), None, BOUNDS) is None
    skipped = [r for r in records if r.status.startswith("skipped")]
    assert skipped and all("> bound" in r.status for r in skipped)
    assert all(r.objectives.error == 1.0 for r in skipped)


def test_over_bounds_names_the_resource_and_the_pruning_target():
    resources = (1300, 500, 10_000)  # peak over the 1000 bound
    assert over_bounds(resources, None, BOUNDS) == "peak_memory_bytes 1300 > bound 1000"
    assert "even at pruning target 0.10" in over_bounds(resources, 0.1, BOUNDS)
    assert over_bounds((900, 500, 10_000), 0.3, BOUNDS) is None


def toy_prune(arch: ToyArch, target: float) -> ToyArch:
    """Pruning keeps round((1 - target) * width) of the width, like structured pruning."""
    return ToyArch(max(1, round((1 - target) * arch.width)), arch.depth)


def test_children_too_big_unpruned_are_trained_when_their_pruned_network_fits(tmp_path):
    pruning = PruningConfig(enabled=True, target_sparsity=(0.4, 0.8))
    search = make_search(tmp_path, pruning=pruning, prune=toy_prune)
    executor = FakeExecutor()
    records = search.run(executor)
    trained = [ToyArch.from_dict(t.arch) for t in executor.seen]
    targets = {t.id: t.pruning_target for t in executor.seen}
    # some trained children would not fit unpruned, but every one fits once pruned
    assert any(over_bounds(toy_measure(a), None, BOUNDS) for a in trained)
    for task, arch in zip(executor.seen, trained):
        assert over_bounds(toy_measure(toy_prune(arch, targets[task.id])), None, BOUNDS) is None
    skipped = [r for r in records if r.status.startswith("skipped")]
    assert all("even at pruning target" in r.status for r in skipped)


def test_pruning_targets_stay_in_range_and_are_inherited(tmp_path):
    pruning = PruningConfig(enabled=False, target_sparsity=(0.2, 0.6))
    search = make_search(tmp_path, pruning=replace(pruning, enabled=True))
    records = search.run(FakeExecutor())
    targets = [r.pruning_target for r in records if r.arch]
    assert all(0.2 <= t <= 0.6 for t in targets)
    children = [r for r in records if r.parent is not None and r.reused_from is None]
    assert children
    for child in children:
        assert abs(child.pruning_target - search.records[child.parent].pruning_target) < 0.5


def test_failures_are_recorded_and_the_search_goes_on(tmp_path):
    def flaky_measure(arch: ToyArch) -> tuple[int, int, int]:
        if (arch.width + arch.depth) % 3 == 0:
            raise ValueError("cannot schedule")
        return toy_measure(arch)

    search = make_search(tmp_path, measure=flaky_measure)
    executor = FakeExecutor(fail_ids=frozenset(range(0, 38, 2)))
    records = search.run(executor)
    assert len(records) == 38
    statuses = {r.id: r.status for r in records}
    assert any(s.startswith("failed: cannot compute resources: ValueError") for s in statuses.values())
    trained_ids = {t.id for t in executor.seen}
    assert trained_ids & executor.fail_ids
    for rid in trained_ids & executor.fail_ids:
        assert statuses[rid] == "failed: NaN loss"
    assert all(rid not in search.population for rid, s in statuses.items() if s.startswith("failed"))


def test_random_search_never_mutates(tmp_path):
    records = make_search(tmp_path, algorithm="random").run(FakeExecutor())
    assert len(records) == 38 and all(r.parent is None for r in records)


def test_evolution_pushes_the_population_towards_lower_error(tmp_path):
    gains = []
    for seed in range(4):
        search = make_search(tmp_path / str(seed), seed=seed, rounds=40,
                             space=ToySpace(max_width=10, max_depth=8))
        records = search.run(FakeExecutor())
        start = np.mean([r.objectives.error for r in records[:8] if r.objectives])
        end = np.mean([search.records[i].objectives.error for i in search.population])
        gains.append(start - end)
    assert np.mean(gains) > 0


def test_sample_winner_dominates_and_skipped_candidates_lose(tmp_path):
    search = make_search(tmp_path, population_size=4, sample_size=4)
    from unas.search.objectives import Objectives
    from unas.search.records import EvaluationRecord
    entries = [("ok", Objectives(0.10, 500, 250, 30_000)),     # strictly dominates the trained ones
               ("ok", Objectives(0.15, 600, 300, 40_000)),
               ("ok", Objectives(0.30, 900, 500, 50_000)),
               ("skipped: too big", Objectives(1.0, 100, 10, 1_000))]
    for rid, (status, objectives) in enumerate(entries):
        search._apply(EvaluationRecord(id=rid, round=rid, arch={"space": "toy_for_tests", "width": rid + 1,
                                                                "depth": 1},
                                       status=status, seed=0, objectives=objectives), population=True)
    winners = {search._select_parent().id for _ in range(50)}
    assert winners == {0}


def test_capacity_above_one_with_out_of_order_results(tmp_path):
    search = make_search(tmp_path, space=ToySpace(max_width=4, max_depth=2),
                         bounds=replace(BOUNDS, peak_memory_bytes=10**6, model_size_bytes=10**6,
                                        macs=10**9))
    executor = FakeExecutor(capacity=4)
    records = search.run(executor)
    assert [r.id for r in records] == list(range(38))
    trained = [json.dumps(t.arch, sort_keys=True) for t in executor.seen]
    assert len(trained) == len(set(trained))


class Killed(Exception):
    """Stands in for SIGKILL at a chosen point."""


@pytest.mark.parametrize("kill_after_appends,kill_in_checkpoint", [
    (0, 1), (1, 0), (3, 0), (9, 0), (9, 1), (15, 0), (22, 1), (30, 0)])
def test_resume_after_a_kill_reproduces_the_uninterrupted_search(
        tmp_path, monkeypatch, kill_after_appends, kill_in_checkpoint):
    reference = comparable(make_search(tmp_path / "ref").run(FakeExecutor()))

    out = tmp_path / "killed"
    search = make_search(out)
    appends = {"n": 0}
    original_append = JsonLines.append
    original_checkpoint = AgingEvolution.checkpoint

    def append_then_maybe_die(self, record):
        original_append(self, record)
        appends["n"] += 1
        if appends["n"] == kill_after_appends and not kill_in_checkpoint:
            raise Killed  # after the line is durable, before the checkpoint

    def checkpoint_maybe_die(self):
        if kill_in_checkpoint and appends["n"] >= kill_after_appends:
            raise Killed  # the old checkpoint stays (atomic write never happened)
        original_checkpoint(self)

    monkeypatch.setattr(JsonLines, "append", append_then_maybe_die)
    monkeypatch.setattr(AgingEvolution, "checkpoint", checkpoint_maybe_die)
    with pytest.raises(Killed):
        search.run(FakeExecutor())
    monkeypatch.undo()

    resumed = make_search(out)
    assert resumed.load() == (kill_after_appends > 0 or not kill_in_checkpoint)
    executor = FakeExecutor()
    records = resumed.run(executor)
    assert comparable(records) == reference
    lines = JsonLines(out / "evaluations.jsonl").read()
    assert sorted(line["id"] for line in lines) == list(range(38))  # none lost, none repeated


def test_resume_of_a_finished_search_does_nothing(tmp_path):
    first = comparable(make_search(tmp_path).run(FakeExecutor()))
    again = make_search(tmp_path)
    assert again.load()
    executor = FakeExecutor()
    assert comparable(again.run(executor)) == first
    assert executor.seen == []


def test_torn_last_line_is_dropped_and_redone(tmp_path):
    reference = comparable(make_search(tmp_path / "ref").run(FakeExecutor()))
    out = tmp_path / "torn"
    search = make_search(out, rounds=30)
    calls = {"n": 0}
    original_append = JsonLines.append

    def torn_append(self, record):
        calls["n"] += 1
        if calls["n"] == 12:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record)[:40])
            raise Killed
        original_append(self, record)

    JsonLines.append = torn_append
    try:
        with pytest.raises(Killed):
            search.run(FakeExecutor())
    finally:
        JsonLines.append = original_append
    torn = (out / "evaluations.jsonl").read_bytes()
    resumed = make_search(out)
    resumed.load()
    assert (out / "evaluations.jsonl").read_bytes() == torn  # cut only when the search writes
    assert comparable(resumed.run(FakeExecutor())) == reference


def test_log_shorter_than_the_checkpoint_is_refused(tmp_path):
    make_search(tmp_path).run(FakeExecutor())
    log = tmp_path / "evaluations.jsonl"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:5]))
    with pytest.raises(ResumeError, match="checkpoint says 38"):
        make_search(tmp_path).load()


def test_log_without_checkpoint_is_refused(tmp_path):
    make_search(tmp_path).run(FakeExecutor())
    (tmp_path / "checkpoint.json").unlink()
    with pytest.raises(ResumeError, match="without checkpoint.json"):
        make_search(tmp_path).load()


def test_pareto_front_is_non_dominated_and_complete(tmp_path):
    search = make_search(tmp_path)
    search.run(FakeExecutor())
    front = pareto_front(search.trained_records())
    assert front
    front_ids = {r.id for r in front}
    for r in search.trained_records():
        dominated = any(all(a <= b for a, b in zip(o.objectives.as_tuple(), r.objectives.as_tuple()))
                        and o.objectives != r.objectives for o in search.trained_records())
        assert (r.id not in front_ids) == dominated


@pytest.mark.parametrize("kill_after_appends", [5, 17])
def test_resume_with_several_in_flight_loses_and_repeats_nothing(tmp_path, monkeypatch, kill_after_appends):
    loose = replace(BOUNDS, peak_memory_bytes=10**6, model_size_bytes=10**6, macs=10**9)
    search = make_search(tmp_path, space=ToySpace(max_width=6, max_depth=3), bounds=loose)
    appends = {"n": 0}
    original_append = JsonLines.append

    def append_then_maybe_die(self, record):
        original_append(self, record)
        appends["n"] += 1
        if appends["n"] == kill_after_appends:
            raise Killed

    monkeypatch.setattr(JsonLines, "append", append_then_maybe_die)
    with pytest.raises(Killed):
        search.run(FakeExecutor(capacity=4))
    monkeypatch.undo()
    before = JsonLines(tmp_path / "evaluations.jsonl").read()

    resumed = make_search(tmp_path, space=ToySpace(max_width=6, max_depth=3), bounds=loose)
    assert resumed.load()
    executor = FakeExecutor(capacity=4)
    resumed.run(executor)
    after = JsonLines(tmp_path / "evaluations.jsonl").read()
    assert after[:len(before)] == before
    assert sorted(line["id"] for line in after) == list(range(38))
    already = {line["id"] for line in before}
    assert not already & {task.id for task in executor.seen}  # finished work is not redone


def test_a_result_is_reused_only_for_the_same_pruning_target(tmp_path):
    pruning = PruningConfig(enabled=True, target_sparsity=(0.4, 0.8))
    search = make_search(tmp_path, pruning=pruning, prune=toy_prune, rounds=60,
                         sparsity_mutation_std=0.05)
    records = search.run(FakeExecutor())
    by_id = {r.id: r for r in records}
    reused = [r for r in records if r.reused_from is not None]
    assert reused, "the toy space repeats architectures, so some results must be reused"
    for r in reused:
        assert r.pruning_target == by_id[r.reused_from].pruning_target


# ------------------------------------------------------------------------------- N in flight
LOOSE = replace(BOUNDS, peak_memory_bytes=10**6, model_size_bytes=10**6, macs=10**9)


class StopHere(Exception):
    """Stops a search mid-run so its state can be looked at."""


def test_in_flight_children_stand_in_with_exact_resources_and_their_parent_s_error(tmp_path):
    search = make_search(tmp_path, bounds=LOOSE, initial_population=4, population_size=6)

    def stop_with_children_in_flight(s: AgingEvolution) -> None:
        if s.finished >= 12 and any(p.parent is not None for p in s.pending.values()):
            raise StopHere

    with pytest.raises(StopHere):
        search.run(FakeExecutor(capacity=4), on_progress=stop_with_children_in_flight)
    members = search._members()
    in_flight = [m for m in members if m.id in search.pending]
    assert in_flight and members[:-len(in_flight)] == [search.records[i] for i in search.population]
    for member in in_flight:
        pending = search.pending[member.id]
        assert member.objectives.as_tuple()[1:] == tuple(float(v) for v in pending.resources)
        parent = search.records.get(pending.parent)
        expected = parent.objectives.error if parent is not None else \
            next(m for m in in_flight if m.id == pending.parent).objectives.error
        assert member.objectives.error == expected
    search.count_in_flight = False
    assert [m.id for m in search._members()] == list(search.population)


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=0, max_value=10**6))
def test_with_one_in_flight_counting_in_flight_changes_nothing(seed):
    with tempfile.TemporaryDirectory() as root:
        runs = [comparable(make_search(Path(root) / str(flag), seed=seed, bounds=LOOSE,
                                       count_in_flight=flag).run(FakeExecutor()))
                for flag in (True, False)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("count_in_flight", [True, False])
def test_children_are_bred_from_the_initial_population_s_results(tmp_path, count_in_flight):
    finished_when_mutating: list[int] = []

    class Watching(ToySpace):
        def mutate(self, arch, rng):
            finished_when_mutating.append(search.finished)
            return super().mutate(arch, rng)

    search = make_search(tmp_path, space=Watching(), bounds=LOOSE, initial_population=8,
                         count_in_flight=count_in_flight)
    search.run(FakeExecutor(capacity=4))
    first_child = min(finished_when_mutating)
    if count_in_flight:
        assert first_child >= 8  # random proposals go on until 8 results are in
    else:
        assert first_child == 8 - 4 + 1  # plain asynchronous rule: bred from 5 results


@pytest.mark.parametrize("content,match", [
    ("", "checkpoint.json: not valid JSON"),
    ("\x00garbage{", "checkpoint.json: not valid JSON"),
    ("[1, 2]", "checkpoint.json: expected a JSON object"),
    ('{"version": 1, "applied_lines": "many"}', "checkpoint.json: not a valid checkpoint"),
    ('{"version": 1, "applied_lines": 3}', "checkpoint.json: not a valid checkpoint"),
])
def test_a_damaged_checkpoint_is_a_one_line_resume_error(tmp_path, content, match):
    make_search(tmp_path, rounds=4).run(FakeExecutor())
    (tmp_path / "checkpoint.json").write_text(content)
    with pytest.raises(ResumeError, match=match) as info:
        make_search(tmp_path, rounds=4).load()
    assert "\n" not in str(info.value) and str(tmp_path) in str(info.value)


@pytest.mark.parametrize("bad,match", [
    ('{"id": 3, "arch"\n', "line 4: not valid JSON"),
    ("[3]\n", "line 4: expected a JSON object"),
    ('{"id": 3}\n', "line 4: not an evaluation record"),
])
def test_an_invalid_line_inside_the_log_names_the_file_and_line(tmp_path, bad, match):
    make_search(tmp_path, rounds=4).run(FakeExecutor())
    log = tmp_path / "evaluations.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:3] + [bad] + lines[4:]))
    with pytest.raises(ResumeError, match=f"evaluations.jsonl: {match}") as info:
        make_search(tmp_path, rounds=4).load()
    assert "\n" not in str(info.value)


def test_a_refused_resume_leaves_the_torn_last_line_in_place(tmp_path):
    """Validate first, change nothing when refusing; a reader (the report) never cuts either."""
    make_search(tmp_path, rounds=4).run(FakeExecutor())
    log = tmp_path / "evaluations.jsonl"
    damaged = log.read_text() + '{"id": 12, "ar'
    log.write_text(damaged)
    (tmp_path / "checkpoint.json").write_text("")
    with pytest.raises(ResumeError):
        make_search(tmp_path, rounds=4).load()
    assert len(JsonLines(log).read()) == 12
    assert log.read_text() == damaged


class DiskFullExecutor(FakeExecutor):
    """Like FakeExecutor, but the evaluation of ``full_at`` raises OSError ENOSPC (saving its
    model), reported the way the executors' workers report it."""

    def __init__(self, full_at: int) -> None:
        super().__init__()
        self.full_at = full_at

    def next_result(self, timeout: float | None = None) -> EvalResult | None:
        if self.queue and self.queue[-1].id == self.full_at:
            task = self.queue.pop()
            try:
                raise OSError(errno.ENOSPC, "No space left on device", f"models/{task.id}.keras")
            except OSError as err:
                return failure_of(task.id, err, f"OSError: {err}", 0.0)
        return super().next_result(timeout)


def test_a_full_disk_stops_the_search_and_the_candidate_is_trained_on_resume(tmp_path):
    reference = comparable(make_search(tmp_path / "ref").run(FakeExecutor()))
    out = tmp_path / "full"
    with pytest.raises(InfrastructureError, match="candidate 12 could not be evaluated: "
                                                  "OSError: .*No space left on device"):
        make_search(out).run(DiskFullExecutor(full_at=12))
    logged = [line["id"] for line in JsonLines(out / "evaluations.jsonl").read()]
    assert 12 not in logged and all("No space" not in line["status"]
                                    for line in JsonLines(out / "evaluations.jsonl").read())
    resumed = make_search(out)
    assert resumed.load()
    executor = FakeExecutor()
    assert comparable(resumed.run(executor)) == reference
    assert 12 in [t.id for t in executor.seen]
    lines = JsonLines(out / "evaluations.jsonl").read()
    assert sorted(line["id"] for line in lines) == list(range(38))  # none lost, none repeated
