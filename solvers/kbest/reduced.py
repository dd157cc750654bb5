"""K-best on a lattice-reduced basis (lattice-reduction-aided K-best, as in MIMO detection).

A neuron's whole-grid problem is a closest-vector problem: ``f(o) = oᵀHo + 2bᵀo =
‖Ro − y‖² + const`` with ``H = RᵀR``, over integers ``0 ≤ o ≤ span``. When ``H`` is badly
conditioned (correlated inputs: a small layer's hidden activations) the lattice ``R·ℤⁿ``
has long, nearly parallel basis vectors, and a search that decides one coordinate of ``o``
at a time keeps the wrong paths: the digits model's second layer ends 7–9 % above its
proven optima with 8,192 paths. LLL/BKZ (:func:`solvers.exact_bb.lattice.reduce_basis`)
gives the same lattice a short, nearly orthogonal basis ``R' = QᵀRM`` (``M`` unimodular,
``o = Mz``); deciding ``z`` one coordinate at a time there is close to exact (Babai's
point is within a bounded factor of the closest vector), and the beam keeps ``width``
paths of it. The box is not a box in ``z``: every final path is mapped back, ``o = Mz``,
and the best one inside ``[0, span]`` is kept (the box only binds at few bits, where
some final paths still fall inside it).

Example:
    >>> import numpy as np
    >>> A = np.array([[1.0, 0.999], [0.0, 0.05]])          # nearly parallel columns
    >>> H = A.T @ A
    >>> b = -A.T @ (A @ np.array([5.4, 2.4]))              # f's real minimiser: (5.4, 2.4)
    >>> reduced_beam(H, b, np.array([8, 8]), width=1).tolist()   # the optimum, not (5, 2)
    [6, 2]
    >>> reduced_beam(H, -A.T @ (A @ np.array([3.4, -2.6])), np.array([8, 8]), width=4) is None
    True
"""

from __future__ import annotations

import numpy as np

from solvers.exact_bb.lattice import reduce_basis
from solvers.kbest.search import beam_paths, vblast_order

RIDGE = 1e-9  # of the mean diagonal: keeps the factor of a semi-definite H defined


def reduced_beam(
    H: np.ndarray, b: np.ndarray, span: np.ndarray, *, width: int
) -> np.ndarray | None:
    """The best of ``width`` K-best paths on the reduced basis that lies in the box.

    Args:
        H: ``(n, n)`` symmetric positive (semi-)definite; b: ``(n,)``.
        span: ``(n,)`` integer upper bounds (the lower ones are 0).
        width: paths kept.

    Returns:
        ``o`` (``(n,)`` int64) minimising ``oᵀHo + 2bᵀo`` among the final paths inside
        ``0 ≤ o ≤ span``, or ``None`` when none is.
    """
    H, b = np.asarray(H, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n = len(H)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ridged = H + RIDGE * max(float(np.mean(np.diag(H))), 1e-300) * np.eye(n)
    R = np.linalg.cholesky(ridged).T
    basis, M, target = reduce_basis(R, R @ -np.linalg.solve(ridged, b))
    # ‖basis·z − target‖² = (z − c)ᵀ G (z − c): the beam's form, V-BLAST order on G⁻¹
    inverse = np.linalg.inv(basis)
    G_inv = inverse @ inverse.T
    centre = inverse @ target
    order = vblast_order(G_inv)
    U = np.linalg.cholesky(G_inv[np.ix_(order, order)]).T
    unbounded = np.full((1, n), np.inf)
    paths, cost = beam_paths(
        U, centre[order][None], np.ones((1, n)), -unbounded, unbounded, width=width
    )
    z = np.empty((paths.shape[1], n), dtype=np.int64)
    z[:, order] = paths[0]
    o = z @ np.rint(M).astype(np.int64).T
    inside = np.isfinite(cost[0]) & np.all((o >= 0) & (o <= span), axis=1)
    if not inside.any():
        return None
    o = o[inside]
    return o[np.argmin(np.einsum("ij,jk,ik->i", o, H, o) + 2 * o @ b)]
