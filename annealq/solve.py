"""Solve one BQM with any ``dimod.Sampler`` and keep its lowest-energy sample: the step every
path (plain dispatch, the caching composite) shares.

Example:
    >>> import dimod
    >>> bqm = dimod.BQM({"a": 1.0, "b": -1.0}, {("a", "b"): 0.5}, 0.0, "BINARY")
    >>> result, _ = solve_one(bqm, dimod.ExactSolver(), {})
    >>> result.sample, result.energy
    ({'a': 0, 'b': 1}, -1.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import dimod

from annealq.results import SolveResult, best_result, timing
from annealq.states import initial_sampleset


class OnDemand(Sequence):
    """``[make(0), …, make(count − 1)]``, each item made when it is read and not kept."""

    def __init__(self, count: int, make: Callable[[int], object]):
        self._count, self._make = count, make

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(self._count))]
        if not -self._count <= k < self._count:
            raise IndexError(k)
        return self._make(k % self._count)


class LayerBQMs(OnDemand):
    """Neurons ``rows`` of a :class:`~annealq.layer.LayerQUBO` as BQMs, each built when it
    is read: a 3,073-entry CIFAR-10 neuron's BQM holds 4.7 million couplings (about 150
    MB), so a layer's BQMs are never all in memory at once. Executors that send work
    elsewhere send ``lq`` once and the rows (:mod:`annealq.executors.pool`)."""

    def __init__(self, lq, rows: Sequence[int]):
        self.lq, self.rows = lq, list(rows)
        super().__init__(len(self.rows), lambda k: lq.bqm(self.rows[k]))


def lazy_calls(
    bqms: Sequence, sampler: dimod.Sampler, starts: Sequence, parameters: Mapping
) -> OnDemand:
    """Each BQM's ``sample()`` keyword arguments (:func:`call_parameters`), made when read;
    a BQM is read only where its warm start goes to the sampler."""
    takes = "initial_states" in sampler.parameters

    def call(k: int) -> dict:
        start = starts[k] if takes else None
        return call_parameters(None if start is None else bqms[k], sampler, start, parameters)

    return OnDemand(len(bqms), call)


def call_parameters(
    bqm, sampler: dimod.Sampler, start: Mapping | None, parameters: Mapping
) -> dict:
    """``sample()``'s keyword arguments for ``bqm``: ``parameters``, plus the warm start as
    ``initial_states`` when there is one and the sampler accepts it."""
    kwargs = dict(parameters)
    if start is not None and "initial_states" in sampler.parameters:
        kwargs["initial_states"] = initial_sampleset(bqm, start)
    return kwargs


def solve_one(
    bqm, sampler: dimod.Sampler, kwargs: Mapping
) -> tuple[SolveResult, dimod.SampleSet | None]:
    """``sampler.sample(bqm, **kwargs)``, resolved, and its best sample; the sample set too
    (``None`` for a BQM without variables, which is not sent anywhere)."""
    if bqm.num_variables == 0:  # everything clipped: nothing to decide, nothing to send
        return SolveResult(
            {}, float(bqm.offset), timing({"skipped": "no variables"}, 0.0), 0.0
        ), None
    start = time.perf_counter()
    sampleset = sampler.sample(bqm, **kwargs)
    sampleset.resolve()  # async samplers (QPU, hybrid) finish here, inside the timing
    return best_result(bqm, sampleset, time.perf_counter() - start), sampleset
