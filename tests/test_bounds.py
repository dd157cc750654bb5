import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annealq import formulate_layer
from annealq.baselines import layer_error, tuned_gptq_layer
from annealq.problems import LayerProblem
from benchmarks.bounds import METHODS, layer_bounds
from solvers.exact_bb.bound import box_lower_bound, neuron_box
from solvers.exact_bb.lagrangian import lagrangian_bound
from solvers.exact_bb.reduced import solve_box_reduced


def _brute(H, b, low, high):
    points = np.array(list(itertools.product(*[range(lo, hi + 1) for lo, hi in zip(low, high)])))
    return np.min(np.einsum("ki,ij,kj->k", points, H, points) + 2 * points @ b)


@pytest.mark.parametrize("seed", range(6))
def test_the_bound_is_below_the_brute_force_minimum_and_equals_it_when_proven(seed, monkeypatch):
    if seed % 2:  # the large-neuron path: the box relaxation by coordinate descent
        monkeypatch.setattr("solvers.exact_bb.radius.BVLS_MAX", 0)
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(12, 6)) @ np.diag(rng.uniform(0.1, 3, 6))
    A[:, 1] = A[:, 0] + 0.01 * rng.normal(size=12)  # nearly collinear: a hard lattice
    H, b = A.T @ A, rng.normal(size=6) * 3
    low, high = np.full(6, -2), np.full(6, 1)
    best = _brute(H, b, low, high)
    proved = box_lower_bound(H, b, low, high, incumbent=np.zeros(6, int))
    assert proved.proven and proved.bound == pytest.approx(best, abs=1e-9)
    # a budget too small to prove: a certified radius, never above the minimum
    tight = box_lower_bound(H, b, low, high, incumbent=np.zeros(6, int), max_nodes=8)
    assert not tight.proven and tight.bound <= best + 1e-9


def test_neuron_bounds_are_below_every_method_and_prove_small_neurons():
    rng = np.random.default_rng(3)
    X = np.maximum(rng.normal(size=(200, 7)) @ rng.normal(size=(7, 7)), 0)
    W, bias = rng.normal(size=(5, 7)), rng.normal(size=5)
    q, q_b, _ = tuned_gptq_layer(W, bias, X, bits=2)
    plain = formulate_layer(W, bias, X, bits=2)
    gptq = layer_error(plain, q, q_b, inputs=X)
    lq = formulate_layer(W, bias, X, bits=2, window_bits=2, center=np.column_stack([q, q_b]))
    grid = lq.weight_grid
    for i in range(5):
        _, e, p = lq.integer_form(i)
        base = lq.base[i]
        H, h, low, high, start, live, relaxed = neuron_box(
            lq.entry_gram,
            e,
            p,
            grid.q_min - base[:-1],
            grid.q_max - base[:-1],
            incumbent=np.append(q[i], q_b[i]) - base,
        )
        assert float(lq.offset[i] + start @ H @ start + 2 * h @ start) == pytest.approx(gptq[i])
        full = box_lower_bound(H, h, low, high, incumbent=start, relaxed=relaxed)
        weak = box_lower_bound(H, h, low, high, incumbent=start, relaxed=relaxed, max_nodes=50)
        assert full.proven and lq.offset[i] + full.bound <= gptq[i] * (1 + 1e-9)
        assert weak.bound <= full.bound + 1e-9
        if i == 0:  # the whole grid by brute force: every weight vector, its best bias
            weights = np.array(list(itertools.product(range(grid.q_min, grid.q_max + 1), repeat=7)))
            residual = (X @ W[0] + bias[0])[:, None] - X @ (weights * grid.step[0]).T
            step_b = lq.bias_grid.step[0]
            q_bias = np.rint(residual.mean(axis=0) / step_b)
            errors = np.sum((residual - q_bias * step_b) ** 2, axis=0)
            assert lq.offset[i] + full.bound == pytest.approx(errors.min(), rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 4),
    width=st.integers(1, 3),
    collinear=st.booleans(),
)
def test_the_lagrangian_bound_never_exceeds_the_brute_force_minimum(seed, n, width, collinear):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(8, n)) * rng.uniform(0.05, 3, n)
    if collinear and n > 1:
        A[:, 1] = A[:, 0] + 1e-3 * rng.normal(size=8)
    H, b = A.T @ A, rng.normal(size=n) * 4
    low = rng.integers(-3, 1, n)
    high = low + width
    best = _brute(H, b, low, high)
    assert lagrangian_bound(H, b, low, high) <= best + 1e-9 * max(1.0, abs(best))


def test_the_lagrangian_bound_is_the_minimum_of_a_separable_problem_and_beats_the_box():
    rng = np.random.default_rng(0)
    h = rng.uniform(0.5, 3, 5)
    H, b = np.diag(h), -h * rng.uniform(-2, 2, 5)  # each weight between two grid points
    low, high = np.full(5, -2), np.full(5, 2)
    best = _brute(H, b, low, high)
    assert lagrangian_bound(H, b, low, high) == pytest.approx(best, abs=1e-5)
    # the real box minimum (what a relaxation without integrality gives) is far lower
    assert float(-(b**2 / h).sum()) < best - 0.1


def test_the_lagrangian_bound_refuses_a_variable_without_room():
    with pytest.raises(ValueError, match="low < high"):
        lagrangian_bound(np.eye(2), np.zeros(2), np.array([0, 1]), np.array([1, 1]))


def test_a_neuron_the_plain_budget_leaves_open_is_proven_on_the_reduced_basis():
    rng = np.random.default_rng(7)
    A = rng.normal(size=(12, 6)) @ np.diag(rng.uniform(0.1, 3, 6))
    A[:, 1] = A[:, 0] + 0.01 * rng.normal(size=12)
    H, b = A.T @ A, rng.normal(size=6) * 3
    low, high = np.full(6, -2), np.full(6, 1)
    start = np.zeros(6, int)
    plain = box_lower_bound(H, b, low, high, incumbent=start, max_nodes=8)
    both = box_lower_bound(H, b, low, high, incumbent=start, max_nodes=8, reduced_nodes=1_000_000)
    assert not plain.proven
    assert both.proven and both.bound == pytest.approx(_brute(H, b, low, high), abs=1e-9)


def test_reduced_searches_below_a_value_raise_the_certified_bound(monkeypatch):
    """From the optimum as incumbent and the proof attempt skipped (``REACH`` 0): a small
    reduced budget proves a value between the certified radius's bound and the minimum,
    a larger one the minimum itself."""
    monkeypatch.setattr("solvers.exact_bb.bound.REACH", 0)
    rng = np.random.default_rng(0)
    n = 24
    A = rng.normal(size=(40, n)) @ np.diag(rng.uniform(0.1, 3, n))
    A[:, 1] = A[:, 0] + 0.01 * rng.normal(size=40)
    X = np.maximum(A, 0)  # correlated ReLU features, like a second layer's inputs
    H, b = X.T @ X, rng.normal(size=n) * np.sqrt(np.diag(X.T @ X)) * 3
    low, high = np.full(n, -2), np.full(n, 1)
    optimum = solve_box_reduced(H, b, low, high, incumbent=np.zeros(n, int))
    assert optimum.proven
    plain = box_lower_bound(H, b, low, high, incumbent=optimum.o, max_nodes=8)
    raised = box_lower_bound(H, b, low, high, incumbent=optimum.o, max_nodes=8, reduced_nodes=300)
    proved = box_lower_bound(H, b, low, high, incumbent=optimum.o, max_nodes=8, reduced_nodes=3000)
    assert not plain.proven and not raised.proven
    assert plain.bound + 1 < raised.bound < optimum.value - 1
    assert proved.proven and proved.bound == pytest.approx(optimum.value, abs=1e-9)


def test_the_bench_rows_keep_each_neurons_bound_and_no_method_is_below_one():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(80, 2)) @ rng.normal(size=(2, 7)) + 0.05 * rng.normal(size=(80, 7))
    W, b = rng.normal(size=(3, 7)) * 0.3, rng.normal(size=3) * 0.1
    cell = layer_bounds(LayerProblem.of_arrays(W, b, X, bits=2), nodes=10**5, small_nodes=10**6)
    assert cell["proven"] == 3 and cell["violations"] == 0
    bounds = np.array(cell["neuron_bounds"])
    assert cell["bound"] == pytest.approx(bounds.sum())
    for method in METHODS:
        errors = np.array(cell["neuron_errors"][method])
        assert cell["errors"][method] == pytest.approx(errors.sum())
        assert np.all(errors >= bounds * (1 - 1e-9) - 1e-9)
    # a proven bound is the optimum, and on this layer the methods reach it on every neuron
    best = np.min([cell["neuron_errors"][m] for m in METHODS], axis=0)
    assert best == pytest.approx(bounds, rel=1e-9, abs=1e-9)
