"""Send a layer's problems to a solver: the stage between formulation and decoding.

:func:`solve_layer` is what the pipeline and the benchmarks call. It chooses by type: a
:class:`~annealq.protocol.LayerSampler` gets the whole layer from its shared form, any
other ``dimod.Sampler`` one BQM per neuron. With a cache, the solver is wrapped in the
caching composite (:class:`~annealq.cache.CachedSampler`), so cache hits are handled in
one place for every path. Where the problems run is the ``executor``'s business
(:mod:`annealq.executors`: this process, local processes, Dask, Leap's futures).

Example:
    >>> import dimod
    >>> bqm = dimod.BQM({"a": 1.0, "b": -1.0}, {("a", "b"): 0.5}, 0.0, "BINARY")
    >>> [result] = solve_bqms([bqm], dimod.ExactSolver())
    >>> result.sample, result.energy
    ({'a': 0, 'b': 1}, -1.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import dimod

from annealq.cache import CachedSampler, CacheStore
from annealq.executors.base import BQMWork, Executor, InlineExecutor, LayerWork
from annealq.protocol import LayerSampler
from annealq.results import SolveResult
from annealq.solve import LayerBQMs, lazy_calls


def solve_bqms(
    bqms: Iterable[dimod.BinaryQuadraticModel],
    sampler: dimod.Sampler,
    *,
    initial_states: Iterable[Mapping] | None = None,
    cache: CacheStore | None = None,
    solver_name: str | None = None,
    executor: Executor | None = None,
    progress=None,
    **parameters,
) -> list[SolveResult]:
    """Solve each BQM with ``sampler`` and return its lowest-energy sample.

    With a ``cache``, all the BQMs' keys are looked up in one query, only the misses go to
    the sampler, and each result is committed as soon as it is solved, so an interrupted
    run resumes where it stopped. Hits carry ``info["cached"] = True``.

    Args:
        bqms: the problems, typically ``LayerQUBO.bqms()``.
        sampler: any ``dimod.Sampler``.
        initial_states: optional warm start per BQM (``{label: 0/1}``), passed as the
            sampler's ``initial_states`` when it accepts them.
        cache: a ``CacheStore``, or ``None`` for no caching.
        solver_name: names the solver in cache keys (default: the sampler's class).
        executor: where the problems are solved (default: here, one after another).
        progress: called with a count as problems are answered.
        **parameters: passed to ``sampler.sample``.
    """
    bqms = bqms if isinstance(bqms, Sequence) else list(bqms)
    starts = _starts(initial_states, len(bqms))
    if cache is not None:
        return CachedSampler(
            sampler, cache, solver_name, executor=executor, progress=progress
        ).sample_bqms(bqms, initial_states=starts, **parameters)
    calls = lazy_calls(bqms, sampler, starts, parameters)
    return _run(BQMWork(sampler, bqms, calls), len(bqms), executor, progress)


def solve_layer(
    lq,
    sampler: dimod.Sampler,
    *,
    initial_states=None,
    cache: CacheStore | None = None,
    solver_name: str | None = None,
    executor: Executor | None = None,
    progress=None,
    **parameters,
) -> list[SolveResult]:
    """Solve every neuron of a :class:`~annealq.layer.LayerQUBO`, in neuron order.

    Arguments are those of :func:`solve_bqms`; ``initial_states`` has one sample per
    neuron. A :class:`~annealq.protocol.LayerSampler` gets all neurons at once from the
    layer's shared form (no BQM objects are built; cache keys come from
    :func:`annealq.cache.layer_hashes`).
    """
    starts = None if initial_states is None else _starts(initial_states, lq.n_neurons)
    rows = list(range(lq.n_neurons))
    if cache is not None:
        return CachedSampler(
            sampler, cache, solver_name, executor=executor, progress=progress
        ).sample_layer(lq, neurons=rows, initial_states=starts, **parameters)
    if isinstance(sampler, LayerSampler):
        return _run(LayerWork(sampler, lq, rows, starts, parameters), len(rows), executor, progress)
    return solve_bqms(
        LayerBQMs(lq, rows),
        sampler,
        initial_states=starts,
        executor=executor,
        progress=progress,
        **parameters,
    )


def _run(work, count: int, executor, progress) -> list[SolveResult]:
    """Every position of ``work`` through ``executor``, back in order."""
    executor = InlineExecutor() if executor is None else executor
    results: list = [None] * count
    for k, result, _ in executor.solve(work, range(count)):
        results[k] = result
        if progress is not None:
            progress(1)
    return results


def _starts(initial_states, count: int) -> list:
    starts = [None] * count if initial_states is None else list(initial_states)
    if len(starts) != count:
        raise ValueError(f"got {len(starts)} initial states for {count} problems")
    return starts
