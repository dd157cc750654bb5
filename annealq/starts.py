"""Warm starts a QUBO run centres its windows on: ``kbest``'s answer on the whole grid.

``start="kbest"`` runs the registered ``kbest`` solver (lattice-reduced where a neuron has at
most 200 entries) on the layer's whole grid from tuned GPTQ's integers; its integers are then
each neuron's incumbent, which the run's solver (or polisher) may only improve.
"""

from __future__ import annotations

import numpy as np

from annealq.dispatch import solve_layer
from annealq.protocol import PolishingSampler
from annealq.registry import get_sampler

KBEST_START = {"reduced": "auto"}


def keep_start(lq, samples, starts) -> tuple[list, int]:
    """Each neuron's sample, or its warm start where the start's energy is lower (whatever
    the solver did with it), and how many neurons kept their start."""
    start_states = np.stack([lq.assignment(i, s) for i, s in enumerate(starts)])
    found = np.stack([lq.assignment(i, s) for i, s in enumerate(samples)])
    back = lq.energies(start_states) < lq.energies(found)
    return [start if b else sample for b, sample, start in zip(back, samples, starts)], int(
        back.sum()
    )


def budget_polisher(sampler, store, start_seconds: float) -> None:
    """A polishing solver caches each window's answer in the run's store and, with a
    relative budget, gets that multiple of the start's own seconds for the layer."""
    if isinstance(sampler, PolishingSampler):
        sampler.store = store
        if sampler.relative_budget is not None:
            sampler.time_limit = sampler.relative_budget * start_seconds


def kbest_start(lq, gptq, store):
    """``kbest``'s integers ``(n, f+1)`` on the whole grid from ``gptq``'s, and the seconds
    its search took (as recorded, so a cached answer reports its original time).

    Args:
        lq: the layer's QUBO over its whole grid (``window_bits`` = the weight bits),
            centred on ``gptq`` (:meth:`annealq.problems.LayerProblem.formulate`).
        gptq: tuned GPTQ's integers ``(n, f+1)``, kbest's own start.
        store: the run's cache (``None``: none).
    """
    starts = lq.samples(lq.states(gptq))
    solved = solve_layer(
        lq,
        get_sampler("kbest", **KBEST_START),
        cache=store,
        solver_name="kbest",
        initial_states=starts,
    )
    q, q_b = lq.decode([r.sample for r in solved])
    seconds = sum(
        float(r.info.get("timing", {}).get("solve_seconds", r.wall_seconds)) for r in solved
    )
    return np.column_stack([q, q_b]), seconds
