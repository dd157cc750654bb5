"""``annealq leap-trial``: a budget-capped trial on Leap that a token holder runs once.

It quantizes the digits reference MLP with the cloud solvers started from ``kbest`` (the
QPU on the whole grid at int1 and int2, ``hybrid-nl`` at int2 and int4), each run within an
equal share of ``--max-cloud-seconds``, and records what the notebooks' Leap columns need:
the solvers' identifying properties, every problem id, the billed and wall seconds, each
layer's energy beside ``kbest``'s incumbent, and whether the answers came from an
emulation. A run whose plan is over its share is skipped with its reason.

Example (offline, nothing runs without a token):
    >>> TRIAL_RUNS[0]
    ('qpu', 1, {'window_bits': 1})
"""

from __future__ import annotations

import json
import os
import time

from annealq import __version__
from annealq.credentials import redact, token_configured
from annealq.data.datasets import load_dataset
from annealq.data.models import reference_model
from annealq.files import atomic_write, check_outputs
from annealq.pipeline import quantize
from annealq.registry import get_sampler

TRIAL_RUNS = (
    ("qpu", 1, {"window_bits": 1}),
    ("qpu", 2, {"window_bits": 2}),
    ("hybrid-nl", 2, {}),
    ("hybrid-nl", 4, {}),
)
PROPERTIES = (
    "chip_id",
    "topology",
    "num_qubits",
    "category",
    "version",
    "quota_conversion_rate",
    "minimum_time_limit_s",
    "maximum_time_limit_hrs",
    "emulation",
)


def leap_trial(
    max_cloud_seconds: float, *, runs=TRIAL_RUNS, calibration_size: int = 500, seed: int = 0
) -> dict:
    """Run ``runs`` (``(solver, bits, options)``) on Leap within ``max_cloud_seconds``
    billed seconds in all; the trial record (plain data)."""
    if not token_configured():
        raise ValueError(
            "leap-trial runs on Leap: set DWAVE_API_TOKEN in the environment "
            "or .env (or point DWAVE_API_ENDPOINT at the Leap emulator)"
        )
    if not 0 < max_cloud_seconds < float("inf"):
        raise ValueError(
            f"--max-cloud-seconds must be a positive number, got {max_cloud_seconds!r}"
        )
    data = load_dataset("digits")
    model, _ = reference_model(data, seed=seed)
    share = max_cloud_seconds / len(runs)
    record = {
        "annealq_version": __version__,
        "max_cloud_seconds": max_cloud_seconds,
        "endpoint": os.environ.get("DWAVE_API_ENDPOINT", "Leap's default"),
        "solvers": {},
        "runs": [],
    }
    for solver, bits, options in runs:
        if solver not in record["solvers"]:
            properties = get_sampler(solver).properties or {}
            record["solvers"][solver] = {
                key: properties[key] for key in PROPERTIES if key in properties
            }
        began = time.perf_counter()
        entry = {"solver": solver, "bits": bits, "options": options, "budget_seconds": share}
        try:
            result = quantize(
                model,
                data,
                bits=bits,
                solver=solver,
                start="kbest",
                cache=False,
                quiet=True,
                seed=seed,
                calibration_size=calibration_size,
                max_cloud_seconds=share,
                **options,
            )
        except ValueError as exc:  # a plan over its share: skipped, with the reason
            entry["skipped"] = redact(str(exc))
        else:
            entry.update(_run_record(result.report))
        entry["wall_seconds"] = time.perf_counter() - began
        record["runs"].append(entry)
    record["emulation"] = any(run.get("emulation") for run in record["runs"])
    return record


def _run_record(report: dict) -> dict:
    layers = [
        {
            "name": layer["name"],
            "energy": layer["energy"],
            "kept_kbest": layer.get("kept_start"),
            "problem_ids": layer.get("problem_ids", []),
            **({"cloud": layer["cloud"]} if "cloud" in layer else {}),
        }
        for layer in report["layers"]
    ]
    return {
        "layers": layers,
        "accuracy": report.get("accuracy"),
        "cloud": {k: v for k, v in report.get("cloud", {}).items() if k != "layers"},
        "emulation": bool(report.get("emulation")),
        "solver_notes": report.get("solver_notes", []),
    }


def run_leap_trial(args) -> int:
    """The ``leap-trial`` command: the trial, then its record written atomically."""
    check_outputs([("--out", args.out)])
    record = leap_trial(args.max_cloud_seconds)
    text = json.dumps(record, indent=1, default=str) + "\n"
    atomic_write(args.out, lambda stream: stream.write(text.encode()))
    billed = sum(run.get("cloud", {}).get("billed_seconds", 0.0) for run in record["runs"])
    print(
        f"leap-trial: {len(record['runs'])} runs, {billed:.2f} billed seconds"
        + (" (an emulation, not quantum hardware)" if record["emulation"] else "")
        + f"; written to {args.out}"
    )
    return 0
