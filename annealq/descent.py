"""Coordinate descent on the exact layer error in integer form (CDQuant's rules).

For neurons with integer entries ``q`` (weights, then bias), entry steps ``e``, the Gram
matrix ``H`` over the entries and ``g = −Âᵀ r`` at ``q``, moving entry ``j`` by ``Δ``
changes the error by ``ΔE = 2 e_j Δ g_j + e_j² H_jj Δ²``: a convex parabola in ``Δ``, so
the best admissible integer along a coordinate is the real minimiser rounded, then clipped
to the bounds. A move updates ``g ← g + e_j Δ H[:, j]`` and ``E ← E + ΔE``: O(f) per neuron
and step, all neurons at once. The integer model (:mod:`annealq.integer_model`) and the
``cd`` baseline (:mod:`annealq.baselines.cd`) both descend with these functions.

Example:
    >>> import numpy as np
    >>> gram = np.array([[2.0, 0.5], [0.5, 1.0]])
    >>> q = np.zeros((1, 2), dtype=np.int64)
    >>> gradient, energy = np.array([[-3.0, -1.0]]), np.array([10.0])
    >>> steps = np.ones((1, 2))
    >>> lo, hi = np.full((1, 2), -4), np.full((1, 2), 4)
    >>> taken, converged = greedy_descent(gram, gradient, energy, steps, lo, hi, q,
    ...                                   max_steps=10, tol=np.zeros(1))
    >>> q.tolist(), bool(converged[0]), bool(energy[0] < 10)
    ([[2, 0]], True, True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["cyclic_descent", "greedy_descent", "is_one_opt"]


def coordinate_moves(gram_diag, gradient, steps, lo, hi, q):
    """Each coordinate's best integer move ``Δ`` and its error change ``ΔE`` (``+inf``
    where the coordinate cannot move: a dead input or a pinned entry)."""
    curvature = steps**2 * gram_diag  # ΔE = 2 e Δ g + e² H_jj Δ²
    movable = (curvature > 0) & (lo < hi)
    shift = np.divide(gradient, steps * gram_diag, out=np.zeros_like(gradient), where=movable)
    delta = np.clip(np.rint(q - shift), lo, hi) - q
    change = np.where(movable, delta * (2.0 * steps * gradient + curvature * delta), np.inf)
    return delta, change


def greedy_descent(gram, gradient, energy, steps, lo, hi, q, *, max_steps, tol):
    """CDQuant's greedy rule in place on ``q``, ``gradient``, ``energy``: per neuron, the
    single best move of all coordinates, until none improves or ``max_steps``. Returns the
    moves taken per neuron and which neurons converged."""
    n = len(q)
    diag, active = np.diag(gram), np.ones(n, dtype=bool)
    taken = np.zeros(n, dtype=np.int64)
    for _ in range(max_steps):
        rows = np.flatnonzero(active)
        delta, change = coordinate_moves(
            diag, gradient[rows], steps[rows], lo[rows], hi[rows], q[rows].astype(np.float64)
        )
        j = np.argmin(change, axis=1)
        best = change[np.arange(len(rows)), j]
        improve = best < -tol[rows]
        active[rows[~improve]] = False
        rows, j, best = rows[improve], j[improve], best[improve]
        if len(rows) == 0:
            break
        step = delta[np.flatnonzero(improve), j]
        q[rows, j] += step.astype(np.int64)
        gradient[rows] += gram[j] * (steps[rows, j] * step)[:, None]
        energy[rows] += best
        taken[rows] += 1
    return taken, ~active | is_one_opt(diag, gradient, steps, lo, hi, q, tol)


def cyclic_descent(gram, gradient, energy, steps, lo, hi, q, *, max_steps, tol):
    """CDQuant's cyclic rule in place: coordinate ``t mod (f+1)`` at step ``t``, moved to
    its best integer; a neuron stops after a whole sweep without a move."""
    n, k = q.shape
    diag, idle = np.diag(gram), np.zeros(n, dtype=np.int64)
    taken = np.zeros(n, dtype=np.int64)
    for t in range(max_steps):
        rows, j = np.flatnonzero(idle < k), t % k
        if len(rows) == 0:
            break
        delta, change = coordinate_moves(
            diag[j],
            gradient[rows, j],
            steps[rows, j],
            lo[rows, j],
            hi[rows, j],
            q[rows, j].astype(np.float64),
        )
        improve = change < -tol[rows]
        idle[rows] = np.where(improve, 0, idle[rows] + 1)
        rows, step = rows[improve], delta[improve]
        q[rows, j] += step.astype(np.int64)
        gradient[rows] += np.outer(steps[rows, j] * step, gram[j])
        energy[rows] += change[improve]
        taken[rows] += 1
    return taken, (idle >= k) | is_one_opt(diag, gradient, steps, lo, hi, q, tol)


def is_one_opt(diag, gradient, steps, lo, hi, q, tol) -> np.ndarray:
    """Per neuron: no single coordinate's best move lowers the error by more than ``tol``."""
    _, change = coordinate_moves(diag, gradient, steps, lo, hi, q.astype(np.float64))
    return change.min(axis=1) >= -tol
