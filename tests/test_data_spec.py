"""DatasetSpec validation: every bad key or value is one ConfigError line naming file and key."""
import pytest
from hypothesis import given, strategies as st

from unas.data import DATASET_NAMES, DatasetSpec, dataset_spec_from_dict, default_validation_split
from unas.errors import ConfigError

WHERE = "experiments/x.yaml"


def test_defaults_round_trip_from_empty_mapping():
    assert dataset_spec_from_dict({}, WHERE) == DatasetSpec()


def test_full_mapping_is_typed():
    spec = dataset_spec_from_dict({
        "name": "chars74k", "data_dir": "/data/c74k", "validation_split": 705, "image_size": [32, 32],
        "binary": True, "augment": False, "max_train": 100, "download": False, "cache_dir": "/tmp/c",
    }, WHERE)
    assert spec.image_size == (32, 32) and spec.binary is True and spec.validation_split == 705
    assert spec.data_dir == "/data/c74k" and spec.max_train == 100 and spec.augment is False


def test_validation_split_defaults_to_the_papers_choice():
    assert dataset_spec_from_dict({"name": "chars74k", "validation_split": None}, WHERE).validation_split is None
    assert default_validation_split(dataset_spec_from_dict({"name": "chars74k"}, WHERE)) == 705
    assert default_validation_split(dataset_spec_from_dict({"name": "mnist"}, WHERE)) == 0.1
    assert default_validation_split(DatasetSpec(name="mnist", validation_split=100)) == 100


def test_class_pair_becomes_tuple():
    assert dataset_spec_from_dict({"name": "cifar10", "binary": [3, 5]}, WHERE).binary == (3, 5)


def test_speech_words_become_tuple():
    spec = dataset_spec_from_dict({"name": "speech_commands", "speech_words": ["yes", "no"],
                                   "mfcc_coefficients": 10}, WHERE)
    assert spec.speech_words == ("yes", "no") and spec.mfcc_coefficients == 10


@pytest.mark.parametrize("data, key", [
    ({"nmae": "mnist"}, "nmae"),
    ({"name": "imagenet"}, "name"),
    ({"validation_split": 1.5}, "validation_split"),
    ({"validation_split": 0}, "validation_split"),
    ({"validation_split": "10%"}, "validation_split"),
    ({"validation_split": True}, "validation_split"),
    ({"image_size": [32]}, "image_size"),
    ({"name": "mnist", "image_size": [32, 0]}, "image_size"),
    ({"name": "digits", "image_size": [16, 16]}, "image_size"),
    ({"binary": "yes"}, "binary"),
    ({"binary": [1, 1]}, "binary"),
    ({"name": "cifar10", "binary": [1, 10]}, "binary"),
    ({"name": "speech_commands", "binary": True}, "binary"),
    ({"name": "speech_commands", "validation_split": 0.1}, "validation_split"),
    ({"augment": 1}, "augment"),
    ({"max_train": 0}, "max_train"),
    ({"max_train": 2.5}, "max_train"),
    ({"download": "no"}, "download"),
    ({"data_dir": 3}, "data_dir"),
    ({"data_dir": ""}, "data_dir"),
    ({"speech_words": []}, "speech_words"),
    ({"speech_words": ["yes", "yes"]}, "speech_words"),
    ({"mfcc_coefficients": 0}, "mfcc_coefficients"),
])
def test_bad_values_raise_one_line_naming_file_and_key(data, key):
    with pytest.raises(ConfigError) as info:
        dataset_spec_from_dict(data, WHERE)
    message = str(info.value)
    assert message.startswith(f"{WHERE}: dataset.{key}: expected ")
    assert ", got " in message and "\n" not in message


def test_non_mapping_is_rejected():
    with pytest.raises(ConfigError, match=r"^experiments/x.yaml: dataset: expected a mapping"):
        dataset_spec_from_dict(["mnist"], WHERE)


@given(st.sampled_from(DATASET_NAMES), st.floats(min_value=1e-3, max_value=0.999))
def test_any_name_with_a_fraction_is_accepted(name, fraction):
    data = {"name": name} if name == "speech_commands" else {"name": name, "validation_split": fraction}
    spec = dataset_spec_from_dict(data, WHERE)
    assert spec.name == name
