"""``lns``: ``batch-sa`` followed by exact large-neighbourhood search (:mod:`solvers.lns.search`):
windows of correlated variables solved exactly by the sphere decoder, which makes the
collective moves single flips cannot.

Two searches: ``search="bits"`` solves windows of binary variables
(:func:`solvers.lns.search.polish`); ``search="integers"`` solves windows of whole entries over
their integer windows with the box sphere decoder (:func:`solvers.lns.search.polish_integers`),
far stronger when weights have several bits. ``"auto"`` (default) picks integers for a
layer built with ``window_bits > 1`` and bits for the paper's down/up QUBO.

The batch-sa stage (``anneal``) runs by default except for integer windows from a warm
start: there the windows already make every single-weight move, and measured on MNIST
(32 neurons, int4, 4-bit windows from GPTQ) annealing first halved the speed for a 0.06 %
lower energy.

Parameters: ``search``, ``anneal`` (``None``: as above), ``rounds`` (windows per neuron,
default 100 for bits, 1,000 for integers), ``window`` (variables per window, default 32 over
the layer's window bits; or
entries per window, default 24), ``seed``, ``time_limit`` (seconds for the window search
of a call, default none), ``layer_time_limit`` (seconds for the whole call, annealing
included: an anytime budget, the best found when it runs out, never worse than the start), and
``num_reads``/``num_sweeps`` of the batch-sa stage. ``initial_states`` (e.g. GPTQ's or
RTN's) replace the batch-sa stage's start; the result is never worse than the start.
"""

from __future__ import annotations

import time

import dimod
import numpy as np

from annealq.protocol import LayerSampler
from annealq.registry import SolverSpec
from annealq.results import SolveResult, timing
from annealq.states import as_vartype, dense_qubo
from solvers import missing_package
from solvers.batch_sa.sampler import BatchSASampler, rtn_states
from solvers.lns.search import (
    DEFAULT_ENTRY_WINDOW,
    DEFAULT_INTEGER_ROUNDS,
    DEFAULT_ROUNDS,
    polish,
    polish_integers,
)


class LNSSolver(dimod.Sampler, LayerSampler):
    """batch-sa, then exact window search on every neuron (see module docs)."""

    parameters = {
        "search": [],
        "anneal": [],
        "rounds": [],
        "window": [],
        "seed": [],
        "time_limit": [],
        "layer_time_limit": [],
        "num_reads": [],
        "num_sweeps": [],
        "initial_states": [],
    }

    def __init__(
        self,
        *,
        search: str = "auto",
        anneal: bool | None = None,
        rounds: int | None = None,
        window: int | None = None,
        seed: int = 0,
        time_limit: float | None = None,
        layer_time_limit: float | None = None,
        **batch_sa_options,
    ):
        _check(search, rounds, window)
        self.defaults_ = {
            "search": search,
            "anneal": anneal,
            "rounds": rounds,
            "window": window,
            "seed": seed,
            "time_limit": time_limit,
            "layer_time_limit": layer_time_limit,
            **batch_sa_options,
        }
        self._annealer = BatchSASampler(seed=seed, **batch_sa_options)

    @property
    def defaults(self) -> dict:
        return dict(self.defaults_)

    @property
    def properties(self):
        return {"options": self.defaults}

    def sample_layer(
        self, lq, *, neurons=None, initial_states=None, **overrides
    ) -> list[SolveResult]:
        """Anneal then polish ``neurons`` of ``lq``; ``overrides`` replace options."""
        rows = list(range(lq.n_neurons)) if neurons is None else list(neurons)
        if not rows:
            return []
        unknown = set(overrides) - set(self.parameters)
        if unknown:
            raise ValueError(f"unknown lns option(s) {sorted(unknown)}")
        options = {**self.defaults_, **overrides}
        _check(options["search"], options["rounds"], options["window"])
        annealer_options = {
            k: options[k] for k in ("seed", "num_reads", "num_sweeps") if k in options
        }
        integers = options["search"] == "integers" or (
            options["search"] == "auto" and max(lq.window_bits, lq.bias_window_bits) > 1
        )
        anneal = options["anneal"]
        if anneal is None:
            anneal = not (integers and initial_states is not None)
        begin = time.perf_counter()
        if anneal:  # not interruptible, but counted against layer_time_limit
            annealed = self._annealer.sample_layer(
                lq, neurons=rows, initial_states=initial_states, **annealer_options
            )
            states = np.stack([lq.assignment(i, r.sample) for i, r in zip(rows, annealed)])
        else:
            if initial_states is None:  # RTN, moved into each entry's window
                starts = rtn_states(lq, rows)
            else:
                starts = np.stack([lq.assignment(i, s) for i, s in zip(rows, initial_states)])
            states = starts.astype(np.int8)
        search_time = _search_time(options, time.perf_counter() - begin)
        if integers:
            states = polish_integers(
                lq,
                rows,
                states,
                seed=options["seed"],
                time_limit=search_time,
                rounds=_default(options["rounds"], DEFAULT_INTEGER_ROUNDS),
                window=_default(options["window"], DEFAULT_ENTRY_WINDOW),
            )
        else:
            states = polish(
                lq,
                rows,
                states,
                rounds=_default(options["rounds"], DEFAULT_ROUNDS),
                window=options["window"],
                seed=options["seed"],
                time_limit=search_time,
            )
        wall = time.perf_counter() - begin
        info = timing({"options": options, "layer_neurons": len(rows)}, wall)
        return [
            SolveResult(sample, lq.energy(i, sample), dict(info), wall / len(rows))
            for i, sample in zip(rows, lq.samples(states, rows))
        ]

    def sample(self, bqm, initial_states=None, **overrides):
        """Any BQM: batch-sa (or the warm start), then exact windows of its variables
        (``search="bits"``; windows follow the couplers' strength)."""
        options = {**self.defaults_, **overrides}
        _check(options["search"], options["rounds"], options["window"])
        begin = time.perf_counter()
        annealed = self._annealer.sample(
            bqm,
            initial_states=initial_states,
            **{k: options[k] for k in ("seed", "num_reads", "num_sweeps") if k in options},
        )
        order, h, Q, offset = dense_qubo(bqm)
        start = annealed.first.sample
        u = np.array(
            [[(start[v] > 0) if bqm.vartype is dimod.SPIN else start[v] for v in order]],
            dtype=np.int8,
        )
        form = _BQMForm(Q, h, offset)
        u = (
            polish(
                form,
                [0],
                u,
                rounds=_default(options["rounds"], DEFAULT_ROUNDS),
                window=options["window"],
                seed=options["seed"],
                time_limit=_search_time(options, time.perf_counter() - begin),
            )
            if len(order)
            else u
        )
        seconds = time.perf_counter() - begin
        return dimod.SampleSet.from_samples_bqm(
            (as_vartype(u, bqm.vartype), order), bqm, info=timing({"options": options}, seconds)
        )


class _BQMForm:
    """A bare BQM in the shape :func:`~solvers.lns.search.polish` reads: one neuron with
    unit steps. The window search ignores the quadratic form's diagonal (``u² = u`` moves
    it into the linear terms), so a diagonally dominant one is added: it makes every
    variable searchable and ranks neighbours by coupler strength."""

    window_bits = 1

    def __init__(self, Q, h, offset):
        n = len(h)
        self.gram = Q + np.diag(np.abs(Q).sum(axis=1) + 1.0)
        self.linear = h[None, :]
        self.scales = np.ones((1, n))
        self.free = np.ones((1, n), dtype=bool)
        self.offset = np.array([offset])


SEARCHES = ("auto", "bits", "integers")


def _check(search, rounds, window) -> None:
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {', '.join(SEARCHES)}, got {search!r}")
    if (rounds is not None and rounds < 0) or (window is not None and window < 1):
        raise ValueError(f"rounds must be >= 0 and window >= 1, got {rounds}, {window}")


def _search_time(options, spent: float) -> float | None:
    """The window search's seconds: ``time_limit``, within what ``layer_time_limit`` (the
    whole call's budget, the annealing stage included) leaves."""
    limits = [options["time_limit"]]
    if options.get("layer_time_limit") is not None:
        limits.append(max(options["layer_time_limit"] - spent, 0.0))
    limits = [limit for limit in limits if limit is not None]
    return min(limits) if limits else None


def _default(value, default):
    return default if value is None else value


SPEC = SolverSpec(
    LNSSolver,
    lambda: missing_package("numba", "numba"),
    "batch-sa, then exact search over windows of correlated variables "
    "(sphere decoder); slower, much closer to the optimum",
)
