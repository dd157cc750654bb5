"""Seeded runs whose integers must stay bit-identical through refactors.

Run it with one tree before and one after a change, then compare the two JSON files:

    ANNEALQ_DATA=../shared/data PYTHONPATH=<tree> python benchmarks/bit_identity.py out.json

``--quick`` runs only the six fast rows (digits neal, batch-sa, lns and kbest, MNIST
batch-sa and kbest), about a minute; ``--methods`` only the baselines' rows (GPTQ tuned per
layer and CD from it, digits and MNIST).

Each run quantizes at int2 with cache=False and seed=0 and records the SHA-256 of all
layers' integer weights and biases, the layer errors and the time.
"""

import hashlib
import json
import sys
import time

import numpy as np

import annealq

out = sys.argv[1]
QUICK = {
    ("digits", "neal"),
    ("digits", "batch-sa"),
    ("digits", "lns"),
    ("digits", "kbest"),
    ("mnist", "batch-sa"),
    ("mnist", "kbest"),
}
runs = [
    ("digits", "neal", {}),
    ("digits", "batch-sa", {}),
    ("digits", "lns", {}),
    ("digits", "lns", {"window_bits": 4, "start": "gptq"}),
    (
        "digits",
        "exact-bb",
        {"window_bits": 2, "start": "gptq", "solver_params": {"time_limit": 30}},
    ),
    ("digits", "neal", {"scheme": "affine", "per_channel": True}),
    ("mnist", "batch-sa", {}),
    ("mnist", "lns", {"window_bits": 4, "start": "gptq"}),
    ("mnist", "neal", {}),
    ("digits", "kbest", {}),
    ("mnist", "kbest", {}),
]
METHODS = [
    (name, "-", {"method": method}) for name in ("digits", "mnist") for method in ("gptq", "cd")
]
if "--quick" in sys.argv[2:]:
    runs = [run for run in runs if run[:2] in QUICK and not run[2]]
elif "--methods" in sys.argv[2:]:
    runs = METHODS
results = {}
for name, solver, opts in runs:
    data = annealq.load_dataset(name)
    model, _ = annealq.reference_model(data)
    bits = 2
    t = time.perf_counter()
    opts = dict(opts)
    sp = opts.pop("solver_params", None)
    solver_arg = {} if "method" in opts else {"solver": solver}
    r = annealq.quantize(
        model,
        data,
        bits=bits,
        cache=False,
        seed=0,
        quiet=True,
        solver_params=sp,
        **solver_arg,
        **opts,
    )
    h = hashlib.sha256()
    for L in r.layers:
        h.update(np.ascontiguousarray(L.int_weight, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(L.int_bias, dtype=np.int64).tobytes())
    key = f"{name}/{solver}/{json.dumps(opts, sort_keys=True)}"
    results[key] = {
        "sha256": h.hexdigest(),
        "energies": [float(L.energy) for L in r.layers],
        "seconds": round(time.perf_counter() - t, 2),
        "proven": [L.report().get("proven_optimal") for L in r.layers],
    }
    print(key, results[key], flush=True)
json.dump(results, open(out, "w"), indent=1)
