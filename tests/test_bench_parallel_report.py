"""How benchmarks/bench_parallel.py merges a run into an existing results file: sections the run
did not measure (and hand-written ones) are kept, never dropped."""
from __future__ import annotations

from benchmarks.bench_parallel import FIXED, READING, TITLE, merge_report
from benchmarks.bench_staleness import SECTION as STALENESS

OLD = "\n".join([
    TITLE, "", "Date: old search run.", "", "| old search table |", "", "## Projection", "",
    "old projection", "", FIXED, "", "old fixed table", "", READING, "", "- hand-written", "",
    STALENESS, "", "staleness table", "", STALENESS + ": bigger population", "", "second table",
]) + "\n"


def test_a_fixed_only_run_replaces_just_that_section() -> None:
    new = "\n".join([TITLE, "", FIXED, "", "new fixed table"]) + "\n"
    merged = merge_report(OLD, new, searched=False)
    assert "new fixed table" in merged and "old fixed table" not in merged
    for kept in ("Date: old search run.", "old projection", "- hand-written", "staleness table",
                 "second table"):
        assert merged.count(kept) == 1, kept
    order = [merged.index(x) for x in ("old search table", "old projection", "new fixed table",
                                       "- hand-written", "staleness table", "second table")]
    assert order == sorted(order)


def test_a_search_run_keeps_the_fixed_section_it_did_not_rerun() -> None:
    new = "\n".join([TITLE, "", "Date: new search run.", "", "## Projection", "",
                     "new projection"]) + "\n"
    merged = merge_report(OLD, new, searched=True)
    assert "Date: new search run." in merged and "Date: old search run." not in merged
    assert "old projection" not in merged and "new projection" in merged
    for kept in ("old fixed table", "- hand-written", "staleness table", "second table"):
        assert merged.count(kept) == 1, kept


def test_first_run_writes_the_report_as_is() -> None:
    new = TITLE + "\n\nDate: first.\n"
    assert merge_report(None, new, searched=True) == new
