"""One whole experiment: config → output folder, executor, search loop, progress bar.

>>> from unas.config import load_config                        # doctest: +SKIP
>>> run_experiment(load_config("experiments/digits.yaml"))     # doctest: +SKIP
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from unas.config import ExperimentConfig
from unas.errors import ConfigError, DataError, UnasError
from unas.evaluation import EvaluatorFactory
from unas.files import FolderLock, FolderLockedError, atomic_write_json
from unas.paths import check_output_folder
from unas.search.backends import make_executor
from unas.search.evolution import CHECKPOINT_FILE, CONFIG_SNAPSHOT, AgingEvolution
from unas.search.measure import ResourceMeter

#: The lock file of a search's output folder (:class:`unas.files.FolderLock`: owner's pid and host).
LOCK_FILE = "search.lock"



class OutputInUseError(UnasError):
    """Another search is running in the output folder (the message names the folder and pid)."""


# Keys (or whole sections) that may differ when a search is continued in the same folder.
_RESUMABLE_CHANGES = {("search", "rounds"), ("output_dir",), ("execution",)}


def load_splits(cfg: ExperimentConfig) -> Any:
    """The dataset splits of ``cfg``, loaded with the search's data seed (so every process and
    the report see the same validation split); a `DataError` names the config key to fix
    (``dataset.data_dir``, or ``dataset.name``). A dataset section parsed unchecked (a search
    folder's ``config.json`` read with ``check_dataset=False``) is checked here."""
    from unas.data import dataset_spec_from_dict, load_dataset

    spec = cfg.dataset
    if isinstance(spec, dict):
        spec = dataset_spec_from_dict(dict(spec), cfg.source)
    try:
        return load_dataset(spec, np.random.default_rng(cfg.search.seed))
    except DataError as err:
        data_dir = getattr(spec, "data_dir", None)
        key = f"dataset.data_dir ({data_dir})" if data_dir else f"dataset.name ({spec.name})"
        raise DataError(f"{cfg.source}: {key}: {err}") from None


def dataset_shapes(cfg: ExperimentConfig, splits: Any = None) -> tuple[tuple[int, ...], int]:
    """Input shape and class count of the configured dataset (``splits``, or loaded by
    :func:`load_splits`)."""
    splits = load_splits(cfg) if splits is None else splits
    return tuple(int(d) for d in splits.input_shape), int(splits.num_classes)


def _differences(old: Any, new: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _differences(old.get(k), new.get(k), path + (k,))]
    return [] if old == new else [path]


def prepare_output(cfg: ExperimentConfig, out_dir: Path, resume: bool) -> bool:
    """Create or check ``out_dir``; True if it holds a search to continue."""
    check_output_folder(out_dir, "output folder (output_dir / --out)")
    snapshot = out_dir / CONFIG_SNAPSHOT
    has_search = (out_dir / CHECKPOINT_FILE).exists()
    if resume and not has_search:
        raise ConfigError(f"{out_dir}: --resume: there is no search to resume here "
                          f"(no {CHECKPOINT_FILE})")
    if snapshot.exists():
        old = json.loads(snapshot.read_text())
        changed = [d for d in _differences(old.get("config", {}), cfg.raw)
                   if not any(d[:len(k)] == k for k in _RESUMABLE_CHANGES)]
        if changed:
            key = ".".join(changed[0])
            raise ConfigError(f"{cfg.source}: {key}: differs from the search already in {out_dir} "
                              f"(its {CONFIG_SNAPSHOT}); use another --out to start a new search")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{out_dir}: output folder (output_dir / --out): cannot create it "
                          f"({err.strerror})") from None
    return has_search


def run_experiment(cfg: ExperimentConfig, out_dir: str | Path | None = None, resume: bool = False,
                   evaluator: EvaluatorFactory | None = None, progress: bool = True,
                   splits: Any = None) -> AgingEvolution:
    """Run (or continue) the search ``cfg`` describes; returns the finished search. ``splits``
    are the dataset's if the caller loaded them already (:func:`load_splits`); the search only
    reads their shapes (its workers load their own)."""
    # Absolute: workers on a joined Ray cluster do not run in this process's folder.
    out = Path(out_dir or cfg.output_dir).absolute()
    created = [p for p in (out, *out.parents) if not p.exists()]
    if not out.is_dir():
        prepare_output(cfg, out, resume)  # creates the folder (or says why it cannot)
    # One search per folder at a time (two would interleave their records for good), held until
    # the search ends however it ends; checked before the folder's config, so a second search
    # is told the folder is in use, not that its config differs.
    lock = FolderLock(out, LOCK_FILE, "search")
    try:
        lock.acquire()
    except FolderLockedError as err:
        raise OutputInUseError(str(err)) from None
    except OSError as err:
        raise UnasError(f"{out}: cannot create the lock file {LOCK_FILE} ({err.strerror}); the "
                        "output folder must be writable") from None
    try:
        return _run_locked(cfg, out, resume, evaluator, progress, splits)
    except DataError:
        lock.release()
        _remove_created(created, lock.path)  # a run failing before its first step leaves no folders
        raise
    finally:
        lock.release()


def _remove_created(created: list[Path], lock_file: Path) -> None:
    """Remove the folders this run created (deepest first) while they hold nothing but its
    released lock file."""
    for folder in created:
        if not folder.is_dir():
            continue
        if [p.name for p in folder.iterdir()] == [lock_file.name] and lock_file.parent == folder:
            lock_file.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()


def _run_locked(cfg: ExperimentConfig, out: Path, resume: bool,
                evaluator: EvaluatorFactory | None, progress: bool, splits: Any) -> AgingEvolution:
    prepare_output(cfg, out, resume)
    input_shape, num_classes = dataset_shapes(cfg, splits)
    atomic_write_json(out / CONFIG_SNAPSHOT, {
        "config": cfg.raw, "source": cfg.source, "input_shape": list(input_shape),
        "num_classes": num_classes})
    from search_spaces import get_space

    space = get_space(cfg.search_space.name, **cfg.search_space.bounds)
    meter = ResourceMeter(input_shape, num_classes, cfg.target.engine)
    search = AgingEvolution(space, cfg.search, cfg.objectives, cfg.pruning, meter, out,
                            prune=_pruner(input_shape, num_classes) if cfg.pruning.enabled else None)
    search.load()
    if evaluator is None:
        from unas.train.worker import TrainingEvaluator

        evaluator = TrainingEvaluator(dataset=cfg.dataset, data_seed=cfg.search.seed,
                                      training=cfg.training, pruning=cfg.pruning,
                                      out_dir=str(out))
    executor = make_executor(cfg.execution, evaluator)
    bar = _ProgressBar(search) if progress else None
    try:
        search.run(executor, on_progress=bar.update if bar else None)
    finally:
        executor.close()
        if bar:
            bar.close()
    return search


def _pruner(input_shape: tuple[int, ...], num_classes: int) -> Any:
    """``prune(arch, target)``: the architecture structured pruning will materialise (TF-free)."""
    from unas.train.pruning import pruned_architecture

    def prune(arch: Any, target: float) -> Any:
        return pruned_architecture(arch, tuple(input_shape), int(num_classes), target)

    return prune


class _ProgressBar:
    """tqdm bar on stderr: proposals done out of the total, ETA, best error within the resource
    bounds so far and the size of the Pareto front."""

    def __init__(self, search: AgingEvolution) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=search.total, initial=search.finished, desc="search",
                         unit="cand", dynamic_ncols=True)
        self._seen = search.finished

    def update(self, search: AgingEvolution) -> None:
        if search.finished != self._seen:
            self._bar.update(search.finished - self._seen)
            self._seen = search.finished
            best = search.best_within_resource_bounds()
            self._bar.set_postfix(best_err="-" if best is None else f"{best.objectives.error:.4f}",
                                  front=len(search.front()), refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()
