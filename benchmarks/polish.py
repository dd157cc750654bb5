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
from pathlib import Path

import numpy as np

from benchmarks.polish_cells import (  # noqa: F401 (re-exported: the notebook and polish_* use them)
    POLISHERS,
    WHOLE,
    gaps,
    kbest,
    optima,
    polishing,
    whole_grid,
)
from benchmarks.solver_bench import layer_problem

HERE = Path(__file__).parent


def run(layers, bits_list) -> dict:
    bounds = json.loads((HERE / "results.json").read_text())["bounds"]
    cells = {}
    for layer in layers:
        for bits in bits_list:
            lq, description, start, _ = layer_problem(
                "digits", layer, bits, window_bits=bits, start="gptq"
            )
            samples, energies, seconds = kbest(lq, start)
            answers = whole_grid(lq, samples) if bits <= 2 else {}
            best = list(samples)
            for found, found_samples, *_ in answers.values():
                for i in np.flatnonzero(
                    found
                    < lq.energies(
                        lq.states(
                            np.stack(
                                [lq.integers(j, lq.assignment(j, s)) for j, s in enumerate(best)]
                            )
                        )
                    )
                ):
                    best[i] = found_samples[i]
            optimum, proven = optima(lq, f"digits|{layer}|{bits}", bounds, best)
            cell = {
                "description": description,
                "optimum": float(optimum.sum()),
                "proven": proven,
                "kbest_seconds": seconds,
                "kbest_gap": float(energies.sum() / optimum.sum() - 1),
                "kbest_neuron_gaps": (energies / optimum - 1).tolist(),
            }
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
        os.environ.update(
            DWAVE_CONFIG_FILE=str(folder / "dwave.conf"),
            DWAVE_API_ENDPOINT=emulator.endpoint,
            DWAVE_API_TOKEN=emulator.token,
        )
        data = annealq.load_dataset("digits")
        model, _ = annealq.reference_model(data)
        result = annealq.quantize(
            model,
            data,
            bits=2,
            solver="qpu",
            start="kbest",
            window_bits=2,
            cache=False,
            quiet=True,
            seed=0,
            calibration_size=200,
        )
    return {
        "layers": [
            {"neurons": layer["out_features"], **layer["cloud"]}
            for layer in result.report["layers"]
        ],
        "accuracy": result.report["accuracy"],
    }


def markdown(cells, command, load, qpu=None) -> str:
    lines = [
        "# Annealers on the strong problem (digits, proven optima)",
        "",
        f"`{command}` (2-core machine, load average before the run {load}; qpu-mock is "
        "an emulation: dwave-system's mock QPU, steepest descent on a chained "
        "embedding, no measure of a QPU). Gap: above the sum of the neurons' proven "
        "optima (int1: the box decoder's minimum from the best answer found; 'proven' "
        "in polish.json says whether it finished); float calibration inputs, kbest "
        "(+ reduced basis) from tuned GPTQ.",
        "",
        "## The whole grid sent whole (int1, int2), warm-started from kbest where the "
        "sampler takes a start",
        "",
        "| layer | bits | kbest | " + " | ".join(WHOLE) + " |",
        "|---|---|---|" + "---|" * len(WHOLE),
    ]
    for key, cell in cells.items():
        if "whole_grid" in cell:
            _, layer, bits = key.split("|")
            lines.append(
                f"| {layer} | int{bits} | {100 * cell['kbest_gap']:+.2f} % | "
                + " | ".join(
                    f"{100 * cell['whole_grid'][n]['layer_gap']:+.2f} % "
                    f"({cell['whole_grid'][n]['seconds']:.1f} s)"
                    for n in WHOLE
                )
                + " |"
            )
    lines += [
        "",
        "(Each solver's raw answer; the pipeline keeps the better of it and kbest's per neuron.)",
        "",
        "## Polishing kbest's answer, with matched controls",
        "",
        "Annealing children first get a neuron whole where it has at most 160 binary "
        "variables (int1-int2 here), then windows; the controls replay the same "
        "windows (and as many random ones) exactly.",
        "",
        "| layer | bits | kbest | polisher | after | improved neurons | windows "
        "accepted / solved | same windows, exact | random windows, exact | s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, cell in cells.items():
        _, layer, bits = key.split("|")
        for name, row in cell.get("polish", {}).items():
            lines.append(
                f"| {layer} | int{bits} | {100 * cell['kbest_gap']:+.2f} % | {name} | "
                f"{100 * row['layer_gap']:+.2f} % | {row['neurons_improved']} | "
                f"{row['windows_accepted']} / {row['windows_solved']} | "
                f"{100 * row['same_windows_exact_gap']:+.2f} % | "
                f"{100 * row['random_windows_exact_gap']:+.2f} % | {row['seconds']:.1f} |"
            )
    if qpu:
        lines += [
            "",
            "## qpu on the whole grid (int2, emulated Advantage)",
            "",
            "The digits model at int2, `--solver qpu --start kbest --window-bits 2` "
            "(200 calibration images), through the real Ocean client against the "
            "project's Leap emulator (an emulation: the answers are classical):",
            "",
            "| layer neurons | problems (anneals) | neurons per anneal | billed s |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {row['neurons']} | {row['problems']} | "
            f"{row['neurons'] / row['problems']:.1f} | {row['billed_seconds']:.3f} |"
            for row in qpu["layers"]
        ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--bits", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument(
        "--qpu", action="store_true", help="also the whole model on the emulated QPU (packing)"
    )
    args = parser.parse_args(argv)
    load = open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"
    cells = run(args.layers, args.bits)
    qpu = qpu_packing() if args.qpu else None
    command = (
        "OPENBLAS_NUM_THREADS=1 python -m benchmarks.polish"
        + (f" --layers {' '.join(map(str, args.layers))}" if args.layers != [0, 1] else "")
        + (f" --bits {' '.join(map(str, args.bits))}" if args.bits != [1, 2, 3, 4] else "")
        + (" --qpu" if args.qpu else "")
    )
    (args.out_dir / "polish.json").write_text(
        json.dumps({"command": command, "load": load, "cells": cells, "qpu": qpu}, indent=1) + "\n"
    )
    (args.out_dir / "POLISH.md").write_text(markdown(cells, command, load, qpu))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
