"""What every report step works on: a search folder read once.

:func:`load_context` reads ``config.json`` (parsed once into an :class:`ExperimentConfig`) and
``evaluations.jsonl``, or takes the config and records a caller already holds (``unas.run``
passes the search it just ran). The dataset splits are loaded at most once, by the first step
that asks (:meth:`ReportContext.splits`), with the search's data seed so that they are the
splits the search used.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unas.config import ExperimentConfig, parse_config
from unas.errors import UnasError
from unas.experiment import load_splits
from unas.files import JsonLines, JsonLinesError
from unas.search.evolution import CONFIG_SNAPSHOT, EVALUATIONS_FILE, pareto_front
from unas.search.records import EvaluationRecord


@dataclass
class ReportContext:
    """Everything a report step may use. ``extra_columns`` maps a record id to additional
    ``pareto.csv`` columns (steps that run before ``write_pareto_csv`` may fill it)."""

    out_dir: Path
    records: list[EvaluationRecord]
    front: list[EvaluationRecord]
    config: ExperimentConfig
    extra_columns: dict[int, dict[str, Any]] = field(default_factory=dict)
    _splits: Any = field(default=None, repr=False)

    @property
    def bounds(self) -> Any:
        """The search's :class:`~unas.config.ObjectiveBounds`."""
        return self.config.objectives

    @property
    def engine(self) -> str:
        """The inference engine whose memory model the search's peak memory used."""
        return self.config.target.engine

    def within_bounds(self, record: EvaluationRecord) -> bool:
        """All four objectives, validation error included, at or below their bounds."""
        return record.objectives is not None and record.objectives.within_all_bounds(
            self.bounds.as_tuple())

    def splits(self) -> Any:
        """The dataset splits the search used (loaded on the first call, then kept); raises
        :class:`~unas.errors.UnasError` when the dataset cannot be loaded."""
        if self._splits is None:
            self._splits = load_splits(self.config)
        return self._splits


def load_context(out_dir: str | Path, config: ExperimentConfig | None = None,
                 records: list[EvaluationRecord] | None = None, splits: Any = None
                 ) -> ReportContext:
    """The report context of the search in ``out_dir``. ``config`` and ``records`` are read from
    its ``config.json`` and ``evaluations.jsonl`` unless given; the dataset ``splits`` are loaded
    when a step first needs them unless given."""
    out = Path(out_dir)
    if config is None:
        snapshot = out / CONFIG_SNAPSHOT
        if not snapshot.exists():
            raise UnasError(f"{out}: not a search output folder (no {CONFIG_SNAPSHOT})")
        meta = json.loads(snapshot.read_text())
        config = parse_config(meta["config"], str(snapshot), check_dataset=False,
                              check_space=False)
    if records is None:
        try:
            lines = JsonLines(out / EVALUATIONS_FILE).read()
        except JsonLinesError as err:
            raise UnasError(str(err)) from None
        records = [EvaluationRecord.from_dict(line) for line in lines]
    records = sorted(records, key=lambda r: r.id)
    front = sorted(pareto_front(records), key=lambda r: r.objectives.error)  # type: ignore[union-attr]
    return ReportContext(out_dir=out, records=records, front=front, config=config,
                         _splits=splits)
