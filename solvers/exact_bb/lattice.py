"""Lattice reduction for the exact search: LLL, then BKZ tours, on an upper-triangular
factor (:func:`reduce_basis`).

Example:
    >>> import numpy as np
    >>> R = np.array([[1.0, 0.99, 0.5], [0.0, 0.05, 0.02], [0.0, 0.0, 0.3]])
    >>> basis, U, _ = reduce_basis(R, np.zeros(3))
    >>> same = np.allclose(np.abs(basis), np.abs(np.linalg.qr(R @ U)[1]))
    >>> round(abs(np.linalg.det(U))), bool(same)
    (1, True)
    >>> bool(abs(basis[0, 0]) < np.linalg.norm(R[:, 0]))   # a shorter first vector
    True
"""

from __future__ import annotations

import numpy as np
from numba import njit

LLL_DELTA = 0.99
BKZ_BLOCK = 20  # BKZ's block: each block's shortest vector by enumeration
BKZ_TOURS = 8
SHORTEST_NODES = 10_000_000  # per block: the best found by then is used


def reduce_basis(R, y, block: int = BKZ_BLOCK, tours: int = BKZ_TOURS):
    """A reduced basis: ``(R', U, y')`` with ``R'`` upper triangular, ``U`` unimodular and
    ``‖Ro − y‖ = ‖R'z − y'‖`` for ``o = Uz``.

    LLL (Givens re-triangularisation), then BKZ tours: for each block of ``block``
    columns the projected sublattice's shortest vector is found by enumeration and, where it
    is shorter than the block's first column and has a coefficient ±1 (so swapping it in
    keeps ``U`` unimodular), it replaces that column and moves to the block's front; LLL
    then repairs the basis. Shorter leading columns flatten the Gram–Schmidt profile, which
    is what the enumeration's node count depends on.
    """
    R0 = np.ascontiguousarray(R, dtype=np.float64)
    y0 = np.ascontiguousarray(y, dtype=np.float64)
    R1, U, _ = _lll(R0.copy(), y0.copy(), LLL_DELTA)
    n = len(R0)
    for _ in range(tours if n > 2 else 0):
        changed = False
        for k in range(n - 1):
            end = min(k + block, n)
            v = _shortest(np.ascontiguousarray(R1[k:end, k:end]), 0.99 * R1[k, k] ** 2)
            units = np.flatnonzero(np.abs(v) == 1)
            if not v.any() or len(units) == 0:
                continue
            j = k + units[-1]
            U[:, j] = U[:, k:end] @ v
            U[:, k : j + 1] = np.roll(U[:, k : j + 1], 1, axis=1)
            R1 = _triangular(R0 @ U)
            R1, step, _ = _lll(R1, np.zeros(n), LLL_DELTA)
            U = U @ step
            changed = True
        if not changed:
            break
    Q, R1 = np.linalg.qr(R0 @ U)
    return np.ascontiguousarray(R1), np.ascontiguousarray(U), Q.T @ y0


def _triangular(B):
    return np.ascontiguousarray(np.linalg.qr(B)[1])


@njit(cache=True)
def _shortest(R, radius):
    """The shortest nonzero integer ``z`` with ``‖Rz‖² < radius`` (zeros if none):
    Schnorr–Euchner around the origin, the radius shrinking at each shorter one."""
    n = R.shape[0]
    z = np.zeros(n, dtype=np.int64)
    best = np.zeros(n, dtype=np.int64)
    centre = np.zeros(n)
    partial = np.zeros(n + 1)
    step = np.zeros(n, dtype=np.int64)
    sign = np.ones(n, dtype=np.int64)
    origin = np.zeros(n)
    k = n - 1
    nodes = 0
    while nodes < SHORTEST_NODES:
        nodes += 1
        d = R[k, k] * (z[k] - centre[k])
        cost = partial[k + 1] + d * d
        if cost < radius:
            if k > 0:
                partial[k] = cost
                k -= 1
                enter_level(R, origin, z, centre, sign, step, k)
                continue
            nonzero = False
            for i in range(n):
                if z[i] != 0:
                    nonzero = True
            if nonzero:
                radius = cost
                best[:] = z
        else:
            k += 1
            if k >= n:
                break
        if k == n - 1:  # the top level: only one sign (z and −z are the same vector)
            step[k] += 1
            z[k] = step[k]
            continue
        next_candidate(z, centre, sign, step, k)
    return best


@njit(cache=True)
def enter_level(R, y, z, centre, sign, step, k):
    """Schnorr–Euchner: level ``k``'s conditional centre given the levels above, and its
    nearest integer as the first candidate."""
    s = y[k]
    for j in range(k + 1, R.shape[0]):
        s -= R[k, j] * z[j]
    centre[k] = s / R[k, k]
    z[k] = np.int64(np.rint(centre[k]))
    sign[k] = 1 if centre[k] >= z[k] else -1
    step[k] = 0


@njit(cache=True)
def next_candidate(z, centre, sign, step, k):
    """Level ``k``'s next candidate, zig-zagging outward around its centre (so the
    distances never decrease: the first one out of the radius ends the level)."""
    step[k] += 1
    offset = (step[k] + 1) // 2
    if step[k] % 2 == 1:
        z[k] = np.int64(np.rint(centre[k])) + sign[k] * offset
    else:
        z[k] = np.int64(np.rint(centre[k])) - sign[k] * offset


@njit(cache=True)
def _lll(R, y, delta):
    n = R.shape[0]
    U = np.eye(n, dtype=np.int64)
    k = 1
    steps = 0
    while k < n and steps < 100 * n * n:
        steps += 1
        for j in range(k - 1, -1, -1):  # size-reduce column k against j
            mu = np.rint(R[j, k] / R[j, j])
            if mu != 0.0:
                m = np.int64(mu)
                for i in range(j + 1):
                    R[i, k] -= mu * R[i, j]
                for i in range(n):
                    U[i, k] -= m * U[i, j]
        if delta * R[k - 1, k - 1] ** 2 > R[k - 1, k] ** 2 + R[k, k] ** 2:
            for i in range(n):  # swap columns k−1 and k
                R[i, k - 1], R[i, k] = R[i, k], R[i, k - 1]
                U[i, k - 1], U[i, k] = U[i, k], U[i, k - 1]
            a, c = R[k - 1, k - 1], R[k, k - 1]
            r = np.hypot(a, c)
            cos, sin = a / r, c / r
            for j in range(k - 1, n):  # a Givens rotation of rows k−1, k
                top, bottom = R[k - 1, j], R[k, j]
                R[k - 1, j] = cos * top + sin * bottom
                R[k, j] = -sin * top + cos * bottom
            R[k, k - 1] = 0.0
            top, bottom = y[k - 1], y[k]
            y[k - 1] = cos * top + sin * bottom
            y[k] = -sin * top + cos * bottom
            k = max(k - 1, 1)
        else:
            k += 1
    return R, U, y
