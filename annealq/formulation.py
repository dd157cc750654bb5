"""The exact QUBO of a dense layer's rounding (docs/design.md §1).

Every weight ``w_ij`` and bias ``b_i`` rounds down or up on its grid:
``q = ⌊w/s⌋ + u`` with ``u ∈ {0, 1}``. For neuron ``i`` with ``Â = [X̂, 1]``, steps
``d_i = (s_i, …, s_i, s_b,i)``, the all-down dequantized row ``ℓ_i`` and the residual
``r_i = T[:, i] − Â ℓ_i``, the squared output error is

    E_i(u) = ‖r_i − Â diag(d_i) u‖² = c_i + Σ_k h_ik u_k + Σ_{j<k} 2 G_i,jk u_j u_k

with ``G_i = (d_i d_iᵀ) ∘ ÂᵀÂ``, ``h_ik = G_i,kk − 2 d_ik (Âᵀ r_i)_k`` and
``c_i = ‖r_i‖²``. This holds for every ``u``, so a BQM's energy *is* the error. All
neurons share the Gram matrix ``ÂᵀÂ``: a layer costs one Gram product and one product
``Âᵀ R`` for every linear term.

A weight whose two candidates are not both on the grid (clipping) has one admissible
value: it is fixed, folded into the residual, and is not a variable.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> W, b, X = rng.normal(size=(3, 4)), rng.normal(size=3), rng.normal(size=(20, 4))
    >>> lq = formulate_layer(W, b, X, bits=2)
    >>> bqm = lq.bqm(0)
    >>> u = lq.rtn_sample(0)
    >>> w_row, bias = lq.dequantize(0, u)
    >>> error = float(np.sum((X @ W[0] + b[0] - X @ w_row - bias) ** 2))
    >>> bool(np.isclose(bqm.energy(u), error, rtol=1e-9))
    True
"""

from __future__ import annotations

import numbers

import numpy as np

from annealq.formulation_inputs import as_inputs, as_matrix, as_vector
from annealq.grid import Grid, bias_grid, weight_grid
from annealq.layer import BIAS_LABEL, LayerQUBO, weight_label
from annealq.statistics import statistics_of

__all__ = ["BIAS_LABEL", "LayerQUBO", "formulate_layer", "weight_label"]


def formulate_layer(
    weight,
    bias,
    inputs,
    *,
    bits: int,
    float_inputs=None,
    scheme: str = "reference",
    per_channel: bool = False,
    bias_step=None,
    input_step=None,
    window_bits: int = 1,
    bias_window_bits: int | None = None,
    center=None,
    group_size: int | None = None,
    ridge: float = 0.0,
    clip_search: bool = False,
    step_scale=None,
) -> LayerQUBO:
    """Build the exact rounding QUBO of a dense layer ``y = W x + b``.

    Args:
        weight: ``(n, f)`` float weights (numpy array or CPU torch tensor).
        bias: ``(n,)`` float bias, or ``None`` for a layer without one.
        inputs: ``X̂ (m, f)``, what the *quantized* network feeds this layer; or, when
            the rows are too many to hold (a convolution's patches), the ``inputs`` side of
            an :class:`~annealq.statistics.InputStatistics` (``float_inputs`` then its
            ``float_inputs`` side or ``None``): the same QUBO from the rows' moments.
        bits: weight bit width, 1..8.
        float_inputs: ``X (m, f)``, what the float network feeds it (defaults to ``inputs``);
            the target is ``X Wᵀ + b``.
        scheme: ``"reference"`` (the paper's, default) or ``"symmetric"``.
        per_channel: one weight step per output row.
        bias_step: the bias step (scalar or per row); default the weight step, or
            ``input_step ×`` weight step when ``input_step`` is given.
        input_step: the step of quantized inputs, when the inputs are quantized.
        window_bits: binary variables per weight. 1 (default) is the paper's down/up QUBO;
            ``k > 1`` lets each weight take ``2^k`` consecutive grid values
            ``[base, base + 2^k − 1]`` placed inside the grid (``k`` is capped at ``bits``:
            with ``k = bits`` the window is the whole grid), around ``⌊w/s⌋`` (or around
            ``center``). Every assignment is an admissible integer and the energy stays
            exactly the squared output error.
        bias_window_bits: binary variables of the bias window (default: 1 with
            ``window_bits=1``, else ``window_bits + 2``) on its int32 grid.
        center: optional integers ``(n, f+1)`` (weights, then bias) to centre the windows
            on, e.g. GPTQ's solution, so that it is representable (a warm start).
        group_size: one weight step per ``group_size`` consecutive inputs of each row
            (:func:`~annealq.grid.weight_grid`); each variable carries its group's step.
        ridge: adds ``λ ‖w − s q‖²`` over each row's weights to the objective, with
            ``λ = ridge ×`` the mean diagonal of ``X̂ᵀX̂``: a pull towards the float weights
            in the directions the calibration inputs hardly span (damping, as GPTQ's, but
            in the objective). The QUBO stays exact, for the regularised objective; 0
            (default) is the squared output error alone.
        clip_search: each row's (group's) step scaled by its weights' best clipping ratio
            (:func:`~annealq.grid.clip_ratios`, the MSE clip search of GPTQ's and AWQ's code).
        step_scale: factors ``(n,)`` (or ``(n, groups)``) multiplying each row's (group's)
            weight step and offset after the scheme (and the clip search) chose them: steps
            re-fitted to the integers (:mod:`annealq.refit`). The bias step follows the
            weight step as without it.

    Returns:
        A :class:`LayerQUBO`.

    Raises:
        ValueError: shape mismatch, NaN/Inf, an empty calibration set, bits or window
            bits out of range.
    """
    W = as_matrix(weight, "weight")
    n, f = W.shape
    b = np.zeros(n) if bias is None else as_vector(bias, "bias", n)
    stats = statistics_of(inputs, float_inputs)
    if stats is None:
        X_hat = as_inputs(inputs, "inputs", f)
        X = X_hat if float_inputs is None else as_inputs(float_inputs, "float_inputs", f)
        if X.shape[0] != X_hat.shape[0]:
            raise ValueError(
                f"float_inputs has {X.shape[0]} rows but inputs has "
                f"{X_hat.shape[0]}: they must be the same calibration samples"
            )
    elif stats.features != f or stats.rows == 0:
        raise ValueError(
            f"the input statistics have {stats.features} features and "
            f"{stats.rows} rows; the weight has {f} columns"
        )
    k_w, k_b = _window_sizes(window_bits, bias_window_bits, bits)
    ridge = validate_ridge(ridge)

    w_grid = weight_grid(
        W,
        bits,
        scheme=scheme,
        per_channel=per_channel,
        group_size=group_size,
        clip_search=clip_search,
    )
    if step_scale is not None:
        w_grid = w_grid.scaled(_validate_scale(step_scale, w_grid.step.shape))
    b_grid = bias_grid(w_grid.step, bias_step=bias_step, input_step=input_step)
    values = np.column_stack([W, b])
    if k_w == 1 and k_b == 1 and center is None:
        base, free = _round_down(values, w_grid, b_grid, has_bias=bias is not None)
        columns, weights = np.arange(f + 1), np.ones(f + 1, dtype=np.int64)
    else:
        base = _window_base(values, w_grid, b_grid, k_w, k_b, center)
        columns = np.concatenate([np.repeat(np.arange(f), k_w), np.full(k_b, f)])
        weights = np.concatenate([np.tile(2 ** np.arange(k_w), f), 2 ** np.arange(k_b)])
        free = np.ones((n, len(columns)), dtype=bool)
        if bias is None:
            base[:, -1] = 0
            free[:, columns == f] = False
    entry_step = np.column_stack([w_grid.column_steps(f), b_grid.step])
    scales = entry_step[:, columns] * weights

    if stats is None:
        entry_gram, projection, offset = _data_terms(W, b, X_hat, X, w_grid, b_grid, base)
    else:  # the same terms from the rows' moments (annealq.statistics)
        down = np.column_stack([w_grid.dequantize(base[:, :-1]), b_grid.dequantize(base[:, -1])])
        offset, projection = stats.residual(values, down)
        entry_gram, projection = stats.gram, projection.T
    if ridge:
        entry_gram, projection, offset = _ridge_terms(
            entry_gram, projection, offset, ridge, W - w_grid.dequantize(base[:, :-1])
        )
    gram = (
        entry_gram
        if len(columns) == f + 1 and np.array_equal(columns, np.arange(f + 1))
        else entry_gram[np.ix_(columns, columns)]
    )
    linear = scales**2 * np.diag(gram) - 2.0 * scales * projection[columns].T
    linear[~free] = 0.0

    return LayerQUBO(
        w_grid,
        b_grid,
        base,
        free,
        scales,
        gram,
        linear,
        offset,
        values,
        has_bias=bias is not None,
        columns=columns,
        weights=weights,
        window_bits=k_w,
        bias_window_bits=k_b,
    )


def _data_terms(W, b, X_hat, X, w_grid: Grid, b_grid: Grid, base):
    """``ÂᵀÂ``, ``Âᵀ R`` ``(f+1, n)`` and ``‖r_i‖²`` at the all-down integers ``base``:
    one Gram product for the layer and one product for every neuron's linear terms."""
    f = W.shape[1]
    target = X @ W.T + b
    residual = target - X_hat @ w_grid.dequantize(base[:, :-1]).T - b_grid.dequantize(base[:, -1])
    entry_gram = np.empty((f + 1, f + 1))
    entry_gram[:f, :f] = X_hat.T @ X_hat
    entry_gram[:f, f] = entry_gram[f, :f] = X_hat.sum(axis=0)
    entry_gram[f, f] = X_hat.shape[0]
    projection = np.vstack([X_hat.T @ residual, residual.sum(axis=0)])  # Âᵀ R, (f+1, n)
    return entry_gram, projection, np.einsum("mi,mi->i", residual, residual)


def _validate_scale(step_scale, shape) -> np.ndarray:
    scale = np.asarray(step_scale, dtype=np.float64)
    if scale.shape != shape or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise ValueError(
            f"step_scale must hold positive finite factors of shape {shape} "
            f"(one per row, or per row and group), got shape {scale.shape}"
        )
    return scale


def validate_ridge(ridge) -> float:
    """``ridge`` as a float, or a ValueError naming it."""
    if (
        isinstance(ridge, bool)
        or not isinstance(ridge, numbers.Real)
        or not 0 <= ridge < float("inf")
    ):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    return float(ridge)


def _ridge_terms(entry_gram, projection, offset, ridge: float, distance):
    """The terms with ``λ ‖w − s q‖²`` added: the rows ``√λ I`` appended to ``X̂`` with
    target ``√λ w``; ``distance`` is ``w − s·base`` ``(n, f)``."""
    f = distance.shape[1]
    lam = ridge * float(np.mean(np.diag(entry_gram)[:f]))
    entry_gram = entry_gram.copy()
    entry_gram[np.arange(f), np.arange(f)] += lam
    projection = projection.copy()
    projection[:f] += lam * distance.T
    return entry_gram, projection, offset + lam * np.einsum("ij,ij->i", distance, distance)


def _window_sizes(window_bits, bias_window_bits, bits) -> tuple[int, int]:
    for name, value in (("window_bits", window_bits), ("bias_window_bits", bias_window_bits)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 16
        ):
            raise ValueError(f"{name} must be an integer from 1 to 16, got {value!r}")
    k_w = min(window_bits, bits)  # a window wider than the grid would leave it
    if bias_window_bits is None:
        bias_window_bits = 1 if window_bits == 1 else window_bits + 2
    return k_w, bias_window_bits


def _window_base(values, w_grid: Grid, b_grid: Grid, k_w: int, k_b: int, center):
    """Each entry's window start: ``2^(k-1) − 1`` below its centre (``⌊w/s⌋`` or the given
    integer), moved inside the grid so the whole window is admissible."""
    floor = np.column_stack([w_grid.floor(values[:, :-1]), b_grid.floor(values[:, -1])])
    centre = floor if center is None else np.asarray(center, dtype=np.int64)
    if centre.shape != floor.shape:
        raise ValueError(
            f"center must have shape {floor.shape} (weights, then bias), got {centre.shape}"
        )
    below = np.array([2 ** (k_w - 1) - 1] * (values.shape[1] - 1) + [2 ** (k_b - 1) - 1])
    width = np.array([2**k_w - 1] * (values.shape[1] - 1) + [2**k_b - 1])
    low = np.array([w_grid.q_min] * (values.shape[1] - 1) + [b_grid.q_min])
    high = np.array([w_grid.q_max] * (values.shape[1] - 1) + [b_grid.q_max]) - width
    return np.clip(centre - below, low, high).astype(np.int64)


def _round_down(values, w_grid: Grid, b_grid: Grid, *, has_bias: bool):
    """Round-down integers and the free mask; clipped entries get their one admissible value."""
    floor = np.column_stack([w_grid.floor(values[:, :-1]), b_grid.floor(values[:, -1])])
    q_min = np.array([w_grid.q_min] * (values.shape[1] - 1) + [b_grid.q_min])
    q_max = np.array([w_grid.q_max] * (values.shape[1] - 1) + [b_grid.q_max])
    free = (floor >= q_min) & (floor + 1 <= q_max)
    nearest = np.column_stack([w_grid.rtn(values[:, :-1]), b_grid.rtn(values[:, -1])])
    base = np.where(free, floor, nearest)
    if not has_bias:
        free[:, -1] = False
        base[:, -1] = 0
    return base.astype(np.int64), free
