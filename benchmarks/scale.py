"""Wall time of one layer against the number of Dask workers (benchmarks/SCALE.md).

The first layer of a dataset's reference model, whole grid (``window_bits = bits``) from
GPTQ, as ``annealq quantize --window-bits B --start gptq`` builds it, solved in this
process and on private ``LocalCluster``s of 1, 2, … worker processes; the integers of
every run are compared. Then the per-task overhead: the same layer with a solver that
does almost nothing (``batch-sa``, one sweep) in 1 task and in one task per neuron.

Run from the repository root (``PYTHONPATH`` so that spawned workers import this tree):

    ANNEALQ_DATA=../shared/data PYTHONPATH=. python benchmarks/scale.py --dataset mnist \\
        --solver lns --workers 1 2 --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time

import dimod
import numpy as np

from annealq import QuantizeConfig, get_sampler
from annealq.baselines import gptq_layer
from annealq.data.datasets import load_dataset
from annealq.data.models import reference_model
from annealq.dispatch import solve_layer
from annealq.executors.base import InlineExecutor
from annealq.executors.pool import PoolExecutor
from annealq.problems import LayerProblem, layer_problem
from annealq.protocol import LayerSampler
from annealq.results import SolveResult


def first_layer(dataset: str, bits: int, calibration: int, neurons: int | None):
    """The first layer, windows over the whole grid centred on GPTQ, and GPTQ's samples."""
    data = load_dataset(dataset)
    model, _ = reference_model(data)
    x = data.calibration(calibration, seed=0)
    problem = layer_problem(model, x, QuantizeConfig(bits=bits), 0)
    (W, b), X = problem.numpy_parameters(), problem.inputs
    if neurons is not None:
        W, b = W[:neurons], b[:neurons]
    q, q_b = gptq_layer(W, b, X, bits=bits)
    start = np.column_stack([q, q_b]).astype(np.int64)
    lq = problem.formulate(weight=W, bias=b, window_bits=bits, center=start)
    return lq, lq.samples(lq.states(start))


def cpu_seconds(executor) -> list:
    """CPU seconds used so far by each worker process (by this process when inline)."""
    if isinstance(executor, PoolExecutor):
        return list(executor.client.run(time.process_time).values())
    return [time.process_time()]


def run(lq, starts, sampler, executor, parameters) -> dict:
    cpu = cpu_seconds(executor)
    began = time.perf_counter()
    results = solve_layer(lq, sampler, initial_states=starts, executor=executor, **parameters)
    wall = time.perf_counter() - began
    cpu = [round(b - a, 2) for a, b in zip(cpu, cpu_seconds(executor))]
    q, q_b = lq.decode([r.sample for r in results])
    digest = hashlib.sha256(np.column_stack([q, q_b]).astype(np.int64).tobytes())
    return {
        "wall_seconds": round(wall, 3),
        "cpu_seconds": cpu,
        "summed_solve_seconds": round(sum(r.wall_seconds for r in results), 2),
        "energy": float(sum(r.energy for r in results)),
        "sha256": digest.hexdigest()[:16],
        "proven": sum(bool(r.info.get("proven_optimal")) for r in results),
    }


def warm_up(sampler) -> None:
    """Load the solver's compiled kernels in this process: a tiny window layer from its
    round-to-nearest start (what a pool's first layer would otherwise pay for)."""
    rng = np.random.default_rng(0)
    lq = LayerProblem.of_arrays(
        rng.normal(size=(2, 6)), rng.normal(size=2), rng.normal(size=(20, 6)), bits=2, window_bits=2
    ).qubo
    starts = [lq.rtn_sample(i) for i in range(2)]
    if isinstance(sampler, LayerSampler):
        sampler.sample_layer(lq, initial_states=starts)


def pool(workers: int, sampler):
    """A started pool whose workers have loaded the solver (start time recorded)."""
    began = time.perf_counter()
    executor = PoolExecutor("processes", workers=workers)
    executor.client.wait_for_workers(workers)
    executor.client.run(warm_up, sampler)
    return executor, round(time.perf_counter() - began, 2)


class Echo(dimod.Sampler, LayerSampler):
    """Returns the warm starts (energy 0): a task that costs only its trip to a worker."""

    parameters, properties = {"initial_states": []}, {}

    def sample(self, bqm, **parameters):
        raise NotImplementedError("layers only")

    def sample_layer(self, lq, *, neurons=None, initial_states=None, **parameters):
        return [SolveResult(start, 0.0) for start in initial_states]


def overhead(lq, starts) -> dict:
    """Seconds per task on 1 worker: the layer in 1 task vs one task per neuron, for a
    solver that does nothing (:class:`Echo`: Dask's round trip, the starts and results
    pickled) and for one-sweep batch-sa (the solver's own per-call cost added)."""
    n, out = lq.n_neurons, {}
    for name, sampler in (
        ("echo", Echo()),
        ("batch-sa-1-sweep", get_sampler("batch-sa", num_sweeps=1)),
    ):
        executor, _ = pool(1, sampler)
        with executor:
            walls = {}
            for size in (n, 1):
                executor.chunk_size = size
                run(lq, starts, sampler, executor, {})  # warm
                walls[size] = min(
                    run(lq, starts, sampler, executor, {})["wall_seconds"] for _ in range(3)
                )
            stats = executor.stats()
        out[name] = {
            "one_task_seconds": walls[n],
            "per_neuron_tasks_seconds": walls[1],
            "per_task_seconds": round((walls[1] - walls[n]) / (n - 1), 4),
        }
    out["scatter_seconds_per_layer"] = round(stats["scatter_seconds"] / stats["layers"], 3)
    return out


BANDWIDTH = 1e9  # bytes/s between machines: an assumption of the projection (10 GbE)


def projection(row: dict, machines=(8, 64)) -> dict:
    """Projected wall seconds of ``row``'s layer on ``machines`` machines like this one (2
    worker processes each), from its measurements (a projection, not a measurement):
    the 2-worker compute spread over the machines, but never below the slowest chunk of
    whole neurons; the layer's broadcast in ``log2`` rounds of peer copies at
    ``BANDWIDTH``; 4 tasks per worker at the measured per-task overhead."""
    one, two = row["runs"]["1"], row["runs"]["2"]
    n, per_task = row["neurons"], row["overhead"]["echo"]["per_task_seconds"]
    t_neuron = one["summed_solve_seconds"] / n
    compute = two["wall_seconds"] - two["scatter_seconds"]
    size = 8.0 * row["variables"] ** 2  # the Gram form dominates what is sent
    out = {}
    for m in machines:
        p = 2 * m
        floor = -(-n // p) * t_neuron
        broadcast = size / BANDWIDTH * np.ceil(np.log2(p))
        out[m] = round(max(compute / m, floor) + broadcast + 4 * per_task, 2)
    return out


def smallest_layer(row: dict, workers: int = 2) -> dict:
    """Neurons of this input width from which ``workers`` workers beat this process: the
    distributed run's fixed cost (the scatter, and with the start the pool's start) over
    the time saved per neuron, from the measured per-neuron times."""
    n = row["neurons"]
    inline = row["runs"]["inline"]["wall_seconds"] / n
    spread = row["runs"][str(workers)]
    per_neuron = (spread["wall_seconds"] - spread["scatter_seconds"]) / n
    saved = inline - per_neuron
    if saved <= 0:
        return {"per_layer": None, "per_run": None}
    fixed = spread["scatter_seconds"] + 4 * workers * row["overhead"]["echo"]["per_task_seconds"]
    return {
        "per_layer": int(np.ceil(fixed / saved)),
        "per_run": int(np.ceil((fixed + spread["start_seconds"]) / saved)),
    }


def tables(rows: list) -> str:
    """SCALE.md's measured and projected tables from the JSON rows."""
    lines = [
        "| layer | solver | in process | 1 worker | 2 workers | speed-up 2 vs 1 | "
        "2-worker efficiency | CPU estimate of the speed-up (as scheduled / balanced) | "
        "same integers | scatter (s) | "
        "pool start (s) | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        runs = row["runs"]
        one, two = runs["1"], runs["2"]
        same = len({r["sha256"] for r in runs.values()}) == 1
        inline = runs.get("inline", {}).get("wall_seconds", "–")
        lines.append(
            f"| {row['dataset']} {row['inputs']}x{row['neurons']}, {row['variables']} vars "
            f"| {row['solver']} {row['options'] or ''} | {inline} | {one['wall_seconds']} "
            f"| {two['wall_seconds']} | {one['wall_seconds'] / two['wall_seconds']:.2f}x "
            f"| {two['summed_solve_seconds'] / (2 * two['wall_seconds']):.0%} "
            f"| {sum(one['cpu_seconds']) / max(two['cpu_seconds']):.2f}x / "
            f"{2 * sum(one['cpu_seconds']) / sum(two['cpu_seconds']):.2f}x | "
            f"{'yes' if same else 'NO'} | {two['scatter_seconds']} | {two['start_seconds']} "
            f"| {row['load']:.1f}–{row['load_after']:.1f} |"
        )
    lines += [
        "",
        "| layer | solver | per task (echo) | per task (1-sweep batch-sa) | "
        "projected 8 machines (s) | projected 64 machines (s) | pays from (neurons, "
        "per layer / with the pool's start) |",
        "|---|---|---|---|---|---|---|",
    ]
    measured = {row["dataset"]: row["overhead"] for row in rows if "overhead" in row}
    for row in rows:
        if row["dataset"] not in measured:
            continue
        row = {**row, "overhead": measured[row["dataset"]]}
        o, p, least = (
            row["overhead"],
            projection(row),
            smallest_layer(row) if "inline" in row["runs"] else {"per_layer": "–", "per_run": "–"},
        )
        lines.append(
            f"| {row['dataset']} | {row['solver']} | {o['echo']['per_task_seconds']} "
            f"| {o['batch-sa-1-sweep']['per_task_seconds']} | {p[8]} | {p[64]} | "
            f"{least['per_layer']} / {least['per_run']} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--solver", default="lns")
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--calibration", type=int, default=1000)
    parser.add_argument("--neurons", type=int, help="the first N neurons only")
    parser.add_argument("--time-limit", type=float, help="exact-bb's seconds per neuron")
    parser.add_argument("--inline", action="store_true", help="also solve in this process")
    parser.add_argument("--overhead", action="store_true", help="measure per-task overhead")
    parser.add_argument("--json", help="append the results to this JSON file")
    parser.add_argument(
        "--tables", action="store_true", help="print SCALE.md's tables from --json and stop"
    )
    args = parser.parse_args()
    if args.tables:
        print(tables(json.load(open(args.json))))
        return

    lq, starts = first_layer(args.dataset, args.bits, args.calibration, args.neurons)
    options = {"time_limit": args.time_limit} if args.time_limit else {}
    sampler = get_sampler(args.solver, **options)
    parameters = {"seed": 0} if "seed" in sampler.parameters else {}
    row = {
        "dataset": args.dataset,
        "solver": args.solver,
        "bits": args.bits,
        "neurons": lq.n_neurons,
        "inputs": lq.n_inputs,
        "variables": lq.gram.shape[0],
        "options": options,
        "load": os.getloadavg()[0],
        "runs": {},
    }
    if args.inline:
        warm_up(sampler)
        row["runs"]["inline"] = run(lq, starts, sampler, InlineExecutor(), parameters)
        print("inline", row["runs"]["inline"], flush=True)
    for workers in args.workers:
        executor, started = pool(workers, sampler)
        with executor:
            result = run(lq, starts, sampler, executor, parameters)
            stats = executor.stats()
        result.update(
            start_seconds=started, tasks=stats["tasks"], scatter_seconds=stats["scatter_seconds"]
        )
        row["runs"][str(workers)] = result
        print(workers, "workers", result, flush=True)
    if args.overhead:
        row["overhead"] = overhead(lq, starts)
        print("overhead", row["overhead"], flush=True)
    row["load_after"] = os.getloadavg()[0]
    if args.json:
        rows = json.load(open(args.json)) if os.path.exists(args.json) else []
        json.dump(rows + [row], open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
