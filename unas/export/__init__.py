"""Deployment export: int8 post-training quantisation, operator reordering, offline memory plan."""
from unas.export.quantize import keras_to_int8_tflite

__all__ = ["keras_to_int8_tflite"]
