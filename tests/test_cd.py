import itertools
import time

import numpy as np
import pytest

from annealq import formulate_layer
from annealq.baselines import gptq_layer, layer_error
from annealq.baselines.cd import GPTQ_GRID, cd_layer, tuned_gptq_layer
from annealq.grid import INT32_MAX, INT32_MIN


def _layer(seed, n=6, f=7, m=40, bias=True, separate_float=True):
    """Correlated inputs (a non-diagonal Hessian) and float inputs that differ from them."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(m, 3))
    X_hat = latent @ rng.normal(size=(3, f)) + 0.3 * rng.normal(size=(m, f))
    X = X_hat + 0.1 * rng.normal(size=(m, f)) if separate_float else None
    W = rng.normal(size=(n, f)) * 0.3
    b = rng.normal(size=n) * 0.2 if bias else None
    return W, b, X_hat, X


def _direct_error(lq, q, q_b, X_hat, X=None):
    """The squared output error per neuron, the grid's offset included (affine grids)."""
    X = X_hat if X is None else X
    f = lq.n_inputs
    weights = lq.weight_grid.dequantize(q)
    target = X @ lq.values[:, :f].T + lq.values[:, f]
    residual = target - X_hat @ weights.T - lq.bias_grid.step * q_b
    return np.einsum("mi,mi->i", residual, residual)


def _assert_on_grid(lq, q, q_b):
    assert q.dtype == np.int64 and q_b.dtype == np.int64
    assert q.shape == (lq.n_neurons, lq.n_inputs) and q_b.shape == (lq.n_neurons,)
    assert q.min() >= lq.weight_grid.q_min and q.max() <= lq.weight_grid.q_max
    assert q_b.min() >= INT32_MIN and q_b.max() <= INT32_MAX
    if not lq.has_bias:
        assert np.all(q_b == 0)


def _assert_one_opt(lq, q, q_b, X_hat, X=None, bias_window=60):
    """Brute force: no single weight changed to any grid integer, nor the bias to any
    integer within ``bias_window`` (the error is a convex parabola in it), lowers any
    neuron's error by more than 1e-9 relative."""
    error = _direct_error(lq, q, q_b, X_hat, X)
    for j in range(lq.n_inputs):
        for value in range(lq.weight_grid.q_min, lq.weight_grid.q_max + 1):
            moved = q.copy()
            moved[:, j] = value
            assert np.all(_direct_error(lq, moved, q_b, X_hat, X) >= error * (1 - 1e-9))
    if lq.has_bias:
        for shift in range(-bias_window, bias_window + 1):
            moved = _direct_error(lq, q, q_b + shift, X_hat, X)
            assert np.all(moved >= error * (1 - 1e-9))


# --- descent from GPTQ on small layers ---------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rule", ["greedy", "cyclic"])
def test_cd_is_no_worse_than_gptq_on_the_grid_and_one_opt(bits, per_channel, bias, rule):
    W, b, X_hat, X = _layer(bits + 10 * per_channel + 100 * bias, bias=bias)
    options = {"bits": bits, "float_inputs": X, "per_channel": per_channel}
    lq = formulate_layer(W, b, X_hat, **options)
    start = gptq_layer(W, b, X_hat, **options)
    q, q_b, info = cd_layer(W, b, X_hat, rule=rule, return_info=True, **options)
    _assert_on_grid(lq, q, q_b)
    cd = layer_error(lq, q, q_b, inputs=X_hat, float_inputs=X)
    gptq = layer_error(lq, *start, inputs=X_hat, float_inputs=X)
    assert np.all(cd <= gptq * (1 + 1e-12))
    assert np.all(info["converged"])
    _assert_one_opt(lq, q, q_b, X_hat, X)
    # GPTQ is often 1-opt already on layers this small: from a poor start CD must move
    poor = (np.full_like(q, lq.weight_grid.q_min), np.zeros_like(q_b))
    q, q_b, info = cd_layer(
        W, b, X_hat, rule=rule, start=poor, sweeps=50, return_info=True, **options
    )
    assert info["steps"].sum() >= lq.n_neurons and np.all(info["converged"])
    assert np.all(
        layer_error(lq, q, q_b, inputs=X_hat, float_inputs=X)
        < layer_error(lq, *poor, inputs=X_hat, float_inputs=X)
    )
    _assert_one_opt(lq, q, q_b, X_hat, X)


def test_the_brute_force_one_opt_check_rejects_a_start_cd_can_improve():
    W, b, X_hat, X = _layer(1)
    lq = formulate_layer(W, b, X_hat, bits=3, float_inputs=X)
    poor = (np.full((6, 7), lq.weight_grid.q_min), np.zeros(6, dtype=np.int64))
    with pytest.raises(AssertionError):
        _assert_one_opt(lq, *poor, X_hat, X)


def test_cd_improves_gptq_strictly_on_some_layers():
    improved = 0
    for seed in range(10):
        W, b, X_hat, X = _layer(seed, n=8, f=10)
        lq = formulate_layer(W, b, X_hat, bits=2, float_inputs=X)
        gptq = layer_error(
            lq, *gptq_layer(W, b, X_hat, bits=2, float_inputs=X), inputs=X_hat, float_inputs=X
        ).sum()
        cd = layer_error(
            lq, *cd_layer(W, b, X_hat, bits=2, float_inputs=X), inputs=X_hat, float_inputs=X
        ).sum()
        improved += cd < gptq * (1 - 1e-6)
    assert improved >= 8


@pytest.mark.parametrize("rule", ["greedy", "cyclic"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_incremental_energies_match_layer_error(rule, per_channel):
    W, b, X_hat, X = _layer(7, n=10, f=12, m=60)
    options = {"bits": 3, "float_inputs": X, "per_channel": per_channel}
    lq = formulate_layer(W, b, X_hat, **options)
    # a poor start (every weight at q_min): many moves, so many incremental updates
    start = (np.full((10, 12), lq.weight_grid.q_min), np.zeros(10, dtype=np.int64))
    q, q_b, info = cd_layer(
        W, b, X_hat, start=start, sweeps=50, rule=rule, return_info=True, **options
    )
    assert info["steps"].min() >= 5
    np.testing.assert_allclose(
        info["start_energy"], layer_error(lq, *start, inputs=X_hat, float_inputs=X), rtol=1e-9
    )
    np.testing.assert_allclose(
        info["energy"], layer_error(lq, q, q_b, inputs=X_hat, float_inputs=X), rtol=1e-9
    )
    assert np.all(info["energy"] < info["start_energy"])


def test_affine_scheme_descends_from_rtn_on_the_offset_grid():
    W, b, X_hat, X = _layer(3)
    options = {"bits": 2, "float_inputs": X, "scheme": "affine", "per_channel": True}
    lq = formulate_layer(W, b, X_hat, **options)
    q, q_b, info = cd_layer(W, b, X_hat, return_info=True, **options)
    rtn = lq.rtn_integers()
    np.testing.assert_allclose(
        info["start_energy"], _direct_error(lq, rtn[:, :-1], rtn[:, -1], X_hat, X), rtol=1e-9
    )
    np.testing.assert_allclose(info["energy"], _direct_error(lq, q, q_b, X_hat, X), rtol=1e-9)
    assert np.all(info["energy"] <= info["start_energy"])
    _assert_one_opt(lq, q, q_b, X_hat, X)


def test_dead_inputs_keep_their_start_and_no_bias_stays_zero():
    W, _, X_hat, X = _layer(5)
    X_hat[:, 2] = 0.0  # a dead input: its weight cannot change the error
    lq = formulate_layer(W, None, X_hat, bits=3, float_inputs=X)
    start = (np.full((6, 7), lq.weight_grid.q_min), np.zeros(6, dtype=np.int64))
    q, q_b = cd_layer(W, None, X_hat, bits=3, float_inputs=X, start=start)
    assert np.all(q[:, 2] == lq.weight_grid.q_min) and np.all(q_b == 0)
    assert np.any(q != start[0])


def test_step_limit_stops_early_and_still_never_worse():
    W, b, X_hat, X = _layer(9, n=5, f=12, m=60)
    lq = formulate_layer(W, b, X_hat, bits=4, float_inputs=X)
    start = (np.full((5, 12), lq.weight_grid.q_max), np.zeros(5, dtype=np.int64))
    q, q_b, info = cd_layer(
        W, b, X_hat, bits=4, float_inputs=X, start=start, sweeps=1, return_info=True
    )
    assert info["steps"].max() <= 13 and not np.all(info["converged"])
    assert np.all(
        layer_error(lq, q, q_b, inputs=X_hat, float_inputs=X)
        <= layer_error(lq, *start, inputs=X_hat, float_inputs=X)
    )


# --- the exhaustive optimum of tiny layers -----------------------------------------------


def _enumerated_optimum(lq, X_hat, X):
    """The exact per-neuron minimum over all weight integers; the bias at its exact best
    integer for each (the rounded, clipped minimiser of its convex parabola)."""
    grid = lq.weight_grid
    rows = np.array(list(itertools.product(range(grid.q_min, grid.q_max + 1), repeat=lq.n_inputs)))
    best = np.full(lq.n_neurons, np.inf)
    target = X @ lq.values[:, :-1].T + lq.values[:, -1]
    steps = lq.bias_grid.step
    for row in rows:
        q = np.tile(row, (lq.n_neurons, 1))
        residual = target - X_hat @ grid.dequantize(q).T
        q_b = np.clip(np.rint(residual.mean(axis=0) / steps), INT32_MIN, INT32_MAX)
        best = np.minimum(best, _direct_error(lq, q, q_b.astype(np.int64), X_hat, X))
    return best


def test_cd_reaches_the_enumerated_optimum_in_most_seeds():
    hits = total = 0
    for seed in range(12):
        W, b, X_hat, X = _layer(seed, n=4, f=3, m=30)
        lq = formulate_layer(W, b, X_hat, bits=2, float_inputs=X)
        q, q_b = cd_layer(W, b, X_hat, bits=2, float_inputs=X)
        cd = layer_error(lq, q, q_b, inputs=X_hat, float_inputs=X)
        optimum = _enumerated_optimum(lq, X_hat, X)
        assert np.all(cd >= optimum * (1 - 1e-9))
        _assert_one_opt(lq, q, q_b, X_hat, X)
        hits += int(np.sum(cd <= optimum * (1 + 1e-9)))
        total += lq.n_neurons
    assert hits >= 0.75 * total, f"CD reached the optimum for {hits} of {total} neurons"


# --- GPTQ at its best setting ------------------------------------------------------------


def test_tuned_gptq_picks_the_grids_minimum():
    W, b, X_hat, X = _layer(4, n=8, f=10, m=50)
    options = {"bits": 2, "float_inputs": X}
    lq = formulate_layer(W, b, X_hat, **options)
    q, q_b, setting = tuned_gptq_layer(W, b, X_hat, **options)
    errors = {}
    for order, damp in itertools.product(GPTQ_GRID["act_order"], GPTQ_GRID["damp"]):
        result = gptq_layer(W, b, X_hat, act_order=order, damp=damp, **options)
        errors[order, damp] = layer_error(lq, *result, inputs=X_hat, float_inputs=X).sum()
    best = min(errors, key=errors.get)  # min keeps the first of equal values: grid order
    assert (setting["act_order"], setting["damp"]) == best
    assert setting["error"] == pytest.approx(errors[best], rel=1e-12)
    assert [(t["act_order"], t["damp"]) for t in setting["tried"]] == list(errors)
    np.testing.assert_array_equal(
        q, gptq_layer(W, b, X_hat, act_order=best[0], damp=best[1], **options)[0]
    )
    assert setting["error"] <= errors[True, 0.01]  # gptq_layer's default


def test_tuned_gptq_respects_fixed_settings_and_skips_singular_ones():
    W, b, X_hat, _ = _layer(6)
    _, _, setting = tuned_gptq_layer(W, b, X_hat, bits=3, act_order=False)
    assert {t["act_order"] for t in setting["tried"]} == {False} and len(setting["tried"]) == 3
    _, _, setting = tuned_gptq_layer(W, b, X_hat, bits=3, damp=0.05)
    assert [t["damp"] for t in setting["tried"]] == [0.05, 0.05]
    # 3 samples for 7 inputs: ÂᵀÂ is singular, so damp=0 cannot run
    grid = {"act_order": (True,), "damp": (0.0, 0.01)}
    _, _, setting = tuned_gptq_layer(W, b, X_hat[:3], bits=3, grid=grid)
    assert [t["damp"] for t in setting["tried"]] == [0.01]
    with pytest.raises(ValueError, match="none of the settings"):
        tuned_gptq_layer(W, b, X_hat[:3], bits=3, damp=0.0)


# --- a trained-ish layer: least squares on scikit-learn's digits -------------------------


def test_digits_least_squares_layer_cd_beats_gptq_at_int2():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    X = x / 16.0
    A = np.column_stack([X, np.ones(len(X))])
    coef = np.linalg.lstsq(A, np.eye(10)[y], rcond=None)[0].T
    W, b = coef[:, :64], coef[:, 64]
    lq = formulate_layer(W, b, X, bits=2)
    clock = time.perf_counter()
    gptq = layer_error(lq, *gptq_layer(W, b, X, bits=2), inputs=X).sum()
    gptq_time, clock = time.perf_counter() - clock, time.perf_counter()
    q, q_b, setting = tuned_gptq_layer(W, b, X, bits=2)
    tuned_time, clock = time.perf_counter() - clock, time.perf_counter()
    q_cd, q_b_cd, info = cd_layer(W, b, X, bits=2, return_info=True)
    cd_time = time.perf_counter() - clock
    cd = layer_error(lq, q_cd, q_b_cd, inputs=X).sum()
    print(
        f"\ndigits int2: GPTQ {gptq:.3f} ({gptq_time:.2f} s), tuned GPTQ "
        f"{setting['error']:.3f} {setting['act_order'], setting['damp']} ({tuned_time:.2f} s),"
        f" CD {cd:.3f} ({cd_time:.2f} s, {info['steps'].sum()} moves)"
    )
    assert cd < gptq and setting["error"] <= gptq and np.all(info["converged"])


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("sweeps", [0, -1, 1.5, True, "3"])
def test_bad_sweeps(sweeps):
    W, b, X_hat, _ = _layer(0)
    with pytest.raises(ValueError, match="sweeps"):
        cd_layer(W, b, X_hat, bits=2, sweeps=sweeps)


@pytest.mark.parametrize(
    "start, message",
    [
        ((np.zeros((6, 6), dtype=int), np.zeros(6, dtype=int)), r"start must have shapes"),
        ((np.zeros((6, 7), dtype=int), np.zeros(5, dtype=int)), r"start must have shapes"),
        (np.zeros((6, 7), dtype=int), r"start must be a pair"),
        ((np.full((6, 7), 0.5), np.zeros(6)), r"start must hold integers"),
        ((np.full((6, 7), 9), np.zeros(6, dtype=int)), r"start integer 9 .* outside"),
    ],
)
def test_bad_start(start, message):
    W, b, X_hat, _ = _layer(0)
    with pytest.raises(ValueError, match=message):
        cd_layer(W, b, X_hat, bits=2, start=start)


def test_bad_rule_and_bad_tuning_grid():
    W, b, X_hat, _ = _layer(0)
    with pytest.raises(ValueError, match="rule"):
        cd_layer(W, b, X_hat, bits=2, rule="random")
    with pytest.raises(ValueError, match="start integer 3 of neuron 0, entry 7"):
        cd_layer(W, None, X_hat, bits=2, start=(np.zeros((6, 7), int), np.full(6, 3)))
    with pytest.raises(ValueError, match="damp"):
        tuned_gptq_layer(W, b, X_hat, bits=2, damp=-1.0)
    with pytest.raises(ValueError, match="act_order"):
        tuned_gptq_layer(W, b, X_hat, bits=2, act_order="yes")
    with pytest.raises(ValueError, match="grid"):
        tuned_gptq_layer(W, b, X_hat, bits=2, grid={"damp": (0.01,)})
