"""Coordinate descent on the exact layer error (CDQuant), and GPTQ at its best setting.

CDQuant (Nagarajan et al. 2024, arXiv 2406.17542) starts from GPTQ's integers and improves
them one coordinate at a time on the same objective the QUBO and the baselines minimise
(docs/design.md §1). For neuron ``i`` with ``Â = [X̂, 1]``, ``H = ÂᵀÂ`` (``lq.entry_gram``),
entry steps ``e_i`` (``lq.entry_steps``) and integers ``q_i`` (weights, then bias):

    E_i(q) = ‖r_i(q)‖²,   r_i(q) = X w_i + b_i − Â (a_i + e_i∘q_i)

with ``a_i`` the affine grid's offset on the weights (0 on other grids). Changing entry
``j`` by ``Δ`` changes the error by ``ΔE = 2 e_j Δ g_j + e_j² H_jj Δ²``, ``g = −Âᵀ r``; the
descent itself (:mod:`annealq.descent`) moves each coordinate to its best integer, all
neurons at once.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> W, b, X = rng.normal(size=(4, 6)), rng.normal(size=4), rng.normal(size=(50, 6))
    >>> lq = formulate_layer(W, b, X, bits=2)
    >>> q, q_b = cd_layer(W, b, X, bits=2)
    >>> start = gptq_layer(W, b, X, bits=2)
    >>> cd, gptq = layer_error(lq, q, q_b, inputs=X), layer_error(lq, *start, inputs=X)
    >>> bool(np.all(cd <= gptq))
    True
"""

from __future__ import annotations

import numbers

import numpy as np

from annealq.baselines.common import (  # noqa: F401 (layer_error: the doctest)
    _bounds,
    _validate_inputs,
    layer_error,
    statistics_of,
)
from annealq.baselines.gptq import gptq_layer
from annealq.baselines.tuned import GPTQ_GRID, tuned_gptq_layer
from annealq.descent import cyclic_descent, greedy_descent
from annealq.formulation import LayerQUBO, formulate_layer

__all__ = ["GPTQ_GRID", "cd_layer", "greedy_descent", "tuned_gptq_layer"]

RULES = ("greedy", "cyclic")
DEFAULT_SWEEPS = 10
# A move must lower the error by more than this fraction of the neuron's starting error:
# float noise in the incrementally updated gradient can never cycle the descent.
RELATIVE_TOLERANCE = 1e-12


def cd_layer(
    weight,
    bias,
    inputs,
    *,
    bits: int,
    float_inputs=None,
    start=None,
    sweeps: int = DEFAULT_SWEEPS,
    rule: str = "greedy",
    return_info: bool = False,
    **scheme_options,
):
    """CDQuant's coordinate descent on the layer's exact error, from GPTQ's integers.

    Each step, for every neuron still improving (all neurons at once, numpy):

    * **greedy** (default, CDQuant's rule): over all ``f + 1`` coordinates, the best
      admissible integer of each (the 1-D minimiser, rounded, clipped to the bounds); the
      coordinate whose move lowers the error most is applied.
    * **cyclic**: coordinate ``step mod (f + 1)`` only, moved to its best integer.

    A step costs O(f) per neuron. A neuron stops when no coordinate improves by more than
    ``RELATIVE_TOLERANCE`` × its starting error (cyclic: after ``f + 1`` steps without a
    move): a *1-opt local minimum*, no single integer can change to any admissible value
    and lower the error. Every neuron stops after ``sweeps × (f + 1)`` steps at the latest.
    Every move lowers the error, so the result is never worse than the start. Dead inputs
    (a zero Gram diagonal) keep their starting integers; a layer without bias keeps 0.

    Args:
        weight, bias, inputs, bits, float_inputs: as in
            :func:`~annealq.baselines.gptq_layer`.
        start: ``(int_weight (n, f), int_bias (n,) or None)`` to descend from; default
            ``gptq_layer`` with its defaults (round-to-nearest with ``scheme="affine"``,
            which GPTQ does not model).
        sweeps: the step limit in units of ``f + 1`` steps (>= 1).
        rule: ``"greedy"`` or ``"cyclic"``.
        return_info: also return a dict with ``energy`` (the incrementally tracked error
            per neuron), ``start_energy``, ``steps`` (moves applied per neuron) and
            ``converged`` (bool per neuron: 1-opt, not stopped by the step limit).
        **scheme_options: ``scheme``, ``per_channel``, ``bias_step``, ``input_step`` as in
            :func:`~annealq.formulation.formulate_layer`.

    Returns:
        ``(int_weight (n, f) int64, int_bias (n,) int64)``, and the info dict with
        ``return_info``; on the grids of ``formulate_layer(weight, bias, inputs, ...)``.

    Raises:
        ValueError: a bad ``sweeps``, ``rule`` or ``start``, or anything
            ``formulate_layer`` or ``gptq_layer`` rejects.

    Example:
        >>> import numpy as np
        >>> W, X = np.array([[0.3, -0.8, 0.5]]), np.random.default_rng(1).random((20, 3))
        >>> q, q_b, info = cd_layer(W, None, X, bits=2, return_info=True)
        >>> q.shape, q_b.tolist(), bool(info["converged"][0])
        ((1, 3), [0], True)
    """
    _validate_cd(sweeps, rule)
    lq = formulate_layer(
        weight, bias, inputs, bits=bits, float_inputs=float_inputs, **scheme_options
    )
    if start is None:
        if scheme_options.get("scheme") == "affine":
            rtn = lq.rtn_integers()
            start = rtn[:, :-1], rtn[:, -1]
        else:
            start = gptq_layer(
                weight, bias, inputs, bits=bits, float_inputs=float_inputs, **scheme_options
            )
    lo, hi = _neuron_bounds(lq)
    q = _validate_start(lq, start, lo, hi)
    energy, gradient = _energy_and_gradient(lq, q, inputs, float_inputs)
    start_energy = energy.copy()
    descend = greedy_descent if rule == "greedy" else cyclic_descent
    steps, converged = descend(
        lq.entry_gram,
        gradient,
        energy,
        lq.entry_steps,
        lo,
        hi,
        q,
        max_steps=sweeps * (lq.n_inputs + 1),
        tol=RELATIVE_TOLERANCE * start_energy,
    )
    info = {"energy": energy, "start_energy": start_energy, "steps": steps, "converged": converged}
    return (q[:, :-1].copy(), q[:, -1].copy()) + ((info,) if return_info else ())


def _energy_and_gradient(lq: LayerQUBO, q, inputs, float_inputs):
    """The error ``E (n,)`` and ``g = −Âᵀ r`` ``(n, f+1)`` at integers ``q (n, f+1)``,
    from the direct residual ``r = X w + b − Â (a + e∘q)`` (once per layer)."""
    f = lq.n_inputs
    values = q * lq.entry_steps
    if lq.weight_grid.offset is not None:  # the affine grid: offset + step · q
        values[:, :f] += lq.weight_grid.offset[:, None]
    if (stats := statistics_of(inputs, float_inputs)) is not None:  # conv patches' moments
        energy, projection = stats.residual(lq.values, values)
        return energy, -projection
    X_hat = _validate_inputs(lq, inputs, "inputs")
    X = (
        X_hat
        if float_inputs is None
        else _validate_inputs(lq, float_inputs, "float_inputs", check_gram=False)
    )
    residual = X @ (lq.values[:, :f] - values[:, :f]).T + (lq.values[:, f] - values[:, f])
    if X is not X_hat:  # X w − X̂ w_q = X (w − w_q) + (X − X̂) w_q
        residual += (X - X_hat) @ values[:, :f].T
    gradient = -np.column_stack([(X_hat.T @ residual).T, residual.sum(axis=0)])
    return np.einsum("mi,mi->i", residual, residual), gradient


def _neuron_bounds(lq: LayerQUBO) -> tuple[np.ndarray, np.ndarray]:
    """Integer bounds ``(n, f+1)``: the grids', with the bias pinned at 0 without a bias."""
    lo, hi = (np.tile(bound, (lq.n_neurons, 1)) for bound in _bounds(lq))
    if not lq.has_bias:
        lo[:, -1] = hi[:, -1] = 0
    return lo, hi


def _validate_cd(sweeps, rule) -> None:
    if isinstance(sweeps, bool) or not isinstance(sweeps, numbers.Integral) or sweeps < 1:
        raise ValueError(f"sweeps must be a positive integer, got {sweeps!r}")
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


def _validate_start(lq: LayerQUBO, start, lo, hi) -> np.ndarray:
    """``start`` as int64 ``(n, f+1)`` (bias last), checked against shapes and bounds."""
    n, f = lq.n_neurons, lq.n_inputs
    if not isinstance(start, (tuple, list)) or len(start) != 2:
        raise ValueError(f"start must be a pair (int_weight, int_bias), got {type(start)!r}")
    weight = np.asarray(start[0])
    bias = np.zeros(n) if start[1] is None else np.asarray(start[1])
    if weight.shape != (n, f) or bias.shape != (n,):
        raise ValueError(
            f"start must have shapes ((n, f), (n,)) = (({n}, {f}), ({n},)), "
            f"got ({weight.shape}, {bias.shape})"
        )
    try:
        q = np.column_stack([weight, bias]).astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError("start must hold numbers (integers on the layer's grids)") from None
    if not np.all(np.isfinite(q)) or np.any(q != np.rint(q)):
        raise ValueError("start must hold integers, got non-integral values")
    outside = (q < lo) | (q > hi)
    if np.any(outside):
        i, j = np.argwhere(outside)[0]
        raise ValueError(
            f"start integer {int(q[i, j])} of neuron {i}, entry {j} is outside "
            f"its bounds [{lo[i, j]}, {hi[i, j]}]"
        )
    return q.astype(np.int64)
