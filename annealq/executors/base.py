"""Where a layer's problems are solved: the executor seam between the cache and the solvers.

The caching composite (:class:`~annealq.cache.CachedSampler`) finds a layer's cache misses
and hands them to an :class:`Executor`, which solves them somewhere and yields each result
as soon as it is known; the composite commits each one to the cache as it arrives, so an
interrupted run resumes with the unfinished problems only. Three kinds of backend sit
behind this one contract:

* :class:`InlineExecutor` — in this process, in order (the default);
* :class:`~annealq.executors.pool.PoolExecutor` — chunks of neurons on local processes or
  a Dask cluster (``workers=N``, ``dask_scheduler=``);
* :class:`~annealq.executors.cloud.CloudExecutor` — Leap problems in flight together
  through the cloud client's futures, packed, budgeted, retried.

Results never depend on the backend: every solver draws its random numbers from the seed
and the neuron, never from the chunk or the worker.

Example:
    >>> import dimod
    >>> bqm = dimod.BQM({"a": 1.0, "b": -1.0}, {("a", "b"): 0.5}, 0.0, "BINARY")
    >>> work = BQMWork(dimod.ExactSolver(), [bqm], [{}])
    >>> [(k, result, _)] = InlineExecutor().solve(work, [0])
    >>> k, result.sample
    (0, {'a': 0, 'b': 1})
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import dimod

from annealq.results import SolveResult
from annealq.solve import solve_one

# what an executor yields: (position in the work, result, the sample set or None)
Answer = tuple[int, SolveResult, "dimod.SampleSet | None"]


@dataclass
class BQMWork:
    """Problems given as BQMs: ``sampler.sample(bqms[k], **calls[k])`` for each ``k``."""

    sampler: dimod.Sampler
    bqms: Sequence[dimod.BinaryQuadraticModel]
    calls: Sequence[dict]

    def solve(self, positions) -> Iterator[Answer]:
        for k in positions:
            yield (k, *solve_one(self.bqms[k], self.sampler, self.calls[k]))


@dataclass
class LayerWork:
    """Neurons ``rows`` of layer ``lq`` for a :class:`~annealq.protocol.LayerSampler`, one
    warm start per row (or none) and the call's parameters."""

    sampler: object
    lq: object
    rows: Sequence[int]
    starts: Sequence | None
    parameters: dict = field(default_factory=dict)

    def solve(self, positions) -> Iterator[Answer]:
        """All ``positions`` in one ``sample_layer`` call."""
        positions = list(positions)
        solved = self.sampler.sample_layer(
            self.lq,
            neurons=[self.rows[k] for k in positions],
            initial_states=None if self.starts is None else [self.starts[k] for k in positions],
            **self.parameters,
        )
        for k, result in zip(positions, solved):
            yield k, result, None


class Executor(abc.ABC):
    """Solves the given positions of a piece of work and yields each answer as it completes
    (in any order). Executors are context managers; :meth:`close` frees what they hold."""

    @abc.abstractmethod
    def solve(self, work: BQMWork | LayerWork, positions: Sequence[int]) -> Iterator[Answer]:
        """Yield ``(position, SolveResult, SampleSet | None)`` once for every position."""

    def stats(self) -> dict:
        """What this executor did so far (for the report); empty by default."""
        return {}

    def close(self) -> None:  # noqa: B027 (optional: a no-op unless overridden)
        """Release workers, connections or threads."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class InlineExecutor(Executor):
    """Everything in this process, in order: a layer solver gets all its misses in one
    call, any other sampler one BQM after another."""

    def solve(self, work, positions):
        return work.solve(positions)
