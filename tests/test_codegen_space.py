"""Random architectures of the μNAS CNN space: generated C is bit-exact with TFLM and its SRAM
(its arena) equals what ``unas.resources.engine`` predicts from the architecture's resource
graph without generating code.

The count is ``UNAS_CODEGEN_SPACE_MODELS`` (default 6, CI-affordable; the benchmark runs 100).
"""
import os
import shutil

import numpy as np
import pytest

from tflm_runtime.tflite_model import parse_tflite, resource_graph
from unas.resources.engine import peak_memory_bytes

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

COUNT = int(os.environ.get("UNAS_CODEGEN_SPACE_MODELS", "6"))
INPUT_SHAPE, CLASSES = (16, 16, 2), 5


@pytest.fixture(scope="module")
def space_models():
    from search_spaces import get_space
    from unas.export.quantize import keras_to_int8_tflite

    space = get_space("cnn", max_blocks=4, max_channels=32, max_units=64)
    rng = np.random.default_rng(99)
    archs, blobs = {}, {}
    for i in range(COUNT):
        arch = space.random_architecture(rng)
        model = arch.build(INPUT_SHAPE, CLASSES)
        for layer in model.layers:  # non-trivial biases and BN statistics
            weights = layer.get_weights()
            if weights:
                layer.set_weights([w + rng.normal(scale=0.1, size=w.shape).astype(w.dtype)
                                   if w.ndim == 1 else w for w in weights])
        blobs[f"arch{i}"] = keras_to_int8_tflite(
            model, rng.normal(size=(16, *INPUT_SHAPE)).astype("float32"))
        archs[f"arch{i}"] = arch
    return archs, blobs


#: (seed, samples) of the random inputs conftest's ``comparisons`` runs ``blobs`` on
COMPARISON_INPUTS = (3, 4)


@pytest.fixture(scope="module")
def blobs(space_models):
    return space_models[1]


def test_random_architectures_bit_exact(comparisons):
    assert {n: c.first_difference for n, c in comparisons.items() if not c.bit_exact} == {}


def test_predicted_sram_equals_generated(space_models, comparisons):
    archs, blobs = space_models
    for name, c in comparisons.items():
        gen = c.generated
        from_arch = peak_memory_bytes(archs[name].resource_graph(INPUT_SHAPE, CLASSES), "codegen")
        from_tflite = peak_memory_bytes(resource_graph(parse_tflite(blobs[name])), "codegen")
        assert gen.arena_bytes == gen.predicted_arena_bytes, name
        assert gen.sram_bytes == from_tflite == from_arch, name
