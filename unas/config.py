"""Experiment configuration: one YAML file → typed, validated dataclasses.

Every key is checked up front; a wrong key, type or value raises :class:`unas.errors.ConfigError`
with one line naming the file, the key path and what was expected::

    experiments/x.yaml: search.population_size: expected an integer >= 1, got 'ten'

The experiments in ``experiments/`` are such files (``load_config("experiments/digits.yaml")``);
a smallest one, in a temporary folder, with every section left out that has defaults:

>>> import tempfile
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "x.yaml"
>>> _ = path.write_text('''
... dataset: {name: digits}
... search_space: {name: cnn}
... objectives: {error: 0.15, peak_memory_bytes: 800, model_size_bytes: 4000, macs: 30000}
... search: {population_size: 30}
... ''')
>>> load_config(path).search.population_size
30
>>> _ = path.write_text(path.read_text().replace("30}", "ten}"))
>>> load_config(path)                                   # doctest: +ELLIPSIS
Traceback (most recent call last):
unas.errors.ConfigError: .../x.yaml: search.population_size: expected an integer >= 1, got 'ten'

The dataset section is handed to :func:`unas.data.dataset_spec_from_dict` and the search-space
bounds to :func:`search_spaces.get_space`, so their own checks run when the config is loaded.
This module imports no TensorFlow.
"""
from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from unas.errors import ConfigError, UnasError
from unas.resources.engine import DEFAULT_ENGINE, ENGINES


def _meta(**constraints: Any) -> dict[str, Any]:
    return {"constraints": constraints}


@dataclass(frozen=True)
class SearchSpaceConfig:
    """Which search space to explore and its bounds (keyword arguments of its constructor)."""

    name: str = "cnn"
    bounds: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectiveBounds:
    """Soft upper bounds b_i of the four objectives (scalarisation scale and "within bounds")."""

    error: float = field(metadata=_meta(gt=0.0, le=1.0))
    peak_memory_bytes: int = field(metadata=_meta(ge=1))
    model_size_bytes: int = field(metadata=_meta(ge=1))
    macs: int = field(metadata=_meta(ge=1))

    def as_tuple(self) -> tuple[float, float, float, float]:
        """The bounds in :data:`unas.search.objectives.OBJECTIVE_NAMES` order."""
        return (float(self.error), float(self.peak_memory_bytes), float(self.model_size_bytes),
                float(self.macs))


@dataclass(frozen=True)
class SearchConfig:
    """Aging evolution (or random search) settings; defaults are μNAS's."""

    algorithm: Literal["aging", "random"] = "aging"
    population_size: int = field(default=100, metadata=_meta(ge=1))
    sample_size: int = field(default=25, metadata=_meta(ge=1))
    initial_population: int = field(default=100, metadata=_meta(ge=1))
    rounds: int = field(default=2000, metadata=_meta(ge=0))
    seed: int = field(default=0, metadata=_meta(ge=0))
    objective_cap: float = field(default=10.0, metadata=_meta(gt=0.0))
    sparsity_mutation_std: float = field(default=0.05, metadata=_meta(ge=0.0))


@dataclass(frozen=True)
class LearningRateStep:
    """From epoch ``epoch`` (0-based) on, train with ``learning_rate``."""

    epoch: int = field(metadata=_meta(ge=1))
    learning_rate: float = field(metadata=_meta(gt=0.0))


@dataclass(frozen=True)
class TrainingConfig:
    """How every candidate is trained (Table 4 of the μNAS paper). Augmentation is switched by
    ``dataset.augment`` (the dataset owns its augmentation, :func:`unas.data.augment_fn`)."""

    optimizer: Literal["sgdw", "adamw"] = "sgdw"
    learning_rate: float = field(default=0.01, metadata=_meta(gt=0.0))
    lr_steps: tuple[LearningRateStep, ...] = ()
    momentum: float = field(default=0.9, metadata=_meta(ge=0.0, lt=1.0))
    weight_decay: float = field(default=1e-4, metadata=_meta(ge=0.0))
    batch_size: int = field(default=128, metadata=_meta(ge=1))
    epochs: int = field(default=30, metadata=_meta(ge=1))
    dropout: float = field(default=0.0, metadata=_meta(ge=0.0, lt=1.0))
    batch_norm_momentum: float | None = field(default=None, metadata=_meta(gt=0.0, lt=1.0))


@dataclass(frozen=True)
class PruningConfig:
    """Structured pruning during training (off by default); target drawn in ``target_sparsity``."""

    enabled: bool = False
    target_sparsity: tuple[float, float] = field(default=(0.05, 0.8),
                                                 metadata=_meta(ge=0.0, lt=1.0))
    start_epoch: int = field(default=3, metadata=_meta(ge=0))
    end_epoch: int = field(default=18, metadata=_meta(ge=1))


@dataclass(frozen=True)
class TargetConfig:
    """Which inference engine's memory model defines peak memory."""

    engine: Literal[ENGINES] = DEFAULT_ENGINE  # type: ignore[valid-type]  # one list: resources.engine


@dataclass(frozen=True)
class ExecutionConfig:
    """Where candidates are trained. ``serial``: one child process, recycled every
    ``recycle_after`` candidates; a candidate running past ``candidate_timeout_s`` fails.
    ``ray``: ``num_workers`` Ray actors (default: one per 4 cores) with ``cpus_per_worker``
    CPUs each (default: an even share); ``address`` ``null`` starts a local Ray, else the
    cluster to join (``auto``, ``host:port``, ``ray://host:port``); see ``docs/ray.md``."""

    backend: Literal["serial", "ray"] = "serial"
    recycle_after: int = field(default=8, metadata=_meta(ge=1))
    candidate_timeout_s: float | None = field(default=None, metadata=_meta(gt=0.0))
    num_workers: int | None = field(default=None, metadata=_meta(ge=1))
    address: str | None = None
    cpus_per_worker: float | None = field(default=None, metadata=_meta(gt=0.0))
    gpus_per_worker: float = field(default=0.0, metadata=_meta(ge=0.0))


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment. ``dataset`` is the :class:`unas.data.DatasetSpec` built from the
    YAML ``dataset`` mapping; ``raw`` is the validated YAML mapping itself (for resume checks)."""

    objectives: ObjectiveBounds
    # Built by unas.data.dataset_spec_from_dict, not _Checker; still a key of the YAML file.
    dataset: Any = field(default=None, metadata={"internal": True, "yaml_key": True})
    search_space: SearchSpaceConfig = field(default_factory=SearchSpaceConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    output_dir: str = ""
    source: str = field(default="", metadata={"internal": True})
    raw: dict[str, Any] = field(default_factory=dict, metadata={"internal": True}, compare=False)


# ---------------------------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------------------------

_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class _Checker:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: str, expected: str, got: Any) -> typing.NoReturn:
        raise ConfigError(f"{self.where}: {path}: expected {expected}, got {got!r}")

    # -- scalars ------------------------------------------------------------------------------
    def integer(self, value: Any, path: str, cons: dict[str, Any]) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                self.fail(path, "an integer" + _describe(cons), value)
        self._range(value, path, cons, "an integer")
        return int(value)

    def real(self, value: Any, path: str, cons: dict[str, Any]) -> float:
        if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-4 as text
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(path, "a number" + _describe(cons), value)
        self._range(value, path, cons, "a number")
        return float(value)

    def _range(self, value: float, path: str, cons: dict[str, Any], kind: str) -> None:
        ok = all([
            "ge" not in cons or value >= cons["ge"], "gt" not in cons or value > cons["gt"],
            "le" not in cons or value <= cons["le"], "lt" not in cons or value < cons["lt"]])
        if not ok:
            self.fail(path, kind + _describe(cons), value)

    # -- generic -------------------------------------------------------------------------------
    def value(self, tp: Any, value: Any, path: str, cons: dict[str, Any]) -> Any:
        origin = typing.get_origin(tp)
        if dataclasses.is_dataclass(tp):
            return self.dataclass(tp, value, path)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if value is None:
                return None
            return self.value(args[0], value, path, cons)
        if origin is Literal:
            choices = typing.get_args(tp)
            if value not in choices:
                self.fail(path, "one of " + ", ".join(map(str, choices)), value)
            return value
        if tp is bool:
            if not isinstance(value, bool):
                self.fail(path, "true or false", value)
            return value
        if tp is int:
            return self.integer(value, path, cons)
        if tp is float:
            return self.real(value, path, cons)
        if tp is str:
            if not isinstance(value, str) or not value:
                self.fail(path, "a non-empty string", value)
            return value
        if origin is dict:
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                self.fail(path, "a mapping", value)
            return dict(value)
        if origin is tuple:
            args = typing.get_args(tp)
            if not isinstance(value, (list, tuple)):
                self.fail(path, "a list", value)
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(self.value(args[0], v, f"{path}[{i}]", cons)
                             for i, v in enumerate(value))
            if len(value) != len(args):
                self.fail(path, f"a list of {len(args)} items", value)
            return tuple(self.value(a, v, f"{path}[{i}]", cons)
                         for i, (a, v) in enumerate(zip(args, value)))
        raise TypeError(f"config field type {tp!r} is not supported")  # pragma: no cover

    def dataclass(self, cls: type, value: Any, path: str) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(path or "(top level)", "a mapping", value)
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
        known = [f.name for f in dataclasses.fields(cls)
                 if not f.metadata.get("internal") or f.metadata.get("yaml_key")]
        for key in value:
            if key not in fields:
                self.fail(_join(path, str(key)), "no such key; known keys: " + ", ".join(known),
                          value[key])
        kwargs: dict[str, Any] = {}
        for name, f in fields.items():
            sub = _join(path, name)
            if name not in value:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise ConfigError(f"{self.where}: {sub}: required key is missing")
                continue
            kwargs[name] = self.value(hints[name], value[name], sub,
                                      dict(f.metadata.get("constraints", {})))
        return cls(**kwargs)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(cons: dict[str, Any]) -> str:
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    return "".join(f" {words[k]} {v}" for k, v in cons.items() if k in words)


def parse_config(data: Any, where: str = "<config>", *, check_dataset: bool = True,
                 check_space: bool = True) -> ExperimentConfig:
    """Validate an already-decoded YAML mapping; ``where`` names it in error messages."""
    checker = _Checker(where)
    if not isinstance(data, dict):
        checker.fail("(top level)", "a mapping of sections", data)
    dataset_raw = data.get("dataset")
    if not isinstance(dataset_raw, dict):
        if "dataset" not in data:
            raise ConfigError(f"{where}: dataset: required key is missing")
        checker.fail("dataset", "a mapping", dataset_raw)
    cfg = checker.dataclass(ExperimentConfig, {k: v for k, v in data.items() if k != "dataset"}, "")
    dataset = dict(dataset_raw)
    if check_dataset:
        from unas.data import dataset_spec_from_dict

        dataset = dataset_spec_from_dict(dict(dataset_raw), where)
    output_dir = cfg.output_dir or str(Path("results") / Path(where).stem)
    cfg = dataclasses.replace(cfg, dataset=dataset, output_dir=output_dir, source=where,
                              raw=_plain(data))
    _cross_check(cfg, checker, check_space)
    return cfg


PRUNABLE_SPACES = ("cnn", "mlp")  # spaces whose architectures unas.train.pruning can shrink


def _cross_check(cfg: ExperimentConfig, checker: _Checker, check_space: bool) -> None:
    s, p, t = cfg.search, cfg.pruning, cfg.training
    if s.algorithm == "aging" and s.sample_size > s.population_size:
        checker.fail("search.sample_size", f"an integer <= population_size ({s.population_size})",
                     s.sample_size)
    lo, hi = p.target_sparsity
    if lo > hi:
        checker.fail("pruning.target_sparsity", "[low, high] with low <= high", list(p.target_sparsity))
    if p.enabled:
        if p.start_epoch >= p.end_epoch:
            checker.fail("pruning.end_epoch", f"an integer > start_epoch ({p.start_epoch})",
                         p.end_epoch)
        if p.end_epoch > t.epochs:
            checker.fail("pruning.end_epoch", f"an integer <= training.epochs ({t.epochs})",
                         p.end_epoch)
        if cfg.search_space.name not in PRUNABLE_SPACES:
            checker.fail("pruning.enabled", f"false: structured pruning supports the "
                         f"{' and '.join(PRUNABLE_SPACES)} spaces, not {cfg.search_space.name!r}",
                         True)
    epochs = [step.epoch for step in t.lr_steps]
    if epochs != sorted(set(epochs)):
        checker.fail("training.lr_steps", "steps in strictly increasing epoch order", epochs)
    if epochs and epochs[-1] >= t.epochs:
        checker.fail(f"training.lr_steps[{len(epochs) - 1}].epoch",
                     f"an integer < training.epochs ({t.epochs})", epochs[-1])
    if check_space:
        from search_spaces import UnknownBoundError, get_space

        try:
            get_space(cfg.search_space.name, **cfg.search_space.bounds)
        except UnknownBoundError as err:  # the space's own list of bounds, named as a YAML key
            checker.fail(f"search_space.bounds.{err.key}", f"a bound of the {err.space} space; "
                         f"known bounds: {', '.join(err.known)}",
                         cfg.search_space.bounds[err.key])
        except ConfigError as err:
            raise ConfigError(f"{checker.where}: search_space: {err}") from None
        except (TypeError, ValueError, UnasError) as err:
            raise ConfigError(f"{checker.where}: search_space.bounds: {err}") from None


def _plain(value: Any) -> Any:
    """A JSON-able copy of decoded YAML (tuples → lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _duplicate_key(node: yaml.Node, path: str = "", seen_nodes: set[int] | None = None
                   ) -> tuple[str, int, int] | None:
    """(key path, line, first line) of the first key given twice in one mapping of the composed
    YAML ``node`` (PyYAML would keep the last silently); keys merged in with ``<<`` may still be
    overridden, as YAML allows."""
    seen_nodes = set() if seen_nodes is None else seen_nodes
    if id(node) in seen_nodes:  # an alias of a node already walked
        return None
    seen_nodes.add(id(node))
    children: list[tuple[str, yaml.Node]] = []
    if isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key, line = _join(path, key_node.value), key_node.start_mark.line + 1
                if key in lines:
                    return key, line, lines[key]
                lines[key] = line
                children.append((key, value_node))
    elif isinstance(node, yaml.SequenceNode):
        children = [(f"{path}[{i}]", item) for i, item in enumerate(node.value)]
    for child_path, child in children:
        found = _duplicate_key(child, child_path, seen_nodes)
        if found:
            return found
    return None


def load_config(path: str | Path, **checks: bool) -> ExperimentConfig:
    """Read and validate the YAML experiment file at ``path``."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file ({err.strerror})") from None
    except UnicodeDecodeError as err:
        line = err.object.count(b"\n", 0, err.start) + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} "
                          f"at line {line}); save the config file as UTF-8") from None
    try:
        duplicate = _duplicate_key(yaml.compose(text, Loader=yaml.SafeLoader))
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{line}") from None
    if duplicate:
        key, line, first = duplicate
        raise ConfigError(f"{path}: {key}: given twice (line {first} and line {line}); "
                          "give each key once") from None
    return parse_config(data, str(path), **checks)
