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

import time
from pathlib import Path

import numpy as np

from annealq.config import QuantizeConfig
from annealq.data.datasets import load_dataset
from annealq.data.models import reference_model
from annealq.dispatch import solve_layer
from annealq.formulation import LayerQUBO
from annealq.problems import LayerProblems
from annealq.registry import get_sampler
from benchmarks.solver_tables import (
    EXACT_ROW_MAX_VARIABLES,
    SLOW_ROWS,
    SOLVER_ROWS,
    SUBPROBLEM_SIZES,
    WINDOW_ROWS,
    BitsResult,
    ExactRun,
    SolverRun,
    section_key,
    solver_markdown,
    write_section,
)
from solvers.exact_bb.sphere import solve_dense


def layer_problem(
    dataset_name: str,
    layer: int,
    bits: int,
    *,
    calibration: int = 1000,
    data_dir=None,
    seed: int = 0,
    window_bits: int = 1,
    start: str | None = None,
) -> tuple[LayerQUBO, str, np.ndarray | None, float]:
    """The QUBO of layer ``layer`` of the dataset's reference MLP, a description, and the
    warm start's integers ``(n, f+1)`` with the seconds they took (``start`` ``"gptq"``
    or ``"rtn"``; ``None`` and 0 without). With a start the windows are centred on it."""
    if start not in (None, "gptq", "rtn"):
        raise ValueError(f"start must be 'gptq' or 'rtn', got {start!r}")
    data = load_dataset(dataset_name, data_dir=data_dir)
    model, _ = reference_model(data, seed=seed)
    x = data.calibration(calibration, seed=seed)
    # GPTQ tuned per layer centres the windows, as the pipeline's start="gptq"
    config = QuantizeConfig(
        bits=bits, window_bits=window_bits, start="gptq" if start == "gptq" else None
    )
    problems = LayerProblems(model, x, config, sequential=False, layers=[layer])
    [problem] = problems
    lq, start_integers, start_seconds = problem.qubo, problem.start, problem.seconds
    if start == "rtn":  # the windows centred on round-to-nearest
        begin = time.perf_counter()
        start_integers = problem.qubo.rtn_integers()
        lq = problem.formulate(center=start_integers)
        start_seconds = time.perf_counter() - begin
    layers, (name, module), X = problems.all_layers, (problem.name, problem.layer), problem.inputs
    shape = "-".join(
        str(n) for n in [layers[0][1].in_features] + [m.out_features for _, m in layers]
    )
    window = (
        ""
        if window_bits == 1
        else (
            f"; {lq.window_bits}-bit windows per weight ({lq.bias_window_bits} for the bias)"
            + (f" centred on {start.upper()}'s integers" if start else "")
        )
    )
    description = (
        f"{dataset_name} reference MLP {shape}, layer {layer} ({name}: "
        f"{module.in_features}→{module.out_features}), {len(X)} calibration images" + window
    )
    return lq, description, start_integers, start_seconds


def run_solvers(
    lq: LayerQUBO, neurons: np.ndarray, rows=SOLVER_ROWS, warm: list[dict] | None = None
) -> list[SolverRun]:
    """Solve ``neurons`` of ``lq`` with every row's solver; energies per neuron. Rows whose
    start is ``"rtn"`` start from RTN, ``"warm"`` from ``warm`` (one sample per neuron)."""
    sub = LayerQUBO.select(lq, neurons)
    runs = []
    for label, name, params, start in rows:
        sampler = get_sampler(name, **params)
        starts = (
            [sub.rtn_sample(i) for i in range(sub.n_neurons)]
            if start == "rtn"
            else warm
            if start == "warm"
            else None
        )
        # untimed warm-up on one neuron: compiled kernels load, caches fill, for every row
        solve_layer(
            LayerQUBO.select(sub, [0]),
            sampler,
            initial_states=None if starts is None else starts[:1],
        )
        begin = time.perf_counter()
        results = solve_layer(sub, sampler, initial_states=starts)
        runs.append(
            SolverRun(
                label,
                time.perf_counter() - begin,
                np.array([r.energy for r in results]),
                [r.sample for r in results],
                np.array([bool(r.info.get("proven_optimal", False)) for r in results]),
            )
        )
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
                h, G, c, u, time_limit
            )
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
        c_S = (
            c
            + h[rest] @ u[rest]
            + u[rest] @ G[np.ix_(rest, rest)] @ u[rest]
            - np.diag(G)[rest] @ u[rest]
        )
        result = solve_dense(h_S, G[np.ix_(S, S)], c_S, incumbent=u[S], time_limit=time_limit)
        if not result.proven:
            break
        largest, seconds = k, result.seconds
        u[S] = result.u
    return largest, seconds


def bench_solvers(
    dataset: str,
    bits_list,
    *,
    layer: int = 0,
    neurons: int | None = None,
    exact_neurons: int = 2,
    exact_time: float = 60.0,
    calibration: int = 1000,
    data_dir=None,
    out: str | Path = "benchmarks/SOLVERS.md",
    command: str = "",
    skip_slow: bool = False,
    window_bits: int = 1,
    start: str | None = None,
    progress=print,
) -> str:
    """Run the benchmark and write its section of ``out``; return the section."""
    results, description = [], ""
    for bits in bits_list:
        lq, description, start_integers, start_seconds = layer_problem(
            dataset,
            layer,
            bits,
            calibration=calibration,
            data_dir=data_dir,
            window_bits=window_bits,
            start=start,
        )
        chosen = np.arange(lq.n_neurons if neurons is None else min(neurons, lq.n_neurons))
        warm = None
        if start is None:
            result = BitsResult(bits, np.array([lq.energy(i, lq.rtn_sample(i)) for i in chosen]))
            rows = [row for row in SOLVER_ROWS if not (skip_slow and row[0] in SLOW_ROWS)]
        else:
            states = lq.states(start_integers[chosen], chosen)
            labels = lq.labels()
            warm = [
                {labels[k]: int(s[k]) for k in np.flatnonzero(lq.free[i])}
                for i, s in zip(chosen, states)
            ]
            result = BitsResult(
                bits,
                None,
                (
                    start.upper(),
                    np.array([lq.energy(i, w) for i, w in zip(chosen, warm)]),
                    start_seconds,
                ),
            )
            rows = list(WINDOW_ROWS)
        if lq.n_inputs + 1 <= EXACT_ROW_MAX_VARIABLES:  # entries: integers with windows
            rows.append(
                (
                    f"exact-bb (proves each neuron, {exact_time:g} s limit)",
                    "exact-bb",
                    {"time_limit": exact_time},
                    None,
                )
            )
        result.runs = run_solvers(lq, chosen, rows, warm)
        for run in result.runs:
            progress(f"int{bits} {run.label}: {run.seconds:.2f} s, energy {run.energies.sum():.6g}")
        best_row = np.argmin(np.stack([r.energies for r in result.runs]), axis=0)
        # with windows, whole-neuron proofs come from the exact-bb row (integer search)
        exact_ids = chosen[:exact_neurons] if start is None else chosen[:0]
        best_samples = [result.runs[best_row[k]].samples[k] for k in range(len(exact_ids))]
        result.exact = run_exact(lq, exact_ids, best_samples, exact_time)
        results.append(result)
    section = solver_markdown(
        dataset,
        layer,
        description,
        results,
        neurons,
        exact_time,
        command,
        section_key(dataset, layer, window_bits, start),
    )
    write_section(Path(out), section_key(dataset, layer, window_bits, start), section)
    return section
