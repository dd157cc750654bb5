"""Exact box-constrained integer least squares on an LLL-reduced basis.

:func:`solvers.exact_bb.box.solve_box` searches the weights themselves, one level per
weight. On a layer whose inputs are correlated (a second layer's hidden activations) that
tree is hopeless even when few grid points beat the incumbent: the ellipsoid
``f(o) < f(incumbent)`` is long and thin along the correlations, so its projections onto
the first levels hold astronomically many partial points although the whole ellipsoid holds
a few hundred (``benchmarks/REACH.md``). Lattice reduction is the classic cure: with
``H = RᵀR``, ``f(o) = ‖R(o − c)‖² + f(c)`` for the real minimiser ``c``; LLL finds a
unimodular ``U`` (integer, integer inverse) such that ``RU``'s columns are short and
nearly orthogonal, and ``o = Uz`` maps the integer points one to one. Schnorr–Euchner
enumeration over ``z`` then visits every integer point of the ellipsoid with few wasted
partial points; the box ``low ≤ Uz ≤ high`` (no longer one interval per level) is checked
where a point is complete. Before that, the box enters the form through Lagrange
multipliers at the real box minimiser (:func:`_box_shift`), so that a real minimiser
outside the box does not inflate the ellipsoid. A finished search proves the optimum: every
grid point better than the incumbent lies in the ellipsoid, and each was seen.

Example:
    >>> import numpy as np
    >>> H = np.array([[2.0, 1.98], [1.98, 2.0]]); b = np.array([-0.3, 0.1])
    >>> result = solve_box_reduced(H, b, np.array([-3, -3]), np.array([3, 3]),
    ...                            incumbent=np.array([0, 0]))
    >>> best = min(float(o @ H @ o + 2 * b @ o) for o in np.ndindex(7, 7)
    ...            for o in [np.array(o) - 3])
    >>> result.proven, bool(abs(result.value - best) < 1e-12)
    (True, True)
"""

from __future__ import annotations

import time
from math import lgamma

import numpy as np

from solvers.exact_bb.box import BoxResult, _decision_order, box_minimiser
from solvers.exact_bb.enumeration import SearchState, enumerate_reduced
from solvers.exact_bb.lattice import reduce_basis
from solvers.exact_bb.sphere import CHUNK_NODES

RIDGE = 1e-9  # relative to the mean diagonal, as in solve_box


def solve_box_reduced(
    H,
    b,
    low,
    high,
    *,
    incumbent,
    max_nodes: int | None = None,
    time_limit: float | None = None,
    eliminate_last: bool = False,
    ceiling: float | None = None,
) -> BoxResult:
    """Minimise ``oᵀHo + 2bᵀo`` over integers ``low ≤ o ≤ high`` (see the module docs).

    Args:
        H: symmetric positive semi-definite (a ridge of ``1e-9`` of the mean diagonal keeps
            the factor defined; the search radius is widened by what it can hide).
        incumbent: a feasible start; the result is never worse.
        max_nodes, time_limit: stop after this many nodes or seconds (None: no limit),
            keeping the best found, with ``proven=False`` and no bound beyond ``-inf``.
        eliminate_last: search the other variables only, the last one (a neuron's bias,
            on a grid far finer than the weights') at its best integer for each: for fixed
            others ``f`` is a parabola in it, whose best integer in the box is its rounded,
            clipped vertex. The search covers ``min over real last`` of ``f``, which is
            below ``f`` everywhere, so the proof holds; without this the ellipsoid holds
            thousands of bias values per weight vector.
        ceiling: search below this value only (default: the incumbent's), a test of a
            lower bound: a finished search that finds nothing below it proves
            ``min ≥ ceiling``; one that finds something has found the minimum.

    Returns:
        A :class:`~solvers.exact_bb.box.BoxResult` (``lower_bound``: the value when
        proven, ``ceiling`` when a finished search found nothing below it, else ``-inf``).
    """
    begin = time.perf_counter()
    H, b = np.asarray(H, dtype=np.float64), np.asarray(b, dtype=np.float64)
    low, high = np.asarray(low, dtype=np.int64), np.asarray(high, dtype=np.int64)
    incumbent = np.asarray(incumbent, dtype=np.int64)
    n = len(H)
    value_of = lambda o: float(o @ H @ o + 2 * b @ o)
    if n == 0:
        return BoxResult(incumbent, 0.0, True, 0.0, 0, 0.0)
    eliminate_last = bool(eliminate_last and n > 1 and H[-1, -1] > 0)
    basis, U, target, radius, shift, best = _setup(
        H, b, low, high, incumbent, eliminate_last, ceiling=ceiling
    )
    top = best if ceiling is None else min(best, float(ceiling))
    found = incumbent.copy()
    state = SearchState(basis, target, radius, top)
    budget = np.inf if max_nodes is None else max_nodes
    deadline = np.inf if time_limit is None else begin + time_limit
    nodes, finished = 0, False
    while not finished and nodes < budget and time.perf_counter() < deadline:
        chunk = int(min(CHUNK_NODES, budget - nodes))
        finished, visited = enumerate_reduced(
            basis,
            target,
            U,
            low,
            high,
            H,
            b,
            eliminate_last,
            shift,
            found,
            state.radius,
            state.best,
            state.z,
            state.centre,
            state.partial,
            state.step,
            state.sign,
            state.level,
            chunk,
        )
        nodes += visited
    value = value_of(found)
    if value > best:  # numerical noise cannot make the result worse than the start
        found, value = incumbent, best
    proven = finished and (value < top or top == best)
    lower = value if proven else (top if finished else -np.inf)
    return BoxResult(found, value, bool(proven), lower, int(nodes), time.perf_counter() - begin)


def estimated_nodes(
    H,
    b,
    low,
    high,
    *,
    incumbent,
    eliminate_last: bool = False,
    reduced: bool = True,
    ceiling: float | None = None,
) -> float:
    """The Gaussian heuristic's count of the nodes :func:`solve_box_reduced` visits from
    ``incumbent`` (its radius, not shrinking): ``Σ_k V_k ρᵏ / Π |R'_ii|`` over the bottom
    ``k`` levels of the reduced basis, ``V_k`` the unit ``k``-ball's volume. Whether a
    proof is within reach, before spending the nodes on it. ``reduced=False``: the same
    count for the unreduced basis in the plain decoder's order (its box, which prunes
    some levels, ignored). ``ceiling``: the count of a search below that value."""
    H = np.asarray(H, dtype=np.float64)
    eliminate_last = bool(eliminate_last and len(H) > 1 and H[-1, -1] > 0)
    basis, _, _, radius, _, _ = _setup(
        H,
        np.asarray(b, dtype=np.float64),
        np.asarray(low, dtype=np.int64),
        np.asarray(high, dtype=np.int64),
        np.asarray(incumbent, dtype=np.int64),
        eliminate_last,
        reduced=reduced,
        ceiling=ceiling,
    )
    return node_count(basis, radius)


def node_count(basis, radius: float) -> float:
    """The Gaussian heuristic's node count of an enumeration of ``basis`` (upper
    triangular) within ``radius`` (a squared distance)."""
    if radius <= 0:
        return 0.0
    logs = np.cumsum(np.log(np.abs(np.diag(basis)))[::-1])
    k = np.arange(1, len(basis) + 1)
    terms = (k / 2) * np.log(np.pi * radius) - np.array([lgamma(x / 2 + 1) for x in k]) - logs
    top = float(np.max(terms))
    return float(np.exp(top) * np.sum(np.exp(terms - top)))


def _setup(H, b, low, high, incumbent, eliminate_last, reduced=True, ceiling=None):
    """The searched form, reduced: ``(basis, U, target, radius, shift, incumbent's value)``
    with ``f(o) < value ⇒ ‖basis·z − target‖² < radius`` for ``o = Uz`` (the weights'
    part with ``eliminate_last``) and ``radius = value + shift``; ``value`` is the
    incumbent's, or ``ceiling`` where that is lower."""
    m = len(H) - 1 if eliminate_last else len(H)
    if eliminate_last:  # f(o) ≥ f_w(o_w) := min over the real last variable
        h = H[:-1, -1]
        S, s = H[:-1, :-1] - np.outer(h, h) / H[-1, -1], b[:-1] - h * b[-1] / H[-1, -1]
        constant = -(b[-1] ** 2) / H[-1, -1]
    else:
        S, s, constant = H, b, 0.0
    # the box's multipliers: f ≥ f + Σ ν_j (o_j − low_j)(o_j − high_j) on the box for ν ≥ 0;
    # ν from the real box minimiser's gradient puts the relaxed form's centre there
    S, s, constant = _box_shift(S, s, constant, low[:m], high[:m])
    ridge = RIDGE * max(float(np.mean(np.diag(S))), 1e-300)
    ridged = S + ridge * np.eye(m)
    R = np.linalg.cholesky(ridged).T
    centre = -np.linalg.solve(ridged, s)
    floor = float(s @ centre) + constant  # the searched form's minimum over the reals
    # f(o) < f(incumbent) ⇒ f_ridged(o) < f(incumbent) + ρ·max‖o‖² over the box
    slack = ridge * float(
        np.sum(np.maximum(low[:m].astype(float) ** 2, high[:m].astype(float) ** 2))
    )
    best = float(incumbent @ H @ incumbent + 2 * b @ incumbent)
    top = best if ceiling is None else min(best, float(ceiling))
    radius = (top + slack - floor) * (1 + 1e-9) + 1e-12 * abs(floor)
    if not reduced:  # the plain decoder's basis: its own variable order, no reduction
        order = _decision_order(ridged)
        R = np.linalg.cholesky(ridged[np.ix_(order, order)]).T
        return R, None, None, radius, slack - floor, best
    basis, U, target = reduce_basis(R, R @ centre)
    return basis, U, target, radius, slack - floor, best


def _box_shift(S, s, constant, low, high):
    """``(S + diag(ν), s − ν∘(low + high)/2, constant + Σ ν low high)``: a form below
    ``oᵀSo + 2sᵀo + constant`` on the box, for the multipliers ``ν ≥ 0`` of its real box
    minimiser (zero inside, the gradient's size over the width on a bound). Without them a
    real minimiser far outside the box would make the searched ellipsoid huge."""
    point = box_minimiser(S, s, low, high)
    gradient = 2 * (S @ point + s)
    width = (high - low).astype(float)
    at_low, at_high = point <= low + 1e-12 * width, point >= high - 1e-12 * width
    nu = np.where(at_low, gradient, 0.0) - np.where(at_high, gradient, 0.0)
    nu = np.maximum(nu, 0.0) / width
    return (
        S + np.diag(nu),
        s - nu * (low + high) / 2,
        constant + float(nu @ (low.astype(float) * high)),
    )
