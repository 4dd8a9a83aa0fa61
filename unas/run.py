"""Run a search: ``python -m unas.run experiments/digits.yaml [--out DIR] [--resume]``.

Every finished evaluation is appended to ``DIR/evaluations.jsonl`` and the search state is
checkpointed; running again with the same output folder (or ``--resume``) continues where it
stopped. At the end the report (``pareto.csv``, ``pareto/``, ``plots/``) is written, the Pareto
models are deployed (int8, generated C, emulated board: ``summary.csv``, ``summary.md``,
``plots/summary.png``) and the summary table is printed last.
"""
from __future__ import annotations

import argparse
import signal
import sys
from typing import TYPE_CHECKING

from unas.errors import UnasError
from unas.search.executor import InfrastructureError

if TYPE_CHECKING:
    from unas.config import ExperimentConfig
    from unas.search.evolution import AgingEvolution


def with_execution(cfg: "ExperimentConfig", workers: int | None,
                   address: str | None) -> "ExperimentConfig":
    """``cfg`` with ``--workers`` / ``--ray-address`` applied (either one selects the Ray
    back-end). They are not part of ``cfg.raw``: a search may be resumed with other values."""
    import dataclasses

    from unas.errors import ConfigError

    if workers is None and address is None:
        return cfg
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers: expected an integer >= 1, got {workers}")
    execution = dataclasses.replace(
        cfg.execution, backend="ray",
        num_workers=workers if workers is not None else cfg.execution.num_workers,
        address=address if address is not None else cfg.execution.address)
    return dataclasses.replace(cfg, execution=execution)


def bounds_warning(cfg: "ExperimentConfig", search: "AgingEvolution") -> str | None:
    """The line to print when no trained candidate fits the resource bounds (None when one does):
    the search finished, but it found no model for the microcontroller the bounds describe."""
    if search.best_within_resource_bounds() is not None:
        return None
    o = cfg.objectives
    trained = len(search.trained_records())
    return (f"warning: {cfg.source}: none of the {trained} trained candidates fits the resource "
            f"bounds (objectives.peak_memory_bytes {o.peak_memory_bytes}, objectives.model_size_bytes "
            f"{o.model_size_bytes}, objectives.macs {o.macs}); loosen them or narrow "
            "search_space.bounds")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so the same clean-up runs (the worker is
    stopped, the folder's lock released) and the same ``--resume`` hint is printed."""


def _on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """The CLI; exit status 0, 2 (an error, one line), 130 (Ctrl-C) or 143 (SIGTERM)."""
    import threading

    if threading.current_thread() is not threading.main_thread():  # signals go to the main one
        return _main(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unas.run",
                                     description="μNAS-style architecture search for microcontrollers.")
    parser.add_argument("config", help="experiment YAML, e.g. experiments/digits.yaml")
    parser.add_argument("--out", help="output folder (default: the config's output_dir)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the search in the output folder (it must hold one)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="evaluate N candidates at once on Ray (execution.backend: ray, "
                             "execution.num_workers: N)")
    parser.add_argument("--ray-address", metavar="ADDR",
                        help="join this Ray cluster ('auto', 'host:port' or 'ray://host:port') "
                             "instead of starting a local one (execution.address)")
    args = parser.parse_args(argv)
    where = f" --out {args.out}" if args.out else ""
    hint = f"continue with: python -m unas.run {args.config}{where} --resume"
    try:
        from unas.config import load_config
        from unas.experiment import load_splits, run_experiment
        from unas.report import load_context, summary, summary_table, write_report

        cfg = with_execution(load_config(args.config), args.workers, args.ray_address)
        out = args.out or cfg.output_dir
        splits = load_splits(cfg)  # once, for the search's shapes and the report's export
        search = run_experiment(cfg, out_dir=out, resume=args.resume, splits=splits)
        ctx = load_context(out, config=cfg, records=list(search.records.values()),
                           splits=splits)
        write_report(ctx)
        print(summary(ctx))
        print(f"results in {out}/ (summary.md, summary.csv, pareto.csv, pareto/, models/, deploy/, plots/, evaluations.jsonl)")
        print(summary_table(out))
        warning = bounds_warning(cfg, search)
        if warning:  # exit 0 still: the search ran and its results are written (see docs/search.md)
            print(warning, file=sys.stderr)
    except InfrastructureError as err:  # disk full, out of memory: nothing recorded for it
        print(f"error: {err}; fix that, then {hint}", file=sys.stderr)
        return 2
    except UnasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. the disk filled up while the search wrote its own files
        where_err = f"{err.filename}: " if err.filename else ""
        print(f"error: {where_err}{err.strerror or err}; fix that, then {hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        terminated = isinstance(err, Terminated)
        print(f"{'terminated (SIGTERM)' if terminated else 'interrupted'}; {hint}", file=sys.stderr)
        return 143 if terminated else 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
