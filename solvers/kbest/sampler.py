"""``kbest``: K-best search through GPTQ's column loop (:mod:`solvers.kbest.search`) — GPTQ's
greedy path widened to ``width`` paths per neuron, on the layer's exact objective, the
columns in the sphere decoder's V-BLAST order.

On a layer (``sample_layer``) it reads each neuron's integer form (every weight's window,
the whole grid when ``window_bits >= bits``) and runs the search once per damping in
``damps`` (GPTQ's relative diagonal damping: it conditions the factorisation and keeps
unconstrained directions near the float weights), the columns decided in ``order``:
``"vblast"`` (default; at each step the best-determined column left, as the sphere decoder
orders them, :func:`~solvers.kbest.search.vblast_order`), ``"act"`` (GPTQ's activation
order, largest Hessian diagonal first) or ``"input"``; each neuron keeps the lowest exact
energy over the runs and
its ``initial_states`` (never worse than the start); with ``descent`` (default) CDQuant's
greedy coordinate descent then polishes the best, and also the start, each neuron keeping
the lower: the answer is never worse than CD run from either (CDQuant from the same start
included). ``width=1`` with one damping, ``order="act"`` (or ``"input"``) and no descent
is GPTQ (with act-order on, or off). With ``reduced`` (``True``, or ``"auto"``: on neurons
of at most 200 entries; default ``False``) each neuron also gets the same search on its
lattice-reduced basis (:mod:`solvers.kbest.reduced`; before the descent, the lowest energy
kept): on badly conditioned neurons, such as the digits model's second layer, it ends within
about 1–3 % of the proven optima where the plain basis's search ends 7–9 % above them. The
reduction is the cost, and it grows steeply with the entries: a fraction of a second for a
129-entry neuron, far longer for the 785-entry ones of MNIST's first layer, hence ``"auto"``.
Its time is fixed by the layer's size: about ``width`` times GPTQ's per damping, no time
limit to set. The default ``width="auto"`` keeps at least 64 paths and, on neurons of few
entries, gives each neuron the search a 785-entry neuron gets from 64 paths, counted as
paths × entries², within the work of a whole 128 × 785 layer at 64 paths (paths × entries ×
the layer's neurons) and at most 8,192 paths: a 10-neuron second layer of 129 entries gets
2,370 paths, a 64-neuron layer of 65 entries 1,545. Registered with ``whole_grid`` and a GPTQ
start, so ``--solver kbest`` alone searches the whole grid from tuned GPTQ.

On a bare BQM (``sample``) it is a ``width``-path beam over the binary variables in the
BQM's order (exact once the width reaches ``2^(n-1)``).
"""

from __future__ import annotations

import numbers
import time

import dimod
import numpy as np

from annealq.protocol import LayerSampler
from annealq.registry import SolverSpec
from annealq.results import SolveResult, timing
from annealq.states import as_vartype, dense_qubo, start_state
from solvers.kbest.form import KBestForm as _IntegerForm
from solvers.kbest.search import beam_bqm

DEFAULT_WIDTH = "auto"
MIN_WIDTH, MAX_WIDTH = 64, 8192
WIDTH_WORK = 64 * 785**2  # auto: paths × entries² per neuron (64 paths on a 785-entry row)
LAYER_WORK = 64 * 785 * 128  # and at most paths × entries × neurons per layer (a 128 × 785 one)
DEFAULT_DAMPS = (1e-3, 1e-4)
DEFAULT_REDUCED = False
ORDERS = ("vblast", "act", "input")
REDUCED_MAX = 200  # reduced="auto": neurons of at most this many entries


class KBestSampler(dimod.Sampler, LayerSampler):
    """K-best search from GPTQ's order (see module docs).

    Example:
        >>> import numpy as np
        >>> from annealq import formulate_layer
        >>> rng = np.random.default_rng(0)
        >>> lq = formulate_layer(rng.normal(size=(3, 5)), rng.normal(size=3),
        ...                      rng.normal(size=(40, 5)), bits=3, window_bits=3)
        >>> results = KBestSampler(width=8).sample_layer(lq)
        >>> [r.energy <= lq.energy(i, lq.rtn_sample(i)) for i, r in enumerate(results)]
        [True, True, True]
    """

    parameters = {
        "width": [],
        "damps": [],
        "order": [],
        "descent": [],
        "reduced": [],
        "initial_states": [],
    }

    def __init__(
        self,
        width=DEFAULT_WIDTH,
        damps=DEFAULT_DAMPS,
        order: str = "vblast",
        descent: bool = True,
        reduced=DEFAULT_REDUCED,
    ):
        self.options = _validate(width, damps, order, descent, reduced)

    @property
    def defaults(self) -> dict:
        return dict(self.options)

    @property
    def properties(self):
        return {"options": self.defaults}

    def sample_layer(
        self, lq, *, neurons=None, initial_states=None, **overrides
    ) -> list[SolveResult]:
        """Search ``neurons`` (default all) of ``lq``; one SolveResult each, in order."""
        rows = np.arange(lq.n_neurons) if neurons is None else np.asarray(neurons, dtype=int)
        unknown = set(overrides) - set(self.parameters) - {"initial_states"}
        if unknown:
            raise ValueError(f"unknown kbest option(s) {sorted(unknown)}")
        options = _validate(**{**self.options, **overrides})
        if len(rows) == 0:
            return []
        begin = time.perf_counter()
        form = _IntegerForm(lq, rows)
        start = form.offsets(form.start_integers(initial_states))
        best, best_energy = start.copy(), form.energies(start)
        chosen = [None] * len(rows)
        # the layer's neurons, not this call's: the width cannot depend on how an executor
        # splits the layer
        width = auto_width(options["width"], form.span.shape[1], lq.n_neurons)
        for damp in options["damps"]:
            found = form.search(damp, width, options["order"])
            energy = form.energies(found)
            better = energy < best_energy
            best[better], best_energy[better] = found[better], energy[better]
            chosen = [damp if b else c for b, c in zip(better, chosen)]
        if reduces(options["reduced"], form.span.shape[1]):
            found = form.reduced_search(best, width)
            better = form.energies(found) < best_energy
            best[better] = found[better]
            chosen = ["reduced" if b else c for b, c in zip(better, chosen)]
        if options["descent"]:
            best = form.descend(best)
            if initial_states is not None:
                # the start's own descent (CD from the start) as one more candidate: the
                # paths' best can sit in a worse basin than the start does
                polished = form.descend(start)
                better = form.energies(polished) < form.energies(best)
                best[better] = polished[better]
                chosen = [None if b else c for b, c in zip(better, chosen)]
        states = lq.states(form.base + best, rows)
        samples, energies = lq.samples(states, rows), lq.energies(states, rows)
        wall = time.perf_counter() - begin
        info = {"options": options, "layer_neurons": len(rows)}
        # per neuron: the damping whose search it kept, "reduced" for the reduced basis's,
        # None for the start's (or its descent's)
        return [
            SolveResult(
                sample,
                float(energy),
                timing({**info, "damp": damp}, wall / len(rows)),
                wall / len(rows),
            )
            for sample, energy, damp in zip(samples, energies, chosen)
        ]

    def sample(
        self,
        bqm,
        initial_states=None,
        width=None,
        damps=None,
        order=None,
        descent=None,
        reduced=None,
    ):
        """Any BQM: a ``width``-path beam over its binary variables, never worse than the
        first of ``initial_states`` (``damps``, ``order``, ``descent`` and ``reduced`` are
        validated; they only shape the layer search)."""
        begin = time.perf_counter()
        given = {
            "width": width,
            "damps": damps,
            "order": order,
            "descent": descent,
            "reduced": reduced,
        }
        options = _validate(**{**self.options, **{k: v for k, v in given.items() if v is not None}})
        width = auto_width(options["width"], len(bqm.variables))
        order, h, Q, offset = dense_qubo(bqm)
        u = beam_bqm(h, Q, width=width)
        start = start_state(initial_states, order, bqm.vartype)
        if start is not None and h @ start + start @ Q @ start < h @ u + u @ Q @ u:
            u = start
        return dimod.SampleSet.from_samples_bqm(
            (as_vartype(u[None, :], bqm.vartype), order),
            bqm,
            info=timing({"options": options}, time.perf_counter() - begin),
        )


def auto_width(width, entries: int, neurons: int = 1) -> int:
    """``width``, or for ``"auto"`` the paths for a layer of ``neurons`` neurons of
    ``entries`` entries: at least 64, as many as ``64 · 785² / entries²`` (a 785-entry
    neuron's search at 64 paths) within ``64 · 785 · 128 / (entries · neurons)`` (a
    128 × 785 layer's at 64 paths), at most 8,192.

    Example:
        >>> auto_width("auto", 785, 128), auto_width("auto", 129, 10), auto_width("auto", 65, 64)
        (64, 2370, 1545)
        >>> auto_width("auto", 65, 10), auto_width(8, 65, 10)
        (8192, 8)
    """
    if width != "auto":
        return width
    entries, neurons = max(entries, 1), max(neurons, 1)
    paths = min(-(-WIDTH_WORK // entries**2), LAYER_WORK // (entries * neurons))
    return int(min(MAX_WIDTH, max(MIN_WIDTH, paths)))


def reduces(reduced, entries: int) -> bool:
    """Whether ``reduced`` (True, False or ``"auto"``) runs the reduced-basis search on
    neurons of ``entries`` entries: ``"auto"`` where there are at most ``REDUCED_MAX``
    (its basis reduction is then a fraction of a second a neuron)."""
    return reduced is True or (reduced == "auto" and entries <= REDUCED_MAX)


def _validate(width, damps, order, descent, reduced=DEFAULT_REDUCED) -> dict:
    if width != "auto" and (
        isinstance(width, bool) or not isinstance(width, numbers.Integral) or width < 1
    ):
        raise ValueError(f"width must be a positive integer or 'auto', got {width!r}")
    damps = tuple(damps) if isinstance(damps, (list, tuple)) else (damps,)
    if not damps or any(
        isinstance(d, bool) or not isinstance(d, numbers.Real) or not np.isfinite(d) or d <= 0
        for d in damps
    ):
        raise ValueError(f"damps must be one or more positive finite numbers, got {damps!r}")
    if not isinstance(order, str) or order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    if not isinstance(descent, (bool, np.bool_)):
        raise TypeError(f"descent must be a bool, got {descent!r}")
    if not (isinstance(reduced, (bool, np.bool_)) or reduced == "auto"):
        raise ValueError(f"reduced must be True, False or 'auto', got {reduced!r}")
    return {
        "width": width if width == "auto" else int(width),
        "damps": tuple(float(d) for d in damps),
        "order": order,
        "descent": bool(descent),
        "reduced": reduced if reduced == "auto" else bool(reduced),
    }


SPEC = SolverSpec(
    KBestSampler,
    description="K-best search (breadth-first sphere decoder) "
    "through GPTQ's column loop in V-BLAST order: GPTQ widened to `width` paths "
    "per neuron, "
    "whole grid",
    whole_grid=True,
    default_start="gptq",
)
