"""The same integers from 1, 2 and 4 Dask workers as from one process, on whole models.

For each of digits and MNIST and each of neal, batch-sa and lns: ``annealq.quantize`` at
int2, seed 0, no cache, in this process and with ``workers=1, 2, 4`` (a private
``LocalCluster``); the SHA-256 of all layers' integers must be the same for all four.
Run from the repository root (``PYTHONPATH`` so that spawned workers import this tree):

    export ANNEALQ_DATA=../shared/data PYTHONPATH=.
    python benchmarks/workers_identity.py out.json [DATASET ...]
"""

import hashlib
import json
import sys
import time

import numpy as np

import annealq


def digest(result) -> str:
    h = hashlib.sha256()
    for layer in result.layers:
        h.update(np.ascontiguousarray(layer.int_weight, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(layer.int_bias, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def main(
    out: str,
    datasets=("digits", "mnist"),
    solvers=("neal", "batch-sa", "lns"),
    workers=(None, 1, 2, 4),
):
    rows = []
    for name in datasets:
        data = annealq.load_dataset(name)
        model, _ = annealq.reference_model(data)
        for solver in solvers:
            row = {"dataset": name, "solver": solver, "sha256": {}, "seconds": {}}
            for n in workers:
                began = time.perf_counter()
                options = {} if n is None else {"workers": n}
                result = annealq.quantize(
                    model, data, bits=2, solver=solver, cache=False, seed=0, quiet=True, **options
                )
                key = "inline" if n is None else str(n)
                row["sha256"][key] = digest(result)
                row["seconds"][key] = round(time.perf_counter() - began, 1)
            row["identical"] = len(set(row["sha256"].values())) == 1
            print(json.dumps(row), flush=True)
            rows.append(row)
            json.dump(rows, open(out, "w"), indent=1)
    return rows


if __name__ == "__main__":  # out.json [DATASET ...]
    main(sys.argv[1], *([tuple(sys.argv[2:])] if len(sys.argv) > 2 else []))
