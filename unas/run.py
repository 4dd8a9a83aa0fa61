"""Run a search: ``python -m unas.run experiments/digits.yaml [--out DIR] [--resume]``.

Every finished evaluation is appended to ``DIR/evaluations.jsonl`` and the search state is
checkpointed; running again with the same output folder (or ``--resume``) continues where it
stopped. At the end the report (``pareto.csv``, ``pareto/``, ``plots/``) is written.
"""
from __future__ import annotations

import argparse
import sys

from unas.errors import UnasError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unas.run",
                                     description="μNAS-style architecture search for microcontrollers.")
    parser.add_argument("config", help="experiment YAML, e.g. experiments/digits.yaml")
    parser.add_argument("--out", help="output folder (default: the config's output_dir)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the search in the output folder (it must hold one)")
    args = parser.parse_args(argv)
    try:
        from unas.config import load_config
        from unas.report import summary, write_report
        from unas.search.driver import run_experiment

        cfg = load_config(args.config)
        out = args.out or cfg.output_dir
        run_experiment(cfg, out_dir=out, resume=args.resume)
        write_report(out)
        print(summary(out))
        print(f"results in {out}/ (pareto.csv, pareto/, models/, plots/, evaluations.jsonl)")
    except UnasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
