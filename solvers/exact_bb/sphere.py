"""Exact search for the layer QUBO: a sphere decoder (branch and bound) that proves ground
states beyond brute force's ~25 variables, or stops at a time limit with a bound gap.

For binary ``u`` (``u_k² = u_k``) the QUBO ``E(u) = c + h·u + uᵀ(Q − diag Q)u`` equals
``c + g·u + uᵀQ'u`` with ``Q' = Q + δI`` and ``g = h − diag Q − δ`` for **any** ``δ``, so a
small ridge makes ``Q'`` positive definite without changing a single energy. With
``Q' = RᵀR`` (Cholesky, ``R`` upper triangular) and ``y = −R⁻ᵀg/2``:

    E(u) = c − ‖y‖² + Σ_k (y_k − Σ_{j≥k} R_kj u_j)²

Deciding ``u`` from the last variable up, every decided row's square is final and the
rest are ≥ 0, so the partial sum bounds every completion from below (the sphere
decoder's bound). Depth-first, nearest child first (Schnorr–Euchner), pruning against
the incumbent — which starts as the best heuristic solution (e.g. ``batch-sa``'s).
Variables are ordered so that the strongest rows (largest ``R_kk``) are decided first.

:func:`solvers.exact_bb.box.solve_box` is the same search over *integers* in boxes, for the
wider formulation (several bits per weight): one integer per weight keeps the Gram matrix's
own diagonal and
tight bounds, where the collinear bits of a weight would not. It decides variables in
V-BLAST order, which on a digits layer proves each 65-entry neuron's whole-grid optimum in
milliseconds; ``lns`` uses it on windows and ``exact-bb`` on whole neurons.

Example:
    >>> import numpy as np
    >>> Q = np.array([[2.0, 1.0], [1.0, 3.0]]); h = np.array([-3.0, -1.0])
    >>> result = solve_dense(h, Q, 5.0)
    >>> result.proven, result.u.tolist(), result.energy
    (True, [1, 0], 2.0)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numba import njit

RIDGE = 1e-6  # the ridge δ, relative to the mean |diagonal| of Q (any δ is exact)
CHUNK_NODES = 2_000_000


@dataclass(frozen=True)
class SphereResult:
    """The outcome of an exact search.

    Attributes:
        u: the best assignment found (0/1 per variable).
        energy: its energy.
        proven: whether ``energy`` is proven to be the minimum.
        lower_bound: a proven lower bound on the minimum (``energy`` when proven).
        nodes: search-tree nodes visited.
        seconds: wall time.
    """

    u: np.ndarray
    energy: float
    proven: bool
    lower_bound: float
    nodes: int
    seconds: float

    @property
    def gap(self) -> float:
        """``energy − lower_bound`` (0 when proven)."""
        return self.energy - self.lower_bound


def solve_dense(
    h: np.ndarray,
    Q: np.ndarray,
    offset: float = 0.0,
    *,
    incumbent: np.ndarray | None = None,
    time_limit: float = 60.0,
) -> SphereResult:
    """Minimise ``offset + h·u + uᵀ(Q − diag Q)u`` over ``u ∈ {0,1}^n`` (``Q`` symmetric PSD).

    Args:
        h: linear terms ``(n,)``.
        Q: symmetric positive semi-definite ``(n, n)`` (the couplers are ``2 Q_jk``).
        offset: constant term.
        incumbent: a known good assignment to start pruning with (e.g. batch-sa's).
        time_limit: seconds before stopping with the best found and a lower bound.
    """
    start = time.perf_counter()
    h = np.asarray(h, dtype=np.float64)
    Q = np.asarray(Q, dtype=np.float64)
    n = len(h)
    if Q.shape != (n, n):
        raise ValueError(f"Q must have shape {(n, n)}, got {Q.shape}")
    # A variable without couplings (an input that is always 0 in the calibration set) has
    # its best value given by the sign of h_k alone. Left in the tree, such variables would
    # double it at every level with exact ties.
    off_diagonal = Q - np.diag(np.diag(Q))
    dead = ~np.any(off_diagonal != 0, axis=1)
    if dead.any() and n > 1:
        live = np.flatnonzero(~dead)
        inner = solve_dense(
            h[live],
            Q[np.ix_(live, live)],
            offset + float(np.minimum(h[dead], 0.0).sum()),
            incumbent=None if incumbent is None else np.asarray(incumbent)[live],
            time_limit=time_limit,
        )
        u = (h < 0).astype(np.int8)
        u[live] = inner.u
        return SphereResult(
            u,
            inner.energy,
            inner.proven,
            inner.lower_bound,
            inner.nodes,
            time.perf_counter() - start,
        )
    energy_of = lambda u: float(offset + h @ u + u @ Q @ u - np.diag(Q) @ u)
    if n == 0:
        return SphereResult(np.zeros(0, np.int8), float(offset), True, float(offset), 0, 0.0)
    Q_pd = _positive_definite(Q)
    g = h - np.diag(Q_pd)
    # strongest diagonal decided first: it sits last in the triangular order
    order = np.argsort(np.diag(Q_pd), kind="stable")
    R = np.linalg.cholesky(Q_pd[np.ix_(order, order)]).T
    y = -np.linalg.solve(R.T, g[order]) / 2.0
    constant = offset - float(y @ y)
    if incumbent is None:
        incumbent = (np.clip(np.linalg.solve(R, y), 0, 1) > 0.5).astype(np.float64)
    else:
        incumbent = np.asarray(incumbent, dtype=np.float64)[order]
    best_u = incumbent.astype(np.int8)
    best = float(np.sum((y - R @ incumbent) ** 2))

    state = _SearchState(n, y)
    nodes = 0
    deadline = start + time_limit
    while True:
        finished, best, visited = _search(
            R,
            y,
            best_u,
            best,
            state.u,
            state.z,
            state.partial,
            state.tried,
            state.level,
            CHUNK_NODES,
        )
        nodes += visited
        if finished or time.perf_counter() > deadline:
            break
    bound = best if finished else min(best, _open_bound(R, state))
    u = np.empty(n, dtype=np.int8)
    u[order] = best_u
    return SphereResult(
        u,
        energy_of(u.astype(np.float64)),
        bool(finished),
        constant + bound if not finished else energy_of(u.astype(np.float64)),
        nodes,
        time.perf_counter() - start,
    )


def _positive_definite(Q: np.ndarray) -> np.ndarray:
    """``Q`` with a diagonal that makes it positive definite.

    Only the off-diagonal part of ``Q`` defines the energy (the diagonal moves into ``h``),
    so the diagonal is free. A PSD ``Q`` (the formulation's ``G``, whose diagonal gives the
    tightest bounds) gets a tiny ridge; any other gets shifted by its smallest eigenvalue.
    """
    ridge = RIDGE * max(float(np.mean(np.abs(np.diag(Q)))), 1e-12)
    shifted = Q + ridge * np.eye(len(Q))
    try:
        np.linalg.cholesky(shifted)
        return shifted
    except np.linalg.LinAlgError:
        smallest = float(np.linalg.eigvalsh(Q)[0])
        return Q + (ridge - smallest * (1 + 1e-9) + 1e-12) * np.eye(len(Q))


class _SearchState:
    """The depth-first stack, kept between chunks of the search so it can resume."""

    def __init__(self, n: int, y: np.ndarray):
        self.u = np.zeros(n, dtype=np.int8)
        self.z = y.copy()  # y_i − Σ_{j decided} R_ij u_j
        self.partial = np.zeros(n + 1)  # partial[k+1]: cost of rows > k
        self.tried = np.zeros(n, dtype=np.int8)  # children tried at each level (0, 1, 2)
        self.level = np.array([n - 1], dtype=np.int64)


def _open_bound(R, state: _SearchState) -> float:
    """The smallest lower bound among the subtrees not yet explored (time limit hit)."""
    n = len(state.u)
    level = int(state.level[0])
    bound = np.inf
    for k in range(max(level, 0), n):
        if state.tried[k] == 1:  # the second child of level k is still open
            # z[k] holds y_k − Σ_{j>k} R_kj u_j: u_k itself is never subtracted from it
            other = 1 - state.u[k]
            bound = min(bound, state.partial[k + 1] + (state.z[k] - R[k, k] * other) ** 2)
    if 0 <= level < n and state.tried[level] == 0:
        bound = min(bound, state.partial[level + 1])
    return float(bound)


@njit(cache=True)
def _search(R, y, best_u, best, u, z, partial, tried, level_box, max_nodes):
    """Resume the depth-first search; return (finished, best, nodes visited)."""
    n = len(y)
    level = level_box[0]
    nodes = 0
    while nodes < max_nodes:
        if level == n:  # backtracked past the root: the tree is exhausted
            level_box[0] = level
            return True, best, nodes
        if level < 0:  # a complete assignment better than the incumbent (pruning saw to it)
            best = partial[0]
            best_u[:] = u
            level = 0  # back to level 0: its other child is next, or it is done
            continue
        k = level
        if tried[k] == 2:  # both children done: undo u_k and go up
            if u[k] == 1:
                for i in range(k):
                    z[i] += R[i, k]
            u[k] = 0
            tried[k] = 0
            level += 1
            continue
        # choose this level's next child: nearest to the continuous value first
        center = z[k] / R[k, k]
        first = 1 if center > 0.5 else 0
        if tried[k] == 1:
            # undo the first child before the second
            if u[k] == 1:
                for i in range(k):
                    z[i] += R[i, k]
            value = 1 - first
        else:
            value = first
        tried[k] += 1
        nodes += 1
        cost = partial[k + 1] + (z[k] - R[k, k] * value) ** 2
        u[k] = value
        if cost >= best:
            # pruned; the nearer child went first, so its sibling costs at least as much
            tried[k] = 2
            u[k] = 0
            continue
        if value == 1:
            for i in range(k):
                z[i] -= R[i, k]
        partial[k] = cost
        level = k - 1
        if level >= 0:
            tried[level] = 0
    level_box[0] = level
    return False, best, nodes
