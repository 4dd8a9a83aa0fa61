"""Shared test set-up: TensorFlow quiet and on the CPU, one seeded generator per test."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def kernels_object(tmp_path_factory):
    """The generated code's kernel library (unas_kernels.c) compiled once for the host."""
    from kernel_reference import compile_kernels
    return compile_kernels(tmp_path_factory.mktemp("kernels"))


@pytest.fixture(scope="module")
def comparisons(request, tmp_path_factory):
    """The test module's ``blobs`` fixture (name -> int8 ``.tflite``) through the C code generator,
    built with sanitizers and compared with TFLM byte for byte on random inputs: name ->
    :class:`tflm_runtime.codegen.verify.Comparison`. The module's ``COMPARISON_INPUTS`` is the
    (seed, number of samples) of those inputs."""
    from tflm_runtime.codegen.verify import compare_with_tflm

    seed, samples = request.module.COMPARISON_INPUTS
    blobs = request.getfixturevalue("blobs")
    return compare_with_tflm(blobs, tmp_path_factory.mktemp("comparisons"),
                             np.random.default_rng(seed), samples=samples, sanitize=True)
