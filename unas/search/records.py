"""One evaluation = one :class:`EvaluationRecord` = one line of ``evaluations.jsonl``."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from unas.search.objectives import Objectives

STATUS_OK = "ok"


@dataclass(frozen=True)
class EvaluationRecord:
    """What the search learnt about one proposed candidate.

    ``status`` is ``ok``, ``skipped: <reason>`` (not trained: it cannot fit the bounds even at its
    pruning target) or ``failed: <reason>`` (could not be measured, built or trained).
    ``objectives`` holds the validation error and the resources of the (possibly pruned) final
    model; a skipped candidate carries its resources and ``error = 1.0`` (untrained). ``arch`` is
    the proposed architecture's JSON dict, ``final_arch`` the one after pruning (``None`` when
    unchanged). ``reused_from`` names the record whose result was reused for an architecture
    seen before (it was not trained again)."""

    id: int
    round: int
    arch: dict[str, Any]
    status: str
    seed: int
    parent: int | None = None
    pruning_target: float | None = None
    objectives: Objectives | None = None
    test_error: float | None = None
    curve: dict[str, list[float]] = field(default_factory=dict)
    wall_time_s: float = 0.0
    final_arch: dict[str, Any] | None = None
    model_path: str | None = None
    reused_from: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def trained(self) -> bool:
        """A genuine trained result (not a reuse of an earlier one)."""
        return self.ok and self.reused_from is None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["objectives"] = None if self.objectives is None else self.objectives.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvaluationRecord":
        data = dict(data)
        if data.get("objectives") is not None:
            data["objectives"] = Objectives.from_dict(data["objectives"])
        return cls(**data)
