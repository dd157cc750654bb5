"""batch-sa's torch kernel on a CUDA GPU against its numba CPU kernel, same options.

Two steps, because the GPU machine has neither the datasets nor the project's venv:

    # here: write the first layers' calibration inputs and weights to .devdata/
    ANNEALQ_DATA=../shared/data .venv/bin/python benchmarks/gpu_batchsa.py export
    # on the GPU machine (python3 with torch, numpy and numba), from the repo root:
    python3 benchmarks/gpu_batchsa.py run       # writes $OUT/gpu_batchsa.json
    # here, with that file copied to benchmarks/gpu_batchsa.json:
    .venv/bin/python benchmarks/gpu_batchsa.py report   # its section of SOLVERS.md

Each timed run follows an untimed one-sweep warm-up (kernels compiled, CUDA graphs and
numba caches ready); GPU times include the graph capture of the timed run.
"""

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.getcwd())

# (dataset, neurons, device, reads)
PLAN = [
    ("mnist", 128, "cuda", 4),
    ("mnist", 128, "cuda", 32),
    ("mnist", 128, "cuda", 128),
    ("mnist", 128, "cpu", 4),
    ("mnist", 128, "cpu", 32),
    ("cifar10", 64, "cuda", 4),
    ("cifar10", 64, "cpu", 4),
    ("cifar10", 64, "cuda", 16),
    ("cifar10", 64, "cpu", 16),
]


def export():
    from annealq.config import QuantizeConfig
    from annealq.data.datasets import load_dataset
    from annealq.data.models import reference_model
    from annealq.problems import layer_problem

    os.makedirs(".devdata", exist_ok=True)
    for name in ("mnist", "cifar10"):
        data = load_dataset(name)
        model, _ = reference_model(data)
        x = data.calibration(1000)
        problem = layer_problem(model, x, QuantizeConfig(bits=2), 0)
        np.savez(
            f".devdata/{name}.npz",
            X=problem.inputs.astype(np.float32),
            W=problem.layer.weight.detach().numpy(),
            b=problem.layer.bias.detach().numpy(),
        )


def run():
    import torch

    from annealq.problems import LayerProblem
    from solvers.batch_sa.form import BatchSAOptions, LayerForm, anneal

    out = {"gpu": torch.cuda.get_device_name(0), "cpus": os.cpu_count(), "runs": {}}
    problems = {}
    for name, neurons, device, reads in PLAN:
        if (name, neurons) not in problems:
            z = np.load(f".devdata/{name}.npz")
            lq = LayerProblem.of_arrays(
                z["W"].astype(np.float64),
                z["b"].astype(np.float64),
                z["X"].astype(np.float64),
                bits=2,
            ).qubo
            rows = np.arange(neurons)
            problems[name, neurons] = (
                LayerForm.from_layer(lq, rows),
                lq.states(lq.rtn_integers()[rows], rows),
            )
        form, starts = problems[name, neurons]
        anneal(form, starts, BatchSAOptions(num_reads=1, num_sweeps=1, device=device))
        torch.cuda.synchronize()
        begin = time.perf_counter()
        _, energies = anneal(form, starts, BatchSAOptions(num_reads=reads, device=device))
        torch.cuda.synchronize()
        key = f"{name} {neurons} neurons, {device}, {reads} reads"
        out["runs"][key] = {"seconds": time.perf_counter() - begin, "energy": float(energies.sum())}
        print(key, out["runs"][key], flush=True)
    with open(os.path.join(os.environ.get("OUT", "."), "gpu_batchsa.json"), "w") as f:
        json.dump(out, f, indent=1)


def report():
    from benchmarks.solver_tables import write_section

    data = json.load(open("benchmarks/gpu_batchsa.json"))
    lines = [
        "## batch-sa on a GPU",
        "",
        "`python3 benchmarks/gpu_batchsa.py run` on the lent GPU machine "
        f"({data['gpu']}, {data['cpus']} CPU cores), after `export` here; int2, first "
        "layers of the MNIST and CIFAR-10 reference MLPs, 1,000 calibration images, "
        "batch-sa defaults (64 sweeps) but for the reads. `cuda` is the torch kernel "
        "(CUDA-graph sweeps), `cpu` the numba kernel on that machine's CPU cores.",
        "",
        "| problem | kernel | reads | seconds | total energy |",
        "|---|---|---:|---:|---:|",
    ]
    for key, run in data["runs"].items():
        problem, device, reads = key.split(", ")
        lines.append(
            f"| {problem} | {device} | {reads.split()[0]} | {run['seconds']:.2f} | "
            f"{run['energy']:.6g} |"
        )
    write_section(
        __import__("pathlib").Path("benchmarks/SOLVERS.md"),
        "batch-sa on a GPU",
        "\n".join(lines) + "\n",
    )


if __name__ == "__main__":
    {"export": export, "run": run, "report": report}[sys.argv[1]]()
