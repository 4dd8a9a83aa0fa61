"""Starting or joining Ray for the search, quietly and offline by default.

>>> session = connect_ray(address=None, temp_root="results/digits")   # doctest: +SKIP
>>> session.total_cpus, session.owns_cluster                           # doctest: +SKIP
(2.0, True)
>>> session.close()                                                    # doctest: +SKIP

Without an address a single-node Ray is started inside this process: bound to 127.0.0.1, no
dashboard, no usage statistics, no token authentication, worker output kept in log files under
``<temp dir>/session_*/logs`` instead of being forwarded to the terminal. Its temporary folder
lives under the run's output folder (``<out>/ray``) unless that path is too long for the AF_UNIX
sockets Ray creates in it (107 bytes on Linux); then a short folder under ``/tmp`` is used and a
warning says so. With an address (``auto``, ``host:port`` or ``ray://host:port``) an existing
cluster is joined and the ``unas`` and ``search_spaces`` packages are shipped to its workers.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unas.errors import ConfigError, UnasError

LOG = logging.getLogger("unas.ray")

QUIET_ENVIRONMENT = {
    "RAY_USAGE_STATS_ENABLED": "0",
    # Workers' TensorFlow start-up chatter stays out of their log files too.
    "TF_CPP_MIN_LOG_LEVEL": "2",
}
"""Set for local clusters and joined ones (Ray's processes started from here inherit it)."""

LOCAL_ENVIRONMENT = {
    # With _node_ip_address="127.0.0.1": every Ray server of the local cluster (GCS included)
    # binds to the loopback interface instead of the machine's address.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    # Ray 2.60 turns token authentication on by default and warns about it: a loopback-only
    # cluster owned by this process has no other users.
    "RAY_AUTH_MODE": "disabled",
}
"""Set only when this process starts its own single-node Ray (a joined cluster has its own)."""

# "/session_2026-11-21_06-49-23_677843_<pid up to 7 digits>/sockets/plasma_store.NN"
_SOCKET_SUFFIX_BYTES = len("/session_2026-11-21_06-49-23_677843_4194304/sockets/plasma_store.99")
AF_UNIX_PATH_MAX = 107
"""Longest AF_UNIX socket path on Linux (108 bytes including the terminating NUL)."""

PER_WORKER_CORES = 4
"""Cores one automatically sized worker gets (see :func:`default_num_workers`)."""


class RayStartError(UnasError):
    """Ray could not be started or the cluster could not be joined."""


def default_num_workers(total_cpus: float) -> int:
    """Workers to run when the config does not say: one per :data:`PER_WORKER_CORES` cores,
    at least one (on a 2-core machine: one worker using both cores, see ``docs/ray.md``).

    >>> default_num_workers(2), default_num_workers(8), default_num_workers(64)
    (1, 2, 16)
    """
    return max(1, int(total_cpus) // PER_WORKER_CORES)


def default_cpus_per_worker(total_cpus: float, num_workers: int) -> float:
    """The cores of the cluster shared evenly between ``num_workers`` workers (at least one).

    >>> default_cpus_per_worker(2, 1), default_cpus_per_worker(16, 3), default_cpus_per_worker(2, 4)
    (2.0, 5.0, 1.0)
    """
    return float(max(1, int(total_cpus) // max(1, num_workers)))


def local_cpu_count() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's core count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def socket_safe_temp_dir(preferred: str | Path | None) -> tuple[Path, bool]:
    """``preferred`` (made absolute) if Ray's socket paths inside it fit AF_UNIX's limit, else a
    new short folder under ``/tmp``; the flag says whether the fallback was taken."""
    if preferred is not None:
        path = Path(preferred).absolute()
        if len(str(path).encode()) + _SOCKET_SUFFIX_BYTES <= AF_UNIX_PATH_MAX:
            path.mkdir(parents=True, exist_ok=True)
            return path, False
    return Path(tempfile.mkdtemp(prefix="unas-ray-", dir="/tmp")), preferred is not None


def quiet_environment(local: bool) -> None:
    """Set :data:`QUIET_ENVIRONMENT` (and :data:`LOCAL_ENVIRONMENT` if ``local``) in
    ``os.environ``; values the user already set win. Ray's processes started afterwards
    inherit them."""
    for key, value in {**QUIET_ENVIRONMENT, **(LOCAL_ENVIRONMENT if local else {})}.items():
        os.environ.setdefault(key, value)


def _loopback_only() -> None:
    """Ray reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when it is imported: if it was
    imported before :func:`quiet_environment`, tell this process's copy too."""
    if os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") == "0":
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False


@dataclass
class RaySession:
    """A connection to Ray: ``owns_cluster`` if this process started it (and stops it on
    :meth:`close`); ``temp_dir`` holds the local cluster's sockets and worker logs; ``node_id``
    is this process's Ray node (``""`` through the Ray Client)."""

    total_cpus: float
    owns_cluster: bool
    connected_here: bool
    temp_dir: Path | None
    node_id: str

    def close(self) -> None:
        """Disconnect (and stop the local cluster) if this session connected."""
        if self.connected_here:
            import ray

            ray.shutdown()
            self.connected_here = False


SHIPPED_PACKAGES = ("unas", "search_spaces")
"""The project's packages a joined cluster's workers get with the job."""


def stage_project_code(into: Path) -> Path:
    """Copy :data:`SHIPPED_PACKAGES` (as this process imported them, without byte code) into
    ``into``: the ``working_dir`` shipped to a joined cluster's workers.

    A ``working_dir`` rather than ``py_modules``: Ray puts the search process's current folder
    first on every worker's ``sys.path`` unless the job has a ``working_dir``, so a worker on a
    machine that has an older checkout at that same path would import that one instead of the
    shipped code."""
    import importlib

    for name in SHIPPED_PACKAGES:
        source = Path(importlib.import_module(name).__file__).parent
        shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return into


def connect_ray(address: str | None, temp_root: str | Path | None = None,
                num_cpus: int | None = None, ship_code: bool = True) -> RaySession:
    """Start a local Ray (``address=None``) or join the cluster at ``address``.

    If Ray is already initialised in this process, that connection is used as it is (and left
    open on :meth:`RaySession.close`). ``temp_root`` is where the local cluster keeps its files;
    ``num_cpus`` caps the local cluster's CPUs (default: this process's cores). ``ship_code``
    sends the ``unas`` and ``search_spaces`` packages to a joined cluster's workers (their
    ``working_dir``, see :func:`stage_project_code`: workers start in a copy of it, so paths
    handed to them must be absolute).
    """
    quiet_environment(local=address is None)
    import ray

    if ray.is_initialized():
        return RaySession(total_cpus=float(ray.cluster_resources().get("CPU", 1.0)),
                          owns_cluster=False, connected_here=False, temp_dir=None,
                          node_id=ray.get_runtime_context().get_node_id())
    common: dict[str, Any] = dict(log_to_driver=False, logging_level=logging.WARNING,
                                  configure_logging=True)
    temp_dir: Path | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            if address is None:
                temp_dir, fell_back = socket_safe_temp_dir(
                    None if temp_root is None else Path(temp_root) / "ray")
                if fell_back:
                    LOG.warning("Ray's socket paths under %s/ray would exceed %d bytes; using "
                                "%s for Ray's temporary files and worker logs instead",
                                temp_root, AF_UNIX_PATH_MAX, temp_dir)
                _loopback_only()
                ray.init(num_cpus=num_cpus or local_cpu_count(), include_dashboard=False,
                         _node_ip_address="127.0.0.1", _temp_dir=str(temp_dir), **common)
            else:
                runtime_env: dict[str, Any] = {"env_vars": dict(QUIET_ENVIRONMENT)}
                with tempfile.TemporaryDirectory(prefix="unas-code-") as staging:
                    if ship_code:  # uploaded by ray.init: the copy is not needed afterwards
                        runtime_env["working_dir"] = str(stage_project_code(Path(staging)))
                    ray.init(address=address, runtime_env=runtime_env, **common)
    except ConnectionError as err:
        raise RayStartError(f"execution.address: cannot join the Ray cluster at {address!r} "
                            f"({' '.join(str(err).split())[:200]})") from None
    except (RuntimeError, ValueError, OSError) as err:
        where = "a local Ray" if address is None else f"the Ray cluster at {address!r}"
        raise RayStartError(f"cannot start {where}: {' '.join(str(err).split())[:200]}") from None
    cpus = float(ray.cluster_resources().get("CPU", 0.0))
    if cpus <= 0:
        ray.shutdown()
        raise ConfigError(f"execution.address: the Ray cluster at {address!r} has no CPUs")
    # Through the Ray Client (ray://) this process is on no node of the cluster: "" matches no
    # worker's node, so every worker sends its saved models back.
    node_id = "" if address and address.startswith("ray://") else \
        ray.get_runtime_context().get_node_id()
    return RaySession(total_cpus=cpus, owns_cluster=address is None, connected_here=True,
                      temp_dir=temp_dir, node_id=node_id)
