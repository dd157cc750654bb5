"""QPU sweeps for window polishing on digits' second layer: window size, chain strength,
the reverse anneal's turning point, and several windows per anneal against one. Writes
benchmarks/polish_sweeps.json and benchmarks/POLISH_SWEEPS.md.

    OPENBLAS_NUM_THREADS=1 python -m benchmarks.polish_sweeps

Every window is taken from ``kbest``'s answer (and from round-to-nearest's, whose windows
have room) exactly as ``PolishComposite`` takes it (seeded nearest a tie, grown along the
Gram form's correlations, each weight at most ±1 step) and sent to the ``qpu`` path:
``DWaveCliqueSampler``'s clique embedding for the window's size from minorminer's
busclique cache (never a heuristic embedding per window), a reverse anneal from the
incumbent. Each answer is scored against the window's exact optimum (the box decoder) and
its incumbent. By default the QPU is dwave-system's
``MockDWaveSampler`` (``qpu-mock``): steepest descent on the embedded problem, which
honours neither ``anneal_schedule`` nor a real chain's physics, so these tables test the
path and measure nothing about a QPU. ``--solver qpu`` runs the same sweeps on Leap
(billed; for a token holder).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from functools import partial
from pathlib import Path

import numpy as np

from annealq import get_sampler
from benchmarks.harness import layer_problem
from benchmarks.polish import kbest
from benchmarks.polish_sweeps_markdown import markdown
from solvers.exact_bb.box import solve_box
from solvers.polish.windows import NeuronState, Window, neighbours

HERE = Path(__file__).parent
BASE = {"window": 12, "chain": 1.0, "s": 0.45, "packed": False, "reverse": True}
SWEEPS = {
    "window": (4, 8, 12, 16),
    "chain": (0.5, 1.0, 2.0, 4.0),
    "s": (0.3, 0.4, 0.5, 0.6, 0.7),
    "packed": (False, True),
    "reverse": (False,),
}
READS = 20
STARTS = ("kbest", "rtn")


def reverse_schedule(s: float) -> list:
    """s = 1 → ``s`` in 5 µs, a 10 µs pause, back to 1 in 5 µs (the qpu path's default
    shape, turning at ``s``)."""
    return [[0.0, 1.0], [5.0, s], [15.0, s], [20.0, 1.0]]


def windows(lq, samples, size: int, per_neuron: int) -> list[tuple[int, Window]]:
    """The first ``per_neuron`` windows of ``size`` weights of every neuron, from its
    incumbent in ``samples``, as the polisher's first pass takes them."""
    found = []
    for i, sample in enumerate(samples):
        state = NeuronState.of(lq, i, lq.integers(i, lq.assignment(i, sample)) - lq.base[i])
        state.refit_bias()
        live = state.live()
        if not len(live):
            continue
        table = neighbours(state.gram, live, size)
        for seed in state.tie_order(live)[:per_neuron]:
            S = np.sort(table[np.searchsorted(live, seed)])
            found.append((i, Window.of(state, S, move=1)))
    return found


def optimum(window: Window) -> float:
    return window.value(
        solve_box(window.H, window.b, window.low, window.high, incumbent=window.incumbent).o
    )


def chain_strength(factor: float):
    """``factor`` × dwave-system's default (uniform torque compensation)."""
    from dwave.embedding.chain_strength import uniform_torque_compensation

    return partial(uniform_torque_compensation, prefactor=1.414 * factor)


def anneal(sampler, problems, setting: dict, reads: int) -> list[dict]:
    """Each window's answer under ``setting``: one anneal per window, or packed (as many
    windows per anneal as disjoint clique tiles fit, the qpu path's packing)."""
    bqms = [window.bqm() for _, window in problems]
    starts = [
        [window.encode(C, window.incumbent)] if setting["reverse"] else None
        for (_, window), (_, C) in zip(problems, bqms)
    ]
    parameters = {"num_reads": reads}
    if setting["reverse"]:  # else a forward anneal at the QPU's default annealing time
        parameters["anneal_schedule"] = reverse_schedule(setting["s"])
    rows = []
    if setting["packed"]:
        calls = [{"initial_states": start, **parameters} for start in starts]
        groups = sampler.plan([b for b, _ in bqms], calls, pack=True)
        for group in groups:
            pending = sampler.submit([bqms[k][0] for k in group], [calls[k] for k in group])
            for k, (result, _) in zip(group, pending.results()):
                info = result.info or {}
                rows.append(
                    (
                        k,
                        result.sample,
                        result.energy,
                        info,
                        len(group),
                        pending.billed_seconds() / len(group),
                    )
                )
        rows.sort(key=lambda row: row[0])
    else:
        strength = chain_strength(setting["chain"])
        for k, ((bqm, _), start) in enumerate(zip(bqms, starts)):
            sampleset = sampler.sample(
                bqm, initial_states=start, chain_strength=strength, **parameters
            )
            access = (sampleset.info.get("timing") or {}).get("qpu_access_time", 0.0)
            rows.append(
                (k, sampleset.first.sample, sampleset.first.energy, sampleset.info, 1, access / 1e6)
            )
    out = []
    for (_, sample, energy, info, per_anneal, billed), (_, window), (_, C) in zip(
        rows, problems, bqms
    ):
        out.append(
            {
                "answer": window.value(window.decode(C, sample)),
                "raw_energy": energy,
                "chain_break_fraction": info.get("chain_break_fraction"),
                "chain_length": (info.get("chain_length") or {}).get("max"),
                "per_anneal": per_anneal,
                "billed_seconds": billed,
            }
        )
    return out


def score(problems, answers, seconds: float, energy: np.ndarray) -> dict:
    """A setting's row: how often the anneal found the window's optimum, how much of the
    room above it was removed, chains and anneals."""
    incumbent = np.array([w.value(w.incumbent) for _, w in problems])
    best = np.array([optimum(w) for _, w in problems])
    answer = np.array([a["answer"] for a in answers])
    scale = energy[[i for i, _ in problems]]
    tol = 1e-9 * np.maximum(1.0, np.abs(best))
    room = incumbent - best > tol
    breaks = [a["chain_break_fraction"] for a in answers if a["chain_break_fraction"] is not None]
    return {
        "windows": len(problems),
        "variables_mean": float(np.mean([w.bqm()[0].num_variables for _, w in problems])),
        "windows_with_room": int(room.sum()),
        "optimum_found": float(np.mean(answer <= best + tol)),
        "improved": int(np.sum(answer < incumbent - tol)),
        "lost_incumbent": int(np.sum(answer > incumbent + tol)),
        "room_removed": float(
            (incumbent - answer)[room].sum() / max((incumbent - best)[room].sum(), 1e-300)
        ),
        "excess_over_optimum": float(np.mean((answer - best) / scale)),
        "raw_energy_mean": float(np.mean([a["raw_energy"] for a in answers])),
        "chain_break_fraction": float(np.mean(breaks)) if breaks else None,
        "chain_length_max": max((a["chain_length"] or 0) for a in answers),
        "anneals": int(round(sum(1 / a["per_anneal"] for a in answers))),
        "billed_seconds": float(sum(a["billed_seconds"] for a in answers)),
        "seconds": seconds,
    }


def run(
    solver: str = "qpu-mock",
    bits_list=(2, 3),
    per_neuron: int = 4,
    reads: int = READS,
    sweeps=SWEEPS,
    layer: int = 1,
    starts=STARTS,
) -> dict:
    """Every sweep's rows for digits' ``layer`` at each of ``bits_list`` and ``starts``."""
    sampler = get_sampler(solver)
    cells = {}
    for bits, origin in itertools.product(bits_list, starts):
        lq, description, start, _ = layer_problem(
            "digits", layer, bits, window_bits=bits, start="gptq"
        )
        if origin == "kbest":
            samples, energy, _ = kbest(lq, start)
        else:  # round to nearest: an incumbent with room in its windows
            samples = [lq.rtn_sample(i) for i in range(lq.n_neurons)]
            energy = np.array([lq.energy(i, s) for i, s in enumerate(samples)])
        cache = {}
        rows = []
        for name, values in sweeps.items():
            for value in values:
                setting = {**BASE, name: value}
                if setting["window"] not in cache:
                    cache[setting["window"]] = windows(lq, samples, setting["window"], per_neuron)
                problems = cache[setting["window"]]
                began = time.perf_counter()
                answers = anneal(sampler, problems, setting, reads)
                rows.append(
                    {
                        "sweep": name,
                        **setting,
                        **score(problems, answers, time.perf_counter() - began, energy),
                    }
                )
                print(
                    f"int{bits} from {origin}, {name}={value}: optimum found "
                    f"{rows[-1]['optimum_found']:.0%}",
                    flush=True,
                )
        cells[f"digits|{layer}|{bits}|{origin}"] = {
            "description": description,
            "rows": rows,
            "start": origin,
            "start_energy": float(energy.sum()),
        }
    return {
        "solver": solver,
        "emulation": bool(sampler.properties.get("emulation")),
        "largest_clique_size": sampler.largest_clique_size,
        "reads": reads,
        "per_neuron": per_neuron,
        "cells": cells,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solver", choices=("qpu-mock", "qpu"), default="qpu-mock")
    parser.add_argument("--bits", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--per-neuron", type=int, default=4)
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args(argv)
    load = open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"
    record = run(args.solver, args.bits, args.per_neuron)
    command = (
        "OPENBLAS_NUM_THREADS=1 python -m benchmarks.polish_sweeps"
        + (f" --solver {args.solver}" if args.solver != "qpu-mock" else "")
        + (f" --bits {' '.join(map(str, args.bits))}" if args.bits != [2, 3] else "")
        + (f" --per-neuron {args.per_neuron}" if args.per_neuron != 4 else "")
    )
    record.update(command=command, load=load)
    (args.out_dir / "polish_sweeps.json").write_text(json.dumps(record, indent=1) + "\n")
    (args.out_dir / "POLISH_SWEEPS.md").write_text(markdown(record, command, load))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
