"""The report of a search folder: ``python -m unas.report DIR`` (also the end of ``unas.run``).

Writes, atomically, into ``DIR``:

- ``pareto.csv``: the Pareto front of all trained candidates (non-dominated on validation error,
  peak memory, model size and MACs) with test error/accuracy and a ``within_bounds`` column
  (all four objectives within their bounds) — :mod:`unas.report.pareto`;
- ``pareto/<id>.json``: each front model's architecture (after pruning), objectives, test
  accuracy and its trained model file (``models/<id>.keras``, written by the worker);
- ``plots/error_vs_<resource>.png`` and ``plots/progress.png`` — :mod:`unas.report.plots`;
- ``tflite/<id>.tflite``, ``deploy/<id>/`` and the TFLM, generated-C and board columns of the
  deployed front models — :mod:`unas.report.tflm` (int8 export, TFLM measurement),
  :mod:`unas.report.deploy` (which models, in what order) and :mod:`unas.report.deploy_model`
  (generated C, bit-exact check, emulated board);
- ``summary.csv``, ``summary.md``, ``plots/summary.png`` — :mod:`unas.report.summary`.

The report is a list of steps (:data:`REPORT_STEPS`, :mod:`unas.report.steps`); each takes the
:class:`ReportContext` (the folder read once, :mod:`unas.report.context`) and returns the files
it wrote.
"""
from unas.report.cli import main
from unas.report.context import ReportContext, load_context
from unas.report.pareto import PARETO_COLUMNS, write_pareto_csv, write_pareto_models
from unas.report.steps import REPORT_STEPS, ReportStep, summary, write_report
from unas.report.summary import summary_table

__all__ = ["PARETO_COLUMNS", "REPORT_STEPS", "ReportContext", "ReportStep", "load_context",
           "main", "summary", "summary_table", "write_pareto_csv", "write_pareto_models",
           "write_report"]
