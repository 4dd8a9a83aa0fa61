"""unas: μNAS-style multi-objective architecture search for microcontrollers.

Where things live (the layers, top to bottom; a module imports only from layers below it):

- entry points: ``unas.run`` (``python -m unas.run``), ``unas.report`` (Pareto table, plots,
  int8 export, generated C and board runs of a search folder), ``unas.space_opt`` (TinyNAS
  search-space optimisation), ``unas.measure`` (one ``.tflite`` in TFLM);
- ``unas.experiment``: one whole search, composing the search loop with the trainer;
- ``unas.search``: aging evolution, scalarisation, Pareto front, executors (no TensorFlow);
- ``unas.train`` (training, structured pruning) and ``unas.export`` (int8 ``.tflite``,
  operator reordering, offline memory plan);
- ``unas.config`` (experiment YAML), ``unas.data`` (datasets), ``unas.evaluation`` (the
  messages between the search and the trainer);
- ``search_spaces`` (architectures, morphisms, Keras builders) and ``tflm_runtime`` (TFLM runner,
  code generator, board) — separate top-level packages;
- ``unas.resources`` (resource graph, exact min-peak schedule, size, MACs; no TensorFlow);
- ``unas.errors``, ``unas.files``, ``unas.tfenv`` (the only place TensorFlow is imported).

The rules are import-linter contracts (``.importlinter``), checked by the tests.
"""
__version__ = "0.1.0"
