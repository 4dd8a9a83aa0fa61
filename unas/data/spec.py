"""`DatasetSpec`: which dataset to load and how, plus its strict validation from a YAML mapping."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from unas.errors import ConfigError

DATASET_NAMES = ("digits", "mnist", "fashion_mnist", "cifar10", "chars74k", "speech_commands")

# Classes of the full (non-binary) image datasets.
NUM_CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10, "chars74k": 62}

# The ten keywords of the Speech Commands task used by μNAS (after the TensorFlow example).
DEFAULT_SPEECH_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


@dataclass(frozen=True)
class DatasetSpec:
    """What to load: the dataset, where from, and the preprocessing options of μNAS (Table 4).

    - ``name``: one of ``DATASET_NAMES``.
    - ``data_dir``: folder with the dataset files (``None``: the dataset's default places, see
      docs/data.md).
    - ``validation_split``: the part of the *training* data held out for the search objective:
      a fraction in (0, 1) or a number of examples (int >= 1); ``None``: μNAS's choice for the
      dataset (`default_validation_split`: 705 images for Chars74K, 10 % otherwise). Speech
      Commands uses its own ``validation_list.txt`` instead.
    - ``image_size``: optional ``(h, w)`` resize of image datasets (Chars74K: default 48x48,
      32x32 for the binary variant, as in μNAS).
    - ``binary``: ``False``; ``True`` for μNAS's two-class variant (classes split into a lower and an
      upper half: label 1 = lower half); or a pair ``(a, b)`` keeping only classes a (→ 0) and b (→ 1).
    - ``augment``: whether the trainer should apply ``augment_fn(spec, rng)`` to the training set.
    - ``max_train``: optional cap on the number of training examples (a random subset) for quick runs.
    - ``download``: whether a missing MNIST / Fashion-MNIST / CIFAR-10 may be fetched through Keras.
    - ``speech_words``: the keyword classes of Speech Commands (plus ``_silence_`` and ``_unknown_``).
    - ``mfcc_coefficients``: MFCC coefficients per 10 ms frame (40 as in the μNAS code).
    - ``cache_dir``: where computed features are cached (default: ``data_dir``/.unas_cache).

    >>> default_validation_split(DatasetSpec(name="chars74k"))
    705
    """

    name: str = "digits"
    data_dir: str | None = None
    validation_split: float | int | None = None
    image_size: tuple[int, int] | None = None
    binary: bool | tuple[int, int] = False
    augment: bool = True
    max_train: int | None = None
    download: bool = True
    speech_words: tuple[str, ...] = DEFAULT_SPEECH_WORDS
    mfcc_coefficients: int = 40
    cache_dir: str | None = None


# μNAS's validation sizes: Chars74K is split 5000 / 705 / 2000 (Table 4), the others hold out 10 %.
DEFAULT_VALIDATION_SPLIT: dict[str, float | int] = {"chars74k": 705}


def default_validation_split(spec: DatasetSpec) -> float | int:
    """``spec.validation_split``, or μNAS's value for the dataset when it is None."""
    if spec.validation_split is not None:
        return spec.validation_split
    return DEFAULT_VALIDATION_SPLIT.get(spec.name, 0.1)


def _fail(where: str, key: str, expected: str, got: Any) -> ConfigError:
    return ConfigError(f"{where}: dataset.{key}: expected {expected}, got {got!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_str(where: str, key: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise _fail(where, key, "a non-empty path string or null", value)


def _validation_split(where: str, value: Any) -> float | int | None:
    if value is None or _is_int(value) and value >= 1:
        return value
    if isinstance(value, float) and 0.0 < value < 1.0:
        return value
    raise _fail(where, "validation_split", "a fraction in (0, 1), a number of examples >= 1 or null", value)


def _image_size(where: str, value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) and v >= 1 for v in value):
        return (int(value[0]), int(value[1]))
    raise _fail(where, "image_size", "null or [height, width] with integers >= 1", value)


def _binary(where: str, value: Any) -> bool | tuple[int, int]:
    if isinstance(value, bool):
        return value
    if (isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) and v >= 0 for v in value)
            and value[0] != value[1]):
        return (int(value[0]), int(value[1]))
    raise _fail(where, "binary", "true, false or a pair of two different class indices [a, b]", value)


def _bool(where: str, key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _fail(where, key, "true or false", value)


def _optional_positive_int(where: str, key: str, value: Any) -> int | None:
    if value is None or (_is_int(value) and value >= 1):
        return value
    raise _fail(where, key, "null or an integer >= 1", value)


def _words(where: str, value: Any) -> tuple[str, ...]:
    if (isinstance(value, (list, tuple)) and value and all(isinstance(w, str) and w for w in value)
            and len(set(value)) == len(value)):
        return tuple(value)
    raise _fail(where, "speech_words", "a non-empty list of distinct words", value)


def dataset_spec_from_dict(data: dict, where: str) -> DatasetSpec:
    """Build a `DatasetSpec` from the ``dataset:`` mapping of a YAML config, checking every key.

    Unknown keys and wrong types or values raise `unas.errors.ConfigError` with one line naming
    ``where`` (the YAML file) and the key.

    >>> dataset_spec_from_dict({"name": "mnist", "validation_split": 0.1}, "x.yaml").name
    'mnist'
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: dataset: expected a mapping of dataset options, got {data!r}")
    known = [f.name for f in fields(DatasetSpec)]
    for key in data:
        if key not in known:
            raise _fail(where, str(key), "one of the keys " + ", ".join(known), key)
    name = data.get("name", DatasetSpec.name)
    if name not in DATASET_NAMES:
        raise _fail(where, "name", "one of " + ", ".join(DATASET_NAMES), name)
    if name == "speech_commands" and data.get("validation_split") is not None:
        raise _fail(where, "validation_split", "no validation_split for speech_commands (its "
                    "validation_list.txt is the validation set)", data["validation_split"])
    if name in ("speech_commands", "digits") and data.get("image_size") is not None:
        raise _fail(where, "image_size", f"null for {name} (its input shape is fixed)", data["image_size"])
    binary = _binary(where, data.get("binary", False))
    if name == "speech_commands" and binary is not False:
        raise _fail(where, "binary", "false for speech_commands", data["binary"])
    if isinstance(binary, tuple) and max(binary) >= NUM_CLASSES[name]:
        raise _fail(where, "binary", f"class indices below {NUM_CLASSES[name]} for {name}", data["binary"])
    mfcc = data.get("mfcc_coefficients", DatasetSpec.mfcc_coefficients)
    if not (_is_int(mfcc) and 1 <= mfcc <= 40):
        raise _fail(where, "mfcc_coefficients", "an integer in [1, 40] (40 mel filterbank channels)", mfcc)
    return DatasetSpec(
        name=name,
        data_dir=_optional_str(where, "data_dir", data.get("data_dir")),
        validation_split=_validation_split(where, data.get("validation_split")),
        image_size=_image_size(where, data.get("image_size")),
        binary=binary,
        augment=_bool(where, "augment", data.get("augment", DatasetSpec.augment)),
        max_train=_optional_positive_int(where, "max_train", data.get("max_train")),
        download=_bool(where, "download", data.get("download", DatasetSpec.download)),
        speech_words=_words(where, data.get("speech_words", DatasetSpec.speech_words)),
        mfcc_coefficients=mfcc,
        cache_dir=_optional_str(where, "cache_dir", data.get("cache_dir")),
    )
