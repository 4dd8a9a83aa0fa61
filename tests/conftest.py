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
