"""Deploy side: run and measure .tflite models in TFLM, generate plain C, run it on an emulated board.

Works on any ``.tflite`` file: it never imports the search or the trainer.
"""
