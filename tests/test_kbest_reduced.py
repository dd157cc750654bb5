"""``kbest``'s search on a lattice-reduced basis (``reduced``): in the box, never below the
minimum, optimal where the plain basis's search is not on badly conditioned neurons,
never worse than without it, ``"auto"`` on neurons of at most 200 entries."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annealq import formulate_layer
from solvers.kbest import sampler as module
from solvers.kbest.reduced import reduced_beam
from solvers.kbest.sampler import KBestSampler, reduces
from solvers.kbest.search import beam_search, vblast_order


def _neuron(seed, n=6, span=7, noise=0.03):
    """A neuron over nearly rank-2 inputs: its lattice has long, nearly parallel vectors."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(40, 2)) @ rng.normal(size=(2, n)) + noise * rng.normal(size=(40, n))
    H = A.T @ A
    return H, -H @ rng.uniform(0.5, span - 0.5, size=n), np.full(n, span)


def _f(H, b, o):
    return float(o @ H @ o + 2 * b @ o)


def _minimum(H, b, span):
    points = np.array(list(itertools.product(*[range(s + 1) for s in span])))
    return float(np.min(np.einsum("ij,jk,ik->i", points, H, points) + 2 * points @ b))


def _plain_beam(H, b, span, width):
    """kbest's own search (V-BLAST order on the plain basis), undamped."""
    inverse = np.linalg.inv(H)
    order = vblast_order(inverse)
    U = np.linalg.cholesky(inverse[np.ix_(order, order)]).T
    q, _ = beam_search(
        U,
        (-inverse @ b)[order][None],
        np.ones((1, len(H))),
        np.zeros((1, len(H))),
        span[order][None].astype(float),
        width=width,
    )
    o = np.empty(len(H), dtype=np.int64)
    o[order] = q[0]
    return o


@given(
    n=st.integers(1, 5),
    span=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    width=st.sampled_from([1, 2, 8]),
    noise=st.sampled_from([0.01, 0.3, 3.0]),
)
@settings(max_examples=60, deadline=None)
def test_a_path_it_returns_is_in_the_box_and_never_below_the_minimum(n, span, seed, width, noise):
    H, b, spans = _neuron(seed, n=n, span=span, noise=noise)
    o = reduced_beam(H, b, spans, width=width)
    if o is None:  # no final path in the box: the caller keeps its other candidates
        return
    assert o.dtype == np.int64 and np.all((o >= 0) & (o <= spans))
    assert _f(H, b, o) >= _minimum(H, b, spans) - 1e-9 * max(1.0, abs(_minimum(H, b, spans)))


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_one_path_on_the_reduced_basis_finds_optima_four_on_the_plain_one_miss(seed):
    H, b, span = _neuron(seed)
    best = _minimum(H, b, span)
    assert _f(H, b, reduced_beam(H, b, span, width=1)) == pytest.approx(best, rel=1e-12)
    assert _f(H, b, _plain_beam(H, b, span, width=4)) > best + 1e-6 * abs(best)


def _correlated_layer(seed, n=6, f=12, m=80):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, 2)) @ rng.normal(size=(2, f)) + 0.02 * rng.normal(size=(m, f))
    return rng.normal(size=(n, f)) * 0.3, rng.normal(size=n) * 0.2, X


@given(seed=st.integers(0, 2**16), bits=st.integers(2, 4))
@settings(max_examples=10, deadline=None)
def test_on_a_layer_it_is_never_worse_than_the_plain_search(seed, bits):
    W, b, X = _correlated_layer(seed)
    lq = formulate_layer(W, b, X, bits=bits, window_bits=bits)
    plain = KBestSampler(width=4, reduced=False).sample_layer(lq)
    ours = KBestSampler(width=4, reduced=True).sample_layer(lq)
    assert all(o.energy <= p.energy * (1 + 1e-12) + 1e-12 for o, p in zip(ours, plain))
    for result in ours:  # each neuron says which search it kept
        assert result.info["damp"] in (*module.DEFAULT_DAMPS, "reduced")


def test_on_a_badly_conditioned_layer_it_wins_and_says_so():
    W, b, X = _correlated_layer(5)
    lq = formulate_layer(W, b, X, bits=3, window_bits=3)
    plain = KBestSampler(width=4, reduced=False).sample_layer(lq)
    ours = KBestSampler(width=4, reduced=True).sample_layer(lq)
    assert sum(r.energy for r in ours) < 0.99 * sum(r.energy for r in plain)
    assert any(r.info["damp"] == "reduced" for r in ours)
    assert ours[0].info["options"]["reduced"] is True


def test_auto_reduces_neurons_of_at_most_200_entries(monkeypatch):
    assert [reduces("auto", k) for k in (65, 200, 201, 785)] == [True, True, False, False]
    assert reduces(True, 785) and not reduces(False, 65)
    calls = []
    search = module._IntegerForm.reduced_search
    monkeypatch.setattr(
        module._IntegerForm,
        "reduced_search",
        lambda self, o, width: calls.append(o.shape) or search(self, o, width),
    )
    W, b, X = _correlated_layer(7)
    lq = formulate_layer(W, b, X, bits=2, window_bits=2)  # 13 entries
    KBestSampler(width=2, reduced="auto").sample_layer(lq)
    KBestSampler(width=2).sample_layer(lq)  # the default: off
    assert calls == [(6, 13)] and module.DEFAULT_REDUCED is False


@pytest.mark.parametrize("value", ["yes", 1, None, [True]])
def test_a_bad_reduced_option_is_a_clear_error(value):
    with pytest.raises(ValueError, match="reduced must be True, False or 'auto'"):
        KBestSampler(reduced=value)
