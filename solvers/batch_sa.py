"""``batch-sa``: the layer-structured simulated annealer of :mod:`annealq.batchsa`.

Two ways in:

* ``sample_layer(lq, neurons=…, initial_states=…)`` — a whole layer (or the neurons a
  cache did not have) at once from the shared form; the dispatch uses it.
* ``sample(bqm, initial_states=…)`` — any BQM, as any dimod sampler; the dense form is
  built from the BQM itself.

Parameters: ``num_reads``, ``num_sweeps``, ``t_start``, ``t_stop``, ``seed``, ``device``
(see :class:`annealq.batchsa.BatchSAOptions`). Without ``initial_states`` it starts from
round-to-nearest on a layer and from all zeros on a bare BQM.
"""

from __future__ import annotations

import time
from dataclasses import replace

import dimod
import numpy as np

from annealq.batchsa import BatchSAOptions, LayerForm, anneal
from annealq.dispatch import SolveResult
from annealq.registry import SolverSpec
from solvers import missing_package


class BatchSASampler(dimod.Sampler):
    """Simulated annealing over all neurons of a layer at once (see module docs).

    Example:
        >>> bqm = dimod.BQM({"a": 1.0, "b": -2.0}, {("a", "b"): 3.0}, 0.0, "BINARY")
        >>> BatchSASampler(seed=1).sample(bqm).first.energy
        -2.0
    """

    parameters = {name: [] for name in BatchSAOptions.__dataclass_fields__} | {
        "initial_states": []}

    def __init__(self, **options):
        self.options = BatchSAOptions(**options)

    @property
    def defaults(self) -> dict:
        """The options in force (part of cache keys)."""
        return self.options.to_dict()

    @property
    def properties(self):
        return {"options": self.defaults}

    def sample(self, bqm, initial_states=None, **options):
        binary = bqm.binary
        order = list(binary.variables)
        form = _form_of(binary, order)
        start = np.zeros((1, len(order)), dtype=np.int8)
        if initial_states is not None:
            start = _start_of(initial_states, order, bqm.vartype)
        begin = time.perf_counter()
        states, _ = anneal(form, start, replace(self.options, **options))
        info = {"timing": {"anneal_seconds": time.perf_counter() - begin},
                "options": replace(self.options, **options).to_dict()}
        if bqm.vartype is dimod.SPIN:
            states = 2 * states.astype(np.int8) - 1
        return dimod.SampleSet.from_samples_bqm((states, order), bqm, info=info)

    def sample_layer(self, lq, *, neurons=None, initial_states=None,
                     **options) -> list[SolveResult]:
        """Anneal ``neurons`` of layer ``lq`` together; one :class:`SolveResult` each.

        Args:
            lq: a :class:`annealq.formulation.LayerQUBO`.
            neurons: indices to solve (default all).
            initial_states: one ``{label: 0/1}`` per neuron solved (default RTN).
            **options: override the sampler's options for this call.
        """
        rows = np.arange(lq.n_neurons) if neurons is None else np.asarray(neurons, dtype=int)
        if len(rows) == 0:
            return []
        run = replace(self.options, **options)
        if initial_states is None:
            starts = lq.states(lq.rtn_integers()[rows], rows)
        else:
            starts = np.stack([lq.assignment(i, s) for i, s in zip(rows, initial_states)])
        begin = time.perf_counter()
        states, energies = anneal(LayerForm.from_layer(lq, rows), starts, run)
        wall = time.perf_counter() - begin
        labels = lq.labels()
        info = {"options": run.to_dict(), "layer_seconds": wall, "layer_neurons": len(rows)}
        results = []
        for i, state, energy in zip(rows, states, energies):
            sample = {labels[k]: int(state[k]) for k in np.flatnonzero(lq.free[i])}
            results.append(SolveResult(sample, float(energy), dict(info), wall / len(rows)))
        return results


def _form_of(bqm, order) -> LayerForm:
    """The dense form of one BINARY BQM: ``H`` holds half the couplings, steps are 1."""
    h, (row, col, data), offset = bqm.to_numpy_vectors(variable_order=order)
    n = len(order)
    H = np.zeros((n, n))
    np.add.at(H, (row, col), data / 2.0)
    H = H + H.T
    return LayerForm(H, np.ones((1, n)), h[None, :].astype(np.float64),
                     np.array([offset], dtype=np.float64), np.ones((1, n), dtype=bool))


def _start_of(initial_states, order, vartype) -> np.ndarray:
    samples, labels = dimod.as_samples(initial_states)
    if len(samples) == 0:
        return np.zeros((1, len(order)), dtype=np.int8)
    position = {v: k for k, v in enumerate(labels)}
    try:
        start = samples[0, [position[v] for v in order]]
    except KeyError as exc:
        raise ValueError(f"initial state has no value for variable {exc.args[0]!r}") from None
    return ((start > 0) if vartype is dimod.SPIN else start).astype(np.int8)[None, :]


def make_sampler(**options) -> BatchSASampler:
    return BatchSASampler(**options)


SPEC = SolverSpec(make_sampler, lambda: missing_package("numba", "numba"),
                  "layer-structured simulated annealing from RTN (shared Gram, numba; "
                  "CUDA through torch with device='cuda')")
