"""The solver benchmark's rows, results and its section of ``benchmarks/SOLVERS.md``
(:mod:`benchmarks.solver_bench` runs it)."""

from __future__ import annotations

import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.shared import cpu_count, write_text

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
    (
        "lns from the start, binary windows (100 × 32 variables / window bits)",
        "lns",
        {"search": "bits"},
        "warm",
    ),
    (
        "lns from the start, integer windows (1,000 × 24 entries)",
        "lns",
        {"search": "integers"},
        "warm",
    ),
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


def section_key(dataset, layer, window_bits, start) -> str:
    key = f"{dataset}, layer {layer}"
    if window_bits > 1:
        key += f", {window_bits}-bit windows"
    return key + (f", from {start.upper()}" if start else "")


def solver_markdown(
    dataset, layer, description, results, neurons, exact_time, command, key=None
) -> str:
    lines = [
        f"## {key or f'{dataset}, layer {layer}'}",
        "",
        f"`{command}`" if command else "",
        "",
        f"{description}; reference grid (docs/design.md §1). Machine: {platform.machine()}, "
        f"{cpu_count()} cores, {time.strftime('%Y-%m-%d')}. "
        + (f"First {neurons} neurons of the layer. " if neurons else "All neurons. ")
        + "Wall time is the whole layer solve, one process, solvers one after another.",
        "",
    ]
    for result in results:
        reference = result.runs[REFERENCE_ROW]
        best = np.min(np.stack([r.energies for r in result.runs]), axis=0)
        if result.start is None:
            lines += [
                f"### int{result.bits}",
                "",
                f"RTN energy {result.rtn.sum():.6g}.",
                "",
                "| solver | wall s | total energy | vs best found | speed-up vs neal "
                "defaults | neurons ≤ neal defaults |",
                "|---|---:|---:|---:|---:|---:|",
            ]
        else:
            name, start_energies, start_seconds = result.start
            lines += [
                f"### int{result.bits}",
                "",
                f"{name} (the warm start) energy {start_energies.sum():.6g}, "
                f"{start_seconds:.2f} s (not included in the rows' times).",
                "",
                f"| solver | wall s | total energy | vs {name} | vs best found | "
                "speed-up vs neal defaults | neurons < " + name + " |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ]
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
                f"{int(count)}/{len(run.energies)} |"
            )
        lines += ["", *_proof_lines(result), *_exact_lines(result, exact_time), ""]
    return "\n".join(line for line in lines) + "\n"


def _proof_lines(result) -> list[str]:
    """Gaps to the optima a row proved (the exact-bb row), for every row."""
    prover = next((run for run in result.runs if run.proven is not None and run.proven.any()), None)
    if prover is None:
        return []
    ids = np.flatnonzero(prover.proven)
    optimum = prover.energies[ids].sum()
    lines = [
        f"{prover.label} proved {len(ids)} of {len(prover.proven)} neurons optimal "
        f"(total {optimum:.6g}); gap of each row to those optima:",
        "",
    ]
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
    lines = [
        f"Exact search (`exact-bb`, {exact_time:g} s per attempt) from the best solution found:",
        "",
        "| neuron | proven | energy | lower bound | seconds | largest subproblem proven |",
        "|---:|:---:|---:|---:|---:|---:|",
    ]
    for run in result.exact:
        sub = (
            "whole neuron"
            if run.proven
            else f"{run.largest_subproblem} variables ({run.subproblem_seconds:.2f} s)"
            if run.largest_subproblem
            else "none"
        )
        lines.append(
            f"| {run.neuron} | {'yes' if run.proven else 'no'} | {run.energy:.6g} | "
            f"{run.lower_bound:.6g} | {run.seconds:.2f} | {sub} |"
        )
    proven = [run for run in result.exact if run.proven]
    if proven:
        ids = [run.neuron for run in proven]
        optimum = sum(run.energy for run in proven)
        lines += [
            "",
            f"Gap to the proven optima of neurons {_ranges(ids)} (total {optimum:.6g}):",
            "",
        ]
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


def write_section(path: Path, key: str, section: str) -> None:
    header = (
        "# Solver benchmark\n\nGenerated by `annealq bench solvers`; each section "
        "comes from one run of the command shown in it.\n\n"
    )
    text = path.read_text() if path.is_file() else header
    pattern = re.compile(rf"^## {re.escape(key)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = (
        pattern.sub(lambda m: section, text)
        if pattern.search(text)
        else text.rstrip("\n") + "\n\n" + section
    )
    write_text(path, text)
