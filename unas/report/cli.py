"""``python -m unas.report DIR``: the report of a search folder (see :mod:`unas.report`)."""
from __future__ import annotations

import argparse
import sys

from unas.errors import UnasError
from unas.report.context import load_context
from unas.report.steps import summary, write_report
from unas.report.summary import summary_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unas.report",
                                     description="Pareto table, model files and plots of a search folder.")
    parser.add_argument("out_dir", help="the search's output folder")
    args = parser.parse_args(argv)
    try:
        ctx = load_context(args.out_dir)
        written = write_report(ctx)
        print(summary(ctx))
        print(summary_table(ctx.out_dir))
    except UnasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. a full disk or a read-only folder: one line, no traceback
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files under {args.out_dir}")
    return 0
