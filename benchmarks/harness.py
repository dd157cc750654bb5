"""The benchmark harness's commands, ``python -m benchmarks solvers|paper|bounds …``: the
solver benchmark (:mod:`benchmarks.solver_bench`), the paper's table
(:mod:`benchmarks.paper`) and the proven bounds (:mod:`benchmarks.bounds`)."""

from __future__ import annotations

import json
from pathlib import Path

from annealq.grid import validate_bits
from benchmarks.bounds import SMALL_NEURON, bench_bounds
from benchmarks.paper import (  # noqa: F401 (the notebooks and tests import them from here)
    PAPER_BITS,
    PAPER_DATASETS,
    PAPER_METHODS,
    bench_paper,
    rewrite_paper_markdown,
)
from benchmarks.shared import command_line, machine, write_json
from benchmarks.solver_bench import bench_solvers, layer_problem  # noqa: F401
from benchmarks.solver_tables import SLOW_ROWS


def add_commands(kinds) -> None:
    """``python -m benchmarks solvers|paper|bounds …`` (:mod:`benchmarks.__main__`)."""
    solvers = kinds.add_parser("solvers", help="every solver on one layer's QUBOs")
    solvers.add_argument("--dataset", default="mnist")
    solvers.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4])
    solvers.add_argument("--layer", type=int, default=0)
    solvers.add_argument(
        "--neurons",
        type=int,
        default=None,
        help="only the first N neurons (e.g. for CIFAR-10's 3,073-variable ones)",
    )
    solvers.add_argument(
        "--exact-neurons", type=int, default=2, help="neurons whose optimum exact-bb tries to prove"
    )
    solvers.add_argument(
        "--exact-time", type=float, default=60.0, help="seconds per exact-bb attempt"
    )
    solvers.add_argument("--calibration", type=int, default=1000)
    solvers.add_argument("--data-dir", default=None)
    solvers.add_argument("--out", default="benchmarks/SOLVERS.md")
    solvers.add_argument(
        "--skip-slow",
        action="store_true",
        help=f"leave out {', '.join(SLOW_ROWS)} (for large neurons)",
    )
    solvers.add_argument(
        "--window-bits",
        type=int,
        default=1,
        help="binary variables per weight (the wider formulation)",
    )
    solvers.add_argument(
        "--start",
        choices=("gptq", "rtn"),
        default=None,
        help="centre the windows on this solution and start the warm-start "
        "solvers from it (the rows change to those solvers)",
    )
    solvers.set_defaults(run=_run_bench_solvers)

    paper = kinds.add_parser("paper", help="accuracy/error/time table: benchmarks/RESULTS.md")
    paper.add_argument("--datasets", nargs="+", default=list(PAPER_DATASETS))
    paper.add_argument("--bits", type=int, nargs="+", default=list(PAPER_BITS))
    paper.add_argument(
        "--methods", nargs="+", default=None, help="columns or methods to run (default all)"
    )
    paper.add_argument(
        "--skip",
        nargs="+",
        default=[],
        metavar="DATASET:COLUMN",
        help="cells to leave out, marked 'not run' (remembered)",
    )
    paper.add_argument(
        "--unskip",
        nargs="+",
        default=[],
        metavar="DATASET:COLUMN",
        help="cells an earlier --skip left out, to run again",
    )
    paper.add_argument(
        "--rerun",
        nargs="+",
        default=[],
        metavar="COLUMN",
        help="columns or methods to run again where their cells exist",
    )
    paper.add_argument(
        "--workers",
        type=int,
        default=None,
        help="solve each layer's neurons in this many local processes (the "
        "same integers; the time column says so)",
    )
    paper.add_argument("--calibration", type=int, default=1000)
    paper.add_argument("--data-dir", default=None)
    paper.add_argument("--out-dir", default="benchmarks")
    paper.add_argument(
        "--markdown-only",
        action="store_true",
        help="only rewrite RESULTS.md from results.json (nothing is run)",
    )
    paper.set_defaults(run=_run_bench_paper)

    bounds = kinds.add_parser(
        "bounds",
        help="proven lower bounds per layer beside each "
        "method's error: results.json and RESULTS.md",
    )
    bounds.add_argument("--datasets", nargs="+", default=["digits", "mnist"])
    bounds.add_argument("--bits", type=int, nargs="+", default=[4, 3, 2])
    bounds.add_argument(
        "--layers", type=int, nargs="+", default=None, help="layer indices (default all)"
    )
    bounds.add_argument(
        "--nodes",
        type=int,
        default=200_000,
        help="search-tree nodes per neuron for the bound (large neurons)",
    )
    bounds.add_argument(
        "--small-nodes",
        type=int,
        default=200_000_000,
        help=f"the same for neurons of at most {SMALL_NEURON} entries",
    )
    bounds.add_argument(
        "--reduced-nodes",
        type=int,
        default=5_000_000_000,
        help=f"for neurons of at most {SMALL_NEURON} entries the sphere "
        "decoder's nodes on an LLL/BKZ-reduced basis, where its estimate "
        "is within reach, and as many again to raise an unproven bound "
        "(0: none)",
    )
    bounds.add_argument("--calibration", type=int, default=1000)
    bounds.add_argument("--data-dir", default=None)
    bounds.add_argument("--out-dir", default="benchmarks")
    bounds.set_defaults(run=_run_bench_bounds)


def _run_bench_solvers(args) -> int:
    for bits in args.bits:
        validate_bits(bits)
    command = command_line()
    bench_solvers(
        args.dataset,
        args.bits,
        layer=args.layer,
        neurons=args.neurons,
        exact_neurons=args.exact_neurons,
        exact_time=args.exact_time,
        calibration=args.calibration,
        data_dir=args.data_dir,
        out=args.out,
        command=command,
        skip_slow=args.skip_slow,
        window_bits=args.window_bits,
        start=args.start,
    )
    print(f"wrote {args.out}")
    return 0


def _run_bench_paper(args) -> int:
    for bits in args.bits:
        validate_bits(bits)
    if args.markdown_only:
        path = rewrite_paper_markdown(args.out_dir, skip=args.skip)
        print(f"wrote {path}")
        return 0
    path = bench_paper(
        args.datasets,
        args.bits,
        methods=args.methods,
        calibration=args.calibration,
        data_dir=args.data_dir,
        out_dir=args.out_dir,
        command=command_line(),
        skip=args.skip,
        unskip=args.unskip,
        rerun=args.rerun,
        workers=args.workers,
    )
    print(f"wrote {path}")
    return 0


def _run_bench_bounds(args) -> int:
    for bits in args.bits:
        validate_bits(bits)
    json_path = Path(args.out_dir) / "results.json"
    table = (
        json.loads(json_path.read_text())
        if json_path.is_file()
        else {"cells": {}, "calibration": args.calibration, "machine": machine()}
    )
    table["bounds_commands"] = [*table.get("bounds_commands", []), command_line()]

    def save(line):
        print(line, flush=True)
        write_json(json_path, table)

    bench_bounds(
        args.datasets,
        args.bits,
        table=table,
        nodes=args.nodes,
        small_nodes=args.small_nodes,
        reduced_nodes=args.reduced_nodes,
        calibration=args.calibration,
        data_dir=args.data_dir,
        layers=args.layers,
        progress=save,
    )
    write_json(json_path, table)
    path = rewrite_paper_markdown(args.out_dir)
    print(f"wrote {path}")
    return 0
