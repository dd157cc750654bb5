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
from collections.abc import Mapping

import dimod

from annealq.results import SolveResult, best_result, timing
from annealq.states import initial_sampleset


def call_parameters(bqm, sampler: dimod.Sampler, start: Mapping | None,
                    parameters: Mapping) -> dict:
    """``sample()``'s keyword arguments for ``bqm``: ``parameters``, plus the warm start as
    ``initial_states`` when there is one and the sampler accepts it."""
    kwargs = dict(parameters)
    if start is not None and "initial_states" in sampler.parameters:
        kwargs["initial_states"] = initial_sampleset(bqm, start)
    return kwargs


def solve_one(bqm, sampler: dimod.Sampler,
              kwargs: Mapping) -> tuple[SolveResult, dimod.SampleSet | None]:
    """``sampler.sample(bqm, **kwargs)``, resolved, and its best sample; the sample set too
    (``None`` for a BQM without variables, which is not sent anywhere)."""
    if bqm.num_variables == 0:  # everything clipped: nothing to decide, nothing to send
        return SolveResult({}, float(bqm.offset), timing({"skipped": "no variables"}, 0.0),
                           0.0), None
    start = time.perf_counter()
    sampleset = sampler.sample(bqm, **kwargs)
    sampleset.resolve()  # async samplers (QPU, hybrid) finish here, inside the timing
    return best_result(bqm, sampleset, time.perf_counter() - start), sampleset
