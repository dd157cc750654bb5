"""``hybrid-nl`` (a layer as one integer model, whole grid) against ``hybrid`` (one down/up
BQM per neuron, packed) on the Leap emulator, and the local whole-grid ``lns``, at int4:
uploads per layer, billed seconds, wall time and layer errors; plus hybrid-nl with injected
transient faults, compared with its fault-free run.

    ANNEALQ_DATA=../shared/data python -m benchmarks.cloud_nl benchmarks/cloud_nl.json [DATASET ...]

The emulator answers classically (an emulation, not quantum hardware): hybrid BQMs by
simulated annealing, nonlinear models by greedy coordinate descent (CDQuant) from the
model's initial state. Its service times are the mock solvers' own (hybrid: the
minimum_time_limit curve; nonlinear: the estimated minimum time limit), unscaled; the wall
times include the emulator's classical work, which runs in this process.
"""
import json, os, sys, tempfile

import annealq
from annealq.testing import LeapEmulator
from benchmarks.cloud import FAULTS, SLOTS, TIME_SCALE, run

BITS = 4
RUNS = {  # name: (solver, options, on the emulator)
    "hybrid (down/up BQMs, packed)": ("hybrid", {"max_in_flight": 16}, True),
    "hybrid-nl (whole grid, from RTN)": ("hybrid-nl", {}, True),
    "hybrid-nl (whole grid, from GPTQ)": ("hybrid-nl", {"start": "gptq"}, True),
    "lns local (whole grid, from RTN)": ("lns", {"window_bits": BITS}, False),
    "lns local (whole grid, from GPTQ)": ("lns", {"window_bits": BITS, "start": "gptq"}, False),
}


def main(out, datasets):
    config = os.path.join(tempfile.mkdtemp(), "dwave.conf")
    open(config, "w").close()
    os.environ["DWAVE_CONFIG_FILE"] = config
    rows = json.load(open(out))["runs"] if os.path.exists(out) else {}
    for dataset in datasets or ("digits", "mnist"):
        data = annealq.load_dataset(dataset)
        model, _ = annealq.reference_model(data)
        for name, (solver, options, cloud) in RUNS.items():
            if cloud:
                with LeapEmulator(time_scale=TIME_SCALE, slots=SLOTS) as emulator:
                    row = run(emulator, data, model, solver, options, bits=BITS)
            else:
                row = run(None, data, model, solver, options, bits=BITS)
            rows[f"{dataset}/{name}"] = row
            print(dataset, name, row, flush=True)
        with LeapEmulator(time_scale=TIME_SCALE, slots=SLOTS, faults=FAULTS) as emulator:
            row = run(emulator, data, model, "hybrid-nl", {}, bits=BITS)
            row["injected_faults"] = emulator.stats()["faults"]
        clean = rows[f"{dataset}/hybrid-nl (whole grid, from RTN)"]
        row["identical_to_fault_free"] = (row["integers_digest"] == clean["integers_digest"]
                                          and row["layer_errors"] == clean["layer_errors"])
        rows[f"{dataset}/hybrid-nl, 10% faults"] = row
        print(dataset, "faults", row, flush=True)
        with open(out, "w") as stream:  # after every dataset: a long run keeps what it did
            json.dump({"bits": BITS, "time_scale": TIME_SCALE, "slots": SLOTS,
                       "faults": FAULTS, "runs": rows}, stream, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
