"""Print BENCHMARKS.md: every benchmarks/results/*.md (each states its command and date), in order.

    python benchmarks/collect_results.py > BENCHMARKS.md

Relative image and file links are rewritten so they resolve from the repository root.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ORDER = ["peak_memory", "search", "pruning", "space_opt", "parallel", "tflm_fidelity", "engine",
         "board"]
_LINK = re.compile(r"(\]\()(?!https?://|/|#)([^)]+\))")


def collect(results: Path = RESULTS) -> str:
    """The concatenated Markdown, links made relative to the repository root."""
    files = sorted(results.glob("*.md"), key=lambda p: (ORDER.index(p.stem)
                                                        if p.stem in ORDER else len(ORDER), p.stem))
    parts = ["# Benchmarks\n",
             "Collected from `benchmarks/results/` by `python benchmarks/collect_results.py > "
             "BENCHMARKS.md`. Each section names the command that produced it and the date; "
             "speeds are ratios measured in one run on the shared 2-core machine.\n"]
    for path in files:
        text = path.read_text()
        parts.append(_LINK.sub(lambda m: f"{m.group(1)}benchmarks/results/{m.group(2)}", text))
    return "\n".join(part.rstrip() + "\n" for part in parts)


if __name__ == "__main__":
    sys.stdout.write(collect())
