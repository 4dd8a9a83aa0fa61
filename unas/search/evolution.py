"""Aging evolution with random scalarisation (μNAS, §3.5), written as an asynchronous loop.

The loop keeps ``executor.capacity`` candidates in flight. Whenever a result arrives it is
recorded (one fsync'ed line of ``evaluations.jsonl``), the population is updated, new children
are proposed to refill the executor and the search state is checkpointed atomically.

Beyond the μNAS reference:

- a child's resources are computed *before* training; a child that cannot fit the resource
  bounds even at its pruning target is not trained (``skipped: ...``). It joins the population
  with its resources and ``error = 1.0``; in a sample it loses to every trained candidate, and
  among skipped candidates the smallest weighted resource excess wins (so a search that starts
  from oversized architectures still walks towards the bounds);
- an architecture seen before is never trained again: its recorded result is reused;
- architectures whose resources cannot be computed, or which fail to build or train, become
  ``failed: <reason>`` records and never stop the search; a failure of the machine instead (disk
  full, out of memory: :func:`unas.search.executor.infrastructure_reason`) stops it with
  :class:`~unas.search.executor.InfrastructureError` and records nothing for that candidate;
- the RNG state is part of the checkpoint, and records written after the last checkpoint are
  replayed on resume, so a resumed search proposes exactly the candidates an uninterrupted one
  would have (given the same results), with no finished evaluation lost or repeated.

Rounds: the first ``initial_population`` proposals are random architectures, then ``rounds``
children follow (with ``algorithm: random`` all of them are random). Each proposal yields exactly
one record.
"""
from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces.base import Architecture, SearchSpace
from search_spaces.registry import architecture_from_json
from unas.config import ObjectiveBounds, PruningConfig, SearchConfig
from unas.errors import UnasError
from unas.evaluation import EvalResult, EvalTask
from unas.search.executor import (INFRASTRUCTURE, Executor, InfrastructureError,
                                  is_infrastructure_failure)
from unas.files import JsonLines, JsonLinesError, atomic_write_json
from unas.search.objectives import RESOURCE_NAMES, Objectives, normalise, sample_weights, scalarise
from unas.search.pareto import non_dominated
from unas.search.records import STATUS_OK, EvaluationRecord

CHECKPOINT_VERSION = 1
EVALUATIONS_FILE = "evaluations.jsonl"
CHECKPOINT_FILE = "checkpoint.json"
#: The experiment config a search folder was started with (written by :mod:`unas.experiment`).
CONFIG_SNAPSHOT = "config.json"

Resources = tuple[int, int, int]
"""(peak_memory_bytes, model_size_bytes, macs) of one architecture."""

MeasureFn = Callable[[Architecture], Resources]
PruneFn = Callable[[Architecture, float], Architecture]  # the architecture pruning materialises


class ResumeError(UnasError):
    """The output folder's log and checkpoint do not fit together or do not fit this search."""


@dataclass
class _Pending:
    task: EvalTask
    round: int
    parent: int | None
    resources: Resources
    key: str


def over_bounds(resources: Resources, target: float | None, bounds: ObjectiveBounds) -> str | None:
    """Why a candidate whose resources *after pruning to* ``target`` are ``resources`` cannot fit
    the bounds (``None`` if it fits). The pruned resources are exact, not estimated: every channel
    group is pruned by the same fraction, so the pruned architecture is known before training
    (:func:`unas.train.pruning.pruned_architecture`)."""
    limits = bounds.as_tuple()[1:]
    for name, value, limit in zip(RESOURCE_NAMES, resources, limits):
        if value > limit:
            at = f" even at pruning target {target:.2f}" if target else ""
            return f"{name} {value} > bound {int(limit)}{at}"
    return None


class AgingEvolution:
    """One search: its state, the proposal rule and the asynchronous loop (:meth:`run`).

    ``measure`` maps an architecture to its ``(peak_memory_bytes, model_size_bytes, macs)``;
    it must not need TensorFlow. Everything the search writes lives in ``out_dir``.

    ``count_in_flight`` (default) makes a search with several candidates in flight propose
    like the serial one would (:meth:`_members`, :meth:`_random_phase`); with one in flight it
    changes nothing. ``False`` is the plain asynchronous rule (kept for comparison in
    ``benchmarks/bench_staleness.py``).
    """

    def __init__(self, space: SearchSpace, settings: SearchConfig, bounds: ObjectiveBounds,
                 pruning: PruningConfig, measure: MeasureFn, out_dir: str | Path,
                 prune: PruneFn | None = None, count_in_flight: bool = True) -> None:
        self.space = space
        self.count_in_flight = count_in_flight
        self.prune = prune
        self.settings = settings
        self.bounds = bounds
        self.pruning = pruning
        self.measure = measure
        self.out_dir = Path(out_dir)
        self.log = JsonLines(self.out_dir / EVALUATIONS_FILE)
        self.checkpoint_path = self.out_dir / CHECKPOINT_FILE
        self.total = settings.initial_population + settings.rounds
        self.rng = np.random.default_rng(settings.seed)
        self.next_id = 0
        self.population: deque[int] = deque()
        self.records: dict[int, EvaluationRecord] = {}
        self.pending: dict[int, _Pending] = {}
        self.waiting: dict[int, list[dict[str, Any]]] = {}  # in-flight id → its duplicates
        self._by_key: dict[str, int] = {}
        self._inflight_keys: dict[str, int] = {}
        self._archs: dict[int, Architecture] = {}
        self._replay: dict[int, dict[str, Any]] = {}
        self._replay_order: deque[int] = deque()
        self._submitted: set[int] = set()
        self._lines = 0
        self._torn = False  # the log ends in a torn line, cut before the next append

    # ------------------------------------------------------------------ state and resume
    @property
    def finished(self) -> int:
        """How many proposals have their record (progress out of :attr:`total`)."""
        return len(self.records)

    def load(self) -> bool:
        """Restore from ``out_dir`` if it holds a search; True if something was restored.

        Everything is checked before anything is changed: a refused resume (:class:`ResumeError`,
        naming the file and line) leaves the folder as it was. A torn last line of the log (a
        process killed mid-write) is cut only when the resumed search writes its first record."""
        try:
            lines = self.log.read()
        except JsonLinesError as err:
            raise ResumeError(f"{err}; the log is damaged, this search cannot be resumed") from None
        state = self._read_checkpoint() if self.checkpoint_path.exists() else None
        if state is None and lines:
            raise ResumeError(f"{self.out_dir}: {EVALUATIONS_FILE} exists without "
                              f"{CHECKPOINT_FILE}; use a fresh output folder")
        records = []
        for number, line in enumerate(lines, start=1):
            try:
                records.append(EvaluationRecord.from_dict(line))
            except Exception as err:  # noqa: BLE001 - a malformed record: one line, no traceback
                raise ResumeError(f"{self.log.path}: line {number}: not an evaluation record "
                                  f"({_one_line(err)})") from None
        self._torn = self.log.torn_tail() > 0
        if state is None:
            return False
        try:
            applied = int(state["applied_lines"])
            if applied > len(lines):
                raise ResumeError(f"{self.log.path}: has {len(lines)} records but the checkpoint "
                                  f"says {applied} were written")
            self.rng.bit_generator.state = state["rng"]
            self.next_id = int(state["next_id"])
            for record in records[:applied]:
                self._apply(record, population=False)
            self._lines = applied
            self.population = deque(int(i) for i in state["population"])
            for entry in state["pending"]:
                task = EvalTask(id=int(entry["id"]), arch=entry["arch"], seed=int(entry["seed"]),
                                pruning_target=entry["pruning_target"])
                self._add_pending(_Pending(task=task, round=int(entry["round"]),
                                           parent=entry["parent"],
                                           resources=tuple(entry["resources"]),  # type: ignore[arg-type]
                                           key=self._key_of(
                                               architecture_from_json(task.arch).to_json(),
                                               task.pruning_target)))
            self.waiting = {int(k): list(v) for k, v in state["waiting"].items()}
            for line in lines[applied:]:
                self._replay[int(line["id"])] = line
                self._replay_order.append(int(line["id"]))
        except ResumeError:
            raise
        except Exception as err:  # noqa: BLE001 - any malformed entry: one line, no traceback
            raise ResumeError(f"{self.checkpoint_path}: not a valid checkpoint of this search "
                              f"({_one_line(err)})") from None
        return True

    def _read_checkpoint(self) -> dict[str, Any]:
        path = self.checkpoint_path
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise ResumeError(f"{path}: cannot be read ({err.strerror})") from None
        except ValueError as err:  # empty, garbage, not UTF-8
            raise ResumeError(f"{path}: not valid JSON ({_one_line(err)}); the checkpoint is "
                              "damaged, this search cannot be resumed") from None
        if not isinstance(state, dict):
            raise ResumeError(f"{path}: expected a JSON object, got {type(state).__name__}")
        if state.get("version") != CHECKPOINT_VERSION:
            raise ResumeError(f"{path}: unknown checkpoint version {state.get('version')!r}")
        return state

    def checkpoint(self) -> None:
        """Write the search state atomically (records live in the log, not here)."""
        state = {
            "version": CHECKPOINT_VERSION,
            "applied_lines": self._lines,
            "next_id": self.next_id,
            "rng": self.rng.bit_generator.state,
            "population": list(self.population),
            "pending": [{"id": p.task.id, "arch": p.task.arch, "seed": p.task.seed,
                         "pruning_target": p.task.pruning_target, "round": p.round,
                         "parent": p.parent, "resources": list(p.resources)}
                        for p in self.pending.values()],
            "waiting": {str(k): v for k, v in self.waiting.items()},
        }
        atomic_write_json(self.checkpoint_path, state)

    # ------------------------------------------------------------------ records
    @staticmethod
    def _key_of(arch_json: str, target: float | None = None) -> str:
        """Identity of a candidate for reuse: its architecture (canonical JSON text,
        ``Architecture.to_json()``) and, when it is pruned, its pruning target (the same base
        network pruned to another target is another model)."""
        return arch_json if target is None else f"{arch_json}@pruned:{target!r}"

    def _arch(self, record: EvaluationRecord) -> Architecture:
        if record.id not in self._archs:
            self._archs[record.id] = architecture_from_json(record.arch)
        return self._archs[record.id]

    def _emit(self, record: EvaluationRecord) -> None:
        """Write ``record`` (unless it is being replayed from the log) and apply it."""
        line = record.to_dict()
        if record.id in self._replay:
            logged = self._replay.pop(record.id)
            if self._replay_order and self._replay_order[0] == record.id:
                self._replay_order.popleft()
            else:
                self._replay_order.remove(record.id)
            if logged["arch"] != line["arch"] or logged["round"] != line["round"]:
                raise ResumeError(f"{self.log.path}: record {record.id} differs from the resumed "
                                  "search (was the config or the code changed?)")
            record = EvaluationRecord.from_dict(logged)
        else:
            if self._torn:
                self.log.repair()
                self._torn = False
            self.log.append(line)
        self._lines += 1
        self._apply(record, population=True)

    def _apply(self, record: EvaluationRecord, population: bool) -> None:
        self.records[record.id] = record
        if (record.arch and record.reused_from is None
                and not record.status.startswith("skipped")):
            self._by_key.setdefault(self._key_of(self._arch(record).to_json(),
                                                 record.pruning_target), record.id)
        if population and (record.ok or record.status.startswith("skipped")):
            self.population.append(record.id)
            while len(self.population) > self.settings.population_size:
                self.population.popleft()

    def _add_pending(self, pending: _Pending) -> None:
        self.pending[pending.task.id] = pending
        self._inflight_keys[pending.key] = pending.task.id

    # ------------------------------------------------------------------ proposals
    def _draw_target(self, parent: EvaluationRecord | None) -> float | None:
        if not self.pruning.enabled:
            return None
        lo, hi = self.pruning.target_sparsity
        if parent is None or parent.pruning_target is None:
            return float(self.rng.uniform(lo, hi))
        step = self.rng.normal(0.0, self.settings.sparsity_mutation_std)
        return float(np.clip(parent.pruning_target + step, lo, hi))

    def _in_flight_members(self) -> list[EvaluationRecord]:
        """In-flight children as stand-in population members, oldest first: their exact
        resources (known before training) and their parent's error (a child of an in-flight
        parent inherits that parent's stand-in error). Random proposals have no estimate and
        children of skipped or failed parents none either: they are left out."""
        errors: dict[int, float] = {}
        members = []
        for pending in self.pending.values():
            if pending.parent is None:
                continue
            if pending.parent in errors:
                error = errors[pending.parent]
            else:
                parent = self.records.get(pending.parent)
                if parent is None or not parent.ok or parent.objectives is None:
                    continue
                error = parent.objectives.error
            errors[pending.task.id] = error
            members.append(EvaluationRecord(
                id=pending.task.id, round=pending.round, arch=pending.task.arch,
                status=STATUS_OK, seed=pending.task.seed, parent=pending.parent,
                pruning_target=pending.task.pruning_target,
                objectives=Objectives(error, *pending.resources)))
        return members

    def _members(self) -> list[EvaluationRecord]:
        """What parents are sampled from: the population, and with ``count_in_flight`` the
        in-flight children after it (:meth:`_in_flight_members`). The serial search has every
        earlier child in its population when it proposes; with N in flight the N - 1 newest are
        missing, and with a population not much larger than N the sample would come from stale
        members only. The stand-ins are added, not swapped for finished members, so no
        measured result leaves the sample for a guess."""
        members = [self.records[i] for i in self.population]
        if self.count_in_flight and self.pending:
            members += self._in_flight_members()
        return members

    def _random_phase(self, rid: int) -> bool:
        """Whether proposal ``rid`` is a random architecture. The first ``initial_population``
        proposals are; with ``count_in_flight`` random ones continue until that many results
        are in (with N in flight the first child would otherwise be bred from the first
        ``initial_population - N + 1`` results only). Serially both rules agree."""
        return (self.settings.algorithm == "random" or rid < self.settings.initial_population
                or not self.population
                or (self.count_in_flight and self.finished < self.settings.initial_population))

    def _select_parent(self) -> EvaluationRecord:
        """The sample winner under this round's random scalarisation."""
        members = self._members()
        size = min(self.settings.sample_size, len(members))
        sample = [members[i] for i in self.rng.choice(len(members), size=size, replace=False)]
        weights = sample_weights(self.rng)
        values = np.array([m.objectives.as_tuple() for m in sample])  # type: ignore[union-attr]
        cap = self.settings.objective_cap
        scaled = normalise(values, self.bounds.as_tuple(), cap)
        goal = scalarise(scaled, weights)
        # A skipped (untrained) candidate loses to every trained one (their goals are <= cap);
        # among skipped ones the smallest weighted resource excess wins, so the search still
        # walks towards the bounds when it only has oversized candidates to pick from.
        skipped = np.array([m.status.startswith("skipped") for m in sample])
        goal[skipped] = cap + scalarise(scaled[skipped][:, 1:], weights[1:])
        return sample[int(np.argmin(goal))]

    def _propose(self) -> None:
        """Make the next proposal: a record right away, or a task to train."""
        rid = self.next_id
        self.next_id += 1
        seed = int(self.rng.integers(0, 2**31 - 1))
        parent: EvaluationRecord | None = None
        try:
            if self._random_phase(rid):
                arch = self.space.random_architecture(self.rng)
            else:
                parent = self._select_parent()
                arch = self.space.mutate(self._arch(parent), self.rng)
        except Exception as err:  # noqa: BLE001 - a broken morphism must not stop the search
            self._emit(EvaluationRecord(id=rid, round=rid, arch={}, seed=seed,
                                        parent=None if parent is None else parent.id,
                                        status=f"failed: cannot propose: {_one_line(err)}"))
            return
        target = self._draw_target(parent)
        arch_json = arch.to_json()
        arch_dict = json.loads(arch_json)  # the record's and the task's form of it
        key = self._key_of(arch_json, target)
        self._archs[rid] = arch
        base = dict(id=rid, round=rid, arch=arch_dict, seed=seed, pruning_target=target,
                    parent=None if parent is None else parent.id)
        if key in self._by_key:
            self._emit(self._reuse(self.records[self._by_key[key]], base))
            return
        if key in self._inflight_keys:
            self.waiting.setdefault(self._inflight_keys[key], []).append(base)
            return
        try:
            resources = tuple(int(v) for v in self.measure(arch))
        except Exception as err:  # noqa: BLE001 - unmeasurable architecture: reject it
            self._emit(EvaluationRecord(**base, status=f"failed: cannot compute resources: "
                                                       f"{_one_line(err)}"))
            return
        if target and self.prune is not None:
            try:  # what training will materialise: the same network with fewer channels
                resources = tuple(int(v) for v in self.measure(self.prune(arch, target)))
            except Exception as err:  # noqa: BLE001 - e.g. a space pruning does not support
                self._emit(EvaluationRecord(**base, status=f"failed: cannot compute pruned "
                                                           f"resources: {_one_line(err)}"))
                return
        reason = over_bounds(resources, target, self.bounds)  # type: ignore[arg-type]
        if reason is not None:
            objectives = Objectives(1.0, *resources)
            self._emit(EvaluationRecord(**base, status=f"skipped: {reason}", objectives=objectives))
            return
        task = EvalTask(id=rid, arch=arch_dict, seed=seed, pruning_target=target)
        self._add_pending(_Pending(task=task, round=rid, parent=base["parent"],
                                   resources=resources, key=key))  # type: ignore[arg-type]

    @staticmethod
    def _reuse(original: EvaluationRecord, base: dict[str, Any]) -> EvaluationRecord:
        return EvaluationRecord(**base, status=original.status, objectives=original.objectives,
                                test_error=original.test_error, final_arch=original.final_arch,
                                model_path=original.model_path, reused_from=original.id)

    def _top_up(self, capacity: int) -> None:
        while len(self.pending) < capacity and self.next_id < self.total:
            self._propose()

    # ------------------------------------------------------------------ results
    def _on_result(self, result: EvalResult) -> None:
        if result.id not in self.pending:
            raise ResumeError(f"result for candidate {result.id}, which is not in flight")
        if is_infrastructure_failure(result):
            # The machine failed, not the candidate: record nothing (it stays in flight in the
            # checkpoint, so a resumed search trains it again) and stop.
            reason = result.status[len(INFRASTRUCTURE):]
            raise InfrastructureError(f"candidate {result.id} could not be evaluated: {reason}; "
                                      "the search stopped and recorded nothing for it (it is "
                                      "trained again when the search is resumed)")
        pending = self.pending.pop(result.id)
        self._inflight_keys.pop(pending.key, None)
        self._submitted.discard(result.id)
        task = pending.task
        base = dict(id=task.id, round=pending.round, arch=task.arch, seed=task.seed,
                    pruning_target=task.pruning_target, parent=pending.parent)
        status, objectives = result.status, None
        if result.status == STATUS_OK:
            resources = pending.resources
            if result.final_arch is not None and result.final_arch != task.arch:
                try:
                    resources = tuple(int(v) for v in self.measure(architecture_from_json(
                        result.final_arch)))  # type: ignore[assignment]
                except Exception as err:  # noqa: BLE001
                    status = f"failed: cannot compute resources of the pruned model: {_one_line(err)}"
            if result.val_error is None or not np.isfinite(result.val_error):
                status = "failed: no finite validation error"
            if status == STATUS_OK:
                objectives = Objectives(float(result.val_error), *resources)  # type: ignore[arg-type]
        record = EvaluationRecord(**base, status=status, objectives=objectives,
                                  test_error=result.test_error, curve=dict(result.curve),
                                  wall_time_s=float(result.wall_time_s),
                                  final_arch=result.final_arch, model_path=result.model_path)
        self._emit(record)
        for dup_base in self.waiting.pop(task.id, []):
            self._emit(self._reuse(self.records[task.id], dup_base))

    def _next_result(self, executor: Executor, timeout: float) -> EvalResult | None:
        if self._replay_order:
            head = self._replay_order[0]
            if head not in self.pending:
                raise ResumeError(f"{self.log.path}: record {head} cannot be replayed (it is not "
                                  "in flight at this point; was the config or the code changed?)")
            line = self._replay[head]
            return EvalResult(id=head, status=line["status"],
                              val_error=(line["objectives"] or {}).get("error"),
                              test_error=line["test_error"], curve=line["curve"],
                              wall_time_s=line["wall_time_s"], final_arch=line["final_arch"],
                              model_path=line["model_path"])
        return executor.next_result(timeout)

    def _fill(self, executor: Executor) -> None:
        if self._replay_order:
            return  # submit only once the log's tail has been replayed
        for rid, pending in self.pending.items():
            if len(self._submitted) >= executor.capacity:
                break  # resumed with fewer workers than candidates were in flight: wait
            if rid not in self._submitted:
                executor.submit(pending.task)
                self._submitted.add(rid)

    # ------------------------------------------------------------------ the loop
    def run(self, executor: Executor, on_progress: Callable[["AgingEvolution"], None] | None = None,
            poll_s: float = 1.0) -> list[EvaluationRecord]:
        """Run (or continue) the search to the end; return every record in id order."""
        self.checkpoint()  # a fresh search has a state to resume from before its first record
        self._top_up(executor.capacity)
        self._fill(executor)
        self.checkpoint()
        if on_progress:
            on_progress(self)
        while self.pending:
            result = self._next_result(executor, poll_s)
            if result is not None:
                self._on_result(result)
                self._top_up(executor.capacity)
                self._fill(executor)
                self.checkpoint()
            if on_progress:
                on_progress(self)
        if self._replay_order:
            raise ResumeError(f"{self.log.path}: {len(self._replay_order)} record(s) were not "
                              "produced by the resumed search (was the config or code changed?)")
        return [self.records[i] for i in sorted(self.records)]

    # ------------------------------------------------------------------ summaries
    def trained_records(self) -> list[EvaluationRecord]:
        """Successfully trained candidates, each architecture once."""
        return [r for r in self.records.values() if r.trained]

    def best_within_resource_bounds(self) -> EvaluationRecord | None:
        """Lowest validation error among trained candidates within the resource bounds
        (:meth:`~unas.search.objectives.Objectives.within_resource_bounds`)."""
        bounds = self.bounds.as_tuple()
        fits = [r for r in self.trained_records()
                if r.objectives.within_resource_bounds(bounds)]  # type: ignore[union-attr]
        return min(fits, key=lambda r: r.objectives.error, default=None)  # type: ignore[union-attr]

    def front(self) -> list[EvaluationRecord]:
        """The Pareto front of all trained candidates."""
        return pareto_front(self.trained_records())


def pareto_front(records: list[EvaluationRecord]) -> list[EvaluationRecord]:
    """Records not dominated on the four objectives (each architecture counted once)."""
    records = [r for r in records if r.trained and r.objectives is not None]
    if not records:
        return []
    mask = non_dominated(np.array([r.objectives.as_tuple() for r in records]))  # type: ignore[union-attr]
    return [r for r, keep in zip(records, mask) if keep]


def _one_line(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())[:300]

