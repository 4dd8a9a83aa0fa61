"""Pareto front (non-dominated points, all objectives minimised) and its hypervolume.

>>> import numpy as np
>>> pts = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 3.0]])
>>> non_dominated(pts).tolist()
[True, True, False]
>>> hypervolume(pts, reference=np.array([4.0, 4.0]))
5.0
"""
from __future__ import annotations

import numpy as np


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the points no other point dominates (<= everywhere, < somewhere).

    Duplicated points are all kept."""
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2:
        raise ValueError(f"points must be a 2-D array, got shape {pts.shape}")
    le = np.all(pts[:, None, :] <= pts[None, :, :], axis=2)   # le[j, i]: j <= i everywhere
    lt = np.any(pts[:, None, :] < pts[None, :, :], axis=2)
    dominated = np.any(le & lt, axis=0)
    return ~dominated


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by ``points`` and bounded by ``reference`` (exact, by slicing the last
    objective; points not strictly better than the reference in every objective add nothing)."""
    pts = np.asarray(points, dtype=float).reshape(-1, len(reference))
    ref = np.asarray(reference, dtype=float)
    pts = pts[np.all(pts < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    return float(_hv(pts[non_dominated(pts)], ref))


def _hv(pts: np.ndarray, ref: np.ndarray) -> float:
    if pts.shape[1] == 1:
        return float(ref[0] - pts[:, 0].min())
    order = np.argsort(pts[:, -1], kind="stable")
    pts = pts[order]
    volume = 0.0
    for k in range(len(pts)):
        upper = pts[k + 1, -1] if k + 1 < len(pts) else ref[-1]
        depth = upper - pts[k, -1]
        if depth <= 0:
            continue
        slab = pts[: k + 1, :-1]
        volume += depth * _hv(slab[non_dominated(slab)], ref[:-1])
    return volume
