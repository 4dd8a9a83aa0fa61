"""The search: aging evolution with random scalarisation, Pareto front, executors, checkpoints.

Imports no TensorFlow: candidates are trained behind an :class:`~unas.search.executor.Executor`
in other processes. Entry point for a whole experiment: :func:`unas.experiment.run_experiment`.
"""
from unas.search.evolution import AgingEvolution, over_bounds, pareto_front
from unas.evaluation import EvalResult, EvalTask
from unas.search.executor import Executor, SerialExecutor
from unas.search.objectives import OBJECTIVE_NAMES, Objectives, normalise, sample_weights, scalarise
from unas.search.pareto import hypervolume, non_dominated
from unas.search.records import EvaluationRecord

__all__ = ["AgingEvolution", "EvalResult", "EvalTask", "EvaluationRecord", "Executor",
           "OBJECTIVE_NAMES", "Objectives", "SerialExecutor", "hypervolume", "non_dominated",
           "normalise", "over_bounds", "pareto_front", "sample_weights", "scalarise"]
