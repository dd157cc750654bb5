"""kbest's speed-ups change no answer: the compiled beam equals the NumPy one to the bit,
and the kept damped factorisations are the ones a fresh computation gives."""

import numpy as np
import pytest

import annealq.damped as damped
from annealq import formulate_layer
from annealq.baselines.gptq import gptq_rounding
from benchmarks.kbest_numpy import _beam_paths as numpy_beam
from solvers.kbest.search import _beam_paths


@pytest.mark.parametrize("width", [1, 3, 16])
@pytest.mark.parametrize("every", [False, True])
def test_the_compiled_beam_is_the_numpy_beam(width, every):
    rng = np.random.default_rng(width)
    n, k = 5, 70  # two full blocks and a partial one
    A = rng.normal(size=(150, 20)) @ rng.normal(size=(20, k)) + 0.3 * rng.normal(size=(150, k))
    U = np.linalg.cholesky(np.linalg.inv(A.T @ A + 0.1 * np.eye(k))).T
    Z, S = 3 * rng.normal(size=(n, k)), rng.uniform(0.5, 1.5, size=(n, k))
    low, high = np.zeros((n, k)), np.full((n, k), 3.0)
    high[:, 7:12] = 0.0  # fixed entries: their second child is never taken
    high[2] = np.inf  # and one unbounded row
    low[2] = -np.inf
    compiled = _beam_paths(U, Z, S, low, high, width, every=every)
    reference = numpy_beam(U, Z, S, low, high, width, every=every)
    assert all(np.array_equal(a, b) for a, b in zip(compiled, reference))


def test_a_kept_damped_factorisation_is_a_fresh_one():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6))
    G = X.T @ X
    G[2, :] = G[:, 2] = 0.0  # a dead input
    damped.forget()
    first = damped.damped_hessian(G, 1e-3)
    assert damped.damped_hessian(G.copy(), 1e-3) is first  # kept: keyed by the bytes
    damped.forget()
    again = damped.damped_hessian(G, 1e-3)
    assert again is not first
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[2], again[2])
    assert np.array_equal(first[1][0], again[1][0])
    for damp in (1e-2, 1e-4, 1e-5):  # a fourth key drops the oldest
        damped.damped_hessian(G, damp)
    assert damped.damped_hessian(G, 1e-3) is not again


def test_gptq_with_kept_factorisations_gives_the_same_integers():
    rng = np.random.default_rng(1)
    W, b, X = rng.normal(size=(4, 8)), rng.normal(size=4), rng.normal(size=(50, 8))
    lq = formulate_layer(W, b, X, bits=3)
    damped.forget()
    fresh = gptq_rounding(lq, X, damp=0.01)
    kept = gptq_rounding(lq, X, damp=0.01)  # the factorisation from the first call
    assert all(np.array_equal(a, c) for a, c in zip(fresh, kept))


def test_samples_read_without_look_ups_read_as_with_them():
    rng = np.random.default_rng(2)
    lq = formulate_layer(
        rng.normal(size=(3, 5)), rng.normal(size=3), rng.normal(size=(30, 5)), bits=3, window_bits=2
    )
    states = rng.integers(0, 2, size=(3, len(lq.columns))).astype(np.int8)
    samples = lq.samples(states)
    assert samples == [lq.sample(i, s) for i, s in enumerate(states)]
    for i, sample in enumerate(samples):
        u = lq.assignment(i, sample)
        shuffled = dict(reversed(sample.items()))  # another key order: the look-ups
        as_floats = {label: float(v) for label, v in sample.items()}
        assert np.array_equal(u, lq.assignment(i, shuffled))
        assert np.array_equal(u, lq.assignment(i, as_floats))
    label = next(iter(samples[0]))
    with pytest.raises(ValueError, match="must be 0 or 1"):
        lq.assignment(0, {**samples[0], label: 2})
    with pytest.raises(ValueError, match="has no value"):
        lq.assignment(0, {k: v for k, v in samples[0].items() if k != label})


def test_the_rows_chunk_changes_no_path(monkeypatch):
    import solvers.kbest.search as search

    rng = np.random.default_rng(3)
    A = rng.normal(size=(80, 40))
    U = np.linalg.cholesky(np.linalg.inv(A.T @ A + np.eye(40))).T
    Z, S = 3 * rng.normal(size=(7, 40)), np.ones((7, 40))
    low, high = np.full((7, 40), -4.0), np.full((7, 40), 3.0)
    whole = search.beam_search(U, Z, S, low, high, width=8)
    monkeypatch.setattr(search, "CHUNK_ENTRIES", 8 * 40 * 2)  # two rows at a time
    chunked = search.beam_search(U, Z, S, low, high, width=8)
    assert all(np.array_equal(a, b) for a, b in zip(whole, chunked))
