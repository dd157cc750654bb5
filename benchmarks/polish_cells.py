"""One cell of benchmarks/polish.py (a layer at a bit width, on digits): kbest's answer,
each neuron's proven optimum, the whole-grid annealers' answers, their gaps, and window
polishing of kbest's answer with its matched controls. benchmarks/polish_mnist.py,
polish_reach.py and polish_sweeps.py build on the same functions.
"""

from __future__ import annotations

import time

import numpy as np

from annealq import get_sampler, solve_layer
from solvers.exact_bb.box import solve_box
from solvers.polish import EXACT, PolishComposite

WHOLE = ["neal", "tabu", "steepest", "qpu-mock"]


POLISHERS = [
    ("exact", 12, 1),
    ("exact", 24, 1),
    ("exact", 24, None),
    ("neal", 12, 1),
    ("tabu", 12, 1),
]


def kbest(lq, start):
    began = time.perf_counter()
    solved = solve_layer(
        lq, get_sampler("kbest", reduced="auto"), initial_states=lq.samples(lq.states(start))
    )
    return (
        [r.sample for r in solved],
        np.array([r.energy for r in solved]),
        time.perf_counter() - began,
    )


def optima(lq, key, bounds, best_samples):
    """Each neuron's proven optimum from the bounds table; else the box decoder's minimum
    from the best answer known (``best_samples``), and whether all were proven."""
    cell = bounds.get(key)
    if cell and cell["proven"] == cell["neurons"] and "neuron_bounds" in cell:
        return np.array(cell["neuron_bounds"]), True
    values, proven = [], True
    for i in range(lq.n_neurons):
        span, e, p = lq.integer_form(i)
        H = lq.entry_gram * np.outer(e, e)
        known = lq.integers(i, lq.assignment(i, best_samples[i])) - lq.base[i]
        result = solve_box(
            H, -e * p, np.zeros_like(span), span, incumbent=known, max_nodes=200_000_000
        )
        values.append(lq.offset[i] + result.value)
        proven &= result.proven
    return np.array(values), proven


def whole_grid(lq, samples, names=WHOLE):
    """Each of ``names``' answers on the whole-grid BQMs (warm-started where it takes a
    start): ``{name: (energies, samples, seconds, warm)}``."""
    rows = {}
    for name in names:
        sampler = get_sampler(name)
        began = time.perf_counter()
        warm = {"initial_states": samples} if "initial_states" in sampler.parameters else {}
        solved = solve_layer(lq, sampler, **warm)
        rows[name] = (
            np.array([r.energy for r in solved]),
            [r.sample for r in solved],
            time.perf_counter() - began,
            bool(warm),
        )
    return rows


def gaps(rows, optimum) -> dict:
    return {
        name: {
            "seconds": seconds,
            "warm_start": warm,
            "layer_gap": float(energies.sum() / optimum.sum() - 1),
            "neuron_gaps": (energies / optimum - 1).tolist(),
        }
        for name, (energies, _, seconds, warm) in rows.items()
    }


def polishing(lq, samples, optimum, polishers=POLISHERS, **options):
    """Each of ``polishers`` (``(child, window, move)``) polishing ``samples``, with its
    matched controls; ``options`` go to every :class:`PolishComposite`."""
    rows = {}
    for child, window, move in polishers:
        polisher = PolishComposite(
            EXACT if child == "exact" else get_sampler(child),
            child_name=child,
            window=window,
            move=move,
            **options,
        )
        began = time.perf_counter()
        solved = polisher.sample_layer(lq, initial_states=samples)
        reports = [r.info["polish"] for r in solved]
        final = np.array([r.energy for r in solved])
        same = sum(r["controls"]["exact_same_windows"] for r in reports)
        random = sum(r["controls"]["exact_random_windows"] for r in reports)
        rows[f"{child}, {window} weights, {'±1' if move else 'whole grid'}"] = {
            "seconds": time.perf_counter() - began,
            "layer_gap": float(final.sum() / optimum.sum() - 1),
            "neurons_improved": sum(r["improved"] for r in reports),
            "windows_solved": sum(r["windows_solved"] for r in reports),
            "windows_accepted": sum(r["windows_accepted"] for r in reports),
            "same_windows_exact_gap": float(same / optimum.sum() - 1),
            "random_windows_exact_gap": float(random / optimum.sum() - 1),
        }
    return rows
