"""The cloud path on the Leap emulator: one problem per neuron in a row (the old path),
concurrent, and concurrent + packed, for ``hybrid`` and ``qpu``; and a run with injected
transient faults, compared with the fault-free run.

    ANNEALQ_DATA=../shared/data python -m benchmarks.cloud benchmarks/cloud.json [CASE ...]

CASE is ``dataset/solver`` (default: all of CASES); runs already in the JSON file are kept.
``dataset/solver/mode`` runs that mode alone, once more: its rows go under
``"repeats"`` (how much one wall time varies on this machine).

The emulator answers classically (an emulation, not quantum hardware); its service times
are the mock solvers' own (hybrid: the minimum_time_limit curve; QPU: the client's access
time model) divided by the time scale below. It runs in a process of its own
(``annealq leap-emulator``), as Leap is a server of its own: its classical answers then
do not hold the client's interpreter lock.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

import annealq

TIME_SCALE = 1.0  # the mock solvers' own service times, unscaled
SLOTS = {"hybrid": 8, "qpu": 1}
MODES = {
    "sequential": {"pack": False, "max_in_flight": 1},
    "concurrent": {"pack": False, "max_in_flight": 16},
    "concurrent+packed": {"max_in_flight": 16},
}
FAULTS = "http429=0.05,http5xx=0.05,retry_after=0,scope=submit+poll+answer+upload,seed=3"


def run(emulator, data, model, solver, options, bits=2):
    """One quantization run (on ``emulator`` when given) and what it cost."""
    if emulator is not None:
        os.environ["DWAVE_API_ENDPOINT"] = emulator.endpoint
        os.environ["DWAVE_API_TOKEN"] = emulator.token
    began = time.perf_counter()
    result = annealq.quantize(
        model, data, bits=bits, solver=solver, cache=False, quiet=True, seed=0, **options
    )
    wall = time.perf_counter() - began
    digest = [
        int(np.sum(L.int_weight * np.arange(1, L.int_weight.size + 1).reshape(L.int_weight.shape)))
        for L in result.layers
    ]
    row = {
        "wall_seconds": round(wall, 2),
        "layer_errors": [round(L.energy, 2) for L in result.layers],
        "test_accuracy": round(result.report["accuracy"]["quantized"], 4),
        "integers_digest": digest,
    }
    cloud = result.report.get("cloud")
    if cloud:
        row.update(
            problems=cloud["problems"],
            neurons=cloud["neurons"],
            billed_seconds=round(cloud["billed_seconds"], 3),
            retries=cloud["retries"],
            fallback_neurons=cloud["fallback_neurons"],
            uploaded_bytes=[layer["uploaded_bytes"] for layer in cloud["layers"]],
        )
    return row


CASES = ("digits/hybrid", "mnist/hybrid", "digits/qpu")


class _Served:
    def __init__(self, endpoint, token):
        self.endpoint, self.token, self.stats = endpoint, token, None


@contextlib.contextmanager
def emulator_process(faults=None):
    """``annealq leap-emulator`` in a process of its own; ``.stats`` once it has stopped."""
    command = [
        sys.executable,
        "-m",
        "annealq",
        "leap-emulator",
        "--time-scale",
        str(TIME_SCALE),
        "--slots",
        str(SLOTS["hybrid"]),
        "--qpu-slots",
        str(SLOTS["qpu"]),
    ] + (["--faults", faults] if faults else [])
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        endpoint = proc.stdout.readline().rsplit(" at ", 1)[1].strip()
        served = _Served(endpoint, proc.stdout.readline().split(": ", 1)[1].strip())
        yield served
        proc.send_signal(signal.SIGINT)
        served.stats = json.loads(proc.stdout.read().splitlines()[-1].split(": ", 1)[1])
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def main(out, cases):
    config = os.path.join(tempfile.mkdtemp(), "dwave.conf")
    open(config, "w").close()
    os.environ["DWAVE_CONFIG_FILE"] = config
    saved = json.load(open(out)) if os.path.exists(out) else {}
    rows, repeats = saved.get("runs", {}), saved.get("repeats", {})
    for case in cases or CASES:
        dataset, solver, *mode = case.split("/")
        data = annealq.load_dataset(dataset)
        model, _ = annealq.reference_model(data)
        if mode:
            with emulator_process() as emulator:
                row = run(emulator, data, model, solver, MODES[mode[0]])
            repeats.setdefault(case, []).append(row)
            print(case, row, flush=True)
            _write(out, rows, repeats)
            continue
        for mode, options in MODES.items():
            with emulator_process() as emulator:
                rows[f"{dataset}/{solver}/{mode}"] = row = run(
                    emulator, data, model, solver, options
                )
            print(dataset, solver, mode, row, flush=True)
        # the emulator answers each neuron from its own BQM, packed or not: the modes must
        # agree on every integer
        sequential = rows[f"{dataset}/{solver}/sequential"]["integers_digest"]
        for mode in MODES:
            row = rows[f"{dataset}/{solver}/{mode}"]
            row["identical_to_sequential"] = row["integers_digest"] == sequential
        with emulator_process(FAULTS) as emulator:
            row = run(emulator, data, model, solver, MODES["concurrent+packed"])
        row["injected_faults"] = emulator.stats["faults"]
        clean = rows[f"{dataset}/{solver}/concurrent+packed"]
        row["identical_to_fault_free"] = (
            row["integers_digest"] == clean["integers_digest"]
            and row["layer_errors"] == clean["layer_errors"]
        )
        rows[f"{dataset}/{solver}/concurrent+packed, 10% faults"] = row
        print(dataset, solver, "faults", row, flush=True)
        _write(out, rows, repeats)  # after every case: a long run keeps what it did


def _write(out, rows, repeats):
    with open(out, "w") as stream:
        json.dump(
            {
                "time_scale": TIME_SCALE,
                "slots": SLOTS,
                "faults": FAULTS,
                "runs": rows,
                "repeats": repeats,
            },
            stream,
            indent=1,
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
