"""The sphere decoder over *integers* in boxes (:func:`solve_box`), for the wider
formulation: one integer per weight keeps the Gram matrix's own diagonal and tight
bounds, where the collinear bits of a weight would not. ``lns`` runs it on windows of
entries and ``exact-bb`` on whole neurons.

Example:
    >>> import numpy as np
    >>> H = np.array([[2.0, 0.5], [0.5, 1.0]]); b = np.array([-3.0, 1.0])
    >>> result = solve_box(H, b, np.array([0, -2]), np.array([3, 2]), incumbent=np.zeros(2, int))
    >>> result.proven, result.o.tolist()
    (True, [2, -2])
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numba import njit

from solvers.exact_bb.sphere import CHUNK_NODES

BVLS_MAX = 400  # entries: above, the real box minimum is found by coordinate descent
BOX_SWEEPS = 30


@dataclass(frozen=True)
class BoxResult:
    """The outcome of an integer box search (:func:`solve_box`).

    Attributes:
        o: the best integers found.
        value: their objective ``oᵀHo + 2bᵀo``.
        proven: whether ``value`` is proven minimal (to the ridge; see :func:`solve_box`).
        lower_bound: a proven lower bound on the minimum (``value`` when proven).
        nodes, seconds: search-tree nodes visited and wall time.
    """

    o: np.ndarray
    value: float
    proven: bool
    lower_bound: float
    nodes: int
    seconds: float


def solve_box(
    H: np.ndarray,
    b: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    *,
    incumbent: np.ndarray,
    max_nodes: int | None = None,
    time_limit: float | None = None,
) -> BoxResult:
    """Minimise ``oᵀHo + 2bᵀo`` over integers ``low ≤ o ≤ high`` (``H`` symmetric PSD).

    The integer-level sphere decoder (Schnorr–Euchner with box constraints): with
    ``H = RᵀR`` and ``o* = −H⁻¹b`` the objective is ``‖R(o − o*)‖² − o*ᵀHo*``; each
    level's candidates are visited nearest to its conditional centre first, so the first
    pruned candidate ends the level. The variables are decided in V-BLAST order (the best
    determined first), which on real layers turns hours into milliseconds. Unlike the
    binary decoder it keeps the Gram matrix's own diagonal: the several bits of one weight
    are collinear, which makes binary bounds weak, while one integer per weight gives tight
    ones.

    A ridge of 1e-9 of the mean diagonal keeps the factorisation defined when ``H`` is
    singular (collinear inputs); the reported ``value`` uses the true ``H`` and the lower
    bound is corrected for the ridge, so both stay valid.

    Args:
        incumbent: a feasible start; the result is never worse under the searched form.
        max_nodes, time_limit: stop after this many nodes or seconds (None: no limit),
            keeping the best found and a proven lower bound.
    """
    start = time.perf_counter()
    H = np.asarray(H, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    low, high = np.asarray(low, dtype=np.int64), np.asarray(high, dtype=np.int64)
    n = len(H)
    value_of = lambda o: float(o @ H @ o + 2 * b @ o)
    if n == 0:
        empty = np.zeros(0, np.int64)
        return BoxResult(empty, 0.0, True, 0.0, 0, 0.0)
    ridge = 1e-9 * max(float(np.mean(np.diag(H))), 1e-300)
    ridged = H + ridge * np.eye(n)
    order = _decision_order(ridged)
    ridged = ridged[np.ix_(order, order)]
    R = np.linalg.cholesky(ridged).T
    centre = -np.linalg.solve(ridged, b[order])
    best_o = np.asarray(incumbent, dtype=np.int64)[order].copy()
    best = float(np.sum((R @ (best_o - centre)) ** 2))
    state = _BoxState(n)
    lo, hi = low[order], high[order]
    nodes = 0
    budget = np.inf if max_nodes is None else max_nodes
    deadline = np.inf if time_limit is None else start + time_limit
    while True:
        chunk = int(min(CHUNK_NODES, budget - nodes))
        finished, best, visited = _box_search(
            R,
            centre,
            lo,
            hi,
            best_o,
            best,
            state.o,
            state.centre,
            state.partial,
            state.up,
            state.down,
            state.meta,
            chunk,
        )
        nodes += visited
        if finished or nodes >= budget or time.perf_counter() > deadline:
            break
    o = np.empty(n, dtype=np.int64)
    o[order] = best_o
    value = value_of(o)
    if finished:
        return BoxResult(o, value, True, value, nodes, time.perf_counter() - start)
    # ‖R(o − o*)‖² = f_ridged(o) + o*ᵀ(H + ridge)o*, and f ≥ f_ridged − ridge·max‖o‖²
    constant = -float(centre @ ridged @ centre)
    slack = ridge * float(np.sum(np.maximum(low.astype(float) ** 2, high.astype(float) ** 2)))
    bound = min(best, _open_box_bound(R, lo, hi, state)) + constant - slack
    return BoxResult(o, value, False, min(bound, value), nodes, time.perf_counter() - start)


class _BoxState:
    """The box search's depth-first stack, kept between chunks so it can resume."""

    def __init__(self, n: int):
        self.o = np.zeros(n, dtype=np.int64)
        self.centre = np.zeros(n)  # each level's conditional centre
        self.partial = np.zeros(n + 1)  # partial[k+1]: cost of the levels > k
        self.up = np.zeros(n, dtype=np.int64)  # next untried candidate above the centre
        self.down = np.zeros(n, dtype=np.int64)  # and below it
        self.meta = np.array([n - 1, 1], dtype=np.int64)  # current level, entering it afresh


def _open_box_bound(R, low, high, state: _BoxState) -> float:
    """The smallest cost among the subtrees not yet explored (a search stopped early)."""
    n = len(state.o)
    level, fresh = int(state.meta[0]), bool(state.meta[1])
    bound = np.inf
    for k in range(level, n):
        if k == level and fresh:
            bound = min(bound, state.partial[k + 1])
            continue
        for value in (state.up[k], state.down[k]):
            if low[k] <= value <= high[k]:
                cost = state.partial[k + 1] + (R[k, k] * (value - state.centre[k])) ** 2
                bound = min(bound, cost)
    return float(bound)


def _decision_order(H: np.ndarray) -> np.ndarray:
    """The variables in the order the search decides them *last to first*: greedily, the
    variable decided next is the one with the largest conditional precision given those
    not yet decided (the smallest diagonal of the remaining inverse, as in V-BLAST), so the
    top of the tree holds the best-determined variables and prunes hardest. O(n³)."""
    return _greedy_order(np.linalg.inv(H))


@njit(cache=True)
def _greedy_order(inverse):
    n = len(inverse)
    inverse = inverse.copy()
    left = np.ones(n, dtype=np.bool_)
    order = np.empty(n, dtype=np.int64)
    for step in range(n):
        k = -1
        for j in range(n):
            if left[j] and (k < 0 or inverse[j, j] < inverse[k, k]):
                k = j
        order[n - 1 - step] = k
        left[k] = False
        # the inverse without variable k: a rank-one downdate of the remaining block
        pivot = inverse[k, k]
        for i in range(n):
            if left[i]:
                factor = inverse[i, k] / pivot
                for j in range(n):
                    if left[j]:
                        inverse[i, j] -= factor * inverse[k, j]
    return order


@njit(cache=True)
def _box_search(
    R, centre, low, high, best_o, best, o, level_centre, partial, up, down, meta, max_nodes
):
    """Resume the depth-first Schnorr–Euchner enumeration; (finished, best, nodes)."""
    n = len(centre)
    k = meta[0]
    fresh = meta[1] == 1
    nodes = 0
    while True:
        if k == n:  # backtracked past the root: the tree is exhausted
            meta[0] = k
            return True, best, nodes
        if nodes >= max_nodes:
            meta[0] = k
            meta[1] = 1 if fresh else 0
            return False, best, nodes
        if fresh:
            shift = 0.0
            for j in range(k + 1, n):
                shift += R[k, j] * (o[j] - centre[j])
            c = centre[k] - shift / R[k, k]
            level_centre[k] = c
            first = min(max(np.int64(np.floor(c + 0.5)), low[k]), high[k])
            up[k] = first
            down[k] = first - 1
            fresh = False
        c = level_centre[k]
        has_up = up[k] <= high[k]
        has_down = down[k] >= low[k]
        if not has_up and not has_down:
            k += 1
            continue
        if has_up and (not has_down or up[k] - c <= c - down[k]):
            value = up[k]
            up[k] += 1
        else:
            value = down[k]
            down[k] -= 1
        nodes += 1
        cost = partial[k + 1] + (R[k, k] * (value - c)) ** 2
        if cost >= best:  # every candidate left at this level is farther: it is done
            up[k] = high[k] + 1
            down[k] = low[k] - 1
            k += 1
            continue
        o[k] = value
        if k == 0:
            best = cost
            best_o[:] = o
            continue
        partial[k] = cost
        k -= 1
        fresh = True


def box_minimiser(H, b, low, high) -> np.ndarray:
    """The minimiser of ``oᵀHo + 2bᵀo`` over the real box (bounded least squares up to
    ``BVLS_MAX`` variables, coordinate descent above)."""
    from scipy.optimize import lsq_linear  # lazily: scipy.optimize is slow to import

    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    if len(H) > BVLS_MAX:
        return _box_descent(H, b, low, high)
    ridge = 1e-9 * max(float(np.mean(np.diag(H))), 1e-300)  # as in solve_box
    R = np.linalg.cholesky(H + ridge * np.eye(len(H))).T
    solution = lsq_linear(R, -np.linalg.solve(R.T, b), bounds=(low, high), method="bvls", tol=1e-12)
    return np.clip(solution.x, low, high)


def _box_descent(H, b, lo, hi, sweeps: int = BOX_SWEEPS) -> np.ndarray:
    """Cyclic coordinate descent on ``oᵀHo + 2bᵀo`` over the real box (each coordinate
    to its exact clipped minimiser in turn): O(n²) per sweep."""
    diag = np.diag(H)
    o = np.clip(-b / np.where(diag > 0, diag, 1.0), lo, hi)
    gradient = H @ o + b  # half the gradient
    for _ in range(sweeps):
        for j in range(len(o)):
            if diag[j] <= 0:
                continue
            new = min(max(o[j] - gradient[j] / diag[j], lo[j]), hi[j])
            if new != o[j]:
                gradient += H[:, j] * (new - o[j])
                o[j] = new
    return o
