"""The beam's per-column work (:mod:`solvers.kbest.search`), compiled: each path's two
children at one column, and the survivors' costs, choices and targets after the pick.

The same floating-point operations, in the same order, as the NumPy expressions they
replace (no fused multiply-adds, no reassociation), so the paths and their costs are the
same to the last bit. The pick itself stays NumPy's ``argpartition``: which of two tied
children survives, and in which slot, is its choice.

Example:
    >>> import numpy as np
    >>> z, s = np.array([[0.6]]), np.array([1.0])
    >>> child, C, err = np.empty((1, 2)), np.empty((1, 2)), np.empty((1, 2))
    >>> children(z, s, np.array([-2.0]), np.array([2.0]), np.zeros((1, 1)), 1.0, child, C, err)
    >>> C.tolist(), child.round(2).tolist()       # 1 (0.4 off), then 0 (0.6 off)
    ([[1.0, 0.0]], [[0.16, 0.36]])
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _clip(x, lo, hi):
    """NumPy's ``clip`` of one float: NaN stays NaN."""
    if np.isnan(x):
        return x
    return min(max(x, lo), hi)


@njit(cache=True)
def children(z, s, lo, hi, cost, pivot, child, C, err):
    """Each path's two children at a column: its nearest admissible integer and the second
    nearest (the nearest again, at cost ``inf``, where the entry is fixed).

    Args:
        z: ``(n, K)`` the paths' targets at the column; s, lo, hi: ``(n,)`` the rows' steps
            and integer bounds there; cost: ``(n, K)`` the paths' costs; pivot: ``U[j, j]``.
        child, C, err: ``(n, 2K)`` written: the children's costs, integers and scaled
            errors, path ``p``'s at ``2p`` (nearest) and ``2p + 1``.
    """
    n, K = z.shape
    for r in range(n):
        for p in range(K):
            x = z[r, p] / s[r]
            near = _clip(np.rint(x), lo[r], hi[r])
            step = 1.0 if x >= near else -1.0
            up = near + step
            other = _clip(near - step if (up < lo[r]) | (up > hi[r]) else up, lo[r], hi[r])
            for c in range(2):
                value = near if c == 0 else other
                e = (z[r, p] - value * s[r]) / pivot
                C[r, 2 * p + c] = value
                err[r, 2 * p + c] = e
                child[r, 2 * p + c] = cost[r, p] + e * e
            if other == near:
                child[r, 2 * p + 1] = np.inf


@njit(cache=True)
def survive(pick, child, C, err, Z1, u, cost, choice, e, came, ahead):
    """The picked children as the new paths: ``came`` their parents' slots, ``cost``,
    ``choice`` and ``e`` theirs (``(n, K)``, written), and ``ahead`` (``(n, K, w)``,
    written) the block's columns after this one, the parent's targets less ``e · u``."""
    n, K = pick.shape
    w = ahead.shape[2]
    for r in range(n):
        for p in range(K):
            slot = pick[r, p]
            parent = slot // 2
            came[r, p] = parent
            cost[r, p] = child[r, slot]
            choice[r, p] = C[r, slot]
            e[r, p] = err[r, slot]
            for c in range(w):
                ahead[r, p, c] = Z1[r, parent, c + 1] - e[r, p] * u[c]


@njit(cache=True)
def carry(rest, ancestor, done, update, out):
    """The columns still ahead after a block, for each surviving path: its ancestor's
    targets less the block's feed-forward, ``out[r, p] = rest[r, ancestor[r, p], done:] −
    update[r, p]`` (``(n, K, w)``, written)."""
    n, K, w = out.shape
    for r in range(n):
        for p in range(K):
            a = ancestor[r, p]
            for c in range(w):
                out[r, p, c] = rest[r, a, done + c] - update[r, p, c]
