"""Solver benchmark: every solver on the same layer QUBOs, in one process and one run.

``annealq bench solvers --dataset mnist --bits 2 3 4 --layer 0`` formulates one layer of
the dataset's reference MLP (reference grid, 1,000 calibration images from the training
split, the layer's float inputs) and solves all its neurons with each solver, timing the
whole layer solve (``dispatch.solve_layer``: BQM construction included for per-BQM
solvers). Exact search (``exact-bb``) then tries to prove a few neurons' optima, starting
from the best solution any solver found; where a whole neuron is out of reach it proves
ever larger subproblems (the ``k`` least certain variables, the rest fixed at the best
solution) until one takes longer than its time limit. Results go to a section of
``benchmarks/SOLVERS.md`` keyed by dataset and layer; other sections are kept.

With ``--window-bits K --start gptq`` the layer is the wider formulation instead (``K``
binary variables per weight, windows centred on GPTQ's integers) and the rows are the
solvers that take GPTQ's solution as their warm start, against the GPTQ error itself.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from annealq.baselines import tuned_gptq_layer
from annealq.capture import layer_inputs, linear_layers
from annealq.data.datasets import load_dataset
from annealq.data.models import accuracy, model_fingerprint, reference_model
from annealq.dispatch import solve_layer
from annealq.files import atomic_write
from annealq.formulation import LayerQUBO, formulate_layer
from annealq.grid import validate_bits
from annealq.pipeline import quantize
from annealq.registry import get_sampler
from benchmarks.bounds import SMALL_NEURON, bench_bounds, bounds_markdown
from solvers.exact_bb.sphere import solve_dense

# (label, solver name, parameters, warm start)
SOLVER_ROWS = (
    ("neal, defaults (1 read, 1,000 sweeps)", "neal", {"seed": 0}, None),
    ("neal, 10 reads", "neal", {"num_reads": 10, "seed": 0}, None),
    ("tabu (defaults)", "tabu", {"seed": 0}, None),
    ("steepest descent from RTN", "steepest", {}, "rtn"),
    ("batch-sa (defaults: 4 reads, 64 sweeps)", "batch-sa", {}, None),
    ("batch-sa, 8 reads, 256 sweeps", "batch-sa", {"num_reads": 8, "num_sweeps": 256}, None),
    ("lns (batch-sa + 100 exact 32-variable windows)", "lns", {}, None),
)
# the wider formulation from a warm start: "warm" rows start from it
WINDOW_ROWS = (
    ("neal, defaults (1 read, 1,000 sweeps; no warm start)", "neal", {"seed": 0}, None),
    ("steepest descent from the start", "steepest", {}, "warm"),
    ("batch-sa from the start (defaults)", "batch-sa", {}, "warm"),
    ("lns from the start, binary windows (100 × 32 variables / window bits)", "lns",
     {"search": "bits"}, "warm"),
    ("lns from the start, integer windows (1,000 × 24 entries)", "lns",
     {"search": "integers"}, "warm"),
    ("kbest from the start (V-BLAST order, auto width; damps 0.001, 0.0001)", "kbest", {}, "warm"),
)
REFERENCE_ROW = 0
SLOW_ROWS = ("neal, 10 reads",)
EXACT_ROW_MAX_VARIABLES = 100  # entries (weights + bias): above, proofs are out of reach
SUBPROBLEM_SIZES = (16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256)


@dataclass
class SolverRun:
    label: str
    seconds: float
    energies: np.ndarray
    samples: list
    proven: np.ndarray | None = None  # per neuron, where the solver reports proofs


@dataclass
class ExactRun:
    neuron: int
    proven: bool
    energy: float
    lower_bound: float
    seconds: float
    largest_subproblem: int | None = None
    subproblem_seconds: float | None = None


@dataclass
class BitsResult:
    bits: int
    rtn: np.ndarray | None
    start: tuple[str, np.ndarray, float] | None = None  # warm start: name, energies, seconds
    runs: list[SolverRun] = field(default_factory=list)
    exact: list[ExactRun] = field(default_factory=list)


def layer_problem(dataset_name: str, layer: int, bits: int, *, calibration: int = 1000,
                  data_dir=None, seed: int = 0, window_bits: int = 1,
                  start: str | None = None) -> tuple[LayerQUBO, str, np.ndarray | None, float]:
    """The QUBO of layer ``layer`` of the dataset's reference MLP, a description, and the
    warm start's integers ``(n, f+1)`` with the seconds they took (``start`` ``"gptq"``
    or ``"rtn"``; ``None`` and 0 without). With a start the windows are centred on it."""
    data = load_dataset(dataset_name, data_dir=data_dir)
    model, _ = reference_model(data, seed=seed)
    x = data.calibration(calibration, seed=seed)
    layers = linear_layers(model, x)
    if not 0 <= layer < len(layers):
        raise ValueError(f"layer must be from 0 to {len(layers) - 1}, got {layer}")
    name, module = layers[layer]
    X = layer_inputs(model, [module], x)[0]
    begin = time.perf_counter()
    start_integers = None
    if start == "gptq":  # tuned per layer, as the pipeline's start="gptq"
        q, q_b = tuned_gptq_layer(module.weight, module.bias, X, bits=bits)[:2]
        start_integers = np.column_stack([q, q_b])
    elif start == "rtn":
        start_integers = formulate_layer(module.weight, module.bias, X, bits=bits).rtn_integers()
    elif start is not None:
        raise ValueError(f"start must be 'gptq' or 'rtn', got {start!r}")
    start_seconds = time.perf_counter() - begin
    lq = formulate_layer(module.weight, module.bias, X, bits=bits, window_bits=window_bits,
                         center=start_integers)
    shape = "-".join(str(n) for n in [layers[0][1].in_features]
                     + [m.out_features for _, m in layers])
    window = "" if window_bits == 1 else (
        f"; {lq.window_bits}-bit windows per weight ({lq.bias_window_bits} for the bias)"
        + (f" centred on {start.upper()}'s integers" if start else ""))
    description = (f"{dataset_name} reference MLP {shape}, layer {layer} ({name}: "
                   f"{module.in_features}→{module.out_features}), {len(X)} calibration images"
                   + window)
    return lq, description, start_integers, start_seconds


def run_solvers(lq: LayerQUBO, neurons: np.ndarray, rows=SOLVER_ROWS,
                warm: list[dict] | None = None) -> list[SolverRun]:
    """Solve ``neurons`` of ``lq`` with every row's solver; energies per neuron. Rows whose
    start is ``"rtn"`` start from RTN, ``"warm"`` from ``warm`` (one sample per neuron)."""
    sub = LayerQUBO.select(lq, neurons)
    runs = []
    for label, name, params, start in rows:
        sampler = get_sampler(name, **params)
        starts = ([sub.rtn_sample(i) for i in range(sub.n_neurons)] if start == "rtn"
                  else warm if start == "warm" else None)
        # untimed warm-up on one neuron: compiled kernels load, caches fill, for every row
        solve_layer(LayerQUBO.select(sub, [0]), sampler,
                    initial_states=None if starts is None else starts[:1])
        begin = time.perf_counter()
        results = solve_layer(sub, sampler, initial_states=starts)
        runs.append(SolverRun(label, time.perf_counter() - begin,
                              np.array([r.energy for r in results]),
                              [r.sample for r in results],
                              np.array([bool(r.info.get("proven_optimal", False))
                                        for r in results])))
    return runs


def run_exact(lq: LayerQUBO, neurons, best_samples, time_limit: float) -> list[ExactRun]:
    """Prove neurons' optima from ``best_samples``, or the largest subproblem within
    ``time_limit`` each."""
    out = []
    for i, start in zip(neurons, best_samples):
        cols = np.flatnonzero(lq.free[i])
        h, G, c = lq.linear[i, cols], lq.quadratic(i), float(lq.offset[i])
        u = lq.assignment(i, start)[cols].astype(np.float64)
        whole = solve_dense(h, G, c, incumbent=u, time_limit=time_limit)
        run = ExactRun(int(i), whole.proven, whole.energy, whole.lower_bound, whole.seconds)
        if not whole.proven:
            u = whole.u.astype(np.float64)
            run.largest_subproblem, run.subproblem_seconds = _largest_subproblem(
                h, G, c, u, time_limit)
        out.append(run)
    return out


def _largest_subproblem(h, G, c, u, time_limit):
    """The largest ``k`` of :data:`SUBPROBLEM_SIZES` whose subproblem is proven in time."""
    field_ = h + 2 * (G @ u - np.diag(G) * u)
    uncertainty = np.abs((1 - 2 * u) * field_)
    uncertainty[np.diag(G) <= 0] = np.inf  # inputs that are always 0 decide nothing
    order = np.argsort(uncertainty, kind="stable")
    largest, seconds = None, None
    for k in SUBPROBLEM_SIZES:
        if k >= len(u):
            break
        S, rest = order[:k], order[k:]
        h_S = h[S] + 2 * G[np.ix_(S, rest)] @ u[rest]
        c_S = c + h[rest] @ u[rest] + u[rest] @ G[np.ix_(rest, rest)] @ u[rest] \
            - np.diag(G)[rest] @ u[rest]
        result = solve_dense(h_S, G[np.ix_(S, S)], c_S, incumbent=u[S], time_limit=time_limit)
        if not result.proven:
            break
        largest, seconds = k, result.seconds
        u[S] = result.u
    return largest, seconds


def bench_solvers(dataset: str, bits_list, *, layer: int = 0, neurons: int | None = None,
                  exact_neurons: int = 2, exact_time: float = 60.0, calibration: int = 1000,
                  data_dir=None, out: str | Path = "benchmarks/SOLVERS.md",
                  command: str = "", skip_slow: bool = False, window_bits: int = 1,
                  start: str | None = None, progress=print) -> str:
    """Run the benchmark and write its section of ``out``; return the section."""
    results, description = [], ""
    for bits in bits_list:
        lq, description, start_integers, start_seconds = layer_problem(
            dataset, layer, bits, calibration=calibration, data_dir=data_dir,
            window_bits=window_bits, start=start)
        chosen = np.arange(lq.n_neurons if neurons is None else min(neurons, lq.n_neurons))
        warm = None
        if start is None:
            result = BitsResult(bits, np.array([lq.energy(i, lq.rtn_sample(i)) for i in chosen]))
            rows = [row for row in SOLVER_ROWS if not (skip_slow and row[0] in SLOW_ROWS)]
        else:
            states = lq.states(start_integers[chosen], chosen)
            labels = lq.labels()
            warm = [{labels[k]: int(s[k]) for k in np.flatnonzero(lq.free[i])}
                    for i, s in zip(chosen, states)]
            result = BitsResult(bits, None, (start.upper(), np.array(
                [lq.energy(i, w) for i, w in zip(chosen, warm)]), start_seconds))
            rows = list(WINDOW_ROWS)
        if lq.n_inputs + 1 <= EXACT_ROW_MAX_VARIABLES:  # entries: integers with windows
            rows.append((f"exact-bb (proves each neuron, {exact_time:g} s limit)", "exact-bb",
                         {"time_limit": exact_time}, None))
        result.runs = run_solvers(lq, chosen, rows, warm)
        for run in result.runs:
            progress(f"int{bits} {run.label}: {run.seconds:.2f} s, energy {run.energies.sum():.6g}")
        best_row = np.argmin(np.stack([r.energies for r in result.runs]), axis=0)
        # with windows, whole-neuron proofs come from the exact-bb row (integer search)
        exact_ids = chosen[:exact_neurons] if start is None else chosen[:0]
        best_samples = [result.runs[best_row[k]].samples[k] for k in range(len(exact_ids))]
        result.exact = run_exact(lq, exact_ids, best_samples, exact_time)
        results.append(result)
    section = _markdown(dataset, layer, description, results, neurons, exact_time, command,
                        _section_key(dataset, layer, window_bits, start))
    _write_section(Path(out), _section_key(dataset, layer, window_bits, start), section)
    return section


def _section_key(dataset, layer, window_bits, start) -> str:
    key = f"{dataset}, layer {layer}"
    if window_bits > 1:
        key += f", {window_bits}-bit windows"
    return key + (f", from {start.upper()}" if start else "")


def _markdown(dataset, layer, description, results, neurons, exact_time, command,
              key=None) -> str:
    lines = [f"## {key or f'{dataset}, layer {layer}'}", "",
             f"`{command}`" if command else "", "",
             f"{description}; reference grid (docs/design.md §1). Machine: {platform.machine()}, "
             f"{_cpu_count()} cores, {time.strftime('%Y-%m-%d')}. "
             + (f"First {neurons} neurons of the layer. " if neurons else "All neurons. ")
             + "Wall time is the whole layer solve, one process, solvers one after another.",
             ""]
    for result in results:
        reference = result.runs[REFERENCE_ROW]
        best = np.min(np.stack([r.energies for r in result.runs]), axis=0)
        if result.start is None:
            lines += [f"### int{result.bits}", "", f"RTN energy {result.rtn.sum():.6g}.", "",
                      "| solver | wall s | total energy | vs best found | speed-up vs neal "
                      "defaults | neurons ≤ neal defaults |",
                      "|---|---:|---:|---:|---:|---:|"]
        else:
            name, start_energies, start_seconds = result.start
            lines += [f"### int{result.bits}", "",
                      f"{name} (the warm start) energy {start_energies.sum():.6g}, "
                      f"{start_seconds:.2f} s (not included in the rows' times).", "",
                      f"| solver | wall s | total energy | vs {name} | vs best found | "
                      "speed-up vs neal defaults | neurons < " + name + " |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
        for run in result.runs:
            if result.start is None:
                extra = ""
                count = np.sum(run.energies <= reference.energies * (1 + 1e-12))
            else:
                extra = f"{run.energies.sum() / start_energies.sum():.4f}× | "
                count = np.sum(run.energies < start_energies * (1 - 1e-12))
            lines.append(
                f"| {run.label} | {run.seconds:.2f} | {run.energies.sum():.6g} | {extra}"
                f"{run.energies.sum() / best.sum() - 1:+.2%} | "
                f"{reference.seconds / run.seconds:.1f}× | "
                f"{int(count)}/{len(run.energies)} |")
        lines += ["", *_proof_lines(result), *_exact_lines(result, exact_time), ""]
    return "\n".join(line for line in lines) + "\n"


def _proof_lines(result) -> list[str]:
    """Gaps to the optima a row proved (the exact-bb row), for every row."""
    prover = next((run for run in result.runs if run.proven is not None and run.proven.any()),
                  None)
    if prover is None:
        return []
    ids = np.flatnonzero(prover.proven)
    optimum = prover.energies[ids].sum()
    lines = [f"{prover.label} proved {len(ids)} of {len(prover.proven)} neurons optimal "
             f"(total {optimum:.6g}); gap of each row to those optima:", ""]
    for run in result.runs:
        gap = run.energies[ids].sum() / optimum - 1
        lines.append(f"- {run.label}: {0.0 if abs(gap) < 5e-5 else gap:+.2%}")
    if result.start is not None:
        gap = result.start[1][ids].sum() / optimum - 1
        lines.append(f"- {result.start[0]} (the warm start): {gap:+.2%}")
    return [*lines, ""]


def _exact_lines(result, exact_time) -> list[str]:
    if not result.exact:
        return []
    lines = [f"Exact search (`exact-bb`, {exact_time:g} s per attempt) from the best "
             "solution found:", "",
             "| neuron | proven | energy | lower bound | seconds | largest subproblem "
             "proven |", "|---:|:---:|---:|---:|---:|---:|"]
    for run in result.exact:
        sub = ("whole neuron" if run.proven else
               f"{run.largest_subproblem} variables ({run.subproblem_seconds:.2f} s)"
               if run.largest_subproblem else "none")
        lines.append(f"| {run.neuron} | {'yes' if run.proven else 'no'} | {run.energy:.6g} | "
                     f"{run.lower_bound:.6g} | {run.seconds:.2f} | {sub} |")
    proven = [run for run in result.exact if run.proven]
    if proven:
        ids = [run.neuron for run in proven]
        optimum = sum(run.energy for run in proven)
        lines += ["", f"Gap to the proven optima of neurons {_ranges(ids)} "
                      f"(total {optimum:.6g}):", ""]
        for run in result.runs:
            gap = sum(run.energies[i] for i in ids) / optimum - 1
            lines.append(f"- {run.label}: {0.0 if abs(gap) < 5e-5 else gap:+.2%}")
    return lines


def _ranges(ids) -> str:
    """``[0, 1, 2, 5]`` as ``0–2, 5``."""
    parts, start = [], None
    for k, i in enumerate(ids):
        if start is None:
            start = i
        if k + 1 == len(ids) or ids[k + 1] != i + 1:
            parts.append(f"{start}–{i}" if i > start else f"{start}")
            start = None
    return ", ".join(parts)


def _write_section(path: Path, key: str, section: str) -> None:
    header = ("# Solver benchmark\n\nGenerated by `annealq bench solvers`; each section "
              "comes from one run of the command shown in it.\n\n")
    text = path.read_text() if path.is_file() else header
    pattern = re.compile(rf"^## {re.escape(key)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda m: section, text) if pattern.search(text) else \
        text.rstrip("\n") + "\n\n" + section
    _write_text(path, text)


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def add_commands(kinds) -> None:
    """``python -m benchmarks solvers|paper|bounds …`` (:mod:`benchmarks.__main__`)."""
    solvers = kinds.add_parser("solvers", help="every solver on one layer's QUBOs")
    solvers.add_argument("--dataset", default="mnist")
    solvers.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4])
    solvers.add_argument("--layer", type=int, default=0)
    solvers.add_argument("--neurons", type=int, default=None,
                         help="only the first N neurons (e.g. for CIFAR-10's 3,073-variable ones)")
    solvers.add_argument("--exact-neurons", type=int, default=2,
                         help="neurons whose optimum exact-bb tries to prove")
    solvers.add_argument("--exact-time", type=float, default=60.0,
                         help="seconds per exact-bb attempt")
    solvers.add_argument("--calibration", type=int, default=1000)
    solvers.add_argument("--data-dir", default=None)
    solvers.add_argument("--out", default="benchmarks/SOLVERS.md")
    solvers.add_argument("--skip-slow", action="store_true",
                         help=f"leave out {', '.join(SLOW_ROWS)} (for large neurons)")
    solvers.add_argument("--window-bits", type=int, default=1,
                         help="binary variables per weight (the wider formulation)")
    solvers.add_argument("--start", choices=("gptq", "rtn"), default=None,
                         help="centre the windows on this solution and start the warm-start "
                              "solvers from it (the rows change to those solvers)")
    solvers.set_defaults(run=_run_bench_solvers)

    paper = kinds.add_parser("paper", help="accuracy/error/time table: benchmarks/RESULTS.md")
    paper.add_argument("--datasets", nargs="+", default=list(PAPER_DATASETS))
    paper.add_argument("--bits", type=int, nargs="+", default=list(PAPER_BITS))
    paper.add_argument("--methods", nargs="+", default=None,
                       help="columns or methods to run (default all)")
    paper.add_argument("--skip", nargs="+", default=[], metavar="DATASET:COLUMN",
                       help="cells to leave out, marked 'not run' (remembered)")
    paper.add_argument("--unskip", nargs="+", default=[], metavar="DATASET:COLUMN",
                       help="cells an earlier --skip left out, to run again")
    paper.add_argument("--rerun", nargs="+", default=[], metavar="COLUMN",
                       help="columns or methods to run again where their cells exist")
    paper.add_argument("--workers", type=int, default=None,
                       help="solve each layer's neurons in this many local processes (the "
                            "same integers; the time column says so)")
    paper.add_argument("--calibration", type=int, default=1000)
    paper.add_argument("--data-dir", default=None)
    paper.add_argument("--out-dir", default="benchmarks")
    paper.add_argument("--markdown-only", action="store_true",
                       help="only rewrite RESULTS.md from results.json (nothing is run)")
    paper.set_defaults(run=_run_bench_paper)

    bounds = kinds.add_parser("bounds", help="proven lower bounds per layer beside each "
                              "method's error: results.json and RESULTS.md")
    bounds.add_argument("--datasets", nargs="+", default=["digits", "mnist"])
    bounds.add_argument("--bits", type=int, nargs="+", default=[4, 3, 2])
    bounds.add_argument("--layers", type=int, nargs="+", default=None,
                        help="layer indices (default all)")
    bounds.add_argument("--nodes", type=int, default=200_000,
                        help="search-tree nodes per neuron for the bound (large neurons)")
    bounds.add_argument("--small-nodes", type=int, default=200_000_000,
                        help=f"the same for neurons of at most {SMALL_NEURON} entries")
    bounds.add_argument("--reduced-nodes", type=int, default=5_000_000_000,
                        help=f"for neurons of at most {SMALL_NEURON} entries the sphere "
                        "decoder's nodes on an LLL/BKZ-reduced basis, where its estimate "
                        "is within reach, and as many again to raise an unproven bound "
                        "(0: none)")
    bounds.add_argument("--calibration", type=int, default=1000)
    bounds.add_argument("--data-dir", default=None)
    bounds.add_argument("--out-dir", default="benchmarks")
    bounds.set_defaults(run=_run_bench_bounds)


def _run_bench_solvers(args) -> int:
    for bits in args.bits:
        validate_bits(bits)
    command = _command_line()
    bench_solvers(args.dataset, args.bits, layer=args.layer, neurons=args.neurons,
                  exact_neurons=args.exact_neurons, exact_time=args.exact_time,
                  calibration=args.calibration, data_dir=args.data_dir, out=args.out,
                  command=command, skip_slow=args.skip_slow, window_bits=args.window_bits,
                  start=args.start)
    print(f"wrote {args.out}")
    return 0


# ---------------------------------------------------------------------------------------
# The paper's table: accuracy, layer error and time per dataset, bit width and method.

PAPER_DATASETS = ("digits", "mnist", "fashion-mnist", "emnist", "cifar10")
PAPER_BITS = (8, 4, 3, 2, 1)
# (column, method, solver, solver parameters, other quantize options)
PAPER_METHODS = (
    ("RTN", "rtn", None, None, {}),
    # GPTQ tuned per layer over act-order × damping (annealq.baselines.methods), and the
    # fixed setting the table used before the tuning
    ("GPTQ", "gptq", None, None, {}),
    ("GPTQ, fixed (act-order, 1 % damp)", "gptq", None, None,
     {"act_order": True, "damp": 0.01}),
    # the reference GPTQ code's clip search as one more axis of the tuning (issue 37)
    ("GPTQ + clip search", "gptq", None, None, {"clip_search": True}),
    ("CD (tuned GPTQ, then greedy coordinate descent)", "cd", None, None, {}),
    ("AdaRound", "adaround", None, None, {}),
    ("QUBO, neal (paper: 1 read, 1,000 sweeps)", "qubo", "neal", {"seed": 0}, {}),
    ("QUBO, batch-sa", "qubo", "batch-sa", {}, {}),
    ("QUBO, lns", "qubo", "lns", {}, {}),
    ("QUBO 2-bit window, lns from GPTQ", "qubo", "lns", {"search": "bits"},
     {"window_bits": 2, "start": "gptq"}),
    ("QUBO 4-bit window (whole grid to int4), lns from GPTQ", "qubo", "lns", {},
     {"window_bits": 4, "start": "gptq"}),
    ("QUBO 4-bit window, exact-bb from GPTQ (10 s per neuron)", "qubo", "exact-bb",
     {"time_limit": 10.0}, {"window_bits": 4, "start": "gptq"}),
    # K-best over GPTQ's order: its defaults are the whole grid from tuned GPTQ
    ("QUBO whole grid, kbest from GPTQ", "qubo", "kbest", {}, {}),
    # and its search on the lattice-reduced basis of each neuron of at most 200 entries
    # (solvers/kbest/reduced.py)
    ("QUBO whole grid, kbest + reduced basis, from GPTQ", "qubo", "kbest", {"reduced": "auto"},
     {}),
    # each row's step and the bias re-fitted to the chosen integers, kbest re-run (issue 37)
    ("QUBO whole grid, kbest from GPTQ, re-fitted steps", "qubo", "kbest", {},
     {"refit_steps": True}),
    ("QUBO whole grid, kbest from GPTQ + clip search, re-fitted steps", "qubo", "kbest", {},
     {"clip_search": True, "refit_steps": True}),
    # the grid for one bit: each weight its row's minimum or maximum (docs/design.md's {−1, 0}·s
    # leaves half the weights only 0)
    ("RTN, affine per-channel grid", "rtn", None, None,
     {"scheme": "affine", "per_channel": True}),
    ("QUBO affine per-channel grid, lns", "qubo", "lns", {},
     {"scheme": "affine", "per_channel": True}),
)


def bench_paper(datasets=PAPER_DATASETS, bits_list=PAPER_BITS, *, methods=None,
                calibration: int = 1000, data_dir=None, out_dir: str | Path = "benchmarks",
                command: str = "", skip=(), unskip=(), rerun=(), workers: int | None = None,
                progress=print) -> Path:
    """Run every (dataset, bits, method) cell not yet in ``out_dir/results.json``, writing
    the JSON after each cell (so an interrupted run resumes) and ``RESULTS.md`` at the end.

    A cell counts as done only if it was computed on this machine's reference model: each
    records the model's fingerprint (:func:`~annealq.data.models.model_fingerprint`), and a
    cell from another training (cells older than the fingerprint: a different float
    accuracy) is run again,
    so no table mixes two trainings of a model. ``rerun`` names columns or methods to run
    again anyway (after a solver changed). ``skip`` lists ``"dataset:column"`` cells to
    leave out (marked "not run" in the table); the list is kept in the JSON for later runs
    until ``unskip`` names a cell again. ``workers`` solves each layer's neurons in that
    many local processes (the same integers; the wall time is recorded with the count).
    """
    out_dir = Path(out_dir)
    json_path = out_dir / "results.json"
    table = json.loads(json_path.read_text()) if json_path.is_file() else {"cells": {}}
    table.update({"calibration": calibration, "machine": _machine()})
    if command:  # every run that filled cells, in order
        table["commands"] = [*table.get("commands", []), command]
    skip = sorted((set(table.get("skipped", [])) | set(skip)) - set(unskip))  # kept
    table["skipped"] = skip
    columns = [m for m in PAPER_METHODS if methods is None or m[0] in methods or m[1] in methods]
    again = {m[0] for m in PAPER_METHODS if m[0] in rerun or m[1] in rerun}
    for name in datasets:
        data = load_dataset(name, data_dir=data_dir)
        model, _ = reference_model(data)
        fingerprint = model_fingerprint(model)
        float_accuracy = accuracy(model, data.x_test, data.y_test)
        for bits in bits_list:
            for column, method, solver, params, extra in columns:
                key = f"{name}|{bits}|{column}"
                done = key in table["cells"] and column not in again and _same_model(
                    table["cells"][key], fingerprint, float_accuracy)
                if done or f"{name}:{column}" in skip:
                    continue
                result = quantize(model, data, bits=bits, method=method,
                                  solver=solver or "auto", solver_params=params,
                                  calibration_size=calibration, cache=False, quiet=True, seed=0,
                                  **({"workers": workers} if workers else {}), **extra)
                report = result.report
                table["cells"][key] = {
                    "accuracy": report["accuracy"],
                    "energy": sum(layer["energy"] for layer in report["layers"]),
                    "rtn_energy": sum(layer["rtn_energy"] for layer in report["layers"]),
                    "seconds": report["timing"]["total_seconds"]
                    - report["timing"].get("evaluate_seconds", 0.0),
                    "layers": report["layers"], "model": fingerprint,
                    "workers": workers or 1}
                progress(f"{key}: accuracy {report['accuracy']['quantized']:.4f}, "
                         f"error {table['cells'][key]['energy']:.6g}")
                _write_json(json_path, table)
                _write_text(out_dir / "RESULTS.md",
                            _paper_markdown(table, skip))
    _write_json(json_path, table)
    path = out_dir / "RESULTS.md"
    _write_text(path, _paper_markdown(table, skip))
    return path


def _seconds(cell) -> str:
    """A cell's wall time, with its worker processes where there were several."""
    workers = cell.get("workers", 1)
    return f"{cell['seconds']:.1f}" + (f" ({workers} processes)" if workers > 1 else "")


def _same_model(cell, fingerprint: str, float_accuracy: float) -> bool:
    """Whether ``cell`` was computed on the model with this fingerprint (a cell from
    before fingerprints: on a model with the same float test accuracy)."""
    if "model" in cell:
        return cell["model"] == fingerprint
    return cell["accuracy"]["float"] == float_accuracy


def rewrite_paper_markdown(out_dir: str | Path = "benchmarks", *, skip=()) -> Path:
    """Rewrite ``RESULTS.md`` from ``results.json`` alone (new layout, same numbers)."""
    json_path = Path(out_dir) / "results.json"
    if not json_path.is_file():
        raise ValueError(f"no {json_path} to rewrite RESULTS.md from")
    table = json.loads(json_path.read_text())
    path = Path(out_dir) / "RESULTS.md"
    _write_text(path, _paper_markdown(table, sorted(set(table.get("skipped", [])) | set(skip))))
    return path


def _paper_markdown(table, skip) -> str:
    """Every dataset, bit width and column with a cell in ``table`` (whatever this run
    chose to fill), in the standard order."""
    keys = [key.split("|") for key in table["cells"]] + [
        [item.split(":", 1)[0], None, item.split(":", 1)[1]] for item in skip]
    datasets = [d for d in PAPER_DATASETS if any(k[0] == d for k in keys)] + sorted(
        {k[0] for k in keys} - set(PAPER_DATASETS))
    present = {int(k[1]) for k in keys if k[1] is not None}
    bits_list = [b for b in PAPER_BITS if b in present] + sorted(present - set(PAPER_BITS))
    columns = [m for m in PAPER_METHODS if any(k[2] == m[0] for k in keys)]
    machine = table["machine"]
    lines = ["# Accuracy, layer error and time: float, RTN, GPTQ, AdaRound and QUBO", "",
             "Filled by these runs of the committed code, in order (each run skips the cells "
             "already in `results.json`; a run stopped early keeps the cells it finished):",
             "",
             *[f"- `{c}`" for c in table.get("commands", [])], "",
             f"Machine: {machine}. Calibration: {table['calibration']} images from each "
             "training split; accuracy on the test split. Reference grid (docs/design.md §1), "
             "layers quantized in turn, each on what the quantized layers before it feed it. "
             "Error: the sum over layers of the squared pre-activation output error on the "
             "calibration set. Time: the quantization (formulation, solving, decoding), "
             "without evaluation. GPTQ is tuned per layer (act-order on/off × damping 1 %, "
             "0.1 %, 0.01 %, the lowest layer error on the calibration set; "
             "`annealq/baselines/methods.py`), and the columns \"from GPTQ\" and CD start "
             "from it; \"GPTQ, fixed\" is the setting this table used before the tuning.", ""]
    for name in datasets:
        lines += [f"## {name}", ""]
        float_acc = next((c["accuracy"]["float"] for k, c in table["cells"].items()
                          if k.startswith(f"{name}|")), None)
        if float_acc is not None:
            models = sorted({c.get("model", "") for k, c in table["cells"].items()
                             if k.startswith(f"{name}|")} - {""})
            lines += [f"Float accuracy {float_acc:.2%}" + (
                f" (reference model {', '.join(models)})" if models else "") + ".", ""]
            mixed = sorted({c["accuracy"]["float"] for k, c in table["cells"].items()
                            if k.startswith(f"{name}|")})
            if len(models) > 1 or len(mixed) > 1:
                lines += ["**These cells come from different trainings of the model "
                          f"(float accuracies {', '.join(f'{a:.2%}' for a in mixed)}): "
                          "they do not compare. Rerun `annealq bench paper` on one machine.**",
                          ""]
        header = "| bits | " + " | ".join(c[0] for c in columns) + " |"
        lines += ["Accuracy:", "", header, "|---:|" + "---:|" * len(columns)]
        lines += [_row(table, name, bits, columns, skip,
                       lambda c: f"{c['accuracy']['quantized']:.2%}") for bits in bits_list]
        lines += ["", "Total layer error (squared output error):", "", header,
                  "|---:|" + "---:|" * len(columns)]
        lines += [_row(table, name, bits, columns, skip, lambda c: f"{c['energy']:.4g}")
                  for bits in bits_list]
        lines += ["", "Time (seconds):", "", header, "|---:|" + "---:|" * len(columns)]
        lines += [_row(table, name, bits, columns, skip, _seconds) for bits in bits_list]
        lines += _relative_to_gptq(table, name, bits_list, columns)
        lines.append("")
    lines += bounds_markdown(table)
    return "\n".join(lines) + "\n"


def _relative_to_gptq(table, name, bits_list, columns) -> list[str]:
    """Each layer's error over GPTQ's at the same bit width (first / second / … layer)."""
    others = [c for c in columns if c[0] != "GPTQ"]
    rows = []
    for bits in bits_list:
        gptq = table["cells"].get(f"{name}|{bits}|GPTQ")
        if gptq is None:
            continue
        values = []
        for column, *_ in others:
            cell = table["cells"].get(f"{name}|{bits}|{column}")
            values.append("—" if cell is None else " / ".join(
                f"{mine['energy'] / theirs['energy']:.3f}"
                for mine, theirs in zip(cell["layers"], gptq["layers"])))
        rows.append(f"| int{bits} | " + " | ".join(values) + " |")
    if not rows or not others:
        return []
    return ["", "Layer error relative to GPTQ's (GPTQ tuned per layer; each layer's error "
            "over GPTQ's, first / second layer; below 1: lower than GPTQ; each method's later "
            "layers see its own quantized inputs):", "",
            "| bits | " + " | ".join(c[0] for c in others) + " |",
            "|---:|" + "---:|" * len(others), *rows]


def _row(table, name, bits, columns, skip, show) -> str:
    values = []
    for column, *_ in columns:
        cell = table["cells"].get(f"{name}|{bits}|{column}")
        values.append(show(cell) if cell else
                      "not run" if f"{name}:{column}" in skip else "—")
    return f"| int{bits} | " + " | ".join(values) + " |"


def _machine() -> str:
    return f"{platform.machine()}, {_cpu_count()} cores, {platform.python_version()}, " \
           f"{time.strftime('%Y-%m-%d')}"


def _write_json(path: Path, data) -> None:
    _write_text(path, json.dumps(data, indent=1, sort_keys=True))


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda stream: stream.write(text.encode()))


def _run_bench_paper(args) -> int:
    for bits in args.bits:
        validate_bits(bits)
    if args.markdown_only:
        path = rewrite_paper_markdown(args.out_dir, skip=args.skip)
        print(f"wrote {path}")
        return 0
    path = bench_paper(args.datasets, args.bits, methods=args.methods,
                       calibration=args.calibration, data_dir=args.data_dir,
                       out_dir=args.out_dir, command=_command_line(), skip=args.skip,
                       unskip=args.unskip, rerun=args.rerun, workers=args.workers)
    print(f"wrote {path}")
    return 0


def _run_bench_bounds(args) -> int:
    for bits in args.bits:
        validate_bits(bits)
    json_path = Path(args.out_dir) / "results.json"
    table = json.loads(json_path.read_text()) if json_path.is_file() else {
        "cells": {}, "calibration": args.calibration, "machine": _machine()}
    table["bounds_commands"] = [*table.get("bounds_commands", []), _command_line()]

    def save(line):
        print(line, flush=True)
        _write_json(json_path, table)

    bench_bounds(args.datasets, args.bits, table=table, nodes=args.nodes,
                 small_nodes=args.small_nodes, reduced_nodes=args.reduced_nodes,
                 calibration=args.calibration,
                 data_dir=args.data_dir, layers=args.layers, progress=save)
    _write_json(json_path, table)
    path = rewrite_paper_markdown(args.out_dir)
    print(f"wrote {path}")
    return 0


def _command_line() -> str:
    return "python -m benchmarks " + " ".join(shlex.quote(a) for a in sys.argv[1:])
