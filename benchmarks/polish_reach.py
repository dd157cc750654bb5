"""Why window polishing cannot close kbest's gap on digits' second layer: where the proven
optima lie relative to kbest's answer, and whether any window a polisher can choose holds
the move. Writes benchmarks/polish_reach.json and benchmarks/POLISH_REACH.md.

    OPENBLAS_NUM_THREADS=1 python -m benchmarks.polish_reach

For each neuron whose kbest error is above its proven optimum (``benchmarks/results.json``'s
bounds), the reduced-basis search (:func:`solvers.exact_bb.reduced.solve_box_reduced`) finds
the optimum's integers; ``D`` is the set of weights where they differ from kbest's. The
oracle rows solve the window ``D`` exactly from kbest's answer (with the bias fixed and
re-fitted, as polishing does, and with the bias inside the window). The other rows are the
windows a polisher can build without the answer, each the best of its family: the
correlation windows :class:`~solvers.polish.PolishComposite` grows from every seed, the
top entries of the form's lowest eigenvectors, and the entries farthest from the real box
minimiser — how many of ``D`` the best one holds.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from benchmarks.harness import layer_problem
from benchmarks.polish import kbest
from solvers.exact_bb.bound import neuron_box
from solvers.exact_bb.box import box_minimiser, solve_box
from solvers.exact_bb.reduced import solve_box_reduced
from solvers.polish.windows import NeuronState, Window, neighbours

HERE = Path(__file__).parent
WINDOW = 24
NODES = 2_000_000_000


def neuron_reach(lq, i: int, sample, nodes: int) -> dict:
    """The optimum of neuron ``i`` found from kbest's ``sample``, and the windows' reach."""
    span, e, p = lq.integer_form(i)
    base, grid = lq.base[i], lq.weight_grid
    start = lq.integers(i, lq.assignment(i, sample)) - base
    H, h, low, high, incumbent, live, _ = neuron_box(
        lq.entry_gram,
        e,
        p,
        grid.q_min - base[:-1],
        grid.q_max - base[:-1],
        incumbent=start,
        bias=lq.has_bias,
    )
    found = solve_box_reduced(
        H, h, low, high, incumbent=incumbent, max_nodes=nodes, eliminate_last=lq.has_bias
    )
    move = found.o - incumbent
    weights = move[: len(live)]
    D = live[np.flatnonzero(weights)]
    row = {
        "kbest": float(lq.offset[i] + incumbent @ H @ incumbent + 2 * h @ incumbent),
        "found": float(lq.offset[i] + found.value),
        "proven": bool(found.proven),
        "live": int(len(live)),
        "moved": int(len(D)),
        "largest_step": int(np.abs(weights).max(initial=0)),
        "bias_moved": bool(lq.has_bias and move[-1] != 0),
    }
    if not len(D):
        return row
    state = NeuronState.of(lq, i, start)
    fixed = Window.of(state, D, move=None)
    o = solve_box(fixed.H, fixed.b, fixed.low, fixed.high, incumbent=fixed.incumbent).o
    row["oracle_window"] = float(row["kbest"] + fixed.gain(o))
    if lq.has_bias:  # the same weights with the bias inside the window
        S = np.append(D, lq.n_inputs)
        joint = Window.of(state, S, move=None)
        o = solve_box(joint.H, joint.b, joint.low, joint.high, incumbent=joint.incumbent).o
        row["oracle_window_with_bias"] = float(row["kbest"] + joint.gain(o))
    row["best_overlap"] = _overlaps(state, set(D.tolist()))
    return row


def _overlaps(state: NeuronState, D: set) -> dict:
    """The most of ``D`` any one window of each family holds (``WINDOW`` weights each)."""
    live = state.live()
    whole = Window.of(state, live, move=None)  # every live weight, the bias fixed
    _, V = np.linalg.eigh(whole.H)
    centre = box_minimiser(whole.H, whole.b, whole.low, whole.high)
    families = {
        "correlation (polish's windows)": list(neighbours(state.gram, live, WINDOW)),
        "lowest eigenvectors (10)": [
            live[np.argsort(-np.abs(V[:, k]))[:WINDOW]] for k in range(10)
        ],
        "farthest from the real minimiser": [
            live[np.argsort(-np.abs(centre - state.o[live]))[:WINDOW]]
        ],
    }
    return {
        name: max(len(D & set(S.tolist())) for S in windows) for name, windows in families.items()
    }


def run(bits_list, nodes: int) -> dict:
    bounds = json.loads((HERE / "results.json").read_text())["bounds"]
    cells = {}
    for bits in bits_list:
        lq, description, start, _ = layer_problem("digits", 1, bits, window_bits=bits, start="gptq")
        samples, energies, _ = kbest(lq, start)
        optimum = np.array(bounds[f"digits|1|{bits}"]["neuron_bounds"])
        rows = {}
        for i in np.flatnonzero(energies / optimum - 1 > 1e-4):
            rows[int(i)] = {
                "optimum": float(optimum[i]),
                **neuron_reach(lq, int(i), samples[i], nodes),
            }
            print(f"int{bits} neuron {i}: {rows[int(i)]}", flush=True)
        cells[str(bits)] = {
            "description": description,
            "optimum": float(optimum.sum()),
            "kbest": float(energies.sum()),
            "neurons": rows,
        }
    return cells


def markdown(cells, command, load) -> str:
    lines = [
        "# Can a window reach digits' proven optima from kbest?",
        "",
        f"`{command}` (2-core machine, load average before the run {load}). "
        f"Second layer (64→10), float calibration inputs, kbest (+ reduced basis) from "
        f"tuned GPTQ; windows of {WINDOW} weights, exact. 'moved': weights where the "
        "optimum differs from kbest's answer, of the live ones; 'oracle': the window "
        "holding exactly those weights, solved exactly from kbest's answer.",
        "",
        "| bits | neuron | kbest gap | moved / live | largest step | bias moves | "
        "oracle window | oracle + bias | best correlation window holds | best "
        "eigenvector window | farthest from real minimiser |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for bits, cell in cells.items():
        for i, row in cell["neurons"].items():
            gap = lambda value, r=row: f"{100 * (value / r['optimum'] - 1):+.2f} %"
            overlap = row.get("best_overlap", {})
            found = "" if row["moved"] else " (optimum not found)"
            lines.append(
                f"| int{bits} | {i} | {gap(row['kbest'])} | {row['moved']} / {row['live']}"
                f"{found} | {row['largest_step']} | {'yes' if row['bias_moved'] else 'no'} | "
                + " | ".join(
                    gap(row[k]) if k in row else "–"
                    for k in ("oracle_window", "oracle_window_with_bias")
                )
                + " | "
                + " | ".join([f"{v} of {row['moved']}" for v in overlap.values()] or ["–"] * 3)
                + " |"
            )
    lines += [
        "",
        "Layer totals: "
        + "; ".join(
            f"int{bits} kbest {100 * (c['kbest'] / c['optimum'] - 1):+.2f} %, "
            f"{100 * (_oracle_total(c) / c['optimum'] - 1):+.2f} % had every oracle window of at "
            f"most {WINDOW} weights (bias inside) been found"
            for bits, c in cells.items()
        )
        + ".",
    ]
    return "\n".join(lines) + "\n"


def _oracle_total(cell) -> float:
    """The layer's error had each neuron taken its oracle window where that holds at most
    ``WINDOW`` weights (the bias inside)."""
    gains = [
        row["kbest"] - row["oracle_window_with_bias"]
        for row in cell["neurons"].values()
        if 0 < row["moved"] <= WINDOW and "oracle_window_with_bias" in row
    ]
    return cell["kbest"] - sum(gains)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--nodes", type=int, default=NODES)
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--from-json", type=Path, help="rewrite the .md from an earlier run's json")
    args = parser.parse_args(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        (args.out_dir / "POLISH_REACH.md").write_text(
            markdown(saved["cells"], saved["command"], saved["load"])
        )
        return 0
    load = open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"
    cells = run(args.bits, args.nodes)
    command = "OPENBLAS_NUM_THREADS=1 python -m benchmarks.polish_reach" + (
        f" --bits {' '.join(map(str, args.bits))}" if args.bits != [2, 3] else ""
    )
    (args.out_dir / "polish_reach.json").write_text(
        json.dumps({"command": command, "load": load, "cells": cells}, indent=1) + "\n"
    )
    (args.out_dir / "POLISH_REACH.md").write_text(markdown(cells, command, load))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
