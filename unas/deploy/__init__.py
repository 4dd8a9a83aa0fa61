"""Deployment flow of a search's Pareto models: int8 ``.tflite`` → generated C checked
bit-exact against TFLM on the host → emulated Cortex-M board, and the end-of-run summary.

As report steps (registered in :data:`unas.report.REPORT_STEPS`): :func:`deploy_report_step`
runs before ``pareto.csv`` is written and adds its columns; :func:`write_summary` writes
``summary.csv``, ``summary.md`` and ``plots/summary.png``; :func:`summary_table` is the table
``python -m unas.run`` and ``python -m unas.report`` print. See docs/deploy_flow.md.
"""
from unas.deploy.model import (
                               DEFAULT_BOARD,
                               DEFAULT_BOARD_SAMPLES,
                               DEFAULT_CHECK_SAMPLES,
                               DEFAULT_CPU,
                               DeployFigures,
                               board_unavailable_reason,
                               deploy_tflite,
)
from unas.deploy.step import DEFAULT_MAX_MODELS, deploy_report_step, select_models
from unas.deploy.summary import (
                               SUMMARY_COLUMNS,
                               format_table,
                               read_summary,
                               summary_rows,
                               summary_table,
                               write_summary,
)

__all__ = ["DEFAULT_BOARD", "DEFAULT_BOARD_SAMPLES", "DEFAULT_CHECK_SAMPLES", "DEFAULT_CPU",
           "DEFAULT_MAX_MODELS", "SUMMARY_COLUMNS", "DeployFigures", "board_unavailable_reason",
           "deploy_report_step", "deploy_tflite", "format_table", "read_summary",
           "select_models", "summary_rows", "summary_table", "write_summary"]
