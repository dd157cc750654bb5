"""Time one 65-variable dense BQM (a neuron of the digits MLP's first layer, int4) through
several solvers, each in this one process. Run: .venv/bin/python benchmarks/solvers_65.py
"""

import time

from annealq import QuantizeConfig, errors, get_sampler, layer_problem, solve_bqms
from annealq.data.datasets import load_digits
from annealq.data.models import train_mlp

data = load_digits()
model = train_mlp(data.x_train, data.y_train, hidden=(64,))
calibration = data.calibration(500)
lq = layer_problem(model, calibration, QuantizeConfig(bits=4), 0).qubo
bqm = lq.bqm(0)
rtn = lq.energy(0, lq.rtn_sample(0))
print(
    f"neuron 0 of digits layer 1: {bqm.num_variables} variables, "
    f"{bqm.num_interactions} couplers, RTN energy {rtn:.4f}"
)
for name, params in [
    ("neal", {"seed": 0}),
    ("tabu", {"seed": 0, "timeout": 100}),
    ("steepest", {}),
    ("qpu-mock", {"num_reads": 100}),
    ("exact", {}),
    ("batch-sa", {}),
    ("exact-bb", {"time_limit": 10}),
]:
    start = time.perf_counter()
    try:
        sampler = get_sampler(name, **params)
        built = time.perf_counter() - start
        [result] = solve_bqms([bqm], sampler)
    except errors.ProblemTooLargeError as exc:
        print(f"{name:<9} refused: {exc}")
        continue
    extra = ""
    if "proven_optimal" in result.info:
        extra = f", proven optimal: {result.info['proven_optimal']}"
    if "chain_break_fraction" in result.info:
        extra = (
            f", chain-break fraction {result.info['chain_break_fraction']:.3f}, "
            f"max chain length {result.info['chain_length']['max']}, "
            f"{result.info['note']}"
        )
    print(
        f"{name:<9} {params}: energy {result.energy:.4f}, sample {result.wall_seconds:.3f} s "
        f"(sampler construction {built:.2f} s){extra}"
    )
