"""Proven lower bounds on a neuron's whole-grid problem, where the optimum is out of reach.

The problem is ``min f(o) = oᵀHo + 2bᵀo`` over integers ``low ≤ o ≤ high`` (``H``
symmetric positive semi-definite), the form of :func:`solvers.exact_bb.box.solve_box`.
:func:`box_lower_bound` first tries to prove the optimum with the box sphere decoder
(``proof_share`` of its node budget), then, given ``reduced_nodes``, on an LLL/BKZ-reduced
basis (:mod:`solvers.exact_bb.reduced`: what proves a digits second layer's neurons);
failing that it certifies a radius:

1. ``o_c``, the minimiser of ``f`` over the real box (a bounded least-squares problem),
   and ``g = ∇f(o_c)``. For every ``o`` exactly ``f(o) = f(o_c) + g·δ + δᵀHδ`` with
   ``δ = o − o_c``, and each ``g_j δ_j ≥ min(g_j (low_j − o_c,j), g_j (high_j − o_c,j))``
   (≈ 0 at a KKT point: the gradient points out of the box on the bounds, vanishes inside).
2. A radius ``r`` such that **no** integer point of the box has ``δᵀHδ < r``: the sphere
   decoder's tree around ``o_c`` with its pruning radius fixed at ``r`` is exhausted
   without a leaf. The largest such ``r`` within the node budget is found by doubling, then
   bisection (a failed
   or unfinished test only lowers the upper end), so ``f(o) ≥ f(o_c) + Σ_j min(…) + r``.
3. Given ``reduced_nodes``, that bound raised on the reduced basis: a search of all points
   below a value ``v`` (between the bound and the incumbent) that finishes without one
   proves ``min f ≥ v`` (and one that finds one has found the minimum).

A ridge ``ρ`` keeps the Cholesky factor defined on collinear inputs; the bound subtracts
``ρ · max ‖δ‖²`` over the box, so it stays valid for the true ``H``. A bias with an int32
range would make that term useless: :func:`neuron_box` gives it the finite range that
holds every solution as good as a known one, which leaves the minimum unchanged.

Example:
    >>> import numpy as np
    >>> H = np.array([[2.0, 0.9], [0.9, 1.0]]); b = np.array([-1.3, 0.4])
    >>> low, high = np.array([-2, -2]), np.array([1, 1])
    >>> result = box_lower_bound(H, b, low, high, incumbent=np.array([0, 0]))
    >>> best = min(float(o @ H @ o + 2 * b @ o) for o in np.ndindex(4, 4)
    ...            for o in [np.array(o) - 2])
    >>> result.proven, bool(abs(result.bound - best) < 1e-9)
    (True, True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from solvers.exact_bb.box import solve_box
from solvers.exact_bb.radius import (  # noqa: F401 (RIDGE, BISECTION_STEPS: re-exported)
    BISECTION_STEPS,
    RIDGE,
    certified_radius,
    order_of,
    relaxation,
)
from solvers.exact_bb.reduced import _setup, estimated_nodes, node_count, solve_box_reduced

CERTIFICATE_TESTS = 3
# a reduced-basis proof is tried where its estimated nodes are within this factor of its
# budget (the estimate keeps the start's radius; the search shrinks it)
REACH = 10


@dataclass(frozen=True)
class BoundResult:
    """A proven lower bound on ``min f`` (``proven``: it is the minimum itself)."""

    bound: float
    proven: bool
    radius: float  # the certified ``r`` (0 when proven or none certified)
    seconds: float


def box_lower_bound(
    H,
    b,
    low,
    high,
    *,
    incumbent,
    max_nodes: int = 1_000_000,
    proof_share: float = 0.5,
    relaxed=None,
    reduced_nodes: int = 0,
) -> BoundResult:
    """A proven lower bound on ``min oᵀHo + 2bᵀo`` over integers in ``[low, high]``.

    Args:
        H, b, low, high: the problem (see the module docs); ``H`` positive semi-definite.
        incumbent: a feasible point (its value bounds the radius search from above).
        max_nodes: search-tree nodes in all (a node budget, not a time limit, so the
            bound does not depend on the machine's load); ``proof_share`` of them for the
            exact proof attempt.
        relaxed: ``(H, b, low, high, constant)``, a problem whose minimum plus
            ``constant`` is at most this one's (:func:`neuron_box`'s), to certify the
            radius on instead; ``incumbent[:len(low)]`` must be feasible for it.
        reduced_nodes: nodes for a second proof attempt on a reduced basis
            (:func:`solvers.exact_bb.reduced.solve_box_reduced`, the last variable, a bias
            when ``relaxed`` is given, at its best integer), made only where its estimated
            node count is within ``REACH`` times this; 0: none. As much again for raising
            the certified bound (step 3 of the module docs).

    Returns:
        A :class:`BoundResult`; ``bound`` never exceeds the minimum.
    """
    begin = time.perf_counter()
    H, b = np.asarray(H, dtype=np.float64), np.asarray(b, dtype=np.float64)
    low, high = np.asarray(low, dtype=np.int64), np.asarray(high, dtype=np.int64)
    incumbent = np.asarray(incumbent, dtype=np.int64)
    if len(H) == 0:
        return BoundResult(0.0, True, 0.0, 0.0)
    proof = solve_box(
        H, b, low, high, incumbent=incumbent, max_nodes=max(int(max_nodes * proof_share), 1)
    )
    if proof.proven:
        return BoundResult(proof.value, True, 0.0, time.perf_counter() - begin)
    lower = proof.lower_bound
    problem = H, b, low, high
    if reduced_nodes > 0:
        proof = _reduced_proof(*problem, proof, reduced_nodes, relaxed is not None)
        if proof.proven:
            return BoundResult(proof.value, True, 0.0, time.perf_counter() - begin)
    shift = 0.0
    if relaxed is not None:
        H, b, low, high, shift = relaxed
    base, R, centre, lo, hi = relaxation(H, b, low, high)
    upper = float(np.sum((R @ (proof.o[: len(H)][order_of(H)] - centre)) ** 2))
    certified = certified_radius(R, centre, lo, hi, upper, max_nodes - int(max_nodes * proof_share))
    bound = min(max(lower, base + shift + certified), proof.value)
    if reduced_nodes > 0:
        bound, proven = _reduced_certificate(
            *problem, proof.o, bound, reduced_nodes, relaxed is not None
        )
        if proven:
            return BoundResult(bound, True, 0.0, time.perf_counter() - begin)
    return BoundResult(bound, False, certified, time.perf_counter() - begin)


def _reduced_proof(H, b, low, high, plain, nodes, bias):
    """The reduced-basis search from the plain search's best (see ``reduced_nodes``);
    ``plain`` itself where a proof is out of reach or the search finds nothing better."""
    start = np.asarray(plain.o, dtype=np.int64)
    if estimated_nodes(H, b, low, high, incumbent=start, eliminate_last=bias) > REACH * nodes:
        return plain
    found = solve_box_reduced(
        H, b, low, high, incumbent=start, max_nodes=nodes, eliminate_last=bias
    )
    return found if found.proven or found.value < plain.value else plain


def _reduced_certificate(H, b, low, high, start, lower, nodes, bias) -> tuple[float, bool]:
    """``(bound, proven)``: ``lower`` raised by reduced-basis searches below a value
    (``solve_box_reduced``'s ``ceiling``: one that finishes with nothing below it proves the
    value a bound; one that finds something has found the minimum). Each test aims at the
    value whose estimated node count is half the nodes left (a quarter as much again after
    a test that ran out)."""
    start = np.asarray(start, dtype=np.int64)
    bias = bool(bias and len(H) > 1 and H[-1, -1] > 0)
    basis, _, _, _, shift, best = _setup(H, b, low, high, start, bias)
    aim = 0.5
    for _ in range(CERTIFICATE_TESTS):
        value = _value_within(basis, shift, lower, best, aim * nodes)
        if nodes <= 0 or value <= lower:
            break
        test = solve_box_reduced(
            H, b, low, high, incumbent=start, max_nodes=nodes, eliminate_last=bias, ceiling=value
        )
        nodes -= test.nodes
        if test.proven:
            return test.value, True
        if test.lower_bound > lower:
            lower = test.lower_bound
        else:
            aim /= 4
    return lower, False


def _value_within(basis, shift, lower, upper, nodes) -> float:
    """The largest value in ``[lower, upper]`` whose search is estimated within ``nodes``
    (bisection on :func:`~solvers.exact_bb.reduced.node_count`)."""
    if node_count(basis, upper + shift) <= nodes:
        return upper
    for _ in range(40):
        middle = 0.5 * (lower + upper)
        lower, upper = (
            (middle, upper) if node_count(basis, middle + shift) <= nodes else (lower, middle)
        )
    return lower


def neuron_box(gram, steps, projection, low, high, *, incumbent, bias: bool = True):
    """The whole-grid problem of one neuron in :func:`box_lower_bound`'s form.

    With entry offsets ``o`` from a base point (``q = base + o``), steps ``e`` and
    ``p = Âᵀr`` at the base, the error is ``c − 2 Σ e_j o_j p_j + (e∘o)ᵀG(e∘o)``
    (:meth:`annealq.layer.LayerQUBO.integer_form`). Entries with a zero Gram diagonal
    (dead inputs) change nothing and are dropped. The bias (the last entry, int32 range)
    gets the finite range that holds every solution at least as good as ``incumbent``:
    for fixed weights the error is a parabola in the bias, ``f_w(o_w) + H_bb (β − β*(o_w))²``
    with ``β*`` linear in the weights, so such a solution has
    ``|β − β*| ≤ √((f(incumbent) − min f_w) / H_bb)``, with ``min f_w`` bounded below by the
    real box relaxation. The minimum over this box is the whole grid's minimum.

    Args:
        gram, steps, projection: ``lq.entry_gram`` and ``integer_form(i)``'s ``e, p``.
        low, high: the weights' integer offsets allowed (the grid, relative to the base).
        incumbent: integer offsets ``(f+1,)`` of a known solution (weights, then bias).

    Returns:
        ``(H, b, low, high, incumbent, live, relaxed)`` over the live weights (``live``:
        which) and then the bias; ``relaxed = (H, b, low, high, constant)`` is the weights'
        problem with the bias at its real optimum (``None`` without a bias): its minimum
        plus ``constant`` is below the neuron's, and its radius bounds are often tighter.
    """
    f = len(gram) - 1
    live = np.flatnonzero(np.diag(gram)[:f] > 0)
    e, p = steps, projection
    keep = np.append(live, f) if bias and gram[f, f] > 0 else live
    H = gram[np.ix_(keep, keep)] * np.outer(e[keep], e[keep])
    b = -e[keep] * p[keep]
    start = np.asarray(incumbent, dtype=np.int64)[keep]
    low, high = np.asarray(low)[live], np.asarray(high)[live]
    if len(keep) == len(live):
        return H, b, low, high, start, live, None
    h, H_bb, b_b = H[:-1, -1], H[-1, -1], b[-1]
    reduced = H[:-1, :-1] - np.outer(h, h) / H_bb  # the bias at its real optimum
    floor = relaxation(reduced, b[:-1] - h * b_b / H_bb, low, high)[0] - b_b**2 / H_bb
    value = float(start @ H @ start + 2 * b @ start)
    radius = np.sqrt(max(value - floor, 0.0) / H_bb)
    # β* = −(h·o_w + b_b) / H_bb over the weights' box
    reach = np.minimum(h * low, h * high).sum(), np.maximum(h * low, h * high).sum()
    lo_b = int(np.floor(-(reach[1] + b_b) / H_bb - radius)) - 1
    hi_b = int(np.ceil(-(reach[0] + b_b) / H_bb + radius)) + 1
    lo_b, hi_b = min(lo_b, int(start[-1])), max(hi_b, int(start[-1]))
    relaxed = (reduced, b[:-1] - h * b_b / H_bb, low, high, -(b_b**2) / H_bb)
    return H, b, np.append(low, lo_b), np.append(high, hi_b), start, live, relaxed
