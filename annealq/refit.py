"""Steps re-fitted to the chosen integers: the step is a variable of the exact objective too.

For fixed integers, a neuron's output ``X̂ ṽ + β`` is linear in its row's (or its groups')
steps and in its bias: scaling group ``g``'s dequantized weights ``v_g`` (step and offset
alike) by ``θ_g`` and replacing the bias by ``β``, the squared output error

    E(θ, β) = ‖t − Σ_g θ_g Â v_g − β 1‖²,    t = X w + b,   Â = [X̂, 1]

is a least-squares problem of ``groups + 1`` unknowns per neuron. With ``Ĝ = ÂᵀÂ`` and
``a = Âᵀ t = Âᵀ r + Ĝ v`` (``r`` the residual at the current values ``v``) its normal
equations are ``Mᵀ Ĝ M (θ, β) = Mᵀ a`` with ``M`` the columns ``v_g`` and the bias's unit
vector: one batched ``(groups+1)²`` solve for the whole layer.

:func:`refit_layer` alternates it with the method's own rounding on the new grid, from the
current integers (:func:`fit_scales`, then ``rechoose``), and keeps, neuron by neuron, the
lowest exact error seen — never worse than the rounding it started from.

Example:
    >>> import numpy as np
    >>> from annealq.formulation import formulate_layer
    >>> rng = np.random.default_rng(0)
    >>> W, b, X = rng.normal(size=(3, 8)), rng.normal(size=3), rng.normal(size=(60, 8))
    >>> lq = formulate_layer(W, b, X, bits=2)
    >>> q = lq.rtn_integers()
    >>> rtn = lambda scale, new, start: new.rtn_integers()
    >>> formulate = lambda scale: formulate_layer(W, b, X, bits=2, step_scale=scale)
    >>> lq2, q2, info = refit_layer(lq, q, X, formulate=formulate, rechoose=rtn)
    >>> bool(info["energy"] <= info["start_energy"]), info["rounds"] >= 1
    (True, True)
"""

from __future__ import annotations

import numpy as np

from annealq.layer import LayerQUBO
from annealq.statistics import statistics_of

MAX_ROUNDS = 5
# a round must lower the layer's error by more than this fraction to earn another one
RELATIVE_GAIN = 1e-6


def neuron_terms(lq: LayerQUBO, q: np.ndarray, inputs, float_inputs=None):
    """Each neuron's squared output error ``(n,)``, ``Âᵀ r`` ``(n, f+1)`` and the dequantized
    rows ``(n, f+1)`` (weights, then bias) at integers ``q`` ``(n, f+1)`` on ``lq``'s grids,
    from the arrays or from an :class:`~annealq.statistics.InputStatistics`' sides."""
    q = np.asarray(q)
    dequantized = np.column_stack(
        [lq.weight_grid.dequantize(q[:, :-1]), lq.bias_grid.dequantize(q[:, -1])]
    )
    stats = statistics_of(inputs, float_inputs)
    if stats is not None:
        energy, projection = stats.residual(lq.values, dequantized)
        return energy, projection, dequantized
    X_hat = np.asarray(inputs, dtype=np.float64)
    X = X_hat if float_inputs is None else np.asarray(float_inputs, dtype=np.float64)
    residual = (
        X @ lq.values[:, :-1].T
        + lq.values[:, -1]
        - X_hat @ dequantized[:, :-1].T
        - dequantized[:, -1]
    )
    projection = np.column_stack([(X_hat.T @ residual).T, residual.sum(axis=0)])
    return np.einsum("mi,mi->i", residual, residual), projection, dequantized


def input_gram(inputs, float_inputs=None) -> np.ndarray:
    """``ÂᵀÂ`` ``(f+1, f+1)`` of the layer's inputs (the unregularised Gram matrix)."""
    stats = statistics_of(inputs, float_inputs)
    if stats is not None:
        return stats.gram
    X_hat = np.asarray(inputs, dtype=np.float64)
    f = X_hat.shape[1]
    gram = np.empty((f + 1, f + 1))
    gram[:f, :f] = X_hat.T @ X_hat
    gram[:f, f] = gram[f, :f] = X_hat.sum(axis=0)
    gram[f, f] = X_hat.shape[0]
    return gram


def fit_scales(gram, projection, dequantized, *, group_size=None, has_bias=True):
    """The least-squares factors ``θ`` of each row's (group's) dequantized weights and the
    bias value ``β`` (module docs), for every neuron at once.

    Args:
        gram: ``ÂᵀÂ`` ``(f+1, f+1)``.
        projection: ``Âᵀ r`` ``(n, f+1)`` at ``dequantized``.
        dequantized: the current values ``(n, f+1)``, weights then bias.
        group_size: one factor per that many consecutive inputs (``None``: one per row).
        has_bias: fit the bias (else it stays 0).

    Returns:
        ``(θ, β)``: ``θ`` ``(n,)`` (or ``(n, groups)``), 1 where a group cannot move the
        output (all its values 0, or dead inputs) or where the fit is not positive; ``β``
        ``(n,)``.

    Example:
        >>> import numpy as np
        >>> A = np.column_stack([np.random.default_rng(1).normal(size=(30, 2)), np.ones(30)])
        >>> v = np.array([[1.0, -2.0, 0.5]])   # the target: weights 1.5 × v's, bias 0.2
        >>> r = A @ [1.5, -3.0, 0.2] - A @ v[0]
        >>> theta, beta = fit_scales(A.T @ A, (A.T @ r)[None], v)
        >>> np.round(theta, 9).tolist(), np.round(beta, 9).tolist()
        ([1.5], [0.2])
    """
    n, k = dequantized.shape
    f = k - 1
    g = f if group_size is None else group_size
    groups = -(-f // g) if f else 1
    member = np.zeros((f, groups))
    member[np.arange(f), np.arange(f) // g] = 1.0
    V = dequantized[:, :f]
    columns = V[:, None, :] * member.T[None]  # (n, groups, f): each group's values alone
    target = projection + dequantized @ gram  # Âᵀ t
    A_ww = np.einsum("ngf,nhf->ngh", columns @ gram[:f, :f], columns)
    rhs_w = np.einsum("ngf,nf->ng", columns, target[:, :f])
    if has_bias:
        A_wb = columns @ gram[:f, f]
        A = np.zeros((n, groups + 1, groups + 1))
        A[:, :groups, :groups], A[:, :groups, groups] = A_ww, A_wb
        A[:, groups, :groups], A[:, groups, groups] = A_wb, gram[f, f]
        rhs = np.column_stack([rhs_w, target[:, f]])
    else:
        A, rhs = A_ww, rhs_w
    diagonal = np.diagonal(A, axis1=1, axis2=2)
    stuck = np.zeros_like(diagonal, dtype=bool)
    stuck[:, :groups] = diagonal[:, :groups] <= 1e-12 * diagonal.max(axis=1, keepdims=True)
    A = np.where(stuck[:, :, None] | stuck[:, None, :], 0.0, A)  # a stuck group: θ = 1
    rows, cols = np.nonzero(stuck)
    A[rows, cols, cols], rhs = 1.0, np.where(stuck, 1.0, rhs)
    # a relative ridge of 1e-12 keeps a collinear pair of groups solvable
    A = A + 1e-12 * np.trace(A, axis1=1, axis2=2)[:, None, None] * np.eye(A.shape[1])
    solution = np.linalg.solve(A, rhs[:, :, None])[:, :, 0]
    theta = solution[:, :groups]
    theta = np.where(np.isfinite(theta) & (theta > 0), theta, 1.0)
    beta = solution[:, groups] if has_bias else np.zeros(n)
    return (theta[:, 0] if group_size is None else theta), beta


def refit_layer(
    lq: LayerQUBO,
    q,
    inputs,
    float_inputs=None,
    *,
    formulate,
    rechoose,
    max_rounds: int = MAX_ROUNDS,
):
    """Alternate the steps' least-squares fit and the method's rounding, keeping per neuron
    the lowest exact output error seen.

    Each round: fit ``θ, β`` at the current integers (:func:`fit_scales`); the scaled
    grid's layer ``formulate(scale)``; two candidates on it — the current weight integers
    with the bias rounded from ``β``, and ``rechoose(scale, layer, those integers)`` (the
    method's own rounding from them) — each neuron taking the lowest error of its current
    and these. Rounds stop when the layer's error falls by no more than ``RELATIVE_GAIN``
    of it, or after ``max_rounds``.

    Args:
        lq: the layer the integers ``q`` ``(n, f+1)`` (weights, then bias) are on, built
            by ``formulate`` with ``scale`` all ones.
        inputs, float_inputs: ``X̂`` and ``X`` (arrays, or an ``InputStatistics``' sides).
        formulate: ``scale (shaped as lq.weight_grid.step) -> LayerQUBO``.
        rechoose: ``(scale, layer, start integers (n, f+1)) -> integers (n, f+1)``.

    Returns:
        ``(layer, q, info)``: the layer of the final (per-neuron best) steps, its
        integers, and ``info = {"rounds", "start_energy", "energy", "step_ratio"}`` with
        ``step_ratio`` the min, median and max of new over starting weight steps.
    """
    q = np.asarray(q, dtype=np.int64).copy()
    gram = input_gram(inputs, float_inputs)
    energy, projection, dequantized = neuron_terms(lq, q, inputs, float_inputs)
    start_energy = float(energy.sum())
    scale = np.ones_like(lq.weight_grid.step)
    rounds = 0
    for rounds in range(1, max_rounds + 1):  # noqa: B007 (the count is reported)
        before = energy.sum()
        theta, beta = fit_scales(
            gram,
            projection,
            dequantized,
            group_size=lq.weight_grid.group_size,
            has_bias=lq.has_bias,
        )
        new_scale = scale * theta
        layer = formulate(new_scale)
        fitted = q.copy()
        if lq.has_bias:
            fitted[:, -1] = layer.bias_grid.rtn(beta)
        for candidate in (fitted, np.asarray(rechoose(new_scale, layer, fitted))):
            terms = neuron_terms(layer, candidate, inputs, float_inputs)
            better = terms[0] < energy
            q[better], scale[better] = candidate[better], new_scale[better]
            for kept, new in zip((energy, projection, dequantized), terms):
                kept[better] = new[better]
        if not energy.sum() < before * (1 - RELATIVE_GAIN):
            break
    ratio = scale if scale.ndim == 1 else scale.ravel()
    info = {
        "rounds": rounds,
        "start_energy": start_energy,
        "energy": float(energy.sum()),
        "step_ratio": [float(np.min(ratio)), float(np.median(ratio)), float(np.max(ratio))],
    }
    return formulate(scale), q, info


def method_rechoose(method: str, formulate, solve, baseline):
    """:func:`refit_layer`'s ``rechoose`` for a run's ``method``: the QUBO solver from the
    start on the layer ``formulate(step_scale=…, center=start)`` (windows centred on the
    start, so it is a state; ``solve(layer, start) -> integers``), round-to-nearest, or a
    baseline's own rounding (``baseline(start=…, step_scale=…) -> integers``)."""

    def rechoose(scale, layer, start):
        if method == "qubo":
            return solve(formulate(step_scale=scale, center=start), start)
        if method == "rtn":
            return layer.rtn_integers()
        return baseline(start=start, step_scale=scale)

    return rechoose


def refit_run(method: str, lq, q, q_b, X_hat, X, formulate, baseline, solve):
    """A run's re-fitting of one layer: :func:`refit_layer` with ``method``'s own
    re-rounding (``solve`` for the QUBO, ``baseline`` for the others); returns the layer,
    its integer weights and bias, and the report's ``refit`` entry."""
    rechoose = method_rechoose(method, formulate, solve, baseline)
    layer, q, info = refit_layer(
        lq,
        np.column_stack([q, q_b]),
        X_hat,
        X,
        formulate=lambda scale: formulate(step_scale=scale),
        rechoose=rechoose,
    )
    return layer, q[:, :-1], q[:, -1], info
