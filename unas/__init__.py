"""unas: μNAS-style multi-objective architecture search for microcontrollers.

Sub-packages: ``unas.resources`` (graph, exact min-peak schedule, size, MACs; no TensorFlow),
``unas.search`` (aging evolution), ``unas.train`` (training, structured pruning),
``unas.export`` (int8 .tflite). TensorFlow is only imported through :mod:`unas.tfenv`.
"""
__version__ = "0.1.0"
