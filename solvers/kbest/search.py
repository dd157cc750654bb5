"""K-best search (a breadth-first sphere decoder) over GPTQ's column order.

GPTQ quantizes one column at a time and feeds each rounding error forward through the
Cholesky factor ``U`` of the inverse Hessian; its layer error is, exactly, the sum of the
per-column terms ``((z̃_j − s_j q_j) / U_jj)²`` with ``z̃_j`` the column's target after the
earlier columns' errors. That sum is the triangular form of the quadratic objective: after
``j`` columns its partial sum is final for those columns, whatever the later ones do. GPTQ
keeps the single greedy path; :func:`beam_search` keeps the ``width`` best partial paths
per neuron, each extended at every column by its two nearest admissible integers, and
returns the best complete one. ``width=1`` is GPTQ itself; on the down/up QUBO (two
integers per entry) a width of ``2^(k-1)`` keeps every path and is the exact optimum.
All neurons and all paths advance together, as GPTQ's lazy batch updates: one matrix
product per block of columns.

Example:
    >>> import numpy as np
    >>> H = np.array([[4.0, 1.9], [1.9, 1.0]])
    >>> U = np.linalg.cholesky(np.linalg.inv(H)).T
    >>> z, s = np.array([[0.6, 0.2]]), np.ones((1, 2))
    >>> low, high = np.full((1, 2), -2.0), np.full((1, 2), 2.0)
    >>> beam_search(U, z, s, low, high, width=1)[0].tolist()   # GPTQ: round, feed forward
    [[1, -1]]
    >>> beam_search(U, z, s, low, high, width=4)[0].tolist()   # here the optimum
    [[0, 1]]
"""

from __future__ import annotations

import numpy as np

from solvers.kbest.columns import carry, children, survive

BLOCK = 32  # columns per lazy update
CHUNK_ENTRIES = 1 << 21  # paths × columns held at once (16 MiB of float64 per array)
# The block update is one small matrix product per row (paths × BLOCK by BLOCK × columns
# left): threaded BLAS gains nothing on products this small, and where the cores are busy
# its threads wait on each other for most of the search, so the beam runs on one.
BLAS_THREADS = 1


def beam_search(
    U: np.ndarray, Z: np.ndarray, S: np.ndarray, low: np.ndarray, high: np.ndarray, *, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """The best of ``width`` paths per row through GPTQ's column loop.

    Minimises, per row ``i``, ``(S_i∘q − Z_i)ᵀ H (S_i∘q − Z_i)`` with ``H⁻¹ = UᵀU`` over
    integers ``low ≤ q ≤ high``, columns taken in their given order.

    Args:
        U: ``(k, k)`` upper Cholesky factor of ``H⁻¹`` (columns already in search order).
        Z: ``(n, k)`` targets in value units; S: ``(n, k)`` steps; low, high: ``(n, k)``
            integer bounds (as floats or ints).
        width: paths kept per row (``>= 1``).

    Returns:
        ``(q (n, k) int64, cost (n,))``: the integers and their objective.
    """
    n, k = Z.shape
    chunk = max(1, CHUNK_ENTRIES // (width * max(k, 1)))
    q, cost = np.empty((n, k), dtype=np.int64), np.empty(n)
    for r0 in range(0, n, chunk):
        rows = slice(r0, min(r0 + chunk, n))
        paths, costs = _beam(
            U,
            Z[rows],
            S[rows],
            np.asarray(low[rows], float),
            np.asarray(high[rows], float),
            width,
            every=False,
        )
        q[rows], cost[rows] = paths[:, 0], costs[:, 0]
    return q, cost


def beam_paths(
    U: np.ndarray, Z: np.ndarray, S: np.ndarray, low: np.ndarray, high: np.ndarray, *, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`beam_search`'s ``width`` final paths per row, not only the best: ``(q (n,
    width, k) int64, cost (n, width))``, a slot never filled at cost ``inf``. For a search
    whose constraints the columns' order cannot see (a box on ``Mq`` for the reduced basis's
    unimodular ``M``), the best complete path that meets them."""
    return _beam(U, Z, S, np.asarray(low, float), np.asarray(high, float), width, every=True)


def _beam(U, Z, S, low, high, K, *, every: bool):
    from threadpoolctl import threadpool_limits  # lazily: it inspects the loaded libraries

    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        return _beam_paths(U, Z, S, low, high, K, every=every)


def _beam_paths(U, Z, S, low, high, K, *, every: bool):
    n, k = Z.shape
    rows = np.arange(n)[:, None]
    cost = np.full((n, K), np.inf)
    cost[:, 0] = 0.0  # one live path; the other slots fill as it branches
    buffers = tuple(np.empty(n * K * k) for _ in range(3))  # two for the targets, one product
    rest = _view(buffers[0], (n, K, k))
    rest[...] = Z[:, None, :]
    parent = np.empty((k, n, K), dtype=np.int32)
    choice = np.empty((k, n, K))
    child, C, err = np.empty((n, 2 * K)), np.empty((n, 2 * K)), np.empty((n, 2 * K))
    for i1 in range(0, k, BLOCK):
        i2 = min(i1 + BLOCK, k)
        Z1 = rest[:, :, : i2 - i1]  # the block's targets; each column drops off
        errors, came_from = [], []
        for jj in range(i2 - i1):
            j = i1 + jj
            children(Z1[:, :, 0], S[:, j], low[:, j], high[:, j], cost, U[j, j], child, C, err)
            pick = (
                np.argpartition(child, K - 1, axis=1)[:, :K]
                if K > 1
                else np.argmin(child, axis=1)[:, None]
            )
            came, cost, e = np.empty((n, K), np.int64), np.empty((n, K)), np.empty((n, K))
            ahead = np.empty((n, K, i2 - j - 1))
            survive(pick, child, C, err, Z1, U[j, j + 1 : i2], cost, choice[j], e, came, ahead)
            parent[j] = came
            errors.append(e)
            came_from.append(came)
            Z1 = ahead
        # each surviving path's errors over the block, walked back through its ancestors
        E1, ancestor = np.empty((n, K, i2 - i1)), np.broadcast_to(np.arange(K), (n, K))
        for jj in range(i2 - i1 - 1, -1, -1):
            E1[:, :, jj] = errors[jj][rows, ancestor]
            ancestor = came_from[jj][rows, ancestor]
        # only the columns still ahead, into the other buffer (fresh arrays would cost
        # their page faults at every block)
        shape = (n, K, k - i2)
        update = np.matmul(E1, U[i1:i2, i2:], out=_view(buffers[2], shape))
        ahead = _view(buffers[1], shape)
        carry(rest, ancestor, i2 - i1, update, ahead)
        rest, buffers = ahead, (buffers[1], buffers[0], buffers[2])
    slot = np.broadcast_to(np.arange(K), (n, K)) if every else np.argmin(cost, axis=1)[:, None]
    best = np.take_along_axis(cost, slot, axis=1)
    q = np.empty((n, slot.shape[1], k), dtype=np.int64)
    for j in range(k - 1, -1, -1):  # walk the paths back
        q[:, :, j] = choice[j][rows, slot]
        slot = parent[j][rows, slot]
    return q, best


def _view(buffer, shape):
    """A C-contiguous array of ``shape`` on the front of a flat buffer."""
    return buffer[: int(np.prod(shape))].reshape(shape)


def vblast_order(H_inv: np.ndarray) -> np.ndarray:
    """The columns in V-BLAST order, first decided first: at each step the column whose
    variance given the columns already decided is smallest (the smallest diagonal entry of
    ``H[S, S]⁻¹`` over the undecided set ``S``), so each decision is the best determined
    one left and the paths' early costs separate them most. Pivoted Cholesky of ``H⁻¹``
    with the smallest pivot first (left-looking, one matrix-vector product per column):
    O(k³/2), seconds for k = 3,073. The same order as the sphere decoder's
    (:func:`solvers.exact_bb.box._decision_order`, which lists it last to first).

    Example:
        >>> H = np.array([[4.0, 1.9, 0.0], [1.9, 1.0, 0.2], [0.0, 0.2, 2.0]])
        >>> vblast_order(np.linalg.inv(H)).tolist()
        [2, 0, 1]
    """
    k = len(H_inv)
    variance = np.diag(H_inv).astype(np.float64)
    rows = np.empty((k, k))  # the factor's columns, stored as rows
    order = np.empty(k, dtype=np.int64)
    for t in range(k):
        j = int(np.argmin(variance))
        column = H_inv[j] - rows[:t, j] @ rows[:t] if t else np.array(H_inv[j], dtype=float)
        column /= np.sqrt(variance[j])
        rows[t] = column
        variance -= column * column  # each variance given column j too
        variance[j] = np.inf
        order[t] = j
    return order


def beam_bqm(h: np.ndarray, Q: np.ndarray, *, width: int) -> np.ndarray:
    """A ``width``-path beam over binary variables in their given order for
    ``E(u) = h·u + uᵀQu`` (``Q`` symmetric, zero diagonal): each path's score is the energy
    of its assigned variables among themselves. Exact once ``width >= 2^(n-1)``.

    Example:
        >>> h, Q = np.array([1.0, -1.0, 0.5]), np.array([[0, -1.5, 0], [-1.5, 0, 1], [0, 1, 0.]])
        >>> beam_bqm(h, Q, width=4).tolist()
        [1, 1, 0]
    """
    n = len(h)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    paths = np.zeros((1, 0), dtype=np.int8)
    energy, field = np.zeros(1), h[None, :].copy()  # field: h + 2 Q u over assigned u
    for j in range(n):
        energy = np.concatenate([energy, energy + field[:, j]])
        field = np.concatenate([field, field + 2.0 * Q[j]])
        paths = np.concatenate(
            [
                np.column_stack([paths, np.zeros(len(paths), np.int8)]),
                np.column_stack([paths, np.ones(len(paths), np.int8)]),
            ]
        )
        if len(energy) > width:
            keep = np.sort(np.argpartition(energy, width - 1)[:width])
            energy, field, paths = energy[keep], field[keep], paths[keep]
    return paths[np.argmin(energy)]
