"""Layer error against time on one layer, in one run: tuned GPTQ, CD, and the whole-grid
QUBO (``window_bits=4``, windows on tuned GPTQ's integers) solved by ``batch-sa``, ``lns``,
``exact-bb`` and ``kbest`` from tuned GPTQ, the search solvers at several per-layer time
limits, ``kbest`` at several widths, and ``lns`` polishing ``kbest``'s answer.

Run from the repository root (a few minutes per bit width on 2 idle cores):

    ANNEALQ_DATA=../shared/data python benchmarks/pareto.py --dataset mnist --bits 4 3 2

It writes ``benchmarks/pareto_<dataset>.json`` (every point, with the command) and
``benchmarks/pareto_<dataset>.png`` (one panel per bit width; log time). ``--from-refit
FILE`` adds (or replaces) the first-layer points of ``benchmarks/refit.py``'s runs in
``FILE`` — GPTQ with clip search, ``kbest`` with clip search and with re-fitted steps —
marked ``†`` (their own runs and machine load), and redraws the plot; nothing is run.
Times of the QUBO rows include tuned GPTQ's, which gives their start; the layer is the
dataset's reference MLP's first layer on 1,000 calibration images (every method sees the
same inputs).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from annealq.baselines import cd_layer, layer_error, tuned_gptq_layer
from annealq.config import QuantizeConfig
from annealq.data.datasets import load_dataset
from annealq.data.models import reference_model
from annealq.dispatch import solve_layer
from annealq.formulation import LayerQUBO
from annealq.problems import layer_problem
from annealq.registry import get_sampler

LNS_LIMITS = (3.0, 10.0, None)  # seconds per layer (None: lns's own stopping rule)
EXACT_LIMITS = (30.0,)
BATCH_SA = ({"num_reads": 4, "num_sweeps": 64},)
KBEST_WIDTHS = (4, 16, 64, 256)
KBEST_POLISHED = 64


def layer_points(problem, progress=print) -> list[dict]:
    """Every method's ``{"method", "seconds", "error"}`` on this layer's problem
    (:class:`~annealq.problems.LayerProblem`)."""
    (W, b), X, bits, plain = problem.numpy_parameters(), problem.inputs, problem.bits, problem.qubo
    points = []

    def add(method, seconds, q, q_b):
        error = float(layer_error(plain, q, q_b, inputs=X).sum())
        points.append({"method": method, "seconds": seconds, "error": error})
        progress(f"  int{bits} {method}: {error:.6g} in {seconds:.2f} s")

    tuned_gptq_layer(W[:1], b[:1], X, bits=bits)  # untimed warm-up: imports, caches
    begin = time.perf_counter()
    q, q_b, _ = tuned_gptq_layer(W, b, X, bits=bits)
    gptq_seconds = time.perf_counter() - begin
    add("GPTQ (tuned)", gptq_seconds, q, q_b)
    begin = time.perf_counter()
    cd = cd_layer(W, b, X, bits=bits, start=(q, q_b))
    add("CD (from tuned GPTQ)", gptq_seconds + time.perf_counter() - begin, *cd)
    start = np.column_stack([q, q_b])
    lq = problem.formulate(window_bits=4, center=start)
    warm = lq.samples(lq.states(start))
    runs = [
        (f"batch-sa ({p['num_reads']} reads, {p['num_sweeps']} sweeps)", "batch-sa", p)
        for p in BATCH_SA
    ]
    runs += [
        (
            "lns" + (f", {limit:g} s" if limit else ", to convergence"),
            "lns",
            {"seed": 0} | ({"layer_time_limit": limit} if limit else {}),
        )
        for limit in LNS_LIMITS
    ]
    runs += [
        (f"exact-bb, {limit:g} s", "exact-bb", {"layer_time_limit": limit})
        for limit in EXACT_LIMITS
    ]
    runs += [(f"kbest, width {width}", "kbest", {"width": width}) for width in KBEST_WIDTHS]
    found = {}
    for label, name, params in runs:
        found[label] = solved = _timed(lq, get_sampler(name, **params), warm)
        add(label, gptq_seconds + solved[1], *lq.decode(solved[0]))
    # lns polishing kbest's answer: the two searches together
    start, seconds = found[f"kbest, width {KBEST_POLISHED}"]
    samples, more = _timed(lq, get_sampler("lns", seed=0), start)
    add(
        f"kbest + lns (width {KBEST_POLISHED}, then lns to convergence)",
        gptq_seconds + seconds + more,
        *lq.decode(samples),
    )
    return points


REFIT_POINTS = (  # (point, benchmarks/refit.py's run)
    ("GPTQ (tuned, + clip search)†", "GPTQ + clip"),
    ("kbest, width 64, + clip search†", "kbest + clip"),
    ("kbest, width 64, re-fitted steps†", "kbest + refit"),
    ("kbest, width 64, + clip search, re-fitted steps†", "kbest + clip + refit"),
)


def add_refit_points(result: dict, refit: dict) -> dict:
    """``result`` with each bit width's :data:`REFIT_POINTS` from ``refit`` (a
    ``benchmarks/refit.py`` JSON): the first layer's error and seconds of those runs."""
    for row in refit["rows"]:
        points = result["points"].get(str(row["bits"]))
        if row["dataset"] != result["dataset"] or points is None:
            continue
        names = {name for name, _ in REFIT_POINTS}
        points[:] = [p for p in points if p["method"] not in names]
        points += [
            {
                "method": name,
                "seconds": row["runs"][run]["layer_seconds"][0],
                "error": row["runs"][run]["layer_errors"][0],
            }
            for name, run in REFIT_POINTS
            if run in row["runs"]
        ]
    result["refit_command"] = refit["command"]
    return result


def _timed(lq, sampler, warm) -> tuple[list, float]:
    """``(samples, seconds)`` of one layer solve from ``warm``, never worse than it."""
    # untimed warm-up on one neuron: compiled kernels load, as in bench solvers
    solve_layer(LayerQUBO.select(lq, [0]), sampler, initial_states=warm[:1])
    begin = time.perf_counter()
    solved = solve_layer(lq, sampler, initial_states=warm)
    seconds = time.perf_counter() - begin
    return [
        s if lq.energy(i, s) < r.energy else r.sample  # never worse than the start
        for i, (r, s) in enumerate(zip(solved, warm))
    ], seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 3, 2])
    parser.add_argument("--out-dir", default="benchmarks")
    parser.add_argument(
        "--table",
        action="store_true",
        help="print PARETO.md's table from the JSON (nothing is run)",
    )
    parser.add_argument(
        "--from-refit",
        metavar="FILE",
        help="add benchmarks/refit.py's first-layer points from FILE",
    )
    args = parser.parse_args(argv)
    if args.from_refit:
        path = Path(args.out_dir) / f"pareto_{args.dataset}.json"
        result = add_refit_points(
            json.loads(path.read_text()), json.loads(Path(args.from_refit).read_text())
        )
        path.write_text(json.dumps(result, indent=1) + "\n")
        plot(result, path.with_suffix(".png"))
        return 0
    if args.table:
        path = Path(args.out_dir) / f"pareto_{args.dataset}.json"
        print(table(json.loads(path.read_text())))
        return 0
    data = load_dataset(args.dataset)
    model, _ = reference_model(data)
    x = data.calibration(1000, seed=0)
    problem = layer_problem(model, x, QuantizeConfig(bits=args.bits[0]), 0)
    given = sys.argv[1:] if argv is None else list(argv)
    command = "python benchmarks/pareto.py " + " ".join(shlex.quote(a) for a in given)
    result = {
        "command": command,
        "dataset": args.dataset,
        "layer": 0,
        "calibration": 1000,
        "points": {},
    }
    for bits in args.bits:
        result["points"][str(bits)] = layer_points(problem.with_bits(bits))
    out = Path(args.out_dir)
    (out / f"pareto_{args.dataset}.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out / f"pareto_{args.dataset}.png")
    return 0


def table(result: dict) -> str:
    """The markdown table of ``result``: each method's error (seconds) per bit width, and
    the best ``kbest`` point over tuned GPTQ's and CD's errors."""
    methods = list(
        dict.fromkeys(p["method"] for points in result["points"].values() for p in points)
    )
    lines = [
        "| int | " + " | ".join(methods) + " | best kbest / GPTQ | best kbest / CD |",
        "|---|" + "---:|" * (len(methods) + 2),
    ]
    for bits, points in result["points"].items():
        by = {p["method"]: p for p in points}
        best = min(
            p["error"]
            for p in points  # this run's widths, not the † points
            if p["method"].startswith("kbest, width") and not p["method"].endswith("†")
        )
        lines.append(
            f"| {bits} | "
            + " | ".join(
                f"{by[m]['error']:,.1f} ({by[m]['seconds']:.1f} s)" if m in by else "–"
                for m in methods
            )
            + f" | {best / by['GPTQ (tuned)']['error']:.3f}"
            + f" | {best / by['CD (from tuned GPTQ)']['error']:.3f} |"
        )
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = result["points"]
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
    for axis, (bits, points) in zip(axes[0], panels.items()):
        families = {}
        for point in points:
            family = point["method"].split(" (")[0].split(",")[0]
            families.setdefault(family, []).append(point)
        for family, members in families.items():
            members = sorted(members, key=lambda p: p["seconds"])
            axis.plot(
                [p["seconds"] for p in members], [p["error"] for p in members], "o-", label=family
            )
        axis.set_xscale("log")
        axis.set_xlabel("seconds for the layer (2 cores)")
        axis.set_ylabel("layer error (squared output error)")
        axis.set_title(f"{result['dataset']} first layer, int{bits}")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
