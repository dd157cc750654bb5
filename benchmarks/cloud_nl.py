"""``hybrid-nl`` (a layer as one integer model, whole grid) against ``hybrid`` (one down/up
BQM per neuron, packed) on the Leap emulator, and the local whole-grid ``lns``, at int4:
uploads per layer, billed seconds, wall time and layer errors; plus hybrid-nl (its defaults)
with injected transient faults, compared with its fault-free run.

    export ANNEALQ_DATA=../shared/data
    python -m benchmarks.cloud_nl benchmarks/cloud_nl.json [DATASET[:SOLVER] ...]

``DATASET:SOLVER`` reruns only that solver's rows (the fault row goes with ``hybrid-nl``);
rows already in the JSON file are kept.

The emulator answers classically (an emulation, not quantum hardware): hybrid BQMs by
simulated annealing, nonlinear models by greedy coordinate descent (CDQuant) from the
model's initial state. Its service times are the mock solvers' own (hybrid: the
minimum_time_limit curve; nonlinear: the estimated minimum time limit), unscaled; the wall
times include the emulator's classical work, which runs in this process.
"""

import json
import os
import sys
import tempfile

import annealq
from annealq.testing import LeapEmulator
from benchmarks.cloud import SLOTS, TIME_SCALE, run

BITS = 4
# a run of hybrid-nl makes few requests (one problem per layer): 20 % of them fail
FAULTS = "http429=0.2,http5xx=0.2,retry_after=0,scope=submit+poll+answer+upload,seed=3"
RUNS = {  # name: (solver, options, on the emulator)
    "hybrid (down/up BQMs, packed)": ("hybrid", {"max_in_flight": 16}, True),
    "hybrid-nl (whole grid, from RTN)": ("hybrid-nl", {"start": "rtn"}, True),
    "hybrid-nl (whole grid, from GPTQ: its default)": ("hybrid-nl", {}, True),
    "lns local (whole grid, from RTN)": ("lns", {"window_bits": BITS}, False),
    "lns local (whole grid, from GPTQ)": ("lns", {"window_bits": BITS, "start": "gptq"}, False),
}


def main(out, datasets):
    config = os.path.join(tempfile.mkdtemp(), "dwave.conf")
    open(config, "w").close()
    os.environ["DWAVE_CONFIG_FILE"] = config
    rows = json.load(open(out))["runs"] if os.path.exists(out) else {}
    for case in datasets or ("digits", "mnist"):
        dataset, _, only = case.partition(":")
        data = annealq.load_dataset(dataset)
        model, _ = annealq.reference_model(data)
        for name, (solver, options, cloud) in RUNS.items():
            if only and solver != only:
                continue
            if cloud:
                with LeapEmulator(time_scale=TIME_SCALE, slots=SLOTS) as emulator:
                    row = run(emulator, data, model, solver, options, bits=BITS)
            else:
                row = run(None, data, model, solver, options, bits=BITS)
            rows[f"{dataset}/{name}"] = row
            print(dataset, name, row, flush=True)
        if only and only != "hybrid-nl":
            continue
        with LeapEmulator(time_scale=TIME_SCALE, slots=SLOTS, faults=FAULTS) as emulator:
            row = run(emulator, data, model, "hybrid-nl", {}, bits=BITS)
            row["injected_faults"] = emulator.stats()["faults"]
        clean = rows[f"{dataset}/hybrid-nl (whole grid, from GPTQ: its default)"]
        row["identical_to_fault_free"] = (
            row["integers_digest"] == clean["integers_digest"]
            and row["layer_errors"] == clean["layer_errors"]
        )
        rows[f"{dataset}/hybrid-nl, 20% faults"] = row
        print(dataset, "faults", row, flush=True)
        save(out, rows)
    save(out, rows)


def save(out, rows):
    with open(out, "w") as stream:  # after every dataset: a long run keeps what it did
        json.dump(
            {
                "bits": BITS,
                "time_scale": TIME_SCALE,
                "slots": SLOTS,
                "faults": FAULTS,
                "runs": rows,
            },
            stream,
            indent=1,
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
