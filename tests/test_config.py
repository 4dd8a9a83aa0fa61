"""Experiment config: strict validation with one-line errors, and every shipped config loads."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from unas.config import ExperimentConfig, LearningRateStep, load_config, parse_config
from unas.errors import ConfigError

EXPERIMENTS = sorted(Path(__file__).resolve().parents[1].glob("experiments/*.yaml"))
MINIMAL = {"dataset": {"name": "digits"},
           "objectives": {"error": 0.1, "peak_memory_bytes": 1000, "model_size_bytes": 2000,
                          "macs": 30000}}


def with_(path: str, value, base=MINIMAL) -> dict:
    """A copy of ``base`` with the dotted ``path`` set to ``value``."""
    data = yaml.safe_load(yaml.safe_dump(base))
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return data


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    cfg = load_config(path)
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.output_dir and cfg.source == str(path)


def test_shipped_configs_cover_appendix_a():
    names = {p.stem for p in EXPERIMENTS}
    assert {"cifar", "cifar_binary", "mnist", "fashion_mnist", "chars74k", "speech_commands",
            "digits"} <= names


def test_mnist_config_matches_tables_3_and_4():
    cfg = load_config(Path(__file__).resolve().parents[1] / "experiments/mnist.yaml")
    assert cfg.objectives.as_tuple() == (0.035, 2500, 4500, 30_000_000)
    assert (cfg.training.optimizer, cfg.training.learning_rate, cfg.training.weight_decay,
            cfg.training.epochs, cfg.training.batch_size) == ("sgdw", 0.005, 4e-5, 30, 128)
    assert (cfg.pruning.target_sparsity, cfg.pruning.start_epoch, cfg.pruning.end_epoch) == (
        (0.05, 0.8), 3, 18)


def test_defaults_are_the_papers():
    cfg = parse_config(MINIMAL, "x.yaml")
    s = cfg.search
    assert (s.algorithm, s.population_size, s.sample_size, s.initial_population, s.rounds) == (
        "aging", 100, 25, 100, 2000)
    assert not cfg.pruning.enabled and cfg.pruning.target_sparsity == (0.05, 0.8)
    assert cfg.target.engine == "codegen" and cfg.execution.backend == "serial"
    assert cfg.output_dir == "results/x"


def test_error_names_file_key_and_expectation():
    with pytest.raises(ConfigError) as err:
        parse_config(with_("search.population_size", "ten"), "experiments/x.yaml")
    assert str(err.value) == ("experiments/x.yaml: search.population_size: expected an integer "
                              ">= 1, got 'ten'")


@pytest.mark.parametrize("path,value,fragment", [
    ("search.algorithm", "evolution", "search.algorithm: expected one of aging, random"),
    ("search.rounds", -1, "search.rounds: expected an integer >= 0"),
    ("search.seed", True, "search.seed: expected an integer"),
    ("objectives.error", 0.0, "objectives.error: expected a number > 0.0"),
    ("objectives.macs", "lots", "objectives.macs: expected an integer"),
    ("training.optimizer", "adam", "training.optimizer: expected one of sgdw, adamw"),
    ("training.momentum", 1.5, "training.momentum: expected a number >= 0.0 < 1.0"),
    ("training.lr_steps", {"35": 0.1}, "training.lr_steps: expected a list"),
    ("training.lr_steps", [{"epoch": 3}], "training.lr_steps[0].learning_rate: required key"),
    ("pruning.target_sparsity", [0.5], "pruning.target_sparsity: expected a list of 2 items"),
    ("pruning.target_sparsity", [0.1, 1.2], "pruning.target_sparsity[1]: expected a number"),
    ("pruning.enabled", "yes", "pruning.enabled: expected true or false"),
    ("target.engine", "tflite", "target.engine: expected one of codegen, tflm"),
    ("execution.backend", "slurm", "execution.backend: expected one of serial"),
    ("execution.recycle_after", 0, "execution.recycle_after: expected an integer >= 1"),
    ("search.populaton_size", 10, "search.populaton_size: expected no such key"),
    ("extras", 1, "extras: expected no such key"),
    ("search", [1, 2], "search: expected a mapping"),
])
def test_wrong_values_are_one_line_errors(path, value, fragment):
    with pytest.raises(ConfigError) as err:
        parse_config(with_(path, value), "x.yaml")
    message = str(err.value)
    assert message.startswith("x.yaml: ") and fragment in message and "\n" not in message


def test_missing_required_section():
    data = {k: v for k, v in MINIMAL.items() if k != "objectives"}
    with pytest.raises(ConfigError, match=r"^x.yaml: objectives: required key is missing$"):
        parse_config(data, "x.yaml")
    with pytest.raises(ConfigError, match="dataset: required key is missing"):
        parse_config({"objectives": MINIMAL["objectives"]}, "x.yaml")


def test_cross_field_checks():
    bad_sample = with_("search.sample_size", 30, with_("search.population_size", 20))
    with pytest.raises(ConfigError, match="search.sample_size: expected an integer <= population_size"):
        parse_config(bad_sample, "x.yaml")
    steps = [{"epoch": 10, "learning_rate": 0.1}, {"epoch": 5, "learning_rate": 0.01}]
    with pytest.raises(ConfigError, match="training.lr_steps: expected steps in strictly increasing"):
        parse_config(with_("training.lr_steps", steps), "x.yaml")
    late = with_("training.lr_steps", [{"epoch": 30, "learning_rate": 0.1}])
    with pytest.raises(ConfigError, match=r"training.lr_steps\[0\].epoch: expected an integer < training.epochs"):
        parse_config(late, "x.yaml")
    with pytest.raises(ConfigError, match="pruning.target_sparsity: expected \\[low, high\\]"):
        parse_config(with_("pruning.target_sparsity", [0.6, 0.2]), "x.yaml")


def test_pruning_checks():
    on = with_("pruning.enabled", True)
    assert parse_config(on, "x.yaml").pruning.enabled
    with pytest.raises(ConfigError, match=r"^x.yaml: pruning.enabled: expected false: structured "
                                          r"pruning supports the cnn and mlp spaces, not 'mbconv'"):
        parse_config(with_("search_space", {"name": "mbconv"}, on), "x.yaml")
    order = with_("pruning.end_epoch", 2, on)
    with pytest.raises(ConfigError, match="pruning.end_epoch: expected an integer > start_epoch"):
        parse_config(order, "x.yaml")
    with pytest.raises(ConfigError, match=r"pruning.target_sparsity\[1\]: expected a number >= 0.0 < 1.0"):
        parse_config(with_("pruning.target_sparsity", [0.5, 1.0], on), "x.yaml")


def test_dataset_and_space_sections_are_checked_by_their_owners():
    with pytest.raises(ConfigError, match=r"^x.yaml: dataset.name"):
        parse_config(with_("dataset.name", "imagenet"), "x.yaml")
    with pytest.raises(ConfigError, match=r"^x.yaml: search_space"):
        parse_config(with_("search_space.bounds", {"max_blocks": "many"}), "x.yaml")
    with pytest.raises(ConfigError, match=r"^x.yaml: search_space"):
        parse_config(with_("search_space.bounds", {"no_such_bound": 3}), "x.yaml")
    with pytest.raises(ConfigError, match=r"^x.yaml: search_space"):
        parse_config(with_("search_space.name", "transformer"), "x.yaml")


def test_yaml_text_problems(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("search: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML at line"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"missing.yaml: cannot read the config file"):
        load_config(tmp_path / "missing.yaml")
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(MINIMAL) + "training:\n  weight_decay: 1e-4\n"
                    "  lr_steps: [{epoch: 5, learning_rate: 0.001}]\n")
    cfg = load_config(good)
    assert cfg.training.weight_decay == pytest.approx(1e-4)  # YAML 1.1 reads 1e-4 as text
    assert cfg.training.lr_steps == (LearningRateStep(5, 0.001),)


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.integers(-5, 500), st.floats(allow_nan=True), st.text(max_size=4), st.booleans()))
def test_population_size_accepts_exactly_positive_integers(value):
    data = with_("search.sample_size", 1, with_("search.population_size", value))
    valid = (isinstance(value, int) and not isinstance(value, bool) and value >= 1) or (
        isinstance(value, float) and value.is_integer() and value >= 1)
    if valid:
        assert parse_config(data, "x.yaml").search.population_size == int(value)
    else:
        with pytest.raises(ConfigError, match="search.population_size"):
            parse_config(data, "x.yaml")


def test_a_config_that_is_not_utf8_is_a_one_line_error(tmp_path):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(yaml.safe_dump(MINIMAL).encode() + "# café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.yaml: not UTF-8 text \(byte 0xe9 at line \d+\)"):
        load_config(latin1)


def test_a_key_given_twice_is_refused_with_its_lines(tmp_path):
    twice = tmp_path / "twice.yaml"
    twice.write_text(yaml.safe_dump(MINIMAL) + "search:\n  seed: 1\n  rounds: 3\n  seed: 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(twice)
    lines = twice.read_text().splitlines()
    first, second = [i + 1 for i, line in enumerate(lines) if line.startswith("  seed")]
    assert str(err.value) == (f"{twice}: search.seed: given twice (line {first} and line {second}); "
                              "give each key once")
    top = tmp_path / "top.yaml"
    top.write_text(yaml.safe_dump(MINIMAL) + "dataset: {name: mnist}\n")
    with pytest.raises(ConfigError, match=r"top.yaml: dataset: given twice"):
        load_config(top)
    merged = tmp_path / "merged.yaml"  # overriding a key merged in with << is plain YAML
    merged.write_text("objectives: &o {error: 0.1, peak_memory_bytes: 1000, model_size_bytes: 2000,"
                      " macs: 30000}\ndataset: {name: digits}\noutput_dir: x\n"
                      "execution: {<<: {backend: serial, recycle_after: 2}, recycle_after: 3}\n")
    assert load_config(merged).execution.recycle_after == 3


def test_unknown_key_lists_every_top_level_key_including_dataset():
    with pytest.raises(ConfigError) as err:
        parse_config({**MINIMAL, "datset": {"name": "digits"}}, "x.yaml")
    known = str(err.value).split("known keys: ")[1]
    assert "dataset" in known.split(", ") and "objectives" in known


def test_unknown_search_space_bound_names_the_key_and_the_known_bounds():
    with pytest.raises(ConfigError) as err:
        parse_config(with_("search_space.bounds", {"max_block": 3}), "x.yaml")
    message = str(err.value)
    assert message.startswith("x.yaml: search_space.bounds.max_block: expected a bound of the cnn "
                              "space; known bounds: min_blocks, max_blocks,")
    assert "unexpected keyword" not in message and "\n" not in message
    from search_spaces import get_space
    with pytest.raises(ConfigError, match="bounds.width: not a bound of the mbconv space"):
        get_space("mbconv", width=2)
