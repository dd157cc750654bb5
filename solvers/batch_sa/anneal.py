"""``batch-sa``: simulated annealing built for the layer QUBO's structure.

Every neuron of a layer shares ``ÂᵀÂ`` (docs/design.md §1); its QUBO is
``E(u) = c + h·u + uᵀ(Q − diag Q)u`` with ``Q = D ÂᵀÂ D``. This solver keeps, for each
problem (neuron × read), the local fields ``g = Q u``; a flip of variable ``k`` changes the
energy by ``(1 − 2u_k)(h_k + 2(g_k − Q_kk u_k))`` and, when accepted, every field by
``±Q[:, k]`` — so a sweep costs O(f) per variable visited plus O(f) per accepted flip, and
rejected proposals touch no memory.

A run on a layer:

1. **Warm start** — each read starts from a given state (round-to-nearest by default;
   GPTQ or any other assignment works too), and a greedy descent takes it to a local
   minimum first.
2. **Annealing suited to warm starts** — a short geometric schedule whose temperatures
   are set per neuron from the size of that neuron's single-flip energy changes at the
   start (``t_start``/``t_stop`` are multiples of it), so the walk leaves the start's
   basin without forgetting it. Reads differ by their random streams.
3. **Final greedy descent** — every returned state is a local minimum (no single flip
   lowers it); a read that ends above its descended warm start returns that instead, so
   the result is never worse than the start; the best read per neuron is returned.

Kernels: a numba-compiled one on the CPU (parallel over problems, a counter-based random
stream per problem so results do not depend on thread scheduling), and the same algorithm
vectorised over problems in torch for a CUDA GPU (``device="cuda"``). Deterministic for a
given seed on a given kernel; on the CPU kernel a neuron's result depends only on the seed,
its index in the layer and its start, not on which neurons share the call (so chunks of a
layer solved apart, on other workers, give the whole layer's answer).
"""

from __future__ import annotations

import numpy as np

from solvers.batch_sa import kernel_numba
from solvers.batch_sa.form import BatchSAOptions, LayerForm


def anneal(
    form: LayerForm,
    starts: np.ndarray,
    options: BatchSAOptions = BatchSAOptions(),
    ids: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Anneal every problem of ``form`` from ``starts`` (P, F) 0/1; return the best state
    per problem (P, F) int8 and its energy (P,). ``ids`` (P,) are the problems' indices in
    their layer (default ``0..P-1``): read ``r`` of problem ``p`` uses random stream
    ``ids[p] * num_reads + r``."""
    P, F = form.scales.shape
    starts = np.where(form.free, np.asarray(starts), 0).astype(np.int8)
    if starts.shape != (P, F):
        raise ValueError(f"starts must have shape {(P, F)}, got {starts.shape}")
    R = options.num_reads
    who = np.repeat(np.arange(P), R)
    if options.device.startswith("cuda"):
        # torch is optional and slow to import: only a CUDA run loads its kernel
        from solvers.batch_sa import kernel_torch as kernel
    else:
        kernel = kernel_numba
    ids = np.arange(P) if ids is None else np.asarray(ids, dtype=np.int64)
    streams = (ids[:, None] * R + np.arange(R)).ravel()
    U = kernel.run(form, starts, who, options, streams)
    energies = form.energies(U.astype(np.float64), who).reshape(P, R)
    best = np.argmin(energies, axis=1)
    states = U.reshape(P, R, F)[np.arange(P), best]
    return states, energies[np.arange(P), best]
