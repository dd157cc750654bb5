"""``batch-sa``: the layer-structured simulated annealer of :mod:`solvers.batch_sa.anneal`.

Two ways in:

* ``sample_layer(lq, neurons=…, initial_states=…)`` — a whole layer (or the neurons a
  cache did not have) at once from the shared form; the dispatch uses it.
* ``sample(bqm, initial_states=…)`` — any BQM, as any dimod sampler; the dense form is
  built from the BQM itself.

Parameters: ``num_reads``, ``num_sweeps``, ``t_start``, ``t_stop``, ``seed``, ``device``
(see :class:`solvers.batch_sa.form.BatchSAOptions`). Without ``initial_states`` it starts from
round-to-nearest on a layer and from all zeros on a bare BQM.
"""

from __future__ import annotations

import time
from dataclasses import replace

import dimod
import numpy as np

from annealq.protocol import LayerSampler
from annealq.registry import SolverSpec
from annealq.results import SolveResult, timing
from annealq.states import as_vartype, dense_qubo, start_state
from solvers import missing_package
from solvers.batch_sa.anneal import anneal
from solvers.batch_sa.form import BatchSAOptions, LayerForm


class BatchSASampler(dimod.Sampler, LayerSampler):
    """Simulated annealing over all neurons of a layer at once (see module docs).

    Example:
        >>> bqm = dimod.BQM({"a": 1.0, "b": -2.0}, {("a", "b"): 3.0}, 0.0, "BINARY")
        >>> float(BatchSASampler(seed=1).sample(bqm).first.energy)
        -2.0
    """

    parameters = {name: [] for name in BatchSAOptions.__dataclass_fields__} | {"initial_states": []}

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
        order, h, Q, offset = dense_qubo(bqm)
        n = len(order)
        form = LayerForm(
            Q, np.ones((1, n)), h[None, :], np.array([offset]), np.ones((1, n), dtype=bool)
        )
        start = start_state(initial_states, order, bqm.vartype)
        start = np.zeros((1, n), dtype=np.int8) if start is None else start[None, :]
        run = replace(self.options, **options)
        begin = time.perf_counter()
        states, _ = anneal(form, start, run)
        seconds = time.perf_counter() - begin
        info = timing({"timing": {"anneal_seconds": seconds}, "options": run.to_dict()}, seconds)
        return dimod.SampleSet.from_samples_bqm(
            (as_vartype(states, bqm.vartype), order), bqm, info=info
        )

    def sample_layer(
        self, lq, *, neurons=None, initial_states=None, **options
    ) -> list[SolveResult]:
        """Anneal ``neurons`` of layer ``lq`` together; one :class:`SolveResult` each.

        Args:
            lq: a :class:`annealq.layer.LayerQUBO`.
            neurons: indices to solve (default all).
            initial_states: one ``{label: 0/1}`` per neuron solved (default RTN).
            **options: override the sampler's options for this call.
        """
        rows = np.arange(lq.n_neurons) if neurons is None else np.asarray(neurons, dtype=int)
        if len(rows) == 0:
            return []
        run = replace(self.options, **options)
        if initial_states is None:
            starts = rtn_states(lq, rows)
        else:
            starts = np.stack([lq.assignment(i, s) for i, s in zip(rows, initial_states)])
        begin = time.perf_counter()
        states, energies = anneal(LayerForm.from_layer(lq, rows), starts, run, ids=rows)
        wall = time.perf_counter() - begin
        info = timing({"options": run.to_dict(), "layer_neurons": len(rows)}, wall)
        return [
            SolveResult(sample, float(energy), dict(info), wall / len(rows))
            for sample, energy in zip(lq.samples(states, rows), energies)
        ]


def rtn_states(lq, rows) -> np.ndarray:
    """RTN's states for ``rows``, each integer moved into its entry's window (windows
    centred on another solution, e.g. GPTQ's, need not contain RTN's integers)."""
    rows = np.asarray(rows, dtype=int)
    spans = np.stack([lq.integer_form(int(i))[0] for i in rows])
    base = lq.base[rows]
    return lq.states(np.clip(lq.rtn_integers()[rows], base, base + spans), rows)


def make_sampler(**options) -> BatchSASampler:
    return BatchSASampler(**options)


SPEC = SolverSpec(
    make_sampler,
    lambda: missing_package("numba", "numba"),
    "layer-structured simulated annealing from RTN (shared Gram, numba; "
    "CUDA through torch with device='cuda')",
)
