"""The caching composite: any solver behind it answers from a :class:`CacheStore` first.

:class:`CachedSampler` wraps any ``dimod.Sampler``. One BQM (:meth:`~CachedSampler.sample`),
a list of BQMs (:meth:`~CachedSampler.sample_bqms`) or a whole layer
(:meth:`~CachedSampler.sample_layer`, for any child: a layer solver gets the misses at
once, any other sampler one BQM per miss) goes through the same steps, written once in
``_answer``: one lookup for all keys, a hit kept only when it covers exactly the problem's
variables and its stored energy matches the one recomputed from the problem (else it is a
miss, warned about and replaced), the misses handed to an
:class:`~annealq.executors.Executor` (in this process by default; local processes, a Dask
cluster or Leap's futures otherwise), and each result committed as soon as it arrives.
"""

from __future__ import annotations

from collections.abc import Sequence

import dimod

from annealq.cache.keys import bqm_hash, cache_key, layer_hashes, validate_text
from annealq.cache.store import CacheStore
from annealq.executors.base import BQMWork, Executor, InlineExecutor, LayerWork
from annealq.protocol import CloudSampler, LayerSampler
from annealq.results import SolveResult
from annealq.solve import LayerBQMs, OnDemand, lazy_calls, solve_one


class CachedSampler(dimod.ComposedSampler, LayerSampler):
    """A composite that answers from a :class:`CacheStore` and solves only misses.

    On a hit ``sample`` returns a one-row sample set of the stored best sample, its energy
    recomputed from the BQM, ``info`` as stored plus ``"cached": True``; the child is not
    called. On a miss it calls the child, stores the lowest-energy sample (read by label)
    with the whole sample set, and returns the child's sample set.

    Args:
        child: any ``dimod.Sampler`` (a :class:`~annealq.protocol.LayerSampler` is given
            a layer's misses at once).
        store: where results live.
        solver_name: part of every key; name the solver *and* its configuration when they
            change answers. Default: the child's class. A cloud child's identity (which
            QPU or hybrid solver, the mock's topology) is appended.
        executor: where misses are solved (default: in this process, in order).
        progress: called with a count as problems are answered (hits at once, misses as
            each result arrives), e.g. a progress bar's ``update``.
        **fixed_parameters: passed to every ``child.sample`` call and part of every key;
            ``sample()``'s own keyword arguments override them.

    Attributes:
        hits, misses: how many problems the store answered / the child solved.

    Example:
        >>> import pathlib, tempfile
        >>> bqm = dimod.BQM({"a": 1.0, "b": -1.0}, {("a", "b"): 0.5}, 0.0, "BINARY")
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "cache.sqlite"
        >>> with CacheStore(path) as store:
        ...     sampler = CachedSampler(dimod.ExactSolver(), store, "exact")
        ...     first = sampler.sample(bqm).first
        ...     again = sampler.sample(bqm).first
        >>> (sampler.misses, sampler.hits, again.sample == first.sample, float(again.energy))
        (1, 1, True, -1.0)
    """

    def __init__(
        self,
        child: dimod.Sampler,
        store: CacheStore,
        solver_name: str | None = None,
        *,
        executor: Executor | None = None,
        progress=None,
        **fixed_parameters,
    ):
        if not isinstance(store, CacheStore):
            raise TypeError(f"store must be a CacheStore, got {type(store).__name__}")
        if solver_name is None:
            solver_name = f"{type(child).__module__}.{type(child).__qualname__}"
        if isinstance(child, CloudSampler):  # which QPU or hybrid solver answered
            solver_name = f"{solver_name}@{child.identity}"
        validate_text(solver_name, "solver_name")
        self._children = [child]
        self.store = store
        self.solver_name = solver_name
        self.fixed_parameters = dict(fixed_parameters)
        self.executor = InlineExecutor() if executor is None else executor
        self.progress = progress
        self.hits = 0
        self.misses = 0

    @property
    def children(self) -> list:
        return self._children

    @property
    def parameters(self) -> dict:
        return self.child.parameters.copy()

    @property
    def properties(self) -> dict:
        return {"child_properties": self.child.properties.copy(), "solver_name": self.solver_name}

    @property
    def defaults(self) -> dict:
        """The child's bound parameters and this composite's fixed ones (part of keys)."""
        return {**getattr(self.child, "defaults", {}), **self.fixed_parameters}

    def key(self, bqm: dimod.BinaryQuadraticModel, **parameters) -> str:
        """The cache key of ``sample(bqm, **parameters)``; use it to look up many at once."""
        return cache_key(bqm_hash(bqm), self.solver_name, {**self.defaults, **parameters})

    def sample(self, bqm: dimod.BinaryQuadraticModel, **parameters) -> dimod.SampleSet:
        """The stored best sample of ``bqm``, or the child's sample set (then stored)."""
        parameters = {**self.fixed_parameters, **parameters}
        samplesets = []

        def solve(misses):
            result, sampleset = solve_one(bqm, self.child, parameters)
            samplesets.append(sampleset)
            yield 0, result, sampleset

        [result] = self._answer(
            [self.key(bqm, **parameters)],
            [set(bqm.variables)],
            lambda k, sample: float(bqm.energy(sample)),
            solve,
        )
        if samplesets and samplesets[0] is not None:
            return samplesets[0]
        return dimod.SampleSet.from_samples_bqm(result.sample, bqm, info=result.info)

    def sample_bqms(self, bqms, *, initial_states=None, **parameters) -> list[SolveResult]:
        """Each BQM's best sample, misses solved one by one by the child."""
        bqms = bqms if isinstance(bqms, Sequence) else list(bqms)
        starts = [None] * len(bqms) if initial_states is None else list(initial_states)
        parameters = {**self.fixed_parameters, **parameters}
        calls = lazy_calls(bqms, self.child, starts, parameters)
        keys = [self.key(bqms[k], **calls[k]) for k in range(len(bqms))]

        work = BQMWork(self.child, bqms, calls)
        return self._answer(
            keys,
            OnDemand(len(bqms), lambda k: set(bqms[k].variables)),
            lambda k, sample: float(bqms[k].energy(sample)),
            lambda misses: self.executor.solve(work, misses),
        )

    def sample_layer(
        self, lq, *, neurons=None, initial_states=None, **parameters
    ) -> list[SolveResult]:
        """``neurons`` (default all) of layer ``lq``: a layer-solver child gets all misses
        in one call, keyed by the layer's shared form; another child one BQM per miss."""
        rows = list(range(lq.n_neurons)) if neurons is None else list(neurons)
        starts = None if initial_states is None else list(initial_states)
        if not isinstance(self.child, LayerSampler):
            return self.sample_bqms(LayerBQMs(lq, rows), initial_states=starts, **parameters)
        parameters = {**self.fixed_parameters, **parameters}
        digests = layer_hashes(lq)
        keyed = {**self.defaults, **parameters}
        keys = [
            cache_key(
                digests[i],
                self.solver_name,
                {**keyed, "initial_state": None if starts is None else starts[k]},
            )
            for k, i in enumerate(rows)
        ]

        work = LayerWork(self.child, lq, rows, starts, parameters)
        return self._answer(
            keys,
            [set(lq.variables(i)) for i in rows],
            lambda k, sample: lq.energy(rows[k], sample),
            lambda misses: self.executor.solve(work, misses),
        )

    def _answer(self, keys, variables, energy_of, solve) -> list[SolveResult]:
        """Hits from one lookup, then ``solve(misses)``'s ``(k, result, sampleset)``, each
        committed as it comes."""
        found = self.store.get_many(keys)
        results: list[SolveResult | None] = [None] * len(keys)
        for k, key in enumerate(keys):
            hit = found.get(key)
            if hit is not None and set(hit.sample) == variables[k]:
                energy = energy_of(k, hit.sample)  # a poisoned entry is a miss, replaced
                if self.store.verify_energy(key, hit.energy, energy):
                    results[k] = SolveResult(
                        hit.sample, energy, {**hit.info, "cached": True}, hit.wall_seconds
                    )
        misses = [k for k, result in enumerate(results) if result is None]
        self.hits += len(keys) - len(misses)
        self.misses += len(misses)
        self._advance(len(keys) - len(misses))
        if misses:
            for k, result, sampleset in solve(misses):
                if not result.info.get("fallback"):  # a stand-in's answer: retry next run
                    self.store.put(keys[k], self.solver_name, result, sampleset)
                results[k] = result
                self._advance(1)
        return results

    def _advance(self, count: int) -> None:
        if self.progress is not None and count:
            self.progress(count)
