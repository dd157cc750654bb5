"""Group-wise steps: one step per g consecutive inputs of each row; the QUBO stays exact for
linear and conv layers and every method."""

import itertools

import numpy as np
import pytest

from annealq.formulation import formulate_layer
from annealq.grid import weight_grid


def test_each_group_gets_its_own_step_from_its_own_weights():
    W = np.array([[0.1, -0.4, 2.0, 0.5, -0.3], [1.0, 0.2, 0.0, 0.0, 0.6]])
    grid = weight_grid(W, bits=3, group_size=2)  # groups: columns 0-1, 2-3, 4
    np.testing.assert_allclose(
        grid.step, [[0.4 / 4, 2.0 / 4, 0.3 / 4], [1.0 / 4, 1.0, 0.6 / 4]]
    )  # zero group: unit step
    np.testing.assert_allclose(grid.column_steps(5)[0], [0.1, 0.1, 0.5, 0.5, 0.075])
    q = grid.rtn(W)
    assert q.min() >= -4 and q.max() <= 3
    np.testing.assert_allclose(grid.dequantize(q), q * grid.column_steps(5))
    np.testing.assert_allclose(grid.select([1]).step, grid.step[[1]])


def test_affine_groups_span_each_groups_minimum_to_maximum():
    W = np.array([[0.1, -0.4, 2.0, 0.5], [1.0, 0.2, -1.0, 3.0]])
    grid = weight_grid(W, bits=2, scheme="affine", group_size=2)
    values = grid.dequantize(grid.rtn(W))
    for start in (0, 2):
        block, levels = W[:, start : start + 2], values[:, start : start + 2]
        np.testing.assert_allclose(levels.min(axis=1), block.min(axis=1))
        np.testing.assert_allclose(levels.max(axis=1), block.max(axis=1))


@pytest.mark.parametrize("group_size", [0, -2, 1.5, True])
def test_a_group_size_that_is_not_a_positive_integer_is_a_clear_error(group_size):
    with pytest.raises(ValueError, match="group_size must be a positive integer"):
        weight_grid(np.ones((2, 4)), bits=2, group_size=group_size)


@pytest.mark.parametrize(
    "scheme, window_bits, bias",
    [("reference", 1, True), ("symmetric", 2, False), ("affine", 1, True)],
)
def test_every_assignment_energy_equals_the_squared_error_with_groups(scheme, window_bits, bias):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(2, 5)) * np.array([1.0, 1.0, 0.1, 0.1, 3.0])
    b = rng.normal(size=2) if bias else None
    X = rng.normal(size=(30, 5))
    X_hat = X + 0.05 * rng.normal(size=X.shape)
    lq = formulate_layer(
        W, b, X_hat, float_inputs=X, bits=2, scheme=scheme, window_bits=window_bits, group_size=2
    )
    assert lq.weight_grid.step.shape == (2, 3)
    for i in range(2):
        variables = lq.variables(i)
        bqm = lq.bqm(i)
        for bits in itertools.islice(itertools.product((0, 1), repeat=len(variables)), 64):
            sample = dict(zip(variables, bits))
            w_row, bias_value = lq.dequantize(i, sample)
            error = np.sum((X @ W[i] + (b[i] if bias else 0) - X_hat @ w_row - bias_value) ** 2)
            assert bqm.energy(sample) == pytest.approx(error, rel=1e-9, abs=1e-9)


torch = pytest.importorskip("torch")

from annealq.pipeline import quantize  # noqa: E402
from tests.test_conv import _check_sequential_errors, _cnn, _data  # noqa: E402


@pytest.mark.parametrize(
    "method, options",
    [
        ("rtn", {}),
        ("gptq", {}),
        ("adaround", {"iterations": 100}),
        ("qubo", {"solver": "lns", "window_bits": 2, "start": "gptq"}),
    ],
)
def test_every_method_quantizes_a_cnn_with_group_wise_steps(method, options, tmp_path):
    model, x = _cnn(), _data()
    result = quantize(
        model, x, bits=3, method=method, group_size=8, cache=False, quiet=True, **options
    )
    _check_sequential_errors(model, result, x)
    conv = result.layers[1]  # 4·2·2 = 16 inputs per channel: two groups
    assert conv.weight_step.shape == (3, 2) and conv.group_size == 8
    np.testing.assert_allclose(
        result.model[3].weight.detach().numpy().reshape(3, -1),
        conv.int_weight * np.repeat(conv.weight_step, 8, axis=1),
        rtol=1e-6,
    )
    assert result.report["options"]["group_size"] == 8
    result.save(tmp_path / "g.pt")
    from annealq import load

    loaded = load(tmp_path / "g.pt")
    xt = torch.as_tensor(x)
    with torch.no_grad():
        assert torch.equal(loaded.model(xt), result.model(xt))
    if "start" in options:
        gptq = quantize(model, x, bits=3, method="gptq", group_size=8, cache=False, quiet=True)
        assert result.layers[0].energy <= gptq.layers[0].energy * (1 + 1e-9)
