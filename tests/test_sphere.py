import itertools

import dimod
import numpy as np
import pytest

from annealq import formulate_layer, get_sampler
from annealq.dispatch import solve_layer
from solvers.exact_bb.sphere import solve_dense


def _minimum(h, Q, offset):
    off = Q - np.diag(np.diag(Q))
    return min(
        offset + h @ u + u @ off @ u
        for u in map(np.array, itertools.product((0.0, 1.0), repeat=len(h)))
    )


@pytest.mark.parametrize("n", [1, 2, 5, 9, 13])
def test_proves_the_brute_force_optimum_psd_and_indefinite(n):
    rng = np.random.default_rng(n)
    for _ in range(4):
        A = rng.normal(size=(3 * n, n))
        psd = A.T @ A
        indefinite = rng.normal(size=(n, n))
        for Q in (psd, (indefinite + indefinite.T) / 2):
            h = rng.normal(size=n) * 3
            result = solve_dense(h, Q, 0.5)
            assert result.proven and result.gap == 0
            assert result.energy == pytest.approx(_minimum(h, Q, 0.5), abs=1e-9)


def test_uncoupled_variables_are_set_by_their_sign():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(20, 6))
    A[:, [1, 4]] = 0  # inputs that are always zero
    h = rng.normal(size=6)
    result = solve_dense(h, A.T @ A, 0.0)
    assert result.proven and result.energy == pytest.approx(_minimum(h, A.T @ A, 0.0))


def test_time_limit_gives_a_valid_lower_bound():
    rng = np.random.default_rng(1)
    n = 60
    A = rng.normal(size=(70, n)) + 2.0  # strongly correlated columns: a hard instance
    Q, h = A.T @ A, -np.diag(A.T @ A) * 0.8
    result = solve_dense(h, Q, 0.0, time_limit=0.3)
    assert result.lower_bound <= result.energy + 1e-9
    if not result.proven:
        assert result.gap > 0


def test_layer_solver_matches_exact_enumeration():
    rng = np.random.default_rng(3)
    lq = formulate_layer(
        rng.normal(size=(4, 14)), rng.normal(size=4), rng.normal(size=(40, 14)), bits=2
    )
    exact = solve_layer(lq, get_sampler("exact"))
    bb = solve_layer(lq, get_sampler("exact-bb", time_limit=10))
    for e, b in zip(exact, bb):
        assert b.info["proven_optimal"]
        assert b.energy == pytest.approx(e.energy, rel=1e-9)
    bqm = lq.bqm(0)
    assert get_sampler("exact-bb").sample(bqm).first.energy == pytest.approx(exact[0].energy)


@pytest.mark.parametrize("bits", [2, 3])
def test_layer_solver_proves_the_whole_grid_optimum_of_a_window_layer(bits):
    rng = np.random.default_rng(bits)
    X = rng.random((60, 6))
    X[:, 5] = X[:, 4] + 0.01 * rng.normal(size=60)  # nearly collinear inputs
    X[:, 3] = 0.0  # and a dead one
    lq = formulate_layer(
        rng.normal(size=(3, 6)),
        rng.normal(size=3),
        X,
        bits=bits,
        window_bits=bits,
        bias_window_bits=3,
    )
    assert lq.free.shape[1] == 6 * bits + 3  # the whole grid: the unrestricted problem
    exact = solve_layer(lq, get_sampler("exact"))
    bb = solve_layer(lq, get_sampler("exact-bb", time_limit=10))
    for i, (e, b) in enumerate(zip(exact, bb)):
        assert b.info["proven_optimal"] and b.info["search"] == "integers"
        assert b.energy == pytest.approx(e.energy, rel=1e-9)
        assert b.energy == pytest.approx(lq.energy(i, b.sample), rel=1e-12)
        assert b.info["lower_bound"] == b.energy


def test_spin_bqm():
    bqm = dimod.generators.gnp_random_bqm(10, 0.6, "SPIN", random_state=2)
    best = min(dimod.ExactSolver().sample(bqm).record.energy)
    assert get_sampler("exact-bb").sample(bqm).first.energy == pytest.approx(best)


@pytest.mark.parametrize("seed", range(12))
def test_box_search_finds_the_brute_force_integer_optimum(seed):
    from solvers.exact_bb.box import solve_box

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 6))
    A = rng.normal(size=(8, n))
    if seed % 3 == 0 and n > 1:
        A[:, -1] = 2.0 * A[:, 0]  # collinear columns: H is singular
    H, b = A.T @ A, 3.0 * rng.normal(size=n)
    low = rng.integers(-3, 1, size=n)
    high = low + rng.integers(0, 5, size=n)
    result = solve_box(H, b, low, high, incumbent=high.copy())
    o = result.o
    energy = lambda x: float(x @ H @ x + 2 * b @ x)
    best = min(
        energy(np.array(x))
        for x in itertools.product(*[range(lo, hi + 1) for lo, hi in zip(low, high)])
    )
    assert result.proven and np.all((low <= o) & (o <= high))
    assert energy(o) == pytest.approx(best, rel=1e-7, abs=1e-7)
    assert result.value == pytest.approx(energy(o)) and result.lower_bound == result.value


def test_box_search_keeps_an_optimal_incumbent_and_stops_with_a_valid_bound():
    from solvers.exact_bb.box import solve_box

    rng = np.random.default_rng(1)
    A = rng.normal(size=(30, 20)) + 2.0 * rng.normal(size=(30, 1))  # correlated columns
    H, b = A.T @ A, 40.0 * rng.normal(size=20)
    low, high = np.zeros(20, np.int64), np.full(20, 7)
    best = solve_box(H, b, low, high, incumbent=low)
    assert best.proven
    again = solve_box(H, b, low, high, incumbent=best.o)
    assert np.array_equal(again.o, best.o)
    for budget in (3, 30, 300):
        partial = solve_box(H, b, low, high, incumbent=low, max_nodes=budget)
        assert np.all((low <= partial.o) & (partial.o <= high))
        assert partial.value <= float(low @ H @ low + 2 * b @ low)
        if not partial.proven:  # the bound holds: the optimum is never below it
            assert partial.lower_bound <= best.value + 1e-9
            assert partial.lower_bound <= partial.value
