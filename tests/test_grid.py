import numpy as np
import pytest

from annealq.grid import bias_grid, integer_range, validate_bits, weight_grid


@pytest.mark.parametrize("bits", [0, 9, -1, 2.5, "4", True, None])
def test_bits_out_of_range_is_a_value_error(bits):
    with pytest.raises(ValueError, match="bits"):
        validate_bits(bits)


@pytest.mark.parametrize(
    "bits, expected", [(1, (-1, 0)), (2, (-2, 1)), (4, (-8, 7)), (8, (-128, 127))]
)
def test_integer_range(bits, expected):
    assert integer_range(bits) == expected


def test_reference_scheme_step_is_peak_over_half_range():
    W = np.array([[0.3, -1.2], [0.9, 0.1]])
    grid = weight_grid(W, bits=3)
    np.testing.assert_allclose(grid.step, [1.2 / 4, 1.2 / 4])
    assert (grid.q_min, grid.q_max) == (-4, 3)


def test_symmetric_scheme_represents_the_peak_and_needs_two_bits():
    W = np.array([[0.3, -1.2], [0.9, 0.1]])
    grid = weight_grid(W, bits=3, scheme="symmetric")
    np.testing.assert_allclose(grid.step, [1.2 / 3, 1.2 / 3])
    assert grid.rtn(W)[0, 1] == -3
    with pytest.raises(ValueError, match="symmetric"):
        weight_grid(W, bits=1, scheme="symmetric")
    with pytest.raises(ValueError, match="unknown quantization scheme"):
        weight_grid(W, bits=3, scheme="bogus")


def test_per_channel_steps_follow_each_row_peak():
    W = np.array([[0.3, -1.2], [0.9, 0.1], [0.0, 0.0]])
    grid = weight_grid(W, bits=2, per_channel=True)
    np.testing.assert_allclose(grid.step, [0.6, 0.45, 1.0])  # zero row: unit step


def test_rtn_is_nearest_admissible_grid_point():
    rng = np.random.default_rng(1)
    W = rng.normal(size=(6, 9))
    grid = weight_grid(W, bits=2, per_channel=True)
    q = grid.rtn(W)
    assert q.min() >= -2 and q.max() <= 1
    candidates = np.arange(-2, 2)
    best = candidates[
        np.argmin(np.abs(W[..., None] - grid.step[:, None, None] * candidates), axis=-1)
    ]
    np.testing.assert_array_equal(q, best)
    np.testing.assert_allclose(grid.dequantize(q), grid.step[:, None] * q)


def test_bias_grid_defaults_and_options():
    step = np.array([0.5, 0.25])
    np.testing.assert_allclose(bias_grid(step).step, step)
    np.testing.assert_allclose(bias_grid(step, input_step=0.1).step, 0.1 * step)
    np.testing.assert_allclose(bias_grid(step, bias_step=0.01).step, [0.01, 0.01])
    assert bias_grid(step).q_min == -(2**31) and bias_grid(step).q_max == 2**31 - 1
    with pytest.raises(ValueError, match="bias step"):
        bias_grid(step, bias_step=0.0)


def test_affine_scheme_spans_min_to_max_with_an_offset():
    W = np.array([[0.3, -1.2, 0.5], [0.9, 0.1, 0.2]])
    grid = weight_grid(W, bits=1, scheme="affine")
    levels = grid.dequantize(np.array([[-1, 0], [-1, 0]]))
    np.testing.assert_allclose(levels, [[-1.2, 0.9], [-1.2, 0.9]])  # {min, max} at one bit
    per_row = weight_grid(W, bits=2, scheme="affine", per_channel=True)
    np.testing.assert_allclose(
        per_row.dequantize(np.array([[-2, 1], [-2, 1]])), [[-1.2, 0.5], [0.1, 0.9]]
    )
    q = per_row.rtn(W)
    assert q.min() >= -2 and q.max() <= 1
    np.testing.assert_allclose(per_row.dequantize(q)[0, 1], -1.2)
