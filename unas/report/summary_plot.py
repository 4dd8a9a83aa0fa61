"""``plots/summary.png``: int8 test error of the deployed models against SRAM (predicted,
TFLM, generated C) and against instructions per inference on the emulated board."""
from __future__ import annotations

from pathlib import Path
from typing import Any
from unas.files import atomic_write

#: (summary key, legend label, marker, colour) of the three SRAM figures drawn per model; the
#: prediction is drawn hollow so that a measurement equal to it shows inside it.
SRAM_SERIES = (("predicted_peak_bytes", "predicted peak (search)", "o", "tab:blue"),
               ("tflm_arena_bytes", "TFLM arena (measured)", "s", "tab:orange"),
               ("codegen_sram_bytes", "generated C: arena", "^", "tab:green"))


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _error(row: dict[str, Any]) -> float | None:
    """int8 test error (1 - int8 accuracy), else the float test error."""
    accuracy = _number(row.get("int8_test_accuracy"))
    return 1.0 - accuracy if accuracy is not None else _number(row.get("test_error"))


def _label(ax: Any, x: float, y: float, row: dict[str, Any]) -> None:
    ax.annotate(f"#{row['id']}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)


def plot_summary(rows: list[dict[str, Any]], path: Path) -> list[Path]:
    """Draw the two panels for the successfully deployed ``rows`` into ``path`` (atomically);
    returns ``[path]``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.get("deploy_status") == "ok"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label, marker, colour in SRAM_SERIES:
        points = [(_number(r.get(key)), _error(r), r) for r in rows]
        points = [(x, y, r) for x, y, r in points if x is not None and y is not None]
        style = (dict(s=90, facecolors="none", edgecolors=colour, linewidths=1.4)
                 if key == "predicted_peak_bytes" else dict(s=36, c=colour, alpha=0.85))
        left.scatter([p[0] for p in points], [p[1] for p in points], marker=marker, label=label,
                     **style)
    for row in rows:
        xs = [_number(row.get(series[0])) for series in SRAM_SERIES]
        xs = [x for x in xs if x is not None]
        y = _error(row)
        if xs and y is not None:
            left.plot([min(xs), max(xs)], [y, y], c="0.75", lw=0.8, zorder=0)
            _label(left, min(xs), y, row)
    left.set_xlabel("SRAM for activations (bytes)")
    left.set_ylabel("int8 test error")
    left.set_title("memory: predicted vs measured")
    if any(True for _ in left.collections):
        left.legend(fontsize=8, loc="best")

    measured = [(_number(r.get("board_instructions")), _error(r), r) for r in rows]
    measured = [(x, y, r) for x, y, r in measured if x is not None and y is not None]
    if measured:
        right.scatter([m[0] for m in measured], [m[1] for m in measured], c="tab:red", s=36)
        for x, y, row in measured:
            _label(right, x, y, row)
        cpu = rows[0].get("cpu") or "Cortex-M"
        right.set_xlabel(f"instructions per inference (emulated {cpu})")
    else:
        right.text(0.5, 0.5, "board measurement unavailable\n(see summary.md)",
                   ha="center", va="center", transform=right.transAxes)
        right.set_xlabel("instructions per inference")
    right.set_ylabel("int8 test error")
    right.set_title("speed on the emulated board")
    for ax in (left, right):
        ax.grid(True, lw=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)
    return [path]
