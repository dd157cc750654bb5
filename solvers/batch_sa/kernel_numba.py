"""The CPU kernel of ``batch-sa``: numba-compiled, parallel over problems.

Each problem (neuron × read) has its own counter-based random stream (SplitMix64 of
``seed``, the problem's stream number and a counter), so the result does not depend on how
threads share the problems, nor on which other neurons share the call (the stream number
comes from the neuron's index in its layer, see :func:`solvers.batch_sa.anneal.anneal`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from solvers.batch_sa.form import keep_better, schedule, temperature_scale


def run(
    form, starts: np.ndarray, who: np.ndarray, options, streams: np.ndarray | None = None
) -> np.ndarray:
    """Descend, anneal and descend again from ``starts[who]``; return the states (B, F).
    ``streams`` (B,) numbers each problem's random stream (default: its position)."""
    H = np.ascontiguousarray(form.H, dtype=np.float64)
    d = np.ascontiguousarray(form.scales, dtype=np.float64)
    h = np.ascontiguousarray(form.linear, dtype=np.float64)
    free = np.ascontiguousarray(form.free)
    qd = np.ascontiguousarray(form.qdiag)
    U = np.ascontiguousarray(starts[who])
    G = form.fields(U.astype(np.float64), who)
    _descend(H, d, h, free, qd, who, U, G)
    temperatures = schedule(options)
    if len(temperatures):
        start = U.copy()
        scale = temperature_scale(form, U, who, G)
        streams = np.arange(len(U)) if streams is None else streams
        _anneal(
            H,
            d,
            h,
            free,
            qd,
            who,
            U,
            G,
            1.0 / temperatures,
            1.0 / scale,
            np.uint64(options.seed),
            np.ascontiguousarray(streams, dtype=np.uint64),
        )
        _descend(H, d, h, free, qd, who, U, G)
        U = keep_better(form, who, start, U)
    return U


@njit(cache=True, inline="always")
def _splitmix(x):
    x = x + np.uint64(0x9E3779B97F4A7C15)
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x, z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def _flip(H, d, i, k, b, U, G, F):
    sign = 1.0 - 2.0 * U[b, k]
    U[b, k] = 1 - U[b, k]
    c = d[i, k] * sign
    for j in range(F):
        G[b, j] += d[i, j] * H[k, j] * c


@njit(cache=True, parallel=True)
def _anneal(H, d, h, free, qd, who, U, G, betas, inverse_scale, seed, streams):
    B, F = U.shape
    for b in prange(B):
        i = who[b]
        state = seed ^ (streams[b] * np.uint64(0xD1B54A32D192ED03))
        for s in range(betas.shape[0]):
            beta = betas[s] * inverse_scale[b]
            for k in range(F):
                if not free[i, k]:
                    continue
                u = U[b, k]
                delta = (1.0 - 2.0 * u) * (h[i, k] + 2.0 * (G[b, k] - qd[i, k] * u))
                accept = delta <= 0.0
                if not accept:
                    x = beta * delta
                    if x < 40.0:
                        state, r = _splitmix(state)
                        accept = (r >> np.uint64(11)) * (1.0 / 9007199254740992.0) < np.exp(-x)
                if accept:
                    _flip(H, d, i, k, b, U, G, F)


@njit(cache=True, parallel=True)
def _descend(H, d, h, free, qd, who, U, G):
    """Steepest descent per problem: flip the most improving variable until none improves."""
    B, F = U.shape
    for b in prange(B):
        i = who[b]
        while True:
            best, best_k = 0.0, -1
            for k in range(F):
                if free[i, k]:
                    u = U[b, k]
                    delta = (1.0 - 2.0 * u) * (h[i, k] + 2.0 * (G[b, k] - qd[i, k] * u))
                    if delta < best:
                        best, best_k = delta, k
            # a relative tolerance: round-off in the fields must not make a flip look
            # improving forever
            if best_k < 0 or best > -1e-12 * (abs(h[i, best_k]) + 1.0):
                break
            _flip(H, d, i, best_k, b, U, G, F)
