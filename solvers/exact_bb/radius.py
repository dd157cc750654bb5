"""The certified radius of :func:`solvers.exact_bb.bound.box_lower_bound` (steps 1 and 2 of
its module docs): the minimiser ``o_c`` of ``f(o) = oᵀHo + 2bᵀo`` over the real box with
the bound it gives (:func:`relaxation`), and the largest radius ``r`` around it shown to
hold no integer point of the box by an exhausted sphere-decoder tree
(:func:`certified_radius`), so that ``f(o) ≥ f(o_c) + Σ_j min(…) + r`` for every ``o``.
"""

from __future__ import annotations

import numpy as np

from solvers.exact_bb.box import BVLS_MAX, _box_descent, _box_search, _BoxState, _decision_order

RIDGE = 1e-9  # relative to the mean diagonal, as in solve_box
BISECTION_STEPS = 12


def order_of(H) -> np.ndarray:
    """The box decoder's decision order of the variables, on ``H`` with the ridge."""
    n = len(H)
    return _decision_order(H + RIDGE * max(float(np.mean(np.diag(H))), 1e-300) * np.eye(n))


def relaxation(H, b, low, high):
    """``f(o_c) + Σ min(g·δ) − ρ max‖δ‖²`` and the ridged factor around ``o_c``, permuted
    in the decision order."""
    from scipy.optimize import lsq_linear  # lazily: scipy.optimize is slow to import

    n = len(H)
    ridge = RIDGE * max(float(np.mean(np.diag(H))), 1e-300)
    order = order_of(H)
    ridged = (H + ridge * np.eye(n))[np.ix_(order, order)]
    R = np.linalg.cholesky(ridged).T
    lo, hi, b_o = low[order], high[order], b[order]
    # ‖R o + R⁻ᵀ b‖² = oᵀ(H + ρ)o + 2bᵀo + const: a bounded least-squares problem
    target = -np.linalg.solve(R.T, b_o)
    H_o = H[np.ix_(order, order)]
    if n <= BVLS_MAX:
        solution = lsq_linear(
            R, target, bounds=(lo.astype(float), hi.astype(float)), method="bvls", tol=1e-12
        )
        centre = np.clip(solution.x, lo, hi)
    else:  # any point of the box keeps the bound valid; descent makes it a tight one
        centre = _box_descent(H_o, b_o, lo.astype(float), hi.astype(float))
    value = float(centre @ H_o @ centre + 2 * b_o @ centre)
    g = 2 * (H_o @ centre + b_o)
    linear = float(np.sum(np.minimum(g * (lo - centre), g * (hi - centre))))
    slack = ridge * float(np.sum(np.maximum((lo - centre) ** 2, (hi - centre) ** 2)))
    return value + min(linear, 0.0) - slack, R, centre, lo, hi


def certified_radius(R, centre, lo, hi, upper, nodes) -> float:
    """The largest radius shown empty within ``nodes``: doubling from ``upper / 2^10``
    while the tests succeed, then bisection; each test gets an equal share of what is
    left."""
    certified, radius, top = 0.0, upper / 1024, None
    for step in range(BISECTION_STEPS):
        if top is not None:
            radius = 0.5 * (certified + top)
        budget = nodes // (BISECTION_STEPS - step)
        empty, used = no_point_within(R, centre, lo, hi, radius, budget)
        nodes -= used
        if empty:
            certified = radius
            radius = 2 * radius if top is None else radius
        else:
            top = radius
        if top is None and radius >= upper:
            top = upper
    return certified


def no_point_within(R, centre, lo, hi, radius, max_nodes) -> tuple[bool, int]:
    """Whether the box holds no integer point with ``‖R(o − centre)‖² < radius`` (the whole
    tree searched within ``max_nodes``), and the nodes used."""
    n = len(centre)
    state, found = _BoxState(n), np.zeros(n, dtype=np.int64)
    finished, best, used = _box_search(
        R,
        centre,
        lo,
        hi,
        found,
        radius,
        state.o,
        state.centre,
        state.partial,
        state.up,
        state.down,
        state.meta,
        max(int(max_nodes), 1),
    )
    return bool(finished and best >= radius), int(used)
