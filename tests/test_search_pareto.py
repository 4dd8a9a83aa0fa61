"""Scalarisation, Pareto front and hypervolume."""
from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from unas.search.objectives import normalise, sample_weights, scalarise
from unas.search.pareto import hypervolume, non_dominated

points_2d_to_4d = st.integers(2, 4).flatmap(
    lambda d: arrays(np.float64, st.tuples(st.integers(1, 12), st.just(d)),
                     elements=st.sampled_from([0.1, 0.25, 0.4, 0.5, 0.7, 0.9])))


def test_normalise_divides_by_bounds_and_caps():
    f = normalise([0.5, 100, 5000, 10], bounds=[0.1, 1000, 100, 10], cap=10.0)
    assert f.tolist() == [5.0, 0.1, 10.0, 1.0]


def test_scalarisation_is_the_weighted_maximum():
    f = np.array([[0.5, 0.2, 0.9, 0.1], [0.4, 0.4, 0.4, 0.4]])
    w = np.array([1.0, 1.0, 0.5, 1.0])
    assert scalarise(f, w).tolist() == [0.5, 0.4]


def test_weights_are_uniform_and_come_from_the_generator():
    a = sample_weights(np.random.default_rng(3), 10_000)
    b = sample_weights(np.random.default_rng(3), 10_000)
    assert np.array_equal(a, b) and 0.0 <= a.min() and a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.02


@settings(max_examples=60, deadline=None)
@given(points_2d_to_4d)
def test_non_dominated_matches_the_definition(points):
    mask = non_dominated(points)
    for i, p in enumerate(points):
        dominated = any(np.all(q <= p) and np.any(q < p) for q in points)
        assert mask[i] == (not dominated)


@settings(max_examples=60, deadline=None)
@given(points_2d_to_4d)
def test_hypervolume_matches_counting_grid_cells(points):
    # All coordinates lie on a grid, so the dominated region is a union of grid cells.
    ref = np.ones(points.shape[1])
    grid = np.array([0.1, 0.25, 0.4, 0.5, 0.7, 0.9, 1.0])
    volume = 0.0
    for cell in itertools.product(range(len(grid) - 1), repeat=points.shape[1]):
        low = grid[list(cell)]
        size = np.prod(grid[[c + 1 for c in cell]] - low)
        if np.any(np.all(points <= low, axis=1)):
            volume += size
    assert np.isclose(hypervolume(points, ref), volume)


def test_hypervolume_of_a_point_is_its_box_and_grows_with_the_front():
    ref = np.array([1.0, 1.0, 1.0, 1.0])
    single = np.array([[0.5, 0.5, 0.5, 0.5]])
    assert np.isclose(hypervolume(single, ref), 0.5**4)
    more = np.vstack([single, [[0.2, 0.9, 0.9, 0.9]]])
    assert hypervolume(more, ref) > hypervolume(single, ref)
    assert hypervolume(np.array([[1.5, 0.1, 0.1, 0.1]]), ref) == 0.0
    assert hypervolume(np.zeros((0, 4)), ref) == 0.0
