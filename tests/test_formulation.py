import itertools

import dimod
import numpy as np
import pytest

from annealq import formulate_layer


def _layer(seed, n=3, f=4, m=12, edge=False, separate_float=False):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n, f))
    if edge:  # put weights exactly on the clipping edges of the grid
        peak = np.abs(W).max()
        W[0, 0], W[1, 1] = peak, -peak
    b = rng.normal(size=n)
    X_hat = rng.normal(size=(m, f))
    X = X_hat + 0.1 * rng.normal(size=(m, f)) if separate_float else None
    return W, b, X_hat, X


def _squared_error(W, b, X_hat, X, i, w_row, bias):
    X = X_hat if X is None else X
    return float(np.sum((X @ W[i] + b[i] - X_hat @ w_row - bias) ** 2))


CASES = [
    dict(bits=bits, per_channel=pc, separate_float=sf, edge=edge, scheme=scheme)
    for bits in (1, 2, 3, 8)
    for pc in (False, True)
    for sf in (False, True)
    for edge in (False, True)
    for scheme in ("reference", "symmetric", "affine")
    if not (scheme == "symmetric" and bits == 1)
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_every_assignment_energy_equals_squared_error(case):
    W, b, X_hat, X = _layer(
        case["bits"] * 7 + case["per_channel"],
        edge=case["edge"],
        separate_float=case["separate_float"],
    )
    lq = formulate_layer(
        W,
        b,
        X_hat,
        bits=case["bits"],
        float_inputs=X,
        per_channel=case["per_channel"],
        scheme=case["scheme"],
    )
    for i in range(lq.n_neurons):
        bqm = lq.bqm(i)
        assert bqm.vartype is dimod.BINARY
        labels = list(bqm.variables)
        assert set(labels) == set(lq.variables(i))
        energies = []
        for bits in itertools.product((0, 1), repeat=len(labels)):
            u = dict(zip(labels, bits))
            w_row, bias = lq.dequantize(i, u)
            error = _squared_error(W, b, X_hat, X, i, w_row, bias)
            assert bqm.energy(u) == pytest.approx(error, rel=1e-9, abs=1e-12)
            assert lq.energy(i, u) == pytest.approx(error, rel=1e-9, abs=1e-12)
            energies.append(error)
        rtn = lq.rtn_sample(i)
        q_rtn, qb_rtn = lq.quantize(i, rtn)
        np.testing.assert_array_equal(q_rtn, lq.weight_grid.rtn(W)[i])
        w_rtn = lq.weight_grid.dequantize(lq.weight_grid.rtn(W))[i]
        b_rtn = lq.bias_grid.step[i] * np.rint(b[i] / lq.bias_grid.step[i])
        rtn_error = _squared_error(W, b, X_hat, X, i, w_rtn, b_rtn)
        assert bqm.energy(rtn) == pytest.approx(rtn_error, rel=1e-9)
        assert min(energies) <= rtn_error * (1 + 1e-12)


def test_quantized_integers_are_admissible_down_or_up_choices():
    W, b, X_hat, _ = _layer(3, n=5, f=6, edge=True)
    lq = formulate_layer(W, b, X_hat, bits=2)
    s = lq.weight_grid.step[:, None]
    for i in range(lq.n_neurons):
        for value in (0, 1):
            q, _ = lq.quantize(i, {v: value for v in lq.variables(i)})
            assert q.min() >= -2 and q.max() <= 1
            assert np.all(
                (q == np.floor(W[i] / s[i]))
                | (q == np.floor(W[i] / s[i]) + 1)
                | (q == np.clip(np.rint(W[i] / s[i]), -2, 1))
            )
    # the largest positive weight sits at 2^(B-1), beyond q_max: it is fixed, not a variable
    assert ("w", 0) not in lq.variables(0)


def test_layer_error_is_the_sum_of_neuron_energies():
    rng = np.random.default_rng(5)
    W, b, X_hat = rng.normal(size=(7, 10)), rng.normal(size=7), rng.normal(size=(30, 10))
    X = X_hat + 0.05 * rng.normal(size=X_hat.shape)
    lq = formulate_layer(W, b, X_hat, bits=3, float_inputs=X)
    samples = [{v: int(rng.integers(2)) for v in lq.variables(i)} for i in range(7)]
    q, qb = lq.decode(samples)
    W_q = q * lq.weight_grid.step[:, None]
    b_q = qb * lq.bias_grid.step
    frobenius = np.sum((X @ W.T + b - X_hat @ W_q.T - b_q) ** 2)
    total = sum(bqm.energy(s) for bqm, s in zip(lq.bqms(), samples))
    assert total == pytest.approx(frobenius, rel=1e-9)


def test_energies_of_many_neurons_equal_each_neurons_energy():
    rng = np.random.default_rng(6)
    W, b, X_hat = rng.normal(size=(6, 9)), rng.normal(size=6), rng.normal(size=(25, 9))
    for window_bits in (1, 3):
        lq = formulate_layer(W, b, X_hat, bits=3, window_bits=window_bits)
        samples = [{v: int(rng.integers(2)) for v in lq.variables(i)} for i in range(6)]
        states = np.stack([lq.assignment(i, s) for i, s in enumerate(samples)])
        each = [lq.energy(i, s) for i, s in enumerate(samples)]
        assert lq.energies(states) == pytest.approx(each, rel=1e-12)
        assert lq.energies(states[[4, 1]], [4, 1]) == pytest.approx([each[4], each[1]], rel=1e-12)


def test_layer_without_bias_has_no_bias_variable():
    W, _, X_hat, _ = _layer(2)
    lq = formulate_layer(W, None, X_hat, bits=2)
    assert all(("b",) not in lq.variables(i) for i in range(lq.n_neurons))
    u = lq.rtn_sample(0)
    w_row, bias = lq.dequantize(0, u)
    assert bias == 0.0
    assert lq.bqm(0).energy(u) == pytest.approx(np.sum((X_hat @ (W[0] - w_row)) ** 2))


def test_quantized_inputs_give_bias_step_input_step_times_weight_step():
    W, b, X_hat, _ = _layer(4)
    lq = formulate_layer(W, b, X_hat, bits=4, input_step=0.02)
    np.testing.assert_allclose(lq.bias_grid.step, 0.02 * lq.weight_grid.step)


def test_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    W, b, X_hat, _ = _layer(6)
    lq = formulate_layer(
        torch.tensor(W, requires_grad=True),
        torch.tensor(b),
        torch.tensor(X_hat, dtype=torch.float32),
        bits=2,
    )
    assert lq.n_neurons == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(weight=np.ones(3)), "weight must be a non-empty 2-D"),
        (dict(bias=np.ones(2)), r"bias must have shape \(3,\)"),
        (dict(inputs=np.ones((5, 2))), "inputs has 2 features"),
        (dict(inputs=np.ones((0, 4))), "calibration set"),
        (dict(weight=np.full((3, 4), np.nan)), "weight contains NaN"),
        (dict(inputs=np.full((5, 4), np.inf)), "inputs contains NaN or Inf"),
        (dict(float_inputs=np.ones((6, 4))), "float_inputs has 6 rows"),
        (dict(bits=0), "bits"),
        (dict(bits=9), "bits"),
    ],
)
def test_bad_input_gets_a_clear_error(kwargs, message):
    args = dict(weight=np.ones((3, 4)), bias=np.ones(3), inputs=np.ones((5, 4)), bits=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        formulate_layer(args.pop("weight"), args.pop("bias"), args.pop("inputs"), **args)


def test_sample_missing_a_variable_is_a_clear_error():
    W, b, X_hat, _ = _layer(8)
    lq = formulate_layer(W, b, X_hat, bits=2)
    sample = lq.rtn_sample(0)
    sample.pop(next(iter(sample)))
    with pytest.raises(ValueError, match="no value for variable"):
        lq.dequantize(0, sample)


WINDOW_CASES = [
    dict(bits=bits, window_bits=k, per_channel=pc, separate_float=sf, bias=bias)
    for bits in (2, 3, 4)
    for k in (2, 3)
    for pc in (False, True)
    for sf in (False, True)
    for bias in (True, False)
]


@pytest.mark.parametrize(
    "case", WINDOW_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items())
)
def test_window_formulation_is_exact_for_every_assignment(case):
    rng = np.random.default_rng(case["bits"] * 10 + case["window_bits"])
    n, f, m = 2, 2, 10
    W, b, X_hat = rng.normal(size=(n, f)), rng.normal(size=n), rng.normal(size=(m, f))
    X = X_hat + 0.1 * rng.normal(size=X_hat.shape) if case["separate_float"] else None
    lq = formulate_layer(
        W,
        b if case["bias"] else None,
        X_hat,
        bits=case["bits"],
        float_inputs=X,
        per_channel=case["per_channel"],
        window_bits=case["window_bits"],
        bias_window_bits=2,
    )
    k = min(case["window_bits"], case["bits"])
    q_min, q_max = -(2 ** (case["bits"] - 1)), 2 ** (case["bits"] - 1) - 1
    for i in range(n):
        labels = lq.variables(i)
        assert len(labels) == f * k + (2 if case["bias"] else 0)
        reached = set()
        for bits in itertools.product((0, 1), repeat=len(labels)):
            u = dict(zip(labels, bits))
            q, q_b = lq.quantize(i, u)
            assert q.min() >= q_min and q.max() <= q_max  # every state is admissible
            reached.add(int(q[0]))
            w_row, bias = lq.dequantize(i, u)
            error = _squared_error(W, b if case["bias"] else np.zeros(n), X_hat, X, i, w_row, bias)
            assert lq.bqm(i).energy(u) == pytest.approx(error, rel=1e-9, abs=1e-12)
        assert len(reached) == 2**k  # the window: 2^k consecutive grid values
        if k == case["bits"]:
            assert reached == set(range(q_min, q_max + 1))  # the whole grid: no restriction
        rtn = lq.rtn_sample(i)
        np.testing.assert_array_equal(lq.quantize(i, rtn)[0], lq.weight_grid.rtn(W)[i])


def test_window_centred_on_given_integers_represents_them():
    rng = np.random.default_rng(1)
    W, b, X = rng.normal(size=(3, 5)), rng.normal(size=3), rng.normal(size=(20, 5))
    lq = formulate_layer(W, b, X, bits=4)
    far = lq.rtn_integers() + rng.integers(-3, 4, size=(3, 6))  # GPTQ-like moves
    far[:, :-1] = np.clip(far[:, :-1], -8, 7)
    wide = formulate_layer(W, b, X, bits=4, window_bits=2, center=far)
    states = wide.states(far)
    for i in range(3):
        q = wide.integers(i, states[i])
        np.testing.assert_array_equal(q, far[i])
    with pytest.raises(ValueError, match="outside its window"):
        wide.states(far + 5)


def test_wider_windows_never_do_worse_than_down_up():
    rng = np.random.default_rng(2)
    W, b, X = rng.normal(size=(2, 4)), rng.normal(size=2), rng.normal(size=(30, 4))
    narrow, wide = (formulate_layer(W, b, X, bits=3, window_bits=k) for k in (1, 2))
    for i in range(2):
        best = [
            min(
                lq.bqm(i).energy(dict(zip(lq.variables(i), u)))
                for u in itertools.product((0, 1), repeat=len(lq.variables(i)))
            )
            for lq in (narrow, wide)
        ]
        assert best[1] <= best[0] + 1e-9


def test_window_bits_out_of_range_is_a_clear_error():
    with pytest.raises(ValueError, match="window_bits"):
        formulate_layer(np.ones((2, 2)), np.ones(2), np.ones((3, 2)), bits=2, window_bits=0)


def test_select_keeps_the_affine_offset_of_each_row():
    rng = np.random.default_rng(5)
    W, b, X = rng.normal(size=(4, 6)), rng.normal(size=4), rng.normal(size=(30, 6))
    lq = formulate_layer(W, b, X, bits=2, scheme="affine", per_channel=True)
    sub = lq.select([3, 1])
    for row, i in enumerate([3, 1]):
        sample = lq.rtn_sample(i)
        full_w, full_b = lq.dequantize(i, sample)
        sub_w, sub_b = sub.dequantize(row, sample)
        np.testing.assert_array_equal(sub_w, full_w)
        assert sub_b == full_b
        assert sub.energy(row, sample) == lq.energy(i, sample)
