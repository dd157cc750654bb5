"""The ridge: ``formulate_layer(ridge=r)`` is the exact QUBO of the squared output error plus
``λ ‖w − s q‖²`` (``λ = r ×`` the mean diagonal of ``X̂ᵀX̂``), from arrays and from input
statistics alike; its exact minimiser is nearer the float weights and no better on the
calibration error; the pipeline and the CLI take it for the qubo method only."""

import dimod
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from annealq import formulate_layer
from annealq.pipeline import quantize
from annealq.statistics import InputStatistics
from tests.test_properties import FAST, layers, neuron_samples


def _distance(lq, weight, i, sample):
    w_row, _ = lq.dequantize(i, sample)
    return float(np.sum((weight[i] - w_row) ** 2))


@FAST
@given(layer=layers(), ridge=st.sampled_from([1e-4, 0.01, 1.0, 30.0]), data=st.data())
def test_energy_is_the_output_error_plus_the_ridge_term(layer, ridge, data):
    weight, bias, inputs, float_inputs, bits, options = layer
    lq = formulate_layer(
        weight, bias, inputs, bits=bits, float_inputs=float_inputs, ridge=ridge, **options
    )
    lam = ridge * np.mean(np.sum(inputs**2, axis=0))
    target_inputs = inputs if float_inputs is None else float_inputs
    for i, bqm, sample, target in neuron_samples(lq, weight, bias, target_inputs, data):
        w_row, b_value = lq.dequantize(i, sample)
        want = float(np.sum((target - inputs @ w_row - b_value) ** 2)) + lam * _distance(
            lq, weight, i, sample
        )
        scale = float(
            np.sum(target**2)
            + np.sum((inputs @ w_row) ** 2)
            + lam * (np.sum(weight[i] ** 2) + np.sum(w_row**2))
            + 1e-300
        )
        assert abs(bqm.energy(sample) - want) <= 1e-9 * scale


def test_input_statistics_give_the_same_ridge_qubo_as_the_arrays():
    rng = np.random.default_rng(3)
    W, b = rng.normal(size=(3, 5)), rng.normal(size=3)
    X_hat = rng.normal(size=(40, 5))
    X = X_hat + 0.05 * rng.normal(size=X_hat.shape)
    stats = InputStatistics.from_arrays(X_hat, X)
    for window in (1, 2):
        a = formulate_layer(W, b, X_hat, float_inputs=X, bits=3, window_bits=window, ridge=0.05)
        s = formulate_layer(
            W,
            b,
            stats.inputs,
            float_inputs=stats.float_inputs,
            bits=3,
            window_bits=window,
            ridge=0.05,
        )
        for name in ("gram", "linear", "offset"):
            np.testing.assert_allclose(
                getattr(s, name),
                getattr(a, name),
                rtol=1e-9,
                atol=1e-9 * np.abs(getattr(a, name)).max(),
            )


def test_ridge_zero_is_the_unregularised_qubo_bit_for_bit():
    rng = np.random.default_rng(4)
    W, b, X = rng.normal(size=(2, 4)), rng.normal(size=2), rng.normal(size=(9, 4))
    plain, zero = formulate_layer(W, b, X, bits=2), formulate_layer(W, b, X, bits=2, ridge=0)
    for name in ("gram", "linear", "offset"):
        assert np.array_equal(getattr(plain, name), getattr(zero, name))


def test_the_exact_minimiser_moves_towards_the_float_weights_as_the_ridge_grows():
    """Between two exact minimisers over the same states, the larger ridge's is no farther
    from the float weights and no better on the output error alone."""
    rng = np.random.default_rng(5)
    W = rng.normal(size=(3, 5))
    X = rng.normal(size=(8, 5)) * np.array([1.0, 1.0, 0.05, 0.02, 1.0])  # two weak inputs
    solver = dimod.ExactSolver()
    previous, first = None, None
    for ridge in (0.0, 0.003, 0.03, 0.3, 3.0):
        lq = formulate_layer(W, None, X, bits=3, window_bits=2, ridge=ridge)
        plain = formulate_layer(W, None, X, bits=3, window_bits=2)
        rows = []
        for i in range(lq.n_neurons):
            best = solver.sample(lq.bqm(i)).first.sample
            rows.append((_distance(lq, W, i, best), plain.energy(i, best)))
        if previous is not None:
            for (distance, error), (distance_before, error_before) in zip(rows, previous):
                assert distance <= distance_before + 1e-12
                assert error >= error_before - 1e-12
        previous, first = rows, first or rows
    assert sum(d for d, _ in rows) < sum(d for d, _ in first)  # the ridge did pull


def test_pipeline_records_the_ridge_and_reports_the_plain_output_error():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    x = np.random.default_rng(0).normal(size=(30, 6)).astype(np.float32)
    plain = quantize(model, x, bits=2, solver="exact", cache=False, quiet=True)
    ridged = quantize(model, x, bits=2, solver="exact", cache=False, quiet=True, ridge=0.5)
    assert ridged.report["config"]["ridge"] == 0.5
    assert ridged.report["options"]["ridge"] == 0.5 and "ridge" not in plain.report["options"]
    first_plain, first_ridged = plain.layers[0], ridged.layers[0]
    # the same plain objective is reported: the ridge's optimum is no better on it
    assert first_ridged.energy >= first_plain.energy - 1e-9
    weight = model[0].weight.detach().double().numpy()

    def distance(layer):
        return float(np.sum((weight - layer.int_weight * layer.weight_step[:, None]) ** 2))

    assert distance(first_ridged) <= distance(first_plain) + 1e-12


@pytest.mark.parametrize(
    "options, message",
    [
        ({"ridge": -0.1}, "ridge must be a finite number >= 0, got -0.1"),
        ({"ridge": float("nan")}, "ridge must be a finite number >= 0"),
        ({"ridge": True}, "ridge must be a finite number >= 0"),
        ({"ridge": 0.01, "method": "gptq"}, "ridge regularises the qubo method's objective"),
    ],
)
def test_a_bad_ridge_is_a_clear_error(options, message):
    model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    x = np.zeros((5, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=message):
        quantize(model, x, bits=2, solver="exact", cache=False, quiet=True, **options)
