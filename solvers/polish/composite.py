"""``PolishComposite``: any sampler polishes a layer's incumbent, one window at a time, and a
neuron's energy never rises.

From each neuron's incumbent (its ``initial_states``, typically ``kbest``'s answer on the
whole grid) the composite repeatedly takes a window of the neuron's exact problem
(:mod:`solvers.polish.windows`): seeded at the weight nearest to a tie and grown along the
inputs' correlations, each weight allowed at most ±1 step (``move=1``, two binary
variables) or anywhere on its grid (``move=None``). The child solves the window as a BQM;
the answer is accepted only if its exact energy change is negative. Windows come in a
deterministic order, so with a cache (``store``) a rerun replays every window solved
before from it and none is solved twice. A pass over the seeds that accepts nothing ends
a neuron; so do ``max_windows`` and the layer's ``time_limit``.

Every neuron's answer carries matched controls in ``info["polish"]``, so "the annealer
removed x %" reads against what the windows held (:mod:`solvers.polish.controls`).

Example:
    >>> import dimod, numpy as np
    >>> from annealq import formulate_layer
    >>> rng = np.random.default_rng(1)
    >>> lq = formulate_layer(rng.normal(size=(2, 10)), rng.normal(size=2),
    ...                      rng.normal(size=(40, 10)), bits=3, window_bits=3)
    >>> start = lq.samples(lq.states(lq.rtn_integers()))
    >>> results = PolishComposite(dimod.ExactSolver(), window=4, whole_first=False).sample_layer(
    ...     lq, initial_states=start)
    >>> all(r.energy <= lq.energy(i, s) + 1e-9 for i, (r, s) in enumerate(zip(results, start)))
    True
"""

from __future__ import annotations

import inspect
import time
import zlib

import dimod
import numpy as np

from annealq.cache import CachedSampler
from annealq.protocol import PolishingSampler
from annealq.registry import SolverSpec, get_sampler
from annealq.results import SolveResult, timing
from solvers.exact_bb.box import solve_box
from solvers.polish.controls import matched_controls
from solvers.polish.windows import NeuronState, Window, neighbours

DEFAULT_WINDOW = 12  # weights per window: 24 binary variables with ±1 moves
DEFAULT_MAX_WINDOWS = 256
EXACT_MAX_NODES = 200_000
EXACT = "exact"  # the child name that means: windows solved exactly, no annealer
NOT_OWN = {"child", "child_name", "child_parameters"}  # make_polisher's
WHOLE_MAX = 160  # binary variables: a neuron this small is first sent whole


class PolishComposite(dimod.ComposedSampler, PolishingSampler):
    """Polish each neuron's incumbent with ``child`` on windows (see the module docs).

    Args:
        child: a ``dimod.Sampler`` for the windows' BQMs, or ``"exact"``: the box sphere
            decoder on the windows' integers (the exact control itself).
        window: weights per window.
        move: ``1`` (each weight at most ±1 step from the incumbent) or ``None`` (the whole
            grid of each weight in the window).
        max_windows: windows per neuron at most.
        time_limit: seconds for the whole layer call (anytime: what is accepted by then
            is kept).
        relative_budget: instead, this multiple of the seconds the incumbents took (set
            per layer by the pipeline from the start's own time).
        store, child_name: a :class:`~annealq.cache.CacheStore` and the child's name in its
            keys: every window answer is cached, so a killed run replays them.
        controls: also solve the matched controls (exact windows, random windows).
        whole_first: send a neuron of at most ``WHOLE_MAX`` binary variables (its whole
            grid; int1-int2 digits neurons) to the child whole before the windows.
        seed: the child's seed for window ``k`` of neuron ``i`` derives from it.
        accept: ``"first"`` (each improving window as it is solved) or ``"best"`` (each
            pass solves every window from the same state and accepts the one that removes
            most: a window holding only part of a better point is not taken first).
        bias_in_windows: the bias joins every window as one more integer (it often has to
            move with the weights: ``benchmarks/POLISH_REACH.md``); else it is fixed in
            the window and re-chosen in closed form after each accepted one.
        **child_parameters: passed to every ``child.sample`` call.
    """

    parameters = {
        name: []
        for name in ("initial_states", "window", "move", "max_windows", "time_limit")
        + ("layer_time_limit", "seed", "accept", "bias_in_windows")
    }

    def __init__(
        self,
        child,
        *,
        window: int = DEFAULT_WINDOW,
        move: int | None = 1,
        max_windows: int = DEFAULT_MAX_WINDOWS,
        time_limit: float | None = None,
        relative_budget: float | None = None,
        store=None,
        child_name: str | None = None,
        controls: bool = True,
        seed: int = 0,
        whole_first: bool = True,
        accept: str = "first",
        bias_in_windows: bool = False,
        **child_parameters,
    ):
        if not (isinstance(window, int) and window >= 1):
            raise ValueError(f"window must be a positive number of weights, got {window!r}")
        if move not in (1, None):
            raise ValueError(f"move must be 1 (±1 step) or None (whole grid), got {move!r}")
        if accept not in ("first", "best"):
            raise ValueError(f"accept must be 'first' or 'best', got {accept!r}")
        if not (isinstance(max_windows, int) and max_windows >= 0):
            raise ValueError(f"max_windows must be an integer >= 0, got {max_windows!r}")
        self._child = child
        self.window, self.move, self.max_windows = window, move, max_windows
        self.time_limit, self.controls, self.seed = time_limit, controls, seed
        self.relative_budget, self.whole_first = relative_budget, whole_first
        self.accept, self.bias_in_windows = accept, bool(bias_in_windows)
        self.child_name = child if child == EXACT else (child_name or type(child).__name__)
        self.child_parameters = child_parameters
        self._solve = self._exact if child == EXACT else self._annealed
        self.store = store

    @property
    def children(self) -> list:
        return [] if self._child == EXACT else [self._child]

    @property
    def properties(self) -> dict:
        return {
            "window": self.window,
            "move": self.move,
            "max_windows": self.max_windows,
            "whole_first": self.whole_first,
            "accept": self.accept,
            "bias_in_windows": self.bias_in_windows,
        }

    @property
    def defaults(self) -> dict:
        return {"child": self.child_name, **self.properties, **self.child_parameters}

    def sample(self, bqm, **parameters):
        """A bare BQM has no windows: the child solves it whole, and a given
        ``initial_states`` is kept where the child's answer is worse."""
        child = get_sampler("exact") if self._child == EXACT else self._child
        given = {**self.child_parameters, **parameters}
        sampleset = child.sample(bqm, **{k: v for k, v in given.items() if k in child.parameters})
        start = parameters.get("initial_states")
        if start is not None and bqm.num_variables:
            start = dimod.as_samples(start)
            first = dimod.SampleSet.from_samples(
                (start[0][:1], start[1]), bqm.vartype, bqm.energies(start)[:1]
            )
            if first.first.energy < sampleset.first.energy:
                return first
        return sampleset

    def sample_layer(
        self, lq, *, neurons=None, initial_states=None, layer_time_limit=None, **overrides
    ) -> list[SolveResult]:
        """Polish ``neurons`` (default all) of ``lq`` from ``initial_states`` (one sample per
        neuron; default the RTN sample); one :class:`SolveResult` each."""
        rows = list(range(lq.n_neurons)) if neurons is None else [int(i) for i in neurons]
        limit = layer_time_limit if layer_time_limit is not None else self.time_limit
        deadline = None if limit is None else time.perf_counter() + limit
        starts = initial_states if initial_states is not None else [lq.rtn_sample(i) for i in rows]
        results = []
        for k, (i, start) in enumerate(zip(rows, starts)):
            began = time.perf_counter()
            offsets = lq.integers(i, lq.assignment(i, start)) - lq.base[i]
            share = (
                None if deadline is None else (began + max(deadline - began, 0.0) / (len(rows) - k))
            )
            state, report = self.polish(NeuronState.of(lq, i, offsets), i, share)
            states = lq.states((lq.base[i] + state.o)[None, :], [i])
            sample = lq.samples(states, [i])[0]
            wall = time.perf_counter() - began
            results.append(
                SolveResult(
                    sample,
                    float(lq.energies(states, [i])[0]),
                    timing({"polish": report}, wall),
                    wall,
                )
            )
        return results

    def polish(self, state: NeuronState, neuron: int, deadline=None):
        """Polish one neuron's ``state`` in place; return it and the neuron's report."""
        start_o, start_energy = state.o.copy(), state.energy()
        state.refit_bias()
        live = state.live()
        table = neighbours(state.gram, live, self.window) if len(live) else None
        windows, accepted, billed = [], 0, 0.0
        began = time.perf_counter()
        if len(live) and self.whole_first and self._fits_whole(state, live):
            # the whole neuron first: at int1-int2 it is one QUBO an annealer can hold
            window = Window.of(state, live, move=None)
            o, seconds = self._solve(window, neuron, 0)
            windows.append((live, None))
            billed += seconds
            if window.gain(o) < 0:
                state.move(live, o)
                accepted += 1
        bias = self.bias_in_windows and state.bias is not None
        extra = np.array([state.bias] if bias else [], dtype=np.int64)
        while len(live) and len(windows) < self.max_windows:
            improved, best = False, None
            for seed_entry in state.tie_order(live):
                if len(windows) >= self.max_windows or (
                    deadline is not None and time.perf_counter() > deadline
                ):
                    break
                S = np.append(np.sort(table[np.searchsorted(live, seed_entry)]), extra)
                window = Window.of(state, S, move=self.move)
                o, seconds = self._solve(window, neuron, len(windows))
                windows.append((S, self.move))
                billed += seconds
                gain = window.gain(o)
                if gain < 0 and self.accept == "first":
                    state.move(S, o)
                    accepted, improved = accepted + 1, True
                elif gain < 0 and (best is None or gain < best[0]):
                    best = (gain, S, o)
            if best is not None:  # accept="best": the pass's largest decrease
                state.move(best[1], best[2])
                accepted, improved = accepted + 1, True
            if not improved or (deadline is not None and time.perf_counter() > deadline):
                break
        wall = time.perf_counter() - began
        final = state.energy()
        report = {
            "incumbent_energy": start_energy,
            "final_energy": final,
            "improved": bool(final < start_energy),
            "windows_solved": len(windows),
            "windows_accepted": accepted,
            "seconds": wall,
            "billed_seconds": billed,
        }
        if self.controls:
            report["controls"] = matched_controls(state, start_o, windows, neuron, EXACT_MAX_NODES)
        return state, report

    def _fits_whole(self, state: NeuronState, live) -> bool:
        variables = np.ceil(np.log2(state.span[live] + 1)).sum()
        return self._child != EXACT and variables <= WHOLE_MAX

    def _exact(self, window: Window, neuron: int, k: int):
        w = window
        return solve_box(
            w.H, w.b, w.low, w.high, incumbent=w.incumbent, max_nodes=EXACT_MAX_NODES
        ).o, 0.0

    def _annealed(self, window: Window, neuron: int, k: int):
        bqm, C = window.bqm()
        if bqm.num_variables == 0:
            return window.incumbent, 0.0
        parameters = dict(self.child_parameters)
        accepted = self._child.parameters
        if "seed" in accepted:
            seed = zlib.crc32(f"{self.seed}:{neuron}:{k}".encode()) & 0x7FFFFFFF
            parameters.setdefault("seed", seed)
        if "initial_states" in accepted:
            parameters["initial_states"] = window.encode(C, window.incumbent)
        sampler = (
            self._child
            if self.store is None
            else CachedSampler(self._child, self.store, f"polish-window:{self.child_name}")
        )
        sampleset = sampler.sample(bqm, **parameters)
        sample = sampleset.first.sample
        billed = (
            float((sampleset.info.get("timing") or {}).get("qpu_access_time", 0.0)) * 1e-6
            or float(sampleset.info.get("charge_time", 0.0)) * 1e-6
        )
        return window.decode(C, sample), billed


def make_polisher(child: str = "neal", **params) -> PolishComposite:
    """``polish`` by name: ``child`` a registered solver's name (``"exact"`` for exact
    windows), its sample parameters among ``params``."""
    names = inspect.signature(PolishComposite).parameters.keys() - NOT_OWN
    own = {k: params.pop(k) for k in list(params) if k in names}
    sampler = EXACT if child == EXACT else get_sampler(child)
    return PolishComposite(sampler, child_name=child, **own, **params)


SPEC = SolverSpec(
    make_polisher,
    description="window polishing of a start's answer by any "
    "solver (--start kbest --polish SOLVER)",
    whole_grid=True,
    default_start="kbest",
)
