"""``kbest``: width 1 is GPTQ to the integer, full width is exact, never worse than the
start, clear option errors (chunk invariance: tests/test_chunking.py)."""

import dimod
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annealq import formulate_layer, quantize
from annealq.baselines import cd_layer, gptq_layer, layer_error
from annealq.dispatch import solve_layer
from solvers.exact_bb.box import _decision_order
from solvers.kbest.sampler import KBestSampler, auto_width
from solvers.kbest.search import vblast_order


def _layer(seed, n=5, f=9, m=60, separate_float=False):
    """Correlated inputs (a non-diagonal Hessian), optionally float inputs that differ."""
    rng = np.random.default_rng(seed)
    X_hat = rng.normal(size=(m, 3)) @ rng.normal(size=(3, f)) + 0.3 * rng.normal(size=(m, f))
    X = X_hat + 0.1 * rng.normal(size=(m, f)) if separate_float else None
    return rng.normal(size=(n, f)) * 0.3, rng.normal(size=n) * 0.2, X_hat, X


def _integers(lq, results):
    q, q_b = lq.decode([r.sample for r in results])
    return np.column_stack([q, q_b])


@pytest.mark.parametrize(
    "bits,act_order,damp,separate_float",
    [
        (2, True, 0.01, False),
        (4, True, 1e-4, True),
        (3, False, 1e-3, False),
        (2, False, 0.01, True),
    ],
)
def test_width_one_is_gptq_to_the_integer(bits, act_order, damp, separate_float):
    W, b, X_hat, X = _layer(bits, separate_float=separate_float)
    q, q_b = gptq_layer(W, b, X_hat, bits=bits, float_inputs=X, act_order=act_order, damp=damp)
    gptq = np.column_stack([q, q_b])
    lq = formulate_layer(W, b, X_hat, bits=bits, float_inputs=X, window_bits=bits, center=gptq)
    found = KBestSampler(
        width=1, damps=damp, order="act" if act_order else "input", descent=False
    ).sample_layer(lq)
    assert np.array_equal(_integers(lq, found), gptq)


def test_a_width_that_keeps_every_path_is_exact_on_the_down_up_qubo():
    W, b, X_hat, _ = _layer(7, n=4, f=8)
    lq = formulate_layer(W, b, X_hat, bits=3)  # one binary variable per entry
    found = KBestSampler(width=2**9, descent=False).sample_layer(lq)
    for i, result in enumerate(found):
        ground = dimod.ExactSolver().sample(lq.bqm(i)).first.energy
        assert result.energy == pytest.approx(ground, rel=1e-9, abs=1e-9)


def test_wider_search_beats_gptq_on_a_correlated_layer_and_never_loses_to_the_start():
    W, b, X_hat, _ = _layer(11, n=6, f=40, m=200)
    q, q_b = gptq_layer(W, b, X_hat, bits=3, damp=1e-3)
    gptq = np.column_stack([q, q_b])
    lq = formulate_layer(W, b, X_hat, bits=3, window_bits=3, center=gptq)
    start = lq.samples(lq.states(gptq))
    found = solve_layer(lq, KBestSampler(width=16), initial_states=start)
    integers = _integers(lq, found)
    plain = formulate_layer(W, b, X_hat, bits=3)
    ours = layer_error(plain, integers[:, :-1], integers[:, -1], inputs=X_hat)
    theirs = layer_error(plain, q, q_b, inputs=X_hat)
    assert np.all(ours <= theirs * (1 + 1e-12)) and ours.sum() < 0.97 * theirs.sum()
    assert [r.energy for r in found] == pytest.approx(ours, rel=1e-9)
    # a start better than anything the search finds is kept as it is
    best = KBestSampler(width=64, damps=(1e-2, 1e-3, 1e-4)).sample_layer(lq, initial_states=start)
    again = KBestSampler(width=1).sample_layer(lq, initial_states=[r.sample for r in best])
    assert [r.energy for r in again] <= [r.energy for r in best]
    assert all(r.info["damp"] is None or r.info["damp"] == 1e-4 for r in again)


def test_the_descent_is_cdquants_greedy_descent_from_the_best_path():
    W, b, X_hat, X = _layer(13, n=6, f=30, m=150, separate_float=True)
    lq = formulate_layer(W, b, X_hat, bits=3, float_inputs=X, window_bits=3)
    plain = formulate_layer(W, b, X_hat, bits=3, float_inputs=X)
    # GPTQ's own order: its path is not 1-opt on this layer (V-BLAST's already is)
    paths = _integers(lq, KBestSampler(width=1, order="act", descent=False).sample_layer(lq))
    polished = KBestSampler(width=1, order="act").sample_layer(lq)
    q, q_b = cd_layer(W, b, X_hat, bits=3, float_inputs=X, start=(paths[:, :-1], paths[:, -1]))
    cd = layer_error(plain, q, q_b, inputs=X_hat, float_inputs=X)
    assert [r.energy for r in polished] == pytest.approx(cd, rel=1e-9)
    before = layer_error(plain, paths[:, :-1], paths[:, -1], inputs=X_hat, float_inputs=X)
    assert cd.sum() < before.sum()  # the descent moved something on this layer


@pytest.mark.parametrize("seed,bits", [(2, 2), (13, 2), (9, 3)])
def test_never_worse_than_cdquant_from_the_same_start(seed, bits):
    # a narrow search from another damping: on these layers one neuron's best path lies in
    # a worse basin than the start's (fails without CD from the start as a candidate)
    W, b, X_hat, X = _layer(seed, n=8, f=30, m=120, separate_float=True)
    q, q_b = gptq_layer(W, b, X_hat, bits=bits, float_inputs=X, damp=1e-2)
    lq = formulate_layer(
        W, b, X_hat, bits=bits, float_inputs=X, window_bits=bits, center=np.column_stack([q, q_b])
    )
    start = lq.samples(lq.states(np.column_stack([q, q_b])))
    found = KBestSampler(width=1, damps=1e-4).sample_layer(lq, initial_states=start)
    cq, cq_b = cd_layer(W, b, X_hat, bits=bits, float_inputs=X, start=(q, q_b))
    plain = formulate_layer(W, b, X_hat, bits=bits, float_inputs=X)
    cd = layer_error(plain, cq, cq_b, inputs=X_hat, float_inputs=X)
    assert np.all(np.array([r.energy for r in found]) <= cd * (1 + 1e-9))


@given(n=st.integers(1, 12), seed=st.integers(0, 2**16))
@settings(max_examples=25, deadline=None)
def test_vblast_order_is_the_sphere_decoders_decision_order(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3 * n, n)) @ rng.normal(size=(n, n))
    H = X.T @ X + 1e-3 * np.eye(n)
    assert vblast_order(np.linalg.inv(H)).tolist() == _decision_order(H)[::-1].tolist()


def test_the_vblast_order_beats_gptqs_order_on_a_correlated_layer():
    W, b, X_hat, _ = _layer(17, n=8, f=40, m=200)
    lq = formulate_layer(W, b, X_hat, bits=2, window_bits=2)
    energy = {
        order: sum(
            r.energy for r in KBestSampler(width=4, order=order, descent=False).sample_layer(lq)
        )
        for order in ("vblast", "act")
    }
    assert energy["vblast"] < energy["act"]


def test_the_auto_width_widens_the_search_on_neurons_of_few_entries():
    assert [auto_width("auto", k) for k in (10, 65, 129, 257, 785, 3073)] == [
        8192,
        8192,
        2370,
        598,
        64,
        64,
    ]
    # within a 128 × 785 layer's work at 64 paths: a layer of many small neurons gets fewer
    assert [
        auto_width("auto", k, n)
        for k, n in ((129, 10), (129, 47), (65, 64), (785, 128), (65, 4096))
    ] == [2370, 1060, 1545, 64, 64]
    assert auto_width(8, 65) == 8
    W, b, X_hat, _ = _layer(19, n=4, f=60, m=180)
    lq = formulate_layer(W, b, X_hat, bits=3, window_bits=3)  # 61 entries: 8,192 paths
    auto = [r.energy for r in KBestSampler(descent=False).sample_layer(lq)]
    assert auto == [r.energy for r in KBestSampler(width=8192, descent=False).sample_layer(lq)]
    assert sum(auto) < sum(r.energy for r in KBestSampler(width=64, descent=False).sample_layer(lq))


@given(n=st.integers(1, 7), seed=st.integers(0, 2**16), spin=st.booleans())
@settings(max_examples=25, deadline=None)
def test_on_a_bare_bqm_a_full_width_beam_finds_the_ground_state(n, seed, spin):
    rng = np.random.default_rng(seed)
    bqm = dimod.BQM(
        {j: rng.normal() for j in range(n)},
        {(j, k): rng.normal() for j in range(n) for k in range(j + 1, n)},
        0.5,
        dimod.SPIN if spin else dimod.BINARY,
    )
    found = KBestSampler().sample(bqm, width=2 ** max(n - 1, 0))
    ground = dimod.ExactSolver().sample(bqm).first.energy
    assert found.first.energy == pytest.approx(ground, abs=1e-9)


@pytest.mark.parametrize(
    "options,error",
    [
        ({"width": 0}, "width must be a positive integer"),
        ({"width": 2.5}, "width must be a positive integer"),
        ({"width": True}, "width must be a positive integer"),
        ({"damps": ()}, "damps must be one or more positive"),
        ({"damps": (1e-3, -1.0)}, "damps must be one or more positive"),
        ({"damps": float("nan")}, "damps must be one or more positive"),
    ],
)
def test_bad_options_are_clear_errors(options, error, small_layer):
    with pytest.raises(ValueError, match=error):
        KBestSampler(**options)
    with pytest.raises(ValueError, match=error):
        KBestSampler().sample_layer(small_layer, **options)
    with pytest.raises(ValueError, match="order must be one of vblast, act, input"):
        KBestSampler(order="yes")
    with pytest.raises(TypeError, match="descent must be a bool"):
        KBestSampler(descent=1)
    with pytest.raises(ValueError, match="unknown kbest option"):
        KBestSampler().sample_layer(small_layer, rounds=3)


def test_the_pipeline_runs_it_on_the_whole_grid_from_tuned_gptq():
    import torch

    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    x = np.random.default_rng(3).normal(size=(60, 10))
    gptq = quantize(model, x, bits=3, method="gptq", cache=False, quiet=True)
    ours = quantize(model, x, bits=3, solver="kbest", cache=False, quiet=True)
    assert ours.report["config"]["window_bits"] == 3 and ours.report["start"] == "gptq"
    assert ours.layers[0].energy <= gptq.layers[0].energy * (1 + 1e-9)  # same inputs
    with pytest.raises(ValueError, match="time_limit"):
        quantize(model, x, bits=3, solver="kbest", time_limit=1.0, cache=False, quiet=True)


def test_the_auto_width_is_the_layers_whatever_neurons_a_call_gets(monkeypatch):
    # an executor may hand a sampler part of a layer: the search must not change with it
    import solvers.kbest.sampler as module

    widths, search = [], module._IntegerForm.search
    monkeypatch.setattr(
        module._IntegerForm,
        "search",
        lambda self, damp, width, order: widths.append(width) or search(self, damp, width, order),
    )
    W, b, X_hat, _ = _layer(23, n=40, f=30, m=120)  # 31 entries: 5,186 paths, not 8,192
    lq = formulate_layer(W, b, X_hat, bits=2, window_bits=2)
    KBestSampler(damps=1e-3, descent=False).sample_layer(lq, neurons=[1, 4])
    KBestSampler(damps=1e-3, width=4, descent=False).sample_layer(lq, neurons=[1])
    assert widths == [5186, 4]


def test_the_beams_blas_threads_change_no_path(monkeypatch):
    import solvers.kbest.search as search

    rng = np.random.default_rng(5)
    A = rng.normal(size=(80, 40))
    U = np.linalg.cholesky(np.linalg.inv(A.T @ A + np.eye(40))).T
    Z, S = 3 * rng.normal(size=(6, 40)), np.ones((6, 40))
    low, high = np.full((6, 40), -4.0), np.full((6, 40), 3.0)
    one = search.beam_search(U, Z, S, low, high, width=16)
    monkeypatch.setattr(search, "BLAS_THREADS", None)
    assert all(
        np.array_equal(a, b) for a, b in zip(one, search.beam_search(U, Z, S, low, high, width=16))
    )
