"""``exact-bb``: exact search by branch and bound (:mod:`solvers.exact_bb.sphere`), beyond
enumeration's ~25 variables. It proves the optimum, or stops at ``time_limit`` seconds
(default 60) with the best energy found and a proven lower bound; ``info`` says which
(``proven``, ``lower_bound``, ``gap``, ``nodes``).

On a layer (``sample_layer``) it searches each neuron with the formulation's positive
semi-definite Gram form (the tightest bounds) and starts from ``batch-sa``'s solution as
the incumbent unless ``initial_states`` are given. A layer built with wider windows
(``window_bits > 1``) is searched over each weight's integer window instead of its bits
(:func:`solvers.exact_bb.box.solve_box`), with ``lns``'s integer windows polishing the
incumbent (the given start or ``batch-sa``'s) first: at ``window_bits ≥ bits`` that proves the
optimum of the layer's whole quantization problem, not of a restriction of it. On a layer of
up to 200 entries per
neuron ``kbest`` then improves the polished incumbent (its time comes on top), and a
neuron whose proof looks within reach continues, after a quarter of its time, on an
LLL/BKZ-reduced basis (:mod:`solvers.exact_bb.reduced`), which proves the digits model's
second layer. On a bare BQM the incumbent is the
given initial state, else the rounded continuous optimum.
"""

from __future__ import annotations

import time

import dimod
import numpy as np

from annealq.protocol import LayerSampler
from annealq.registry import SolverSpec
from annealq.results import SolveResult, timing
from annealq.states import as_vartype, dense_qubo, start_state
from solvers import missing_package
from solvers.batch_sa.sampler import BatchSASampler
from solvers.exact_bb.box import BoxResult, solve_box
from solvers.exact_bb.reduced import estimated_nodes, solve_box_reduced
from solvers.exact_bb.sphere import solve_dense
from solvers.kbest.sampler import KBestSampler
from solvers.lns.search import polish_integers

DEFAULT_TIME_LIMIT = 60.0
REDUCED_MAX = 200  # entries: above, a neuron is searched by the plain decoder only
PLAIN_SHARE = 0.25  # of a neuron's time, for the plain decoder before the reduced one
NODES_PER_SECOND = 3e7  # the reduced search's pace on this project's machine (a gate only)
REACH = 10


class BranchAndBoundSolver(dimod.Sampler, LayerSampler):
    """Proves ground states of BQMs (see module docs).

    Example:
        >>> bqm = dimod.BQM({"a": 1.0, "b": -2.0}, {("a", "b"): 3.0}, 0.0, "BINARY")
        >>> float(BranchAndBoundSolver().sample(bqm).first.energy)
        -2.0
    """

    parameters = {"time_limit": [], "layer_time_limit": [], "initial_states": []}

    def __init__(
        self, time_limit: float = DEFAULT_TIME_LIMIT, layer_time_limit: float | None = None
    ):
        self.time_limit = _validate_time_limit(time_limit)
        self.layer_time_limit = (
            None if layer_time_limit is None else _validate_time_limit(layer_time_limit)
        )

    @property
    def defaults(self) -> dict:
        return {"time_limit": self.time_limit, "layer_time_limit": self.layer_time_limit}

    @property
    def properties(self):
        return {"time_limit": self.time_limit}

    def sample(self, bqm, time_limit=None, initial_states=None, layer_time_limit=None):
        """One BQM; ``layer_time_limit`` caps ``time_limit`` (one BQM is one neuron)."""
        order, h, Q, offset = dense_qubo(bqm)
        incumbent = start_state(initial_states, order, bqm.vartype)
        limit = self._limit(time_limit)
        layer_time_limit = self.layer_time_limit if layer_time_limit is None else layer_time_limit
        if layer_time_limit is not None:
            limit = min(limit, _validate_time_limit(layer_time_limit))
        result = solve_dense(h, Q, offset, incumbent=incumbent, time_limit=limit)
        return dimod.SampleSet.from_samples_bqm(
            (as_vartype(result.u, bqm.vartype)[None, :], order), bqm, info=_info(result)
        )

    def sample_layer(
        self, lq, *, neurons=None, initial_states=None, time_limit=None, layer_time_limit=None
    ):
        """Search each of ``neurons`` of layer ``lq``; one SolveResult each, in order.

        ``layer_time_limit``: seconds for the whole call (an anytime budget): the
        incumbent's polish gets a third, then each neuron an equal share of what is left
        (at most ``time_limit``); every neuron keeps the best found, never worse than its
        incumbent."""
        rows = list(range(lq.n_neurons)) if neurons is None else list(neurons)
        integers = max(lq.window_bits, lq.bias_window_bits) > 1
        budget = _Budget(
            self._limit(time_limit),
            layer_time_limit if layer_time_limit is not None else self.layer_time_limit,
            len(rows),
        )
        if initial_states is None:
            incumbents = BatchSASampler().sample_layer(lq, neurons=rows)
            initial_states = [r.sample for r in incumbents]
        if integers:
            # a better incumbent prunes more: polish it with lns's integer windows first
            labels = lq.labels()
            states = polish_integers(
                lq,
                rows,
                np.stack([lq.assignment(i, s) for i, s in zip(rows, initial_states)]),
                time_limit=budget.polish(),
            )
            starts = [dict(zip(labels, state.tolist())) for state in states]
            if lq.n_inputs + 1 <= REDUCED_MAX:
                # where proofs are within reach the incumbent's radius decides their cost:
                # kbest from the polished start (never worse than it; seconds on such a layer)
                starts = [
                    r.sample
                    for r in KBestSampler().sample_layer(lq, neurons=rows, initial_states=starts)
                ]
            gram = lq.entry_gram
            return [
                self._integer_search(lq, gram, i, start, budget.next())
                for i, start in zip(rows, starts)
            ]
        labels = lq.labels()
        results = []
        for i, start in zip(rows, initial_states):
            cols = np.flatnonzero(lq.free[i])
            incumbent = lq.assignment(i, start)[cols]
            found = solve_dense(
                lq.linear[i, cols],
                lq.quadratic(i),
                float(lq.offset[i]),
                incumbent=incumbent,
                time_limit=budget.next(),
            )
            sample = {labels[k]: int(found.u[j]) for j, k in enumerate(cols)}
            results.append(SolveResult(sample, lq.energy(i, sample), _info(found), found.seconds))
        return results

    @staticmethod
    def _integer_search(lq, gram, i, start, time_limit) -> SolveResult:
        span, e, p = lq.integer_form(i)
        live = np.flatnonzero((span > 0) & (np.diag(gram) > 0))  # the rest cost nothing
        o = lq.integers(i, lq.assignment(i, start)) - lq.base[i]
        found = _box_search(
            gram[np.ix_(live, live)] * np.outer(e[live], e[live]),
            -e[live] * p[live],
            span[live],
            o[live],
            time_limit,
            bias=lq.has_bias and len(live) > 0 and live[-1] == lq.n_inputs,
        )
        o[live] = found.o
        sample = lq.sample(i, lq.states((lq.base[i] + o)[None, :], [i])[0])
        energy = lq.energy(i, sample)
        bound = energy if found.proven else float(lq.offset[i]) + found.lower_bound
        info = timing(
            {
                "proven_optimal": found.proven,
                "lower_bound": bound,
                "gap": energy - bound,
                "nodes": found.nodes,
                "timing": {"search_seconds": found.seconds},
                "search": "integers",
            },
            found.seconds,
        )
        return SolveResult(sample, energy, info, found.seconds)

    def _limit(self, time_limit) -> float:
        return self.time_limit if time_limit is None else _validate_time_limit(time_limit)


class _Budget:
    """Per-neuron time limits: ``per_neuron`` each, or equal shares of a layer budget."""

    MINIMUM = 1e-3  # a neuron out of time still returns its incumbent

    def __init__(self, per_neuron: float, layer, neurons: int):
        self.per_neuron, self.left = per_neuron, neurons
        self.deadline = None if layer is None else time.perf_counter() + _validate_time_limit(layer)
        self.total = None if layer is None else float(layer)

    def polish(self) -> float | None:
        return None if self.deadline is None else self.total / 3

    def next(self) -> float:
        if self.deadline is None:
            return self.per_neuron
        share = (self.deadline - time.perf_counter()) / max(self.left, 1)
        self.left -= 1
        return min(self.per_neuron, max(share, self.MINIMUM))


def _box_search(H, b, span, start, time_limit, *, bias: bool) -> BoxResult:
    """One neuron's integer search over ``[0, span]``: the sphere decoder on the weights;
    for a neuron of at most ``REDUCED_MAX`` entries whose reduced-basis search
    (:mod:`solvers.exact_bb.reduced`) is estimated within reach of the time limit, the
    decoder gets ``PLAIN_SHARE`` of it (what it proves, it proves fast) and the reduced
    search the rest, from the decoder's best (``bias``: the last entry is the bias, searched
    at its best integer for each weight vector)."""
    begin = time.perf_counter()
    low = np.zeros(len(span), np.int64)
    reachable = (
        0 < len(span) <= REDUCED_MAX
        and estimated_nodes(H, b, low, span, incumbent=start, eliminate_last=bias)
        <= REACH * NODES_PER_SECOND * time_limit
    )
    plain = solve_box(
        H,
        b,
        low,
        span,
        incumbent=start,
        time_limit=time_limit * (PLAIN_SHARE if reachable else 1.0),
    )
    left = time_limit - (time.perf_counter() - begin)
    if plain.proven or not reachable or left <= 0:
        return plain
    reduced = solve_box_reduced(
        H, b, low, span, incumbent=plain.o, time_limit=left, eliminate_last=bias
    )
    if reduced.proven:
        return BoxResult(
            reduced.o,
            reduced.value,
            True,
            reduced.value,
            plain.nodes + reduced.nodes,
            time.perf_counter() - begin,
        )
    better = reduced if reduced.value < plain.value else plain
    return BoxResult(
        better.o,
        better.value,
        False,
        plain.lower_bound,
        plain.nodes + reduced.nodes,
        time.perf_counter() - begin,
    )


def _info(result) -> dict:
    return timing(
        {
            "proven_optimal": result.proven,
            "lower_bound": result.lower_bound,
            "gap": result.gap,
            "nodes": result.nodes,
            "timing": {"search_seconds": result.seconds},
        },
        result.seconds,
    )


def _validate_time_limit(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"time_limit must be a positive number of seconds, got {value!r}")
    return float(value)


SPEC = SolverSpec(
    BranchAndBoundSolver,
    lambda: missing_package("numba", "numba"),
    "exact branch and bound (sphere decoder): proves optima or reports the "
    "bound gap at its time limit (default 60 s)",
)
