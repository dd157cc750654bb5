"""Annealers on the strong problem on MNIST's first layer (784 inputs): the whole grid sent
whole at int1/int2 from kbest's answer, and window polishing of kbest's answer at int1-int4
with its matched controls. Writes benchmarks/polish_mnist.json and POLISH_MNIST.md.

    ANNEALQ_DATA=../shared/data OPENBLAS_NUM_THREADS=1 python -m benchmarks.polish_mnist

No optimum is proven at this size, so every energy is read against kbest's own (a negative
change is an improvement on it). A neuron is 785 binary variables at int1 and about 1,570 at
int2 on the whole grid: beyond any QPU clique, so the whole-grid rows are the local solvers
(and Leap's hybrid solvers where a token holder adds them); the QPU can only take windows.
The layer's first ``--neurons`` neurons, as benchmarks/polish.py's functions compute them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from benchmarks.gaps import sub_layer
from benchmarks.harness import layer_problem
from benchmarks.polish import gaps, kbest, polishing, whole_grid

HERE = Path(__file__).parent
WHOLE = ["neal", "tabu", "steepest"]
POLISHERS = [("exact", 24, 1), ("exact", 24, None), ("neal", 12, 1)]


def run(bits_list, neurons: int, whole_bits=(1, 2), max_windows: int = 64) -> dict:
    cells = {}
    for bits in bits_list:
        lq, description, start, _ = layer_problem("mnist", 0, bits, window_bits=bits, start="gptq")
        rows = list(range(min(neurons, lq.n_neurons)))
        lq, start = sub_layer(lq, rows), start[rows]
        samples, energies, seconds = kbest(lq, start)
        cell = {
            "description": description,
            "neurons": len(rows),
            "kbest_seconds": seconds,
            "kbest_energy": float(energies.sum()),
        }
        if bits in whole_bits:
            cell["whole_grid"] = gaps(whole_grid(lq, samples, WHOLE), energies)
        # against kbest's energies: gaps below 0 are improvements on kbest
        cell["polish"] = polishing(
            lq, samples, energies, POLISHERS, max_windows=max_windows, whole_first=False
        )
        cells[f"mnist|0|{bits}"] = cell
        print(f"int{bits}: kbest {seconds:.1f} s", flush=True)
    return cells


def markdown(cells, command, load) -> str:
    lines = [
        "# Annealers on the strong problem: MNIST's first layer",
        "",
        f"`{command}` (2-core machine, load average before the run {load}). The MNIST "
        "reference MLP 784-128-10, its first layer's first neurons on 1,000 calibration "
        "images (float inputs), kbest (+ reduced basis) from tuned GPTQ. **No optimum "
        "is proven here**: every figure is the change against kbest's own energy "
        "(below 0: better than kbest). A neuron's whole grid is 785 binary variables "
        "at int1 (about 1,570 at int2), beyond any QPU clique: the QPU can only take "
        "windows of it.",
        "",
        "## The whole grid sent whole, warm-started from kbest where the solver takes a start",
        "",
        "| bits | neurons | " + " | ".join(WHOLE) + " |",
        "|---|---|" + "---|" * len(WHOLE),
    ]
    for key, cell in cells.items():
        if "whole_grid" in cell:
            row = cell["whole_grid"]
            lines.append(
                f"| int{key.split('|')[2]} | {cell['neurons']} | "
                + " | ".join(
                    f"{100 * row[n]['layer_gap']:+.2f} % ({row[n]['seconds']:.1f} s)" for n in WHOLE
                )
                + " |"
            )
    lines += [
        "",
        "## Polishing kbest's answer, with matched controls",
        "",
        "Windows only (no neuron is sent whole), at most the windows per neuron given "
        "in the command; the controls replay the same windows exactly, and as many "
        "random windows of the same size exactly.",
        "",
        "| bits | neurons | polisher | after | improved neurons | windows accepted / "
        "solved | same windows, exact | random windows, exact | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, cell in cells.items():
        for name, row in cell["polish"].items():
            lines.append(
                f"| int{key.split('|')[2]} | {cell['neurons']} | {name} | "
                f"{100 * row['layer_gap']:+.3f} % | {row['neurons_improved']} | "
                f"{row['windows_accepted']} / {row['windows_solved']} | "
                f"{100 * row['same_windows_exact_gap']:+.3f} % | "
                f"{100 * row['random_windows_exact_gap']:+.3f} % | {row['seconds']:.1f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--neurons", type=int, default=16)
    parser.add_argument("--max-windows", type=int, default=64)
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args(argv)
    load = open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"
    began = time.perf_counter()
    cells = run(args.bits, args.neurons, max_windows=args.max_windows)
    command = (
        "ANNEALQ_DATA=../shared/data OPENBLAS_NUM_THREADS=1 python -m "
        f"benchmarks.polish_mnist --bits {' '.join(map(str, args.bits))} "
        f"--neurons {args.neurons} --max-windows {args.max_windows}"
    )
    record = {
        "command": command,
        "load": load,
        "seconds": time.perf_counter() - began,
        "cells": cells,
    }
    (args.out_dir / "polish_mnist.json").write_text(json.dumps(record, indent=1) + "\n")
    (args.out_dir / "POLISH_MNIST.md").write_text(markdown(cells, command, load))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
