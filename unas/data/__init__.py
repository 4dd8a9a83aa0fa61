"""Dataset loaders: a `DatasetSpec` (from the config) → `Splits` (train / validation / test arrays).

TensorFlow is only imported by `augment_fn`'s map functions and the Speech Commands features::

    import numpy as np
    from unas.data import DatasetSpec, load_dataset
    splits = load_dataset(DatasetSpec(name="digits"), np.random.default_rng(0))
"""
from unas.data.augment import augment_fn
from unas.data.loader import load_dataset
from unas.data.spec import (DATASET_NAMES, DEFAULT_SPEECH_WORDS, DatasetSpec, dataset_spec_from_dict,
                            default_validation_split)
from unas.data.splits import Splits

__all__ = ["DATASET_NAMES", "DEFAULT_SPEECH_WORDS", "DatasetSpec", "Splits", "augment_fn",
           "dataset_spec_from_dict", "default_validation_split", "load_dataset"]
