"""Annealers on the strong problem, on digits (proven optima): the whole grid sent whole at
int1/int2 from kbest's answer, and window polishing of kbest's answer at int2-int4 with
its matched controls. Writes benchmarks/polish.json and benchmarks/POLISH.md.

    OPENBLAS_NUM_THREADS=1 python -m benchmarks.polish

Every energy is the layer's squared output error on its calibration inputs (float inputs,
as ``annealq bench bounds``); a gap is relative to the sum of the neurons' proven optima
(int2-int4 from benchmarks/results.json's bounds, int1 proven here by the box decoder).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from annealq import get_sampler, solve_layer
from benchmarks.solver_bench import layer_problem
from solvers.exact_bb.box import solve_box
from solvers.polish import EXACT, PolishComposite

HERE = Path(__file__).parent
WHOLE = ["neal", "tabu", "steepest", "qpu-mock"]
POLISHERS = [("exact", 12, 1), ("exact", 24, 1), ("exact", 24, None), ("neal", 12, 1),
             ("tabu", 12, 1)]


def kbest(lq, start):
    began = time.perf_counter()
    solved = solve_layer(lq, get_sampler("kbest", reduced="auto"),
                         initial_states=lq.samples(lq.states(start)))
    return [r.sample for r in solved], np.array([r.energy for r in solved]), \
        time.perf_counter() - began


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
        result = solve_box(H, -e * p, np.zeros_like(span), span, incumbent=known,
                           max_nodes=200_000_000)
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
        rows[name] = (np.array([r.energy for r in solved]), [r.sample for r in solved],
                      time.perf_counter() - began, bool(warm))
    return rows


def gaps(rows, optimum) -> dict:
    return {name: {"seconds": seconds, "warm_start": warm,
                   "layer_gap": float(energies.sum() / optimum.sum() - 1),
                   "neuron_gaps": (energies / optimum - 1).tolist()}
            for name, (energies, _, seconds, warm) in rows.items()}


def polishing(lq, samples, optimum, polishers=POLISHERS, **options):
    """Each of ``polishers`` (``(child, window, move)``) polishing ``samples``, with its
    matched controls; ``options`` go to every :class:`PolishComposite`."""
    rows = {}
    for child, window, move in polishers:
        polisher = PolishComposite(EXACT if child == "exact" else get_sampler(child),
                                   child_name=child, window=window, move=move, **options)
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
            "random_windows_exact_gap": float(random / optimum.sum() - 1)}
    return rows


def run(layers, bits_list) -> dict:
    bounds = json.loads((HERE / "results.json").read_text())["bounds"]
    cells = {}
    for layer in layers:
        for bits in bits_list:
            lq, description, start, _ = layer_problem("digits", layer, bits, window_bits=bits,
                                                      start="gptq")
            samples, energies, seconds = kbest(lq, start)
            answers = whole_grid(lq, samples) if bits <= 2 else {}
            best = list(samples)
            for found, found_samples, *_ in answers.values():
                for i in np.flatnonzero(found < lq.energies(lq.states(np.stack(
                        [lq.integers(j, lq.assignment(j, s)) for j, s in enumerate(best)])))):
                    best[i] = found_samples[i]
            optimum, proven = optima(lq, f"digits|{layer}|{bits}", bounds, best)
            cell = {"description": description, "optimum": float(optimum.sum()),
                    "proven": proven, "kbest_seconds": seconds,
                    "kbest_gap": float(energies.sum() / optimum.sum() - 1),
                    "kbest_neuron_gaps": (energies / optimum - 1).tolist()}
            if answers:
                cell["whole_grid"] = gaps(answers, optimum)
            cell["polish"] = polishing(lq, samples, optimum)
            cells[f"digits|{layer}|{bits}"] = cell
            print(f"layer {layer} int{bits}: kbest {100 * cell['kbest_gap']:+.2f} %", flush=True)
    return cells


def qpu_packing() -> dict:
    """The whole digits model at int2, whole grid from kbest, on the emulated Advantage
    (the real Ocean client against the project's Leap emulator): problems per layer."""
    import tempfile

    import annealq
    from annealq.testing import LeapEmulator

    folder = Path(tempfile.mkdtemp())
    (folder / "dwave.conf").write_text("")
    with LeapEmulator(time_scale=500.0, slots={"hybrid": 4, "qpu": 1}) as emulator:
        os.environ.update(DWAVE_CONFIG_FILE=str(folder / "dwave.conf"),
                          DWAVE_API_ENDPOINT=emulator.endpoint, DWAVE_API_TOKEN=emulator.token)
        data = annealq.load_dataset("digits")
        model, _ = annealq.reference_model(data)
        result = annealq.quantize(model, data, bits=2, solver="qpu", start="kbest",
                                  window_bits=2, cache=False, quiet=True, seed=0,
                                  calibration_size=200)
    return {"layers": [{"neurons": layer["out_features"], **layer["cloud"]}
                       for layer in result.report["layers"]],
            "accuracy": result.report["accuracy"]}


def markdown(cells, command, load, qpu=None) -> str:
    lines = ["# Annealers on the strong problem (digits, proven optima)", "",
             f"`{command}` (2-core machine, load average before the run {load}; qpu-mock is "
             "an emulation: dwave-system's mock QPU, steepest descent on a chained "
             "embedding, no measure of a QPU). Gap: above the sum of the neurons' proven "
             "optima (int1: the box decoder's minimum from the best answer found; 'proven' "
             "in polish.json says whether it finished); float calibration inputs, kbest "
             "(+ reduced basis) from tuned GPTQ.", "",
             "## The whole grid sent whole (int1, int2), warm-started from kbest where the "
             "sampler takes a start", "",
             "| layer | bits | kbest | " + " | ".join(WHOLE) + " |",
             "|---|---|---|" + "---|" * len(WHOLE)]
    for key, cell in cells.items():
        if "whole_grid" in cell:
            _, layer, bits = key.split("|")
            lines.append(f"| {layer} | int{bits} | {100 * cell['kbest_gap']:+.2f} % | "
                         + " | ".join(
                f"{100 * cell['whole_grid'][n]['layer_gap']:+.2f} % "
                f"({cell['whole_grid'][n]['seconds']:.1f} s)" for n in WHOLE) + " |")
    lines += ["", "(Each solver's raw answer; the pipeline keeps the better of it and kbest's "
              "per neuron.)", "", "## Polishing kbest's answer, with matched controls", "",
              "Annealing children first get a neuron whole where it has at most 160 binary "
              "variables (int1-int2 here), then windows; the controls replay the same "
              "windows (and as many random ones) exactly.", "",
              "| layer | bits | kbest | polisher | after | improved neurons | windows "
              "accepted / solved | same windows, exact | random windows, exact | s |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for key, cell in cells.items():
        _, layer, bits = key.split("|")
        for name, row in cell.get("polish", {}).items():
            lines.append(
                f"| {layer} | int{bits} | {100 * cell['kbest_gap']:+.2f} % | {name} | "
                f"{100 * row['layer_gap']:+.2f} % | {row['neurons_improved']} | "
                f"{row['windows_accepted']} / {row['windows_solved']} | "
                f"{100 * row['same_windows_exact_gap']:+.2f} % | "
                f"{100 * row['random_windows_exact_gap']:+.2f} % | {row['seconds']:.1f} |")
    if qpu:
        lines += ["", "## qpu on the whole grid (int2, emulated Advantage)", "",
                  "The digits model at int2, `--solver qpu --start kbest --window-bits 2` "
                  "(200 calibration images), through the real Ocean client against the "
                  "project's Leap emulator (an emulation: the answers are classical):", "",
                  "| layer neurons | problems (anneals) | neurons per anneal | billed s |",
                  "|---|---|---|---|"]
        lines += [f"| {row['neurons']} | {row['problems']} | "
                  f"{row['neurons'] / row['problems']:.1f} | {row['billed_seconds']:.3f} |"
                  for row in qpu["layers"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--bits", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--qpu", action="store_true",
                        help="also the whole model on the emulated QPU (packing)")
    args = parser.parse_args(argv)
    load = open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"
    cells = run(args.layers, args.bits)
    qpu = qpu_packing() if args.qpu else None
    command = "OPENBLAS_NUM_THREADS=1 python -m benchmarks.polish" + (
        f" --layers {' '.join(map(str, args.layers))}" if args.layers != [0, 1] else "") + (
        f" --bits {' '.join(map(str, args.bits))}" if args.bits != [1, 2, 3, 4] else "") + (
        " --qpu" if args.qpu else "")
    (args.out_dir / "polish.json").write_text(json.dumps({"command": command, "load": load,
                                                          "cells": cells, "qpu": qpu},
                                                         indent=1) + "\n")
    (args.out_dir / "POLISH.md").write_text(markdown(cells, command, load, qpu))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
