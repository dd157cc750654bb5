import itertools
import subprocess
import sys

import numpy as np
import pytest

from annealq import formulate_layer
from annealq.baselines import adaround_layer, gptq_layer, layer_error
from annealq.baselines.common import _gram_error
from annealq.grid import INT32_MAX, INT32_MIN

BITS = (2, 3, 4)


def _correlated_layer(seed, n=6, f=12, m=200, bias=True):
    """Inputs driven by a few latent factors: a non-diagonal Hessian, where RTN is poor."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(m, 3))
    X = latent @ rng.normal(size=(3, f)) + 0.3 * rng.normal(size=(m, f))
    W = rng.normal(size=(n, f)) * 0.2
    b = rng.normal(size=n) * 0.1 if bias else None
    return W, b, X


def _digits_layer():
    """scikit-learn's digits (64 inputs in [0, 1]) and a ridge-regression classifier layer."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    X = x[:400] / 16.0
    A = np.column_stack([X, np.ones(len(X))])
    targets = np.eye(10)[y[:400]]
    coef = np.linalg.solve(A.T @ A + 1.0 * np.eye(65), A.T @ targets).T
    return coef[:, :64], coef[:, 64], X


def _error(lq, q, q_b, X_hat, X=None):
    return float(layer_error(lq, q, q_b, inputs=X_hat, float_inputs=X).sum())


def _rtn_error(lq, X_hat, X=None):
    rtn = lq.rtn_integers()
    return _error(lq, rtn[:, :-1], rtn[:, -1], X_hat, X)


def _assert_on_grid(lq, q, q_b):
    assert q.dtype == np.int64 and q_b.dtype == np.int64
    assert q.shape == (lq.n_neurons, lq.n_inputs) and q_b.shape == (lq.n_neurons,)
    assert q.min() >= lq.weight_grid.q_min and q.max() <= lq.weight_grid.q_max
    assert q_b.min() >= INT32_MIN and q_b.max() <= INT32_MAX


# --- the exact error ---------------------------------------------------------------------


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("separate_float", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_layer_error_is_the_direct_formula_and_the_qubo_energy(per_channel, separate_float, bias):
    W, b, X_hat = _correlated_layer(3, n=4, f=5, m=30, bias=bias)
    rng = np.random.default_rng(4)
    X = X_hat + 0.2 * rng.normal(size=X_hat.shape) if separate_float else None
    lq = formulate_layer(W, b, X_hat, bits=3, float_inputs=X, per_channel=per_channel)
    X_target = X_hat if X is None else X
    b_float = np.zeros(4) if b is None else b

    # Any integers on the grid, far beyond down/up.
    q = rng.integers(lq.weight_grid.q_min, lq.weight_grid.q_max + 1, size=W.shape)
    q_b = rng.integers(-50, 50, size=4) if bias else np.zeros(4, dtype=np.int64)
    errors = layer_error(lq, q, q_b, inputs=X_hat, float_inputs=X)
    for i in range(4):
        s, s_b = lq.weight_grid.step[i], lq.bias_grid.step[i]
        direct = np.sum((X_target @ W[i] + b_float[i] - X_hat @ (s * q[i]) - s_b * q_b[i]) ** 2)
        assert errors[i] == pytest.approx(direct, rel=1e-12)

    # The Gram form the methods optimise is the same function.
    from annealq.baselines.common import _float_input_terms

    p, c = _float_input_terms(lq, X_hat, X) if separate_float else (None, None)
    np.testing.assert_allclose(_gram_error(lq, q, q_b, p, c), errors, rtol=1e-9)

    # On the QUBO's down/up choices it is the BQM's energy.
    for i in range(4):
        u = {v: int(rng.integers(2)) for v in lq.variables(i)}
        q_i, qb_i = lq.quantize(i, u)
        Q, Qb = lq.base[:, :-1].copy(), lq.base[:, -1].copy()
        Q[i], Qb[i] = q_i, qb_i
        assert layer_error(lq, Q, Qb, inputs=X_hat, float_inputs=X)[i] == pytest.approx(
            lq.bqm(i).energy(u), rel=1e-9
        )


def test_layer_error_rejects_mismatched_arguments():
    W, b, X = _correlated_layer(0)
    lq = formulate_layer(W, b, X, bits=2)
    q, q_b = lq.base[:, :-1], lq.base[:, -1]
    with pytest.raises(ValueError, match="int_weight must have shape"):
        layer_error(lq, q[:, 1:], q_b, inputs=X)
    with pytest.raises(ValueError, match="int_bias must have shape"):
        layer_error(lq, q, q_b[1:], inputs=X)
    with pytest.raises(ValueError, match="inputs must have shape"):
        layer_error(lq, q, q_b, inputs=X[1:])
    with pytest.raises(ValueError, match="not the inputs the layer's formulation"):
        layer_error(lq, q, q_b, inputs=X + 1.0)


# --- GPTQ ---------------------------------------------------------------------------------

LAYERS = {
    "correlated": lambda: _correlated_layer(1),
    "digits": _digits_layer,
    "correlated-no-bias": lambda: _correlated_layer(2, bias=False),
}


@pytest.mark.parametrize("act_order", [True, False])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_gptq_is_on_the_grid_and_beats_rtn(layer, bits, per_channel, act_order):
    W, b, X = LAYERS[layer]()
    lq = formulate_layer(W, b, X, bits=bits, per_channel=per_channel)
    q, q_b = gptq_layer(W, b, X, bits=bits, per_channel=per_channel, act_order=act_order)
    _assert_on_grid(lq, q, q_b)
    if b is None:
        assert not q_b.any()
    assert _error(lq, q, q_b, X) < 0.6 * _rtn_error(lq, X)  # measured 0.06–0.46


@pytest.mark.parametrize("bits", BITS)
def test_gptq_gains_most_at_low_bits_on_digits(bits):
    W, b, X = _digits_layer()
    lq = formulate_layer(W, b, X, bits=bits)
    ratio = _error(lq, *gptq_layer(W, b, X, bits=bits), X) / _rtn_error(lq, X)
    # Measured 0.14–0.24; the point is a large gain, not a tie.
    assert ratio < 0.4


def _orthogonal_inputs(m, f, seed):
    """Columns orthogonal to each other and to 1, of different norms: ÂᵀÂ is diagonal."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(np.column_stack([np.ones(m), rng.normal(size=(m, f))]))
    return basis[:, 1:] * rng.uniform(0.5, 5.0, size=f)


@pytest.mark.parametrize("act_order", [True, False])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("bias", [True, False])
def test_gptq_with_a_diagonal_hessian_is_rtn(bits, per_channel, act_order, bias):
    rng = np.random.default_rng(bits)
    X = _orthogonal_inputs(40, 10, seed=bits)
    W, b = rng.normal(size=(5, 10)), (rng.normal(size=5) if bias else None)
    lq = formulate_layer(W, b, X, bits=bits, per_channel=per_channel)
    gram = lq.gram if bias else lq.gram[:-1, :-1]
    assert np.abs(gram - np.diag(np.diag(gram))).max() < 1e-12  # the premise
    q, q_b = gptq_layer(W, b, X, bits=bits, per_channel=per_channel, act_order=act_order)
    rtn = lq.rtn_integers()
    np.testing.assert_array_equal(q, rtn[:, :-1])
    np.testing.assert_array_equal(q_b, rtn[:, -1])


def test_gptq_lazy_batches_do_not_change_the_result():
    W, b, X = _digits_layer()
    results = [gptq_layer(W, b, X, bits=3, block_size=size) for size in (1, 7, 64, 128)]
    for q, q_b in results[1:]:
        np.testing.assert_array_equal(q, results[0][0])
        np.testing.assert_array_equal(q_b, results[0][1])


def test_gptq_act_order_changes_the_order_not_the_validity():
    W, b, X = _digits_layer()
    lq = formulate_layer(W, b, X, bits=2)
    with_order = gptq_layer(W, b, X, bits=2, act_order=True)
    without = gptq_layer(W, b, X, bits=2, act_order=False)
    assert not np.array_equal(with_order[0], without[0])
    for q, q_b in (with_order, without):
        _assert_on_grid(lq, q, q_b)
        assert _error(lq, q, q_b, X) < _rtn_error(lq, X)


def _brute_force_optimum(lq, X_hat, X):
    """Each neuron's exact optimum over the FULL weight grid; the bias is solved exactly.

    Given the weights, the error is a 1-D convex quadratic in the integer bias, minimised
    at the floor or the ceiling of its real minimiser.
    """
    n, f = lq.n_neurons, lq.n_inputs
    W, b = lq.values[:, :f], lq.values[:, f]
    grid = np.arange(lq.weight_grid.q_min, lq.weight_grid.q_max + 1)
    candidates = np.array(list(itertools.product(grid, repeat=f)))  # (K, f)
    best = np.empty(n)
    for i in range(n):
        s, s_b = lq.weight_grid.step[i], lq.bias_grid.step[i]
        residual = (X @ W[i] + b[i])[:, None] - X_hat @ (s * candidates).T  # (m, K)
        if lq.has_bias:
            real = residual.mean(axis=0) / s_b
            errors = np.minimum(
                *(
                    np.sum((residual - s_b * qb) ** 2, axis=0)
                    for qb in (np.floor(real), np.ceil(real))
                )
            )
        else:
            errors = np.sum(residual**2, axis=0)
        best[i] = errors.min()
    return best


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize(
    "bits,f,bias", [(2, 4, True), (3, 3, True), (4, 2, True), (2, 5, False), (3, 3, False)]
)
def test_gptq_and_adaround_against_the_exact_optimum(bits, f, bias, per_channel):
    W, b, X = _correlated_layer(10 * bits + f, n=2, f=f, m=30, bias=bias)
    lq = formulate_layer(W, b, X, bits=bits, per_channel=per_channel)
    optimum = _brute_force_optimum(lq, X, X)
    rtn = lq.rtn_integers()
    rtn_errors = layer_error(lq, rtn[:, :-1], rtn[:, -1], inputs=X)
    assert np.all(optimum <= rtn_errors * (1 + 1e-12))
    for method in (gptq_layer, adaround_layer):
        options = {"iterations": 300} if method is adaround_layer else {}
        q, q_b = method(W, b, X, bits=bits, per_channel=per_channel, **options)
        _assert_on_grid(lq, q, q_b)
        errors = layer_error(lq, q, q_b, inputs=X)
        assert np.all(errors >= optimum * (1 - 1e-9))
        assert errors.sum() <= rtn_errors.sum() * (1 + 1e-12)


def test_gptq_dead_inputs_round_to_nearest_and_do_not_matter():
    W, b, X = _correlated_layer(5)
    X[:, [2, 7]] = 0.0
    lq = formulate_layer(W, b, X, bits=2)
    q, q_b = gptq_layer(W, b, X, bits=2)
    _assert_on_grid(lq, q, q_b)
    np.testing.assert_array_equal(q[:, [2, 7]], lq.rtn_integers()[:, [2, 7]])
    moved = q.copy()
    moved[:, [2, 7]] = lq.weight_grid.q_min
    np.testing.assert_allclose(
        layer_error(lq, moved, q_b, inputs=X), layer_error(lq, q, q_b, inputs=X), rtol=1e-12
    )
    assert _error(lq, q, q_b, X) < _rtn_error(lq, X)
    # Their unit diagonal keeps the Hessian positive definite even without damping.
    q0, q0_b = gptq_layer(W, b, X, bits=2, damp=0.0)
    np.testing.assert_array_equal(q0[:, [2, 7]], lq.rtn_integers()[:, [2, 7]])
    assert _error(lq, q0, q0_b, X) < _rtn_error(lq, X)


def test_gptq_targets_the_float_network_when_inputs_differ():
    W, b, X = _correlated_layer(6)
    X_hat = 1.3 * X + 0.01 * np.random.default_rng(0).normal(size=X.shape)
    lq = formulate_layer(W, b, X_hat, bits=4, float_inputs=X)
    refit = gptq_layer(W, b, X_hat, bits=4, float_inputs=X)
    naive = gptq_layer(W, b, X_hat, bits=4)  # aims at X̂ Wᵀ + b, the wrong target
    _assert_on_grid(lq, *refit)
    assert _error(lq, *refit, X_hat, X) < 0.1 * _error(lq, *naive, X_hat, X)  # 0.02
    assert _error(lq, *refit, X_hat, X) < 0.1 * _rtn_error(lq, X_hat, X)


def test_gptq_with_float_inputs_equal_to_inputs_is_unchanged():
    W, b, X = _digits_layer()
    same = gptq_layer(W, b, X, bits=3, float_inputs=X.copy())
    plain = gptq_layer(W, b, X, bits=3)
    np.testing.assert_array_equal(same[0], plain[0])
    np.testing.assert_array_equal(same[1], plain[1])


@pytest.mark.parametrize(
    "options,error",
    [
        ({"damp": -0.1}, ValueError),
        ({"damp": float("nan")}, ValueError),
        ({"block_size": 0}, ValueError),
        ({"block_size": 2.5}, ValueError),
        ({"act_order": "yes"}, TypeError),
    ],
)
def test_gptq_rejects_bad_options(options, error):
    W, b, X = _correlated_layer(0)
    with pytest.raises(error, match=next(iter(options))):
        gptq_layer(W, b, X, bits=2, **options)


def test_gptq_without_damping_needs_a_positive_definite_hessian():
    W, b, X = _correlated_layer(0, m=5)  # 5 samples, 13 columns: singular
    with pytest.raises(ValueError, match="not positive definite"):
        gptq_layer(W, b, X, bits=2, damp=0.0)
    q, q_b = gptq_layer(W, b, X, bits=2)  # damped: fine
    _assert_on_grid(formulate_layer(W, b, X, bits=2), q, q_b)


# --- AdaRound -----------------------------------------------------------------------------


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("bits", BITS)
def test_adaround_rounds_down_or_up_and_beats_rtn(bits, per_channel):
    W, b, X = _correlated_layer(7)
    lq = formulate_layer(W, b, X, bits=bits, per_channel=per_channel)
    q, q_b = adaround_layer(W, b, X, bits=bits, per_channel=per_channel, iterations=500)
    _assert_on_grid(lq, q, q_b)
    u = np.column_stack([q, q_b]) - lq.base
    assert set(np.unique(u[lq.free])) <= {0, 1} and not u[~lq.free].any()  # the QUBO's space
    assert _error(lq, q, q_b, X) < 0.7 * _rtn_error(lq, X)  # measured 0.23–0.51


def test_adaround_on_digits_beats_rtn():
    W, b, X = _digits_layer()
    lq = formulate_layer(W, b, X, bits=2)
    q, q_b = adaround_layer(W, b, X, bits=2, iterations=500)
    assert _error(lq, q, q_b, X) < 0.5 * _rtn_error(lq, X)


def test_adaround_is_deterministic_and_restores_torch_threads():
    import torch

    W, b, X = _correlated_layer(8)
    threads = torch.get_num_threads()
    runs = [adaround_layer(W, b, X, bits=2, iterations=200, seed=seed) for seed in (0, 0, 1)]
    assert torch.get_num_threads() == threads
    for q, q_b in runs[1:]:  # nothing is random: the seed changes nothing either
        np.testing.assert_array_equal(q, runs[0][0])
        np.testing.assert_array_equal(q_b, runs[0][1])


def test_adaround_regulariser_decides_the_rounding():
    # With no regulariser and no iterations to speak of, h(V) stays the fractional part:
    # the hard rounding is round-to-nearest. Training moves it away from RTN.
    W, b, X = _correlated_layer(9)
    lq = formulate_layer(W, b, X, bits=2)
    rtn = lq.rtn_integers()
    q, q_b = adaround_layer(W, b, X, bits=2, iterations=1, lr=1e-9, reg_weight=0.0)
    np.testing.assert_array_equal(np.column_stack([q, q_b]), rtn)
    trained = adaround_layer(W, b, X, bits=2, iterations=300)
    assert not np.array_equal(trained[0], rtn[:, :-1])


def test_adaround_targets_the_float_network_when_inputs_differ():
    W, b, X = _correlated_layer(6)
    X_hat = 1.3 * X + 0.01 * np.random.default_rng(0).normal(size=X.shape)
    lq = formulate_layer(W, b, X_hat, bits=4, float_inputs=X)
    aware = adaround_layer(W, b, X_hat, bits=4, float_inputs=X, iterations=500)
    naive = adaround_layer(W, b, X_hat, bits=4, iterations=500)
    assert _error(lq, *aware, X_hat, X) < 0.3 * _error(lq, *naive, X_hat, X)  # 0.1
    assert _error(lq, *aware, X_hat, X) < _rtn_error(lq, X_hat, X)


@pytest.mark.parametrize(
    "options",
    [
        {"iterations": 0},
        {"reg_weight": -1.0},
        {"beta": (2, 20)},
        {"beta": 3},
        {"warmup": 1.0},
        {"lr": 0.0},
        {"seed": 1.5},
    ],
)
def test_adaround_rejects_bad_options(options):
    W, b, X = _correlated_layer(0)
    with pytest.raises(ValueError, match=next(iter(options))):
        adaround_layer(W, b, X, bits=2, **options)


def test_importing_baselines_imports_neither_torch_nor_scipy_linalg():
    code = (
        "import sys, annealq.baselines; "
        "print('torch' in sys.modules or 'scipy.linalg' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("separate_float", [False, True])
def test_gptq_sharing_a_dampings_factorisation_changes_no_integer(separate_float):
    from annealq.baselines.gptq import gptq_rounding

    W, b, X = _correlated_layer(3)
    X_hat = X + 0.05 * np.random.default_rng(4).normal(size=X.shape) if separate_float else X
    float_inputs = X if separate_float else None
    lq = formulate_layer(W, b, X_hat, bits=3, float_inputs=float_inputs)
    shared = {}
    for damp, act_order in itertools.product((0.01, 0.001), (True, False)):
        alone = gptq_layer(
            W, b, X_hat, bits=3, float_inputs=float_inputs, damp=damp, act_order=act_order
        )
        again = gptq_rounding(
            lq, X_hat, float_inputs, damp=damp, act_order=act_order, shared=shared
        )
        assert all(np.array_equal(a, c) for a, c in zip(alone, again))
    assert sorted(k for k in shared if k != "p") == [0.001, 0.01]
