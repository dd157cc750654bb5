"""``kbest``'s beam as it was before its per-column work was compiled: the NumPy version of
``solvers.kbest.search._beam_paths``, the reference the compiled beam must equal to the
bit (``tests/test_kbest.py``) and the "before" variant of ``benchmarks/kbest_time.py``.
"""

from __future__ import annotations

import numpy as np

from solvers.kbest.search import BLOCK


def _beam_paths(U, Z, S, low, high, K, *, every: bool):
    n, k = Z.shape
    rows = np.arange(n)[:, None]
    cost = np.full((n, K), np.inf)
    cost[:, 0] = 0.0  # one live path; the other slots fill as it branches
    rest = np.repeat(Z[:, None, :], K, axis=1)
    parent = np.empty((k, n, K), dtype=np.int32)
    choice = np.empty((k, n, K))
    for i1 in range(0, k, BLOCK):
        i2 = min(i1 + BLOCK, k)
        Z1 = rest[:, :, : i2 - i1]  # the block's targets; each column drops off
        errors, came_from = [], []
        for jj in range(i2 - i1):
            j = i1 + jj
            s = S[:, j, None]
            x = Z1[:, :, 0] / s
            lo, hi = low[:, j, None], high[:, j, None]
            near = np.clip(np.rint(x), lo, hi)
            step = np.where(x >= near, 1.0, -1.0)  # the second nearest admissible integer
            other = np.clip(
                np.where((near + step < lo) | (near + step > hi), near - step, near + step), lo, hi
            )
            C = np.stack([near, other], axis=-1)  # (n, K, 2)
            err = (Z1[:, :, 0, None] - C * s[:, :, None]) / U[j, j]
            child = cost[:, :, None] + err**2
            child[:, :, 1][other == near] = np.inf  # a fixed entry
            child = child.reshape(n, 2 * K)
            pick = (
                np.argpartition(child, K - 1, axis=1)[:, :K]
                if K > 1
                else np.argmin(child, axis=1)[:, None]
            )
            came = pick // 2
            cost = np.take_along_axis(child, pick, axis=1)
            parent[j] = came
            choice[j] = np.take_along_axis(C.reshape(n, 2 * K), pick, axis=1)
            e = np.take_along_axis(err.reshape(n, 2 * K), pick, axis=1)
            errors.append(e)
            came_from.append(came)
            Z1 = Z1[:, :, 1:][rows, came]
            Z1 -= e[:, :, None] * U[j, j + 1 : i2]
        # each surviving path's errors over the block, walked back through its ancestors
        E1, ancestor = np.empty((n, K, i2 - i1)), np.broadcast_to(np.arange(K), (n, K))
        for jj in range(i2 - i1 - 1, -1, -1):
            E1[:, :, jj] = errors[jj][rows, ancestor]
            ancestor = came_from[jj][rows, ancestor]
        rest = rest[:, :, i2 - i1 :][rows, ancestor]  # only the columns still ahead
        rest -= E1 @ U[i1:i2, i2:]
    slot = np.broadcast_to(np.arange(K), (n, K)) if every else np.argmin(cost, axis=1)[:, None]
    best = np.take_along_axis(cost, slot, axis=1)
    q = np.empty((n, slot.shape[1], k), dtype=np.int64)
    for j in range(k - 1, -1, -1):  # walk the paths back
        q[:, :, j] = choice[j][rows, slot]
        slot = parent[j][rows, slot]
    return q, best
