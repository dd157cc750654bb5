"""Send a layer's BQMs to a dimod sampler and keep each one's lowest-energy sample.

Samples are read **by variable label** (``SampleSet.first.sample`` is a mapping), never by
position in ``record.sample``, whose column order is the sampler's business.

Example:
    >>> import dimod
    >>> bqm = dimod.BQM({"a": 1.0, "b": -1.0}, {("a", "b"): 0.5}, 0.0, "BINARY")
    >>> [result] = solve_bqms([bqm], dimod.ExactSolver())
    >>> result.sample, result.energy
    ({'a': 0, 'b': 1}, -1.0)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import dimod
import numpy as np


@dataclass(frozen=True)
class SolveResult:
    """One BQM's best sample.

    Attributes:
        sample: ``{label: 0/1}``.
        energy: the BQM's energy of ``sample`` (recomputed from the BQM, so it is exact).
        info: the sampler's ``SampleSet.info``, plus ``info["best"]``: the chosen sample's
            own fields (``num_occurrences``, ``chain_break_fraction``, …).
        wall_seconds: time spent in the sampler for this BQM.
    """

    sample: dict
    energy: float
    info: dict = field(default_factory=dict)
    wall_seconds: float = 0.0


def solve_bqms(bqms: Iterable[dimod.BinaryQuadraticModel], sampler: dimod.Sampler, *,
               initial_states: Iterable[Mapping] | None = None, cache=None,
               solver_name: str | None = None, **parameters) -> list[SolveResult]:
    """Solve each BQM with ``sampler`` and return its lowest-energy sample.

    With a ``cache`` (an :class:`annealq.cache.CacheStore`), all the BQMs' keys are looked
    up in one query, only the misses go to the sampler, and each result is committed as
    soon as it is solved, so an interrupted run resumes where it stopped. Hits carry
    ``info["cached"] = True``.

    Args:
        bqms: the problems, typically ``LayerQUBO.bqms()``.
        sampler: any ``dimod.Sampler``.
        initial_states: optional warm start per BQM (``{label: 0/1}``), passed as the
            sampler's ``initial_states`` when it accepts them.
        cache: a ``CacheStore``, or ``None`` for no caching.
        solver_name: names the solver in cache keys (default: the sampler's class).
        **parameters: passed to ``sampler.sample``.
    """
    bqms = list(bqms)
    starts = list(initial_states) if initial_states is not None else [None] * len(bqms)
    if len(starts) != len(bqms):
        raise ValueError(f"got {len(starts)} initial states for {len(bqms)} BQMs")
    calls = [_call_parameters(bqm, sampler, start, parameters) for bqm, start in zip(bqms, starts)]
    if cache is None:
        return [_solve_one(bqm, sampler, kwargs)[0] for bqm, kwargs in zip(bqms, calls)]

    from annealq.cache import bqm_hash, cache_key

    name = solver_name or f"{type(sampler).__module__}.{type(sampler).__qualname__}"
    defaults = getattr(sampler, "defaults", {})  # parameters bound to the sampler
    keys = [cache_key(bqm_hash(bqm), name, {**defaults, **kwargs})
            for bqm, kwargs in zip(bqms, calls)]
    found = cache.get_many(keys)
    results = []
    for bqm, kwargs, key in zip(bqms, calls, keys):
        hit = found.get(key)
        if hit is not None and set(hit.sample) == set(bqm.variables):
            results.append(SolveResult(hit.sample, float(bqm.energy(hit.sample)),
                                       {**hit.info, "cached": True}, hit.wall_seconds))
            continue
        result, sampleset = _solve_one(bqm, sampler, kwargs)
        cache.put(key, name, result, sampleset)
        results.append(result)
    return results


def solve_layer(lq, sampler: dimod.Sampler, *, initial_states=None, cache=None,
                solver_name: str | None = None, **parameters) -> list[SolveResult]:
    """Solve every neuron of a :class:`~annealq.formulation.LayerQUBO`, in neuron order.

    The stage between formulation and decoding: the pipeline and the benchmarks call this.
    Arguments are those of :func:`solve_bqms`; ``initial_states`` has one sample per neuron.

    A sampler with a ``sample_layer(lq, neurons=…, initial_states=…)`` method (``batch-sa``)
    gets all neurons at once from the layer's shared form; no BQM objects are built, and
    cache keys come from :func:`annealq.cache.layer_hashes` instead of one BQM hash each.
    """
    if not hasattr(sampler, "sample_layer"):
        return solve_bqms(lq.bqms(), sampler, initial_states=initial_states, cache=cache,
                          solver_name=solver_name, **parameters)
    starts = list(initial_states) if initial_states is not None else None
    neurons = list(range(lq.n_neurons))
    if cache is None:
        return sampler.sample_layer(lq, neurons=neurons, initial_states=starts, **parameters)

    from annealq.cache import cache_key, layer_hashes

    name = solver_name or f"{type(sampler).__module__}.{type(sampler).__qualname__}"
    params = {**getattr(sampler, "defaults", {}), **parameters}
    keys = [cache_key(digest, name, {**params, "initial_state": start})
            for digest, start in zip(layer_hashes(lq), starts or [None] * lq.n_neurons)]
    found = cache.get_many(keys)
    results: list[SolveResult | None] = [None] * lq.n_neurons
    for i, key in enumerate(keys):
        hit = found.get(key)
        if hit is not None and set(hit.sample) == set(lq.variables(i)):
            results[i] = SolveResult(hit.sample, lq.energy(i, hit.sample),
                                     {**hit.info, "cached": True}, hit.wall_seconds)
    misses = [i for i in neurons if results[i] is None]
    solved = sampler.sample_layer(
        lq, neurons=misses, initial_states=[starts[i] for i in misses] if starts else None,
        **parameters)
    for i, result in zip(misses, solved):
        cache.put(keys[i], name, result)
        results[i] = result
    return results


def best_result(bqm, sampleset: dimod.SampleSet, wall_seconds: float) -> SolveResult:
    """The lowest-energy sample of ``sampleset``, read by label, with its exact energy."""
    best = sampleset.first
    sample = {v: int(best.sample[v]) for v in bqm.variables}
    info = dict(sampleset.info)
    # per-sample fields of the chosen sample (the set-wide ones stay in info as reported)
    info["best"] = {name: _plain(getattr(best, name)) for name in sampleset.record.dtype.names
                    if name not in ("sample", "energy")}
    return SolveResult(sample, float(bqm.energy(sample)), info, wall_seconds)


def _call_parameters(bqm, sampler, start, parameters) -> dict:
    kwargs = dict(parameters)
    if start is not None and "initial_states" in sampler.parameters:
        kwargs["initial_states"] = _initial_state(bqm, start)
    return kwargs


def _solve_one(bqm, sampler, kwargs) -> tuple[SolveResult, dimod.SampleSet | None]:
    if bqm.num_variables == 0:  # everything clipped: nothing to decide, nothing to send
        return SolveResult({}, float(bqm.offset), {"skipped": "no variables"}, 0.0), None
    start = time.perf_counter()
    sampleset = sampler.sample(bqm, **kwargs)
    sampleset.resolve()  # async samplers (QPU, hybrid) finish here, inside the timing
    return best_result(bqm, sampleset, time.perf_counter() - start), sampleset


def _initial_state(bqm, start: Mapping) -> dimod.SampleSet:
    order = list(bqm.variables)
    states = np.array([[int(start[v]) for v in order]], dtype=np.int8)
    return dimod.SampleSet.from_samples((states, order), bqm.vartype, bqm.energies((states, order)))


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
