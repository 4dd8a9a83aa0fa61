"""Training of one candidate: optimiser and step schedule, tf.data pipeline, pruning hook,
evaluation, and the worker-side evaluator the search's executors run.

TensorFlow is imported lazily (inside functions), so importing this package is cheap; the
worker process imports it on its first candidate.
"""
from unas.train.trainer import TrainOutcome, train_candidate
from unas.train.worker import TrainingEvaluator

__all__ = ["TrainOutcome", "TrainingEvaluator", "train_candidate"]
