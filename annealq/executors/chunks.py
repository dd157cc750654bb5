"""What :class:`~annealq.executors.pool.PoolExecutor` sends to its workers and what they
run: a work item split into its shared part (scattered once per layer) and each chunk's
own part (sent with its task), BQMs packed as arrays in their own variable order, and a
chunk solved on a worker with numba and BLAS held to one thread.
"""

from __future__ import annotations

import sys

import dimod

from annealq.executors.base import BQMWork, LayerWork
from annealq.solve import LayerBQMs


def split_work(work):
    """``work``'s kind, its shared part (sent once per layer) and a function that gives a
    chunk's own part (sent with its task). A layer's BQMs travel as the layer and their
    rows, and are built on the workers."""
    if isinstance(work, LayerWork):

        def payload(chunk):
            return (
                [work.rows[k] for k in chunk],
                None if work.starts is None else [work.starts[k] for k in chunk],
            )

        return "LayerWork", (work.sampler, work.lq, work.parameters), payload
    if isinstance(work, BQMWork) and isinstance(work.bqms, LayerBQMs):
        rows = work.bqms.rows
        return (
            "LayerBQMs",
            (work.sampler, work.bqms.lq),
            lambda chunk: ([rows[k] for k in chunk], [work.calls[k] for k in chunk]),
        )
    if isinstance(work, BQMWork):
        return (
            "BQMWork",
            work.sampler,
            lambda chunk: ([_pack(work.bqms[k]) for k in chunk], [work.calls[k] for k in chunk]),
        )
    raise TypeError(f"work must be a LayerWork or a BQMWork, got {type(work).__name__}")


def _pack(bqm) -> tuple:
    """``bqm`` as arrays in its own variable order: a pickled dimod BQM comes back with its
    variables reordered, and a seeded sampler's answer depends on their order."""
    order = list(bqm.variables)
    return bqm.to_numpy_vectors(variable_order=order), bqm.vartype, order


def _unpack(packed) -> dimod.BinaryQuadraticModel:
    """The BQM that :func:`_pack` made arrays of."""
    (linear, quadratic, offset), vartype, order = packed
    return dimod.BQM.from_numpy_vectors(linear, quadratic, offset, vartype, variable_order=order)


def solve_chunk(kind: str, shared, positions: list, payload) -> list:
    """On a worker: one chunk's answers ``(position, SolveResult, SampleSet | None)``."""
    _one_thread()
    if kind == "LayerWork":
        sampler, lq, parameters = shared
        work = LayerWork(sampler, lq, payload[0], payload[1], parameters)
    elif kind == "LayerBQMs":
        sampler, lq = shared
        work = BQMWork(sampler, LayerBQMs(lq, payload[0]), payload[1])
    else:
        work = BQMWork(shared, [_unpack(packed) for packed in payload[0]], payload[1])
    return [
        (positions[k], result, sampleset)
        for k, result, sampleset in work.solve(range(len(positions)))
    ]


def _one_thread() -> None:
    """Numba and BLAS at one thread in this worker thread: parallelism comes from chunks,
    and a worker process per core (or a thread per core) must not oversubscribe it."""
    numba = sys.modules.get("numba")  # loaded with the solver, when the solver uses it
    if numba is not None:
        numba.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a nanny already sets OMP/MKL/OPENBLAS_NUM_THREADS=1
        return
    threadpool_limits(1)
