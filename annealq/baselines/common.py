"""The layer objective every baseline minimises, its exact error, and the helpers they share.

Every method here minimises what the QUBO minimises (docs/design.md §1): for a layer with float
weights ``W (n, f)``, bias ``b``, float inputs ``X`` and quantized-network inputs ``X̂``,

    E(Q, q_b) = ‖X Wᵀ + 1 bᵀ − X̂ (s∘Q)ᵀ − 1 (s_b∘q_b)ᵀ‖²_F

over integer weights on the weight grid and integer biases on the int32 bias grid, the very
grids :func:`~annealq.formulation.formulate_layer` builds (each function calls it with the
same ``bits`` and ``**scheme_options``). With ``Â = [X̂, 1]``, ``G = ÂᵀÂ`` (``lq.gram``), the
float row ``v_i = [w_i, b_i]`` (``lq.values``) and ``δ_i = d_i∘q_i − v_i`` its rounding
error, the error of neuron ``i`` is

    E_i = c_i − 2 δ_i·p_i + δ_iᵀ G δ_i,    p_i = Âᵀ (X − X̂) w_i,   c_i = ‖(X − X̂) w_i‖²

(the bias cancels from ``T − Â v``). When ``X = X̂``, ``p`` and ``c`` vanish and the error is
the quadratic form ``δᵀGδ`` alone. The methods use this Gram form, O(n f²) per evaluation;
:func:`layer_error` evaluates the direct formula, O(m f n), for reports and for checks.

Example:
    >>> import numpy as np
    >>> from annealq.formulation import formulate_layer
    >>> rng = np.random.default_rng(0)
    >>> W, b, X = rng.normal(size=(4, 6)), rng.normal(size=4), rng.normal(size=(50, 6))
    >>> lq = formulate_layer(W, b, X, bits=3)
    >>> rtn = lq.rtn_integers()
    >>> q, q_b = rtn[:, :-1], rtn[:, -1]
    >>> direct = np.sum((X @ W.T + b - X @ (q * lq.entry_steps[:, :-1]).T
    ...                  - q_b * lq.entry_steps[:, -1]) ** 2)
    >>> bool(np.isclose(layer_error(lq, q, q_b, inputs=X).sum(), direct))
    True
"""

from __future__ import annotations

import numpy as np

from annealq.formulation import LayerQUBO
from annealq.statistics import statistics_of


def layer_error(
    lq: LayerQUBO, int_weight, int_bias=None, *, inputs, float_inputs=None
) -> np.ndarray:
    """The exact squared output error of each neuron under integer weights and bias.

    Direct formula: ``‖X w_i + b_i − X̂ (s_i q_i) − s_b,i q_b,i‖²`` per neuron, with the float
    weights and bias ``lq.values`` and the steps ``lq.entry_steps`` of the layer's formulation.

    Args:
        lq: the layer's formulation (its float values, steps and grids).
        int_weight: ``(n, f)`` integers on ``lq.weight_grid``.
        int_bias: ``(n,)`` integers on ``lq.bias_grid`` (``None`` for a layer without bias).
        inputs: ``X̂ (m, f)``, the inputs ``lq`` was built from.
        float_inputs: ``X (m, f)``, the float network's inputs (defaults to ``inputs``).

    Returns:
        float64 ``(n,)``: neuron ``i``'s squared error summed over the calibration set;
        ``.sum()`` is the layer's error (the report's ``energy``).

    Raises:
        ValueError: shapes that do not match ``lq``, or inputs other than those of ``lq``.
    """
    f = lq.n_inputs
    Q, q_b = _validate_integers(lq, int_weight, int_bias)
    stats = statistics_of(inputs, float_inputs)
    if stats is not None:  # the rows' moments (a convolution's patches)
        return stats.residual(lq.values, np.column_stack([Q, q_b]) * lq.entry_steps)[0]
    X_hat = _validate_inputs(lq, inputs, "inputs")
    X = (
        X_hat
        if float_inputs is None
        else _validate_inputs(lq, float_inputs, "float_inputs", check_gram=False)
    )
    W, b = lq.values[:, :f], lq.values[:, f]
    target = X @ W.T + b
    output = X_hat @ (Q * lq.entry_steps[:, :f]).T + q_b * lq.entry_steps[:, f]
    return np.einsum("mi,mi->i", target - output, target - output)


def _float_input_terms(lq: LayerQUBO, inputs, float_inputs) -> tuple[np.ndarray, np.ndarray]:
    """``p (n, f+1)`` and ``c (n,)`` of the module docstring: what ``X ≠ X̂`` adds."""
    stats = statistics_of(inputs, float_inputs)
    if stats is not None:
        return stats.drift_terms(lq.values[:, :-1])
    X_hat = _validate_inputs(lq, inputs, "inputs")
    X = _validate_inputs(lq, float_inputs, "float_inputs", check_gram=False)
    D = (X - X_hat) @ lq.values[:, :-1].T  # (m, n): T − Â v, the bias cancels
    p = np.column_stack([(X_hat.T @ D).T, D.sum(axis=0)])
    return p, np.einsum("mi,mi->i", D, D)


def _gram_error(lq: LayerQUBO, int_weight, int_bias, p=None, c=None) -> np.ndarray:
    """Per-neuron error in the Gram form ``c − 2 δ·p + δᵀGδ`` (``p, c`` zero when X = X̂)."""
    Q, q_b = _validate_integers(lq, int_weight, int_bias)
    delta = np.column_stack([Q, q_b]) * lq.entry_steps - lq.values
    error = np.einsum("ik,ik->i", delta @ lq.gram, delta)
    if p is not None:
        error += c - 2.0 * np.einsum("ik,ik->i", delta, p)
    return error


def _bounds(lq: LayerQUBO) -> tuple[np.ndarray, np.ndarray]:
    """Per-column integer bounds ``(f+1,)``: the weight grid's, then the bias grid's."""
    f = lq.n_inputs
    lo = np.array([lq.weight_grid.q_min] * f + [lq.bias_grid.q_min], dtype=np.int64)
    hi = np.array([lq.weight_grid.q_max] * f + [lq.bias_grid.q_max], dtype=np.int64)
    return lo, hi


def _validate_integers(lq: LayerQUBO, int_weight, int_bias):
    n, f = lq.n_neurons, lq.n_inputs
    Q = np.asarray(int_weight)
    if Q.shape != (n, f):
        raise ValueError(f"int_weight must have shape ({n}, {f}) like the layer, got {Q.shape}")
    q_b = np.zeros(n) if int_bias is None else np.asarray(int_bias)
    if q_b.shape != (n,):
        raise ValueError(f"int_bias must have shape ({n},) like the layer, got {q_b.shape}")
    return Q.astype(np.float64), q_b.astype(np.float64)


def _validate_inputs(lq: LayerQUBO, x, name: str, *, check_gram: bool = True) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    array = np.asarray(x, dtype=np.float64)
    m, f = int(round(lq.gram[-1, -1])), lq.n_inputs
    if array.shape != (m, f):
        raise ValueError(
            f"{name} must have shape ({m}, {f}) like the layer's calibration set, got {array.shape}"
        )
    # Â's all-ones column makes Âᵀ1 = the column sums of X̂: a cheap fingerprint of X̂.
    if check_gram and not np.allclose(
        array.sum(axis=0), lq.gram[-1, :f], rtol=1e-9, atol=1e-9 * max(1.0, np.abs(array).max())
    ):
        raise ValueError(f"{name} are not the inputs the layer's formulation was built from")
    return array
