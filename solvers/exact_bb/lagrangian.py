"""The Lagrangian (Shor semidefinite) lower bound on a box-constrained integer quadratic.

The problem is :func:`solvers.exact_bb.box.solve_box`'s: ``min f(o) = oᵀHo + 2bᵀo`` over
integers ``low ≤ o ≤ high``. Two quadratic facts hold at every feasible point:

* integrality: ``(o_j − k_j)(o_j − k_j − 1) ≥ 0`` for any integer ``k_j`` (no integer lies
  strictly between two consecutive ones);
* the box: ``(o_j − low_j)(o_j − high_j) ≤ 0``.

So for multipliers ``d, ν ≥ 0``,
``f(o) ≥ f(o) − Σ d_j (o_j − k_j)(o_j − k_j − 1) + Σ ν_j (o_j − low_j)(o_j − high_j)``,
a quadratic with matrix ``Q = H − diag(d) + diag(ν)``. When ``Q`` is positive definite its
real minimum is a proven lower bound, in closed form:
``φ(d, ν) = −βᵀQ⁻¹β − Σ d_j k_j (k_j + 1) + Σ ν_j low_j high_j`` with
``β = b + d∘(k + ½) − ν∘(low + high)/2``. ``φ`` is concave; its maximum is the dual of
Shor's semidefinite relaxation with these constraints. :func:`lagrangian_bound` climbs to
it by Newton steps on ``φ`` plus a log barrier (``log det Q``, ``log d``, ``log ν``) whose
weight shrinks geometrically, then moves each ``k_j`` to the floor of the relaxed minimiser
and climbs again. Whatever point it stops at, the value it returns is ``φ`` evaluated there
(``Q``'s Cholesky factor proves it definite), so the bound never depends on convergence.

For the quantization problems here it is weaker than the certified radius of
:mod:`solvers.exact_bb.bound` (``benchmarks/REACH.md``): the relaxation lets each weight
sit halfway between two grid points.

Example:
    >>> import numpy as np
    >>> H = np.array([[2.0, 0.9], [0.9, 1.0]]); b = np.array([-1.3, 0.4])
    >>> low, high = np.array([-2, -2]), np.array([1, 1])
    >>> best = min(float(o @ H @ o + 2 * b @ o) for o in np.ndindex(4, 4)
    ...            for o in [np.array(o) - 2])
    >>> bound = lagrangian_bound(H, b, low, high)
    >>> bool(bound <= best), round(bound, 6), round(best, 6)
    (True, -2.2, -2.2)
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

BARRIER_STEPS = 12  # barrier weights, each a fifth of the last
NEWTON_STEPS = 15  # at most, per barrier weight
ROUNDS = 2  # climbs; each after the first moves k to the floor of the minimiser
SAFETY = 1e-9  # relative: the returned bound is lowered by this share of its terms


def lagrangian_bound(H, b, low, high) -> float:
    """A proven lower bound on ``min oᵀHo + 2bᵀo`` over integers in ``[low, high]``.

    Args:
        H: symmetric positive semi-definite ``(n, n)``.
        b: ``(n,)``.
        low, high: integer bounds with ``low < high`` everywhere (fixed variables belong
            in ``b`` and the constant, not here).

    Returns:
        The best of the climbs' bounds (``-inf`` where none had a definite ``Q``).
    """
    H, b = np.asarray(H, dtype=np.float64), np.asarray(b, dtype=np.float64)
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    if len(H) == 0:
        return 0.0
    if np.any(high <= low):
        raise ValueError("lagrangian_bound needs low < high for every variable")
    scale = max(float(np.mean(np.diag(H))), 1e-300)
    centre = _relaxed_minimiser(H, b, low, high, scale)
    best, theta = -np.inf, None
    for _ in range(ROUNDS):
        k = np.clip(np.floor(centre), low, high - 1)
        problem = _Dual(H, b, low, high, k)
        theta = problem.start(scale) if theta is None else theta
        theta = problem.climb(theta)
        value, centre = problem.certified(theta)
        best = max(best, value)
    return best


def _relaxed_minimiser(H, b, low, high, scale):
    """The box-clipped unconstrained minimiser (only a starting ``k``; any one is valid)."""
    n = len(H)
    return np.clip(-np.linalg.solve(H + 1e-9 * scale * np.eye(n), b), low, high)


def _newton_step(matrix, gradient):
    try:
        return np.linalg.solve(matrix, gradient)
    except np.linalg.LinAlgError:  # a singular system: multipliers that act alike
        return np.linalg.lstsq(matrix, gradient, rcond=None)[0]


class _Dual:
    """``φ`` for one choice of ``k``, over ``θ = (d, ν)``."""

    def __init__(self, H, b, low, high, k):
        self.H, self.b = H, b
        self.n = len(H)
        # one integrality multiplier per variable with room for it (where high = low + 1
        # it is the box's own constraint: both would drift together without changing φ),
        # one box multiplier per variable. Parameter a enters Q as sign_a at var_a, β as
        # slope_a and φ's constant as const_a, times θ_a.
        wide = np.flatnonzero(high - low >= 2)
        self.var = np.concatenate([wide, np.arange(self.n)])
        self.sign = np.concatenate([-np.ones(len(wide)), np.ones(self.n)])
        self.slope = np.concatenate([k[wide] + 0.5, -0.5 * (low + high)])
        self.const = np.concatenate([-k[wide] * (k[wide] + 1), low * high])

    def start(self, scale):
        smallest = float(np.linalg.eigvalsh(self.H)[0])
        return np.where(self.sign < 0, max(smallest, 1e-6 * scale) * 0.5, 1e-3 * scale)

    def _solve(self, theta):
        """``(factor, o*, φ)`` or ``None`` where ``Q`` is not definite."""
        Q = self.H.copy()
        Q[np.diag_indices(self.n)] += np.bincount(self.var, self.sign * theta, self.n)
        try:
            factor = cho_factor(Q)
        except LinAlgError:
            return None
        beta = self.b + np.bincount(self.var, self.slope * theta, self.n)
        o = -cho_solve(factor, beta)
        return factor, o, float(beta @ o + self.const @ theta)

    def _barrier(self, theta, mu):
        if np.any(theta <= 0):
            return -np.inf
        solved = self._solve(theta)
        if solved is None:
            return -np.inf
        factor, _, phi = solved
        logdet = 2 * float(np.sum(np.log(np.diag(factor[0]))))
        return phi + mu * (logdet + float(np.sum(np.log(theta))))

    def climb(self, theta):
        mu = abs(self._solve(theta)[2]) / len(theta) * 0.1 + 1e-12
        for _ in range(BARRIER_STEPS):
            for _ in range(NEWTON_STEPS):
                factor, o, phi = self._solve(theta)
                inverse = cho_solve(factor, np.eye(self.n))[np.ix_(self.var, self.var)]
                # gradient and Hessian of φ (envelope theorem), then of the barrier
                at = o[self.var]
                u = -(self.sign * at + self.slope)
                gradient = self.sign * at**2 + 2 * self.slope * at + self.const
                hessian = -2 * np.outer(u, u) * inverse
                gradient += mu * (self.sign * np.diag(inverse) + 1 / theta)
                hessian -= mu * (
                    np.outer(self.sign, self.sign) * inverse**2 + np.diag(1 / theta**2)
                )
                step = _newton_step(-hessian, gradient)
                slope = float(gradient @ step)
                if slope < 1e-12 * max(abs(phi), 1.0):
                    break
                theta = self._line_search(theta, step, slope, mu)
            mu *= 0.2
        return theta

    def _line_search(self, theta, step, slope, mu):
        here, t = self._barrier(theta, mu), 1.0
        while t > 1e-10:
            new = theta + t * step
            if self._barrier(new, mu) >= here + 1e-4 * t * slope:
                return new
            t *= 0.5
        return theta

    def certified(self, theta):
        """``(bound, o*)``: ``φ(θ)`` lowered by a rounding margin, ``−inf`` if not definite."""
        solved = self._solve(theta)
        if solved is None:
            return -np.inf, _relaxed_minimiser(self.H, self.b, self.low, self.high, 1.0)
        _, o, phi = solved
        size = abs(phi) + float(np.abs(self.const * theta).sum())
        return phi - SAFETY * size, o
