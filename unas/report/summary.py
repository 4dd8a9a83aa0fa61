r"""The end-of-run summary of a search folder: one row per deployed Pareto model.

Written by the report step :func:`write_summary` as ``DIR/summary.csv`` and ``DIR/summary.md``
(atomically) and drawn as ``DIR/plots/summary.png`` (:mod:`unas.report.summary_plot`);
:func:`summary_table` formats ``summary.csv`` as the plain-text table the CLIs print::

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = open(f"{folder}/summary.csv", "w").write(
    ...     "id,within_bounds,val_error,board_instructions,deploy_status\n"
    ...     "17,True,0.0347,33114,ok\n"
    ...     "3,False,0.4896,unavailable: qemu-system-arm not found,ok\n")
    >>> print(summary_table(folder))  # doctest: +NORMALIZE_WHITESPACE
    deployed Pareto models (2; summary.csv, summary.md, plots/summary.png):
    id  in bounds  val err  int8 test acc  pred. peak  TFLM arena  C SRAM  Flash  MACs  instr/inf  instr/MAC  bit-exact  board=host  status
    --  ---------  -------  -------------  ----------  ----------  ------  -----  ----  ---------  ---------  ---------  ----------  ------
    17        yes   0.0347              -           -           -       -      -     -      33114          -          -           -      ok
     3         no   0.4896              -           -           -       -      -     -        n/a          -          -           -      ok
    <BLANKLINE>
    n/a, failed or skipped:
      #3: unavailable: qemu-system-arm not found
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from unas.files import atomic_write_text

#: (summary.csv column, printed header). Bytes unless said otherwise; "instr" = instructions.
SUMMARY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "id"),
    ("within_bounds", "in bounds"),
    ("val_error", "val err"),
    ("int8_test_accuracy", "int8 test acc"),
    ("predicted_peak_bytes", "pred. peak"),
    ("tflm_arena_bytes", "TFLM arena"),
    ("codegen_sram_bytes", "C SRAM"),
    ("flash_bytes", "Flash"),
    ("macs", "MACs"),
    ("board_instructions", "instr/inf"),
    ("instructions_per_mac", "instr/MAC"),
    ("bit_exact", "bit-exact"),
    ("board_equals_host", "board=host"),
    ("deploy_status", "status"),
)
SUMMARY_FILE, SUMMARY_MARKDOWN = "summary.csv", "summary.md"


def summary_rows(ctx: Any) -> list[dict[str, Any]]:
    """One row per front model the deploy step handled, in front order (lowest error first)."""
    rows = []
    for record in ctx.front:
        cols = ctx.extra_columns.get(record.id, {})
        if "deploy_status" not in cols:
            continue
        objectives = record.objectives
        rows.append({
            "id": record.id, "within_bounds": ctx.within_bounds(record),
            "val_error": round(objectives.error, 4),
            "test_error": None if record.test_error is None else round(record.test_error, 4),
            "int8_test_accuracy": _rounded(cols.get("int8_test_accuracy")),
            "predicted_peak_bytes": objectives.peak_memory_bytes, "engine": ctx.engine,
            "tflm_arena_bytes": cols.get("tflm_arena_head_bytes"),
            "codegen_sram_bytes": cols.get("codegen_sram_bytes"),
            "flash_bytes": cols.get("board_flash_bytes"),
            "weights_bytes": cols.get("weights_bytes"),
            "macs": objectives.macs,
            "board_instructions": cols.get("board_instructions"),
            "instructions_per_mac": cols.get("board_instructions_per_mac"),
            "bit_exact": cols.get("bit_exact"),
            "board_equals_host": cols.get("board_equals_host"),
            "check_samples": cols.get("check_samples"), "board_samples": cols.get("board_samples"),
            "cpu": cols.get("board_cpu"), "board": cols.get("board"),
            "deploy_seconds": cols.get("deploy_seconds"),
            "deploy_status": cols.get("deploy_status"),
            "tflite_path": cols.get("tflite_path"),
        })
    return rows


def _rounded(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def _csv_text(rows: list[dict[str, Any]]) -> str:
    fields = list(rows[0]) if rows else [key for key, _ in SUMMARY_COLUMNS]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _cell(value: Any) -> str:
    """A short table cell; ``unavailable: ...``/``failed: ...`` become ``n/a``/``failed``."""
    if value is None or value == "":
        return "-"
    text = str(value)
    if text.startswith("unavailable:"):
        return "n/a"
    if text.startswith(("failed:", "skipped:")):
        return text.split(":")[0]
    return {"True": "yes", "False": "no"}.get(text, text)


def _notes(rows: list[dict[str, Any]]) -> list[str]:
    """The distinct reasons behind ``n/a``/``failed``/``skipped`` cells, one line each."""
    seen: dict[str, list[str]] = {}
    for row in rows:
        for value in row.values():
            text = str(value)
            if text.startswith(("unavailable:", "failed:", "skipped:")):
                seen.setdefault(text, [])
                if f"#{row['id']}" not in seen[text]:
                    seen[text].append(f"#{row['id']}")
    return [f"{', '.join(ids)}: {reason}" for reason, ids in seen.items()]


def format_table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    """The summary rows as a plain-text (or Markdown) table, reasons for n/a cells below it."""
    headers = [header for _, header in SUMMARY_COLUMNS]
    cells = [[_cell(row.get(key)) for key, _ in SUMMARY_COLUMNS] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
    else:
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    notes = _notes(rows)
    if notes:
        lines += ["", "n/a, failed or skipped:"] + [f"  {note}" for note in notes]
    return "\n".join(lines)


def _legend(rows: list[dict[str, Any]]) -> str:
    first = next((r for r in rows if r.get("deploy_status") == "ok"), rows[0] if rows else {})
    return (f"pred. peak: the search's peak-memory objective ({first.get('engine', 'codegen')} "
            "memory model); TFLM arena: TFLM's planned (non-persistent) arena; C SRAM: generated "
            "code's static arena; Flash: generated code + weights on the board; "
            f"instr/inf: mean instructions per inference on the emulated {first.get('cpu')} "
            f"(linked for {first.get('board')}); bit-exact: generated C on the host == TFLM on "
            f"{first.get('check_samples')} test samples; board=host: the board's outputs == the "
            f"host build's on {first.get('board_samples')} of them. Bytes unless said otherwise.")


def write_summary(ctx: Any) -> list[Path]:
    """Report step (after the deploy step): ``summary.csv``, ``summary.md`` and
    ``plots/summary.png`` of the deployed models."""
    from unas.report.summary_plot import plot_summary

    rows = summary_rows(ctx)
    csv_path, md_path = ctx.out_dir / SUMMARY_FILE, ctx.out_dir / SUMMARY_MARKDOWN
    atomic_write_text(csv_path, _csv_text(rows))
    atomic_write_text(md_path, f"# Deployed Pareto models of {ctx.out_dir.name}\n\n"
                      f"{format_table(rows, markdown=True)}\n\n{_legend(rows)}\n")
    return [csv_path, md_path, *plot_summary(rows, ctx.out_dir / "plots" / "summary.png")]


def read_summary(out_dir: str | Path) -> list[dict[str, str]]:
    """The rows of ``DIR/summary.csv`` (empty if the report has not written it)."""
    path = Path(out_dir) / SUMMARY_FILE
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def summary_table(out_dir: str | Path) -> str:
    """The plain-text summary table of ``DIR/summary.csv`` (what the CLIs print at the end)."""
    rows = read_summary(out_dir)
    if not rows:
        return "deployed models: none (no Pareto model with a saved model file)"
    return (f"deployed Pareto models ({len(rows)}; summary.csv, summary.md, plots/summary.png):\n"
            + format_table(rows))
