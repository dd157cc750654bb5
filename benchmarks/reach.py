"""Which whole-grid neurons a proof can reach, and why the 129-entry second layers are out
of it: the grid points a proof must rule out, the search-tree nodes that costs on the
unreduced and on the reduced basis, and what the Lagrangian (Shor) relaxation gives instead.

For each ``nn.Linear`` asked for (each alone on its float inputs, as ``bench bounds``), per
neuron of its whole-grid problem (all weights on the grid, the bias at its best integer:
:func:`solvers.exact_bb.bound.neuron_box`):

* **best known**: ``kbest`` from tuned GPTQ (the best method of ``bench bounds``);
* **grid points better than it**: a proof must exclude every weight vector whose error is
  below the best known. With the bias at its real optimum and the box's multipliers
  (:func:`solvers.exact_bb.reduced._box_shift`) those lie in an ellipsoid
  ``‖R(o − c)‖² < ρ²``; by the Gaussian heuristic it holds about
  ``V_n ρⁿ / det R`` grid points. The share inside the weights' box is estimated from
  ``--samples`` uniform points of the ellipsoid (an upper limit when none falls inside);
* **estimated nodes**: the same heuristic summed over the search tree's levels
  (:func:`solvers.exact_bb.reduced.estimated_nodes`) for the search of
  :func:`solvers.exact_bb.reduced.solve_box_reduced` (bias eliminated, box multipliers) on
  the unreduced basis in the plain decoder's order and on the LLL/BKZ-reduced one, from
  the best known's radius (a search shrinks it as it finds better points, so these are
  upper estimates): the cost of a proof;
* **Lagrangian bound**: :func:`solvers.exact_bb.lagrangian.lagrangian_bound`, the
  semidefinite relaxation's dual, beside ``bench bounds``' bound and proofs from
  ``results.json`` where that cell was run on the same model.

Estimates, not proofs: they say how far a proof is. Run from the repository root (about a
minute a dataset):

    export ANNEALQ_DATA=../shared/data ANNEALQ_MODELS=benchmarks/models
    python benchmarks/reach.py --datasets digits mnist fashion-mnist emnist --bits 4 3 2

(with ``OPENBLAS_NUM_THREADS=1`` on a machine shared with another job: the Lagrangian
bound's small dense solves otherwise wait on BLAS threads, 100× slower here).

It writes ``benchmarks/reach.json`` (every cell, with the command) and ``benchmarks/REACH.md``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from math import lgamma, log, pi
from pathlib import Path

import numpy as np

from annealq.baselines import tuned_gptq_layer
from annealq.config import QuantizeConfig
from annealq.data.datasets import load_dataset
from annealq.data.models import model_fingerprint, reference_model
from annealq.dispatch import solve_layer
from annealq.files import atomic_write
from annealq.problems import LayerProblems
from annealq.registry import get_sampler
from solvers.exact_bb.bound import neuron_box
from solvers.exact_bb.lagrangian import lagrangian_bound
from solvers.exact_bb.reduced import RIDGE, _box_shift, _setup, estimated_nodes

LN10 = log(10)


def ellipsoid_points(H, b, low, high, incumbent, *, samples: int, rng):
    """``(log10 points in the ellipsoid, log10 of those in the box, samples in the box)``
    for the weight vectors that could beat ``incumbent`` (the module docs; the last entry
    is the bias). ``-inf`` when the ellipsoid is empty."""
    R, _, _, squared, _, _ = _setup(H, b, low, high, incumbent, True, reduced=False)
    n = len(R)
    if squared <= 0:
        return -np.inf, -np.inf, 0
    log_volume = (
        (n / 2) * log(pi * squared) - lgamma(n / 2 + 1) - float(np.sum(np.log(np.abs(np.diag(R)))))
    )
    # the ellipsoid's centre and shape in the weights' own coordinates (not reordered)
    h = H[:-1, -1]
    S, s, _ = _box_shift(
        H[:-1, :-1] - np.outer(h, h) / H[-1, -1],
        b[:-1] - h * b[-1] / H[-1, -1],
        0.0,
        low[:-1],
        high[:-1],
    )
    L = np.linalg.cholesky(S + RIDGE * np.mean(np.diag(S)) * np.eye(n))
    centre = -np.linalg.solve(S, s)
    y = rng.normal(size=(samples, n))  # uniform in the unit ball, then o = c + ρ L⁻ᵀ y
    y *= (rng.uniform(size=(samples, 1)) ** (1 / n)) / np.linalg.norm(y, axis=1, keepdims=True)
    points = centre + np.sqrt(squared) * np.linalg.solve(L.T, y.T).T
    inside = int(np.sum(np.all((points >= low[:-1] - 0.5) & (points <= high[:-1] + 0.5), axis=1)))
    return (log_volume / LN10, (log_volume + log(max(inside, 1) / samples)) / LN10, inside)


def layer_reach(problem, *, samples: int, neurons=None) -> dict:
    """The cell of one layer's problem (:class:`~annealq.problems.LayerProblem`) at its bit
    width (see the module docs)."""
    (W, b), X, bits = problem.numpy_parameters(), problem.inputs, problem.bits
    q, q_b, _ = tuned_gptq_layer(W, b, X, bits=bits)
    start = np.column_stack([q, q_b])
    lq = problem.formulate(window_bits=4, center=start)
    solved = solve_layer(lq, get_sampler("kbest"), initial_states=lq.samples(lq.states(start)))
    known = np.column_stack(lq.decode([r.sample for r in solved]))
    grid, rng = lq.weight_grid, np.random.default_rng(0)
    rows = []
    for i in range(lq.n_neurons if neurons is None else min(neurons, lq.n_neurons)):
        _, e, p = lq.integer_form(i)
        base = lq.base[i]
        H, h, low, high, incumbent, _, relaxed = neuron_box(
            lq.entry_gram,
            e,
            p,
            grid.q_min - base[:-1],
            grid.q_max - base[:-1],
            incumbent=known[i] - base,
            bias=lq.has_bias,
        )
        H_w, h_w, low_w, high_w, constant = relaxed
        offset = float(lq.offset[i])
        begin = time.perf_counter()
        lagrangian = offset + constant + lagrangian_bound(H_w, h_w, low_w, high_w)
        lagrangian_seconds = time.perf_counter() - begin
        ellipsoid, boxed, inside = ellipsoid_points(
            H, h, low, high, incumbent, samples=samples, rng=rng
        )
        nodes = {
            kind: log(
                max(
                    estimated_nodes(
                        H, h, low, high, incumbent=incumbent, eliminate_last=True, reduced=reduced
                    ),
                    1.0,
                )
            )
            / LN10
            for kind, reduced in (("unreduced", False), ("reduced", True))
        }
        rows.append(
            {
                "entries": int(len(H_w) + 1),
                "best": offset + float(incumbent @ H @ incumbent + 2 * h @ incumbent),
                "lagrangian": lagrangian,
                "lagrangian_seconds": lagrangian_seconds,
                "log10_ellipsoid": ellipsoid,
                "log10_in_box": boxed,
                "samples_in_box": inside,
                "log10_nodes": nodes,
            }
        )
    return {"neurons": rows, "samples": samples}


def run(
    datasets, bits_list, layers, *, cells: dict, samples, neurons, data_dir=None, progress=print
) -> dict:
    """Fill ``cells`` (``"dataset|layer|bits"`` → :func:`layer_reach`), calling
    ``progress`` with a line after each."""
    for name in datasets:
        data = load_dataset(name, data_dir=data_dir)
        model, _ = reference_model(data)
        x = data.calibration(1000, seed=0)
        problems = LayerProblems(
            model, x, QuantizeConfig(bits=bits_list[0]), sequential=False, layers=layers
        )
        for index, problem in zip(layers, problems):
            for bits in bits_list:
                cell = layer_reach(problem.with_bits(bits), samples=samples, neurons=neurons)
                cell["model"] = model_fingerprint(model)
                cells[f"{name}|{index}|{bits}"] = cell
                progress(f"{name} layer {index} int{bits}: " + _line(cell))
    return cells


def _median(rows, key, inner=None):
    return float(np.median([r[key] if inner is None else r[key][inner] for r in rows]))


def _line(cell) -> str:
    rows = cell["neurons"]
    return (
        f"best {sum(r['best'] for r in rows):.5g}, Lagrangian "
        f"{sum(r['lagrangian'] for r in rows):.5g}, median log10: points "
        f"{_median(rows, 'log10_ellipsoid'):.1f}, in box {_median(rows, 'log10_in_box'):.1f}, "
        f"nodes unreduced {_median(rows, 'log10_nodes', 'unreduced'):.1f}, reduced "
        f"{_median(rows, 'log10_nodes', 'reduced'):.1f}"
    )


def markdown(result: dict, bound_cells: dict) -> str:
    lines = [
        "# Within reach of a proof, or not: whole-grid neurons",
        "",
        "    " + result["command"],
        "",
        "Each layer alone on its float inputs; per neuron the whole-grid problem "
        "(`benchmarks/reach.py`'s module docs). Best known: `kbest` from tuned GPTQ. "
        "Bounds: the Lagrangian (Shor semidefinite) dual, and `bench bounds`' bound with "
        "the neurons it proved optimal (`results.json`, RESULTS.md; blank where that "
        "cell was not run on this model). Medians over neurons, as powers of ten: the "
        "Gaussian heuristic's count of weight vectors better than the best known (in "
        "their ellipsoid; inside the weights' box, `<` an upper limit where no sample "
        "fell inside), and the search-tree nodes a proof would take from the best known "
        "(the bias at its best integer for each weight vector) on the unreduced basis "
        "in the plain decoder's order and on the LLL/BKZ-reduced one (upper "
        "estimates: a search shrinks its radius as it finds better points). The "
        "search visits some 3×10⁷ nodes a second on this machine.",
        "",
        "| layer | int | entries × neurons | best known | Lagrangian bound | bound of "
        "`bench bounds` (proven) | points better than the best known: ellipsoid / in "
        "the box | nodes to prove: unreduced / reduced basis |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, cell in result["cells"].items():
        name, layer, bits = key.split("|")
        rows = cell["neurons"]
        bound = bound_cells.get(key, {})
        bound_text = (
            f"{bound['bound']:.5g} ({bound['proven']}/{bound['neurons']})"
            if bound.get("model") == cell["model"] and bound.get("neurons") == len(rows)
            else ""
        )
        limit = "<" if _median(rows, "samples_in_box") == 0 else ""
        lines.append(
            f"| {name} {layer} | {bits} | {rows[0]['entries']} × {len(rows)} | "
            f"{sum(r['best'] for r in rows):.5g} | {sum(r['lagrangian'] for r in rows):.5g} | "
            f"{bound_text} | 10^{_median(rows, 'log10_ellipsoid'):.1f} / "
            f"{limit}10^{_median(rows, 'log10_in_box'):.1f} | "
            f"10^{_median(rows, 'log10_nodes', 'unreduced'):.1f} / "
            f"10^{_median(rows, 'log10_nodes', 'reduced'):.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist"])
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 3, 2])
    parser.add_argument("--layers", type=int, nargs="+", default=[1])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--neurons", type=int, default=None, help="only the first N")
    parser.add_argument("--out-dir", default="benchmarks")
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help="only rewrite REACH.md from reach.json (its bound column from "
        "the current results.json); nothing is run",
    )
    args = parser.parse_args(argv)
    if args.markdown_only:
        out = Path(args.out_dir)
        table = markdown(json.loads((out / "reach.json").read_text()), _bound_cells())
        atomic_write(out / "REACH.md", lambda stream: stream.write(table.encode()))
        print(table)
        return 0
    given = sys.argv[1:] if argv is None else list(argv)
    command = "python benchmarks/reach.py " + " ".join(shlex.quote(a) for a in given)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = {"command": command.strip(), "cells": {}}

    def write(_line=None):
        if _line:
            print(_line, flush=True)
        text = json.dumps(result, indent=1) + "\n"
        atomic_write(out / "reach.json", lambda stream: stream.write(text.encode()))
        table = markdown(result, _bound_cells())
        atomic_write(out / "REACH.md", lambda stream: stream.write(table.encode()))

    for name in args.datasets:  # one dataset at a time: a stopped run keeps the ones done
        run(
            [name],
            args.bits,
            args.layers,
            cells=result["cells"],
            samples=args.samples,
            neurons=args.neurons,
            progress=write,
        )
    print(markdown(result, _bound_cells()))
    return 0


def _bound_cells() -> dict:
    """``bench bounds``' cells in the committed ``benchmarks/results.json``."""
    path = Path(__file__).with_name("results.json")
    return json.loads(path.read_text()).get("bounds", {}) if path.exists() else {}


if __name__ == "__main__":
    sys.exit(main())
