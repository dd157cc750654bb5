import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solvers.exact_bb.box import solve_box
from solvers.exact_bb.lattice import reduce_basis
from solvers.exact_bb.reduced import estimated_nodes, solve_box_reduced


def _brute(H, b, low, high):
    points = np.array(list(itertools.product(*[range(lo, hi + 1) for lo, hi in zip(low, high)])))
    values = np.einsum("ki,ij,kj->k", points, H, points) + 2 * points @ b
    return float(values.min())


def _correlated(rng, n, samples=40):
    """A Gram matrix of correlated ReLU features, like a second layer's inputs."""
    mix = rng.normal(size=(n, n)) + 2.0
    X = np.maximum(rng.normal(size=(samples, n)) @ mix, 0)
    return X.T @ X / samples


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5), width=st.integers(1, 3), last=st.booleans()
)
def test_the_reduced_search_proves_the_brute_force_minimum(seed, n, width, last):
    rng = np.random.default_rng(seed)
    H = _correlated(rng, n)
    b = rng.normal(size=n) * np.sqrt(np.diag(H)) * 3
    low = rng.integers(-3, 1, n)
    high = low + width
    if last:  # a bias-like last variable: a fine grid over a wide range
        H[-1, :] *= 0.05
        H[:, -1] *= 0.05
        b[-1] *= 0.05
        low[-1], high[-1] = -40, 40
    incumbent = np.clip(np.zeros(n, dtype=np.int64), low, high)
    result = solve_box_reduced(H, b, low, high, incumbent=incumbent, eliminate_last=last)
    best = _brute(H, b, low, high)
    assert result.proven
    assert np.all(result.o >= low) and np.all(result.o <= high)
    assert result.value == pytest.approx(best, abs=1e-9 * max(1.0, abs(best)))
    assert float(result.o @ H @ result.o + 2 * b @ result.o) == pytest.approx(result.value)


def test_reduction_is_unimodular_and_keeps_distances():
    rng = np.random.default_rng(1)
    H = _correlated(rng, 30, samples=60)
    R = np.linalg.cholesky(H + 1e-9 * np.eye(30)).T
    y = rng.normal(size=30)
    basis, U, target = reduce_basis(R, y)
    assert np.allclose(np.tril(basis, -1), 0)
    assert abs(round(np.linalg.det(U))) == 1
    assert np.allclose(np.linalg.inv(U), np.rint(np.linalg.inv(U)), atol=1e-6)
    for _ in range(5):
        z = rng.integers(-5, 6, 30)
        assert np.linalg.norm(basis @ z - target) == pytest.approx(np.linalg.norm(R @ U @ z - y))
    # reduction shortens: the first basis vector is no longer than the shortest original one
    assert abs(basis[0, 0]) <= np.min(np.linalg.norm(R, axis=0)) * (1 + 1e-9)


def test_the_reduced_search_agrees_with_the_plain_one_on_a_correlated_neuron():
    rng = np.random.default_rng(4)
    n = 22
    H = _correlated(rng, n, samples=200)
    b = -H @ rng.uniform(-2, 2, n)  # a real optimum between grid points
    low, high = np.full(n, -3), np.full(n, 3)
    start = np.clip(np.rint(np.linalg.solve(H, -b)), low, high).astype(np.int64)
    plain = solve_box(H, b, low, high, incumbent=start)
    reduced = solve_box_reduced(H, b, low, high, incumbent=start)
    assert plain.proven and reduced.proven
    assert reduced.value == pytest.approx(plain.value, abs=1e-9 * abs(plain.value))
    # the estimate takes the start's radius, which the search shrinks: above what it used
    assert estimated_nodes(H, b, low, high, incumbent=start) > reduced.nodes / 10


def test_a_search_out_of_budget_keeps_its_best_and_proves_nothing():
    rng = np.random.default_rng(2)
    H = _correlated(rng, 12)
    b = -H @ rng.uniform(-2, 2, 12)
    low, high = np.full(12, -3), np.full(12, 3)
    start = np.zeros(12, dtype=np.int64)
    result = solve_box_reduced(H, b, low, high, incumbent=start, max_nodes=3)
    assert not result.proven and result.lower_bound == -np.inf
    assert result.value <= float(start @ H @ start + 2 * b @ start)
    assert result.nodes <= 3


def test_exact_bb_hands_a_reachable_neuron_to_the_reduced_search(monkeypatch):
    from solvers.exact_bb import sampler

    calls = []
    real, plain = sampler.solve_box_reduced, sampler.solve_box
    # the plain decoder gets one node: the proof must come from the reduced search
    monkeypatch.setattr(sampler, "solve_box", lambda *a, **k: plain(*a, **k, max_nodes=1))
    monkeypatch.setattr(
        sampler, "solve_box_reduced", lambda *a, **k: calls.append(k) or real(*a, **k)
    )
    rng = np.random.default_rng(5)
    H = _correlated(rng, 10, samples=80)
    b = -H @ rng.uniform(0, 3, 10)
    span = np.full(10, 3)
    start = np.clip(np.rint(np.linalg.solve(H, -b)), 0, 3).astype(np.int64)
    found = sampler._box_search(H, b, span, start, 5.0, bias=True)
    best = _brute(H, b, np.zeros(10, int), span)
    assert calls and calls[0]["eliminate_last"] is True
    assert found.proven and found.value == pytest.approx(best, abs=1e-9 * abs(best))


@pytest.mark.parametrize("inputs, expected", [(6, True), (250, False)])
def test_exact_bb_starts_small_whole_grid_neurons_from_kbest(monkeypatch, inputs, expected):
    from annealq import formulate_layer
    from solvers.exact_bb import sampler
    from solvers.kbest.sampler import KBestSampler

    calls = []
    real = KBestSampler.sample_layer
    monkeypatch.setattr(
        KBestSampler, "sample_layer", lambda self, *a, **k: calls.append(1) or real(self, *a, **k)
    )
    rng = np.random.default_rng(0)
    X = np.maximum(rng.normal(size=(120, inputs)), 0)
    W, bias = rng.normal(size=(2, inputs)) * 0.3, rng.normal(size=2)
    lq = formulate_layer(W, bias, X, bits=2, window_bits=2)
    start = lq.samples(lq.states(lq.rtn_integers()))
    found = sampler.BranchAndBoundSolver(time_limit=0.5).sample_layer(lq, initial_states=start)
    assert bool(calls) is expected
    assert all(r.energy <= lq.energy(i, s) + 1e-9 for i, (r, s) in enumerate(zip(found, start)))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 5),
    width=st.integers(1, 3),
    last=st.booleans(),
    fraction=st.floats(-0.5, 1.5),
)
def test_a_search_below_a_ceiling_proves_a_bound_or_finds_the_minimum(
    seed, n, width, last, fraction
):
    rng = np.random.default_rng(seed)
    H = _correlated(rng, n)
    b = rng.normal(size=n) * np.sqrt(np.diag(H)) * 3
    low = rng.integers(-3, 1, n)
    high = low + width
    incumbent = rng.integers(low, high + 1)
    start = float(incumbent @ H @ incumbent + 2 * b @ incumbent)
    best = _brute(H, b, low, high)
    ceiling = best + fraction * (start - best)
    result = solve_box_reduced(
        H, b, low, high, incumbent=incumbent, eliminate_last=last, ceiling=ceiling
    )
    scale = 1e-9 * (1 + abs(best))
    if ceiling < start and best >= ceiling + scale:  # nothing below the ceiling
        assert not result.proven and result.lower_bound == ceiling
        assert result.value == pytest.approx(start)
    elif best < ceiling - scale:  # the minimum is below it: found and proven
        assert result.proven and result.value == pytest.approx(best, abs=scale)
    assert result.lower_bound <= best + scale
