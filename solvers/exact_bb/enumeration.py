"""The compiled search of :func:`solvers.exact_bb.reduced.solve_box_reduced`:
Schnorr–Euchner enumeration of the integer points ``z`` with ``‖Rz − y‖² < radius`` on a
reduced basis, each complete point mapped back (``o = Uz``) and checked against the box,
run in chunks of nodes from a stack kept between them (:class:`SearchState`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from solvers.exact_bb.lattice import enter_level, next_candidate


class SearchState:
    """The enumeration's depth-first stack, kept between chunks so it can resume."""

    def __init__(self, basis, target, radius, best):
        n = len(basis)
        self.z, self.step = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.sign, self.centre = np.ones(n, np.int64), np.zeros(n)
        self.partial = np.zeros(n + 1)
        self.radius, self.best = np.array([radius]), np.array([best])
        self.level = np.array([n - 1])
        self.centre[n - 1] = target[n - 1] / basis[n - 1, n - 1]
        self.z[n - 1] = np.rint(self.centre[n - 1])
        self.sign[n - 1] = 1 if self.centre[n - 1] >= self.z[n - 1] else -1


@njit(cache=True)
def enumerate_reduced(
    R,
    y,
    U,
    low,
    high,
    H,
    b,
    last,
    shift,
    best_o,
    radius,
    best,
    z,
    centre,
    partial,
    step,
    sign,
    level,
    budget,
):
    """Schnorr–Euchner over ``‖Rz − y‖² < radius[0]`` (``R`` upper triangular) for at most
    ``budget`` nodes, resuming from the stack (``z``, ``centre``, ``partial``, ``step``,
    ``sign``, ``level``). Each complete ``z`` inside the box (``o = Uz``, then with
    ``last`` the last variable at its best integer) that beats ``best[0]`` replaces
    ``best_o`` and shrinks the radius to ``f(o) + shift``. Returns ``(finished, nodes)``."""
    n = R.shape[0]
    full = len(b)
    o = np.zeros(full, dtype=np.int64)
    k = level[0]
    nodes = 0
    while True:
        if nodes >= budget:
            level[0] = k
            return False, nodes
        nodes += 1
        d = R[k, k] * (z[k] - centre[k])
        cost = partial[k + 1] + d * d
        if cost < radius[0]:
            if k > 0:
                partial[k] = cost
                k -= 1
                enter_level(R, y, z, centre, sign, step, k)
                continue
            if _complete(z, U, low, high, H, b, last, o):
                value = 0.0
                for i in range(full):
                    row = 0.0
                    for j in range(full):
                        row += H[i, j] * o[j]
                    value += o[i] * (row + 2 * b[i])
                if value < best[0]:
                    best[0] = value
                    best_o[:] = o
                    radius[0] = min(radius[0], value + shift)
        else:  # this level's remaining candidates are farther: back up
            k += 1
            if k >= n:
                level[0] = k
                return True, nodes
        next_candidate(z, centre, sign, step, k)


@njit(cache=True)
def _complete(z, U, low, high, H, b, last, o):
    """``o = Uz`` (then the last variable at its best integer with ``last``); whether it
    lies in the box."""
    n, full = len(z), len(b)
    for i in range(n):
        v = 0
        for j in range(n):
            v += U[i, j] * z[j]
        if v < low[i] or v > high[i]:
            return False
        o[i] = v
    if last:
        vertex = b[full - 1]
        for j in range(n):
            vertex += H[full - 1, j] * o[j]
        vertex = np.rint(-vertex / H[full - 1, full - 1])
        o[full - 1] = np.int64(min(max(vertex, low[full - 1]), high[full - 1]))
    return True
