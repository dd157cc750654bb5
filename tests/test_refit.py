"""Clip search and re-fitted steps: the reported energy is the error of the saved integers,
steps and bias; re-fitting never raises a layer's error; clip search never raises the
weights' rounding error; the fit is the least-squares optimum."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import annealq
from annealq.baselines import baseline_rechoose, layer_error, tuned_gptq_layer
from annealq.baselines.gptq import gptq_layer
from annealq.formulation import formulate_layer
from annealq.grid import CLIP_RATIOS, weight_grid
from annealq.refit import fit_scales, input_gram, neuron_terms, refit_layer

FAST = settings(max_examples=25, deadline=None, derandomize=True, database=None)


def _model_and_data(seed=0, f=8, hidden=6, m=80):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(f, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 3)
    )
    x = np.random.default_rng(seed).normal(size=(m, f)).astype(np.float32)
    return model, x


@pytest.mark.parametrize(
    "method, options",
    [
        ("gptq", {}),
        ("cd", {"clip_search": True}),
        ("rtn", {"group_size": 3}),
        ("qubo", {"solver": "kbest"}),
    ],
)
def test_refit_energy_is_the_error_of_the_saved_integers_steps_and_bias(tmp_path, method, options):
    model, x = _model_and_data()
    result = annealq.quantize(
        model,
        x,
        bits=2,
        method=method,
        refit_steps=True,
        cache=False,
        quiet=True,
        seed=0,
        **options,
    )
    path = tmp_path / "refit.safetensors"
    result.save(path)
    loaded = annealq.load(path)
    with torch.no_grad():  # each layer's inputs in the float and the quantized network
        x_t = torch.from_numpy(x)
        float_rows = [x_t, model[1](model[0](x_t))]
        rows = [x_t, loaded.model[1](loaded.model[0](x_t))]
    for layer, module, inputs, float_inputs in zip(
        loaded.layers, (model[0], model[2]), rows, float_rows
    ):
        inputs, float_inputs = inputs.double().numpy(), float_inputs.double().numpy()
        W = module.weight.detach().double().numpy()
        b = module.bias.detach().double().numpy()
        steps = np.repeat(
            layer.weight_step.reshape(len(W), -1), layer.group_size or W.shape[1], axis=1
        )[:, : W.shape[1]]
        output = inputs @ (layer.int_weight * steps).T + layer.int_bias * layer.bias_step
        error = np.sum((float_inputs @ W.T + b - output) ** 2)
        assert layer.energy == pytest.approx(error, rel=1e-9)
        assert layer.refit["energy"] == pytest.approx(error, rel=1e-9)
        assert layer.refit["energy"] <= layer.refit["start_energy"]


@st.composite
def layer_cases(draw):
    n, f, m = draw(st.integers(1, 4)), draw(st.integers(1, 7)), draw(st.integers(2, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weight = rng.standard_t(3, size=(n, f)) * draw(st.sampled_from([1e-2, 1.0, 30.0]))
    bias = rng.normal(size=n) if draw(st.booleans()) else None
    inputs = rng.normal(size=(m, f))
    float_inputs = inputs + 0.1 * rng.normal(size=(m, f)) if draw(st.booleans()) else None
    grid = draw(
        st.sampled_from(
            [
                {},
                {"per_channel": True},
                {"group_size": 2},
                {"scheme": "symmetric", "clip_search": True},
            ]
        )
    )
    return weight, bias, inputs, float_inputs, draw(st.integers(2, 4)), grid


@FAST
@given(case=layer_cases(), rounding=st.sampled_from(["rtn", "gptq", "cd"]))
def test_refitting_never_raises_a_layers_error(case, rounding):
    W, b, X_hat, X, bits, grid = case

    def formulate(scale=None):
        return formulate_layer(W, b, X_hat, bits=bits, float_inputs=X, step_scale=scale, **grid)

    def rechoose(scale, layer, start):
        if rounding == "rtn":
            return layer.rtn_integers()
        return baseline_rechoose(
            rounding,
            W,
            b,
            X_hat,
            bits=bits,
            start=start,
            setting={"act_order": True, "damp": 0.01},
            float_inputs=X,
            step_scale=scale,
            **grid,
        )

    lq = formulate()
    q = np.column_stack(gptq_layer(W, b, X_hat, bits=bits, float_inputs=X, **grid))
    before = layer_error(lq, q[:, :-1], q[:, -1], inputs=X_hat, float_inputs=X)
    layer, q2, info = refit_layer(lq, q, X_hat, X, formulate=formulate, rechoose=rechoose)
    after = layer_error(layer, q2[:, :-1], q2[:, -1], inputs=X_hat, float_inputs=X)
    scale = 1e-9 * (before.sum() + np.sum((X_hat if X is None else X) ** 2) * np.sum(W**2))
    assert np.all(after <= before + scale)  # neuron by neuron
    assert after.sum() == pytest.approx(info["energy"], rel=1e-9, abs=scale)
    assert np.all((q2[:, :-1] >= layer.weight_grid.q_min) & (q2[:, :-1] <= layer.weight_grid.q_max))


@FAST
@given(
    seed=st.integers(0, 2**32 - 1),
    bits=st.integers(1, 6),
    grid=st.sampled_from(
        [
            {},
            {"per_channel": True},
            {"group_size": 3},
            {"scheme": "symmetric"},
            {"scheme": "affine", "per_channel": True},
        ]
    ),
)
def test_clip_search_never_raises_the_weights_rounding_error(seed, bits, grid):
    if grid.get("scheme") == "symmetric" and bits == 1:
        bits = 2
    W = np.random.default_rng(seed).standard_t(2, size=(5, 11))
    plain = weight_grid(W, bits, **grid)
    clipped = weight_grid(W, bits, clip_search=True, **grid)
    assert np.all(clipped.row_errors(W) <= plain.row_errors(W))
    ratio = clipped.step / np.broadcast_to(plain.step, clipped.step.shape)
    assert np.all(np.isin(np.round(ratio, 12), CLIP_RATIOS))


def test_clip_search_shrinks_heavy_tailed_rows_and_tuned_gptq_keeps_the_better_grid():
    rng = np.random.default_rng(3)
    W, X = rng.standard_t(2, size=(6, 20)), rng.normal(size=(200, 20))
    clipped = weight_grid(W, 2, clip_search=True)
    assert np.any(clipped.step < weight_grid(W, 2).step)
    q, q_b, setting = tuned_gptq_layer(W, None, X, bits=2, clip_search=True)
    plain = tuned_gptq_layer(W, None, X, bits=2)[2]
    assert len(setting["tried"]) == 2 * len(plain["tried"])
    assert setting["error"] <= plain["error"]
    lq = formulate_layer(W, None, X, bits=2, clip_search=setting["clip_search"])
    assert layer_error(lq, q, q_b, inputs=X).sum() == pytest.approx(setting["error"])


@pytest.mark.parametrize("group_size, has_bias", [(None, True), (4, True), (3, False)])
def test_fit_scales_is_the_least_squares_optimum(group_size, has_bias):
    rng = np.random.default_rng(1)
    n, f, m = 3, 10, 50
    X = rng.normal(size=(m, f))
    X_float = X + 0.05 * rng.normal(size=(m, f))
    W, b = rng.normal(size=(n, f)), rng.normal(size=n) if has_bias else None
    lq = formulate_layer(W, b, X, bits=3, float_inputs=X_float, group_size=group_size)
    q = lq.rtn_integers()
    energy, projection, v = neuron_terms(lq, q, X, X_float)
    theta, beta = fit_scales(input_gram(X), projection, v, group_size=group_size, has_bias=has_bias)
    g = group_size or f
    for i in range(n):  # the same fit by numpy's least squares on the rows themselves
        columns = [X[:, k : k + g] @ v[i, :f][k : k + g] for k in range(0, f, g)]
        design = np.column_stack(columns + ([np.ones(m)] if has_bias else []))
        target = X_float @ W[i] + (b[i] if has_bias else 0.0)
        expected = np.linalg.lstsq(design, target, rcond=None)[0]
        got = np.append(np.atleast_1d(theta[i]), beta[i]) if has_bias else np.atleast_1d(theta[i])
        assert got == pytest.approx(expected, rel=1e-7, abs=1e-9)


def test_refit_options_reach_the_report_and_default_runs_have_none():
    model, x = _model_and_data(seed=1)
    plain = annealq.quantize(model, x, bits=3, method="gptq", cache=False, quiet=True)
    refit = annealq.quantize(
        model, x, bits=3, method="gptq", refit_steps=True, clip_search=True, cache=False, quiet=True
    )
    assert all(
        "refit" not in layer and "clip_search" not in layer["gptq_setting"]
        for layer in plain.report["layers"]
    )
    for layer in refit.report["layers"]:
        assert set(layer["refit"]) == {"rounds", "start_energy", "energy", "step_ratio"}
        assert 1 <= layer["refit"]["rounds"] <= 5
        assert "clip_search" in layer["gptq_setting"]
    assert refit.report["config"]["refit_steps"] is True
    assert refit.report["options"]["clip_search"] is True
    with pytest.raises(ValueError, match="refit_steps"):
        annealq.QuantizeConfig(bits=2, refit_steps="yes")
