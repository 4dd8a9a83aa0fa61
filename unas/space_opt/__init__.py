"""TinyNAS search-space optimisation (MCUNet section 3.1): choose the MBConv space's width
multiplier and resolution for an SRAM/Flash budget.

``sweep`` samples architectures per (w, r) and costs them exactly (``fast``), ``rank`` orders the
configurations, ``report`` writes the tables, plots and search YAML, ``boards`` names MCU budgets
and ``cli`` is ``python -m unas.space_opt``.
"""
from unas.space_opt.cli import Budget, Optimisation, main, optimise, run

__all__ = ["Budget", "Optimisation", "main", "optimise", "run"]
