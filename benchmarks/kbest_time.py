"""``kbest``'s time against tuned GPTQ's (issue 37), before and after its speed-ups, in one
process: per layer and for the whole run, with the load average beside each run.

Run from the repository root:

    ANNEALQ_DATA=../shared/data python -m benchmarks.kbest_time --datasets mnist cifar10 \\
        --bits 4

"before" re-creates the costs the speed-ups removed, in this process: the beam's block
products on as many BLAS threads as OpenBLAS likes (``search.BLAS_THREADS = None``), its
per-column work in NumPy (``benchmarks/kbest_numpy.py``), tuned GPTQ factorising the damped
Hessian once per setting instead of once per damping (its ``shared`` dict dropped), and no
factorisation kept between tuned GPTQ and ``kbest`` (``annealq.damped.KEPT = 0``). "after"
is the code as committed. Every run starts with no kept factorisation. The integers must not
change: each row checks that both variants' layer errors are equal. ``--profile`` prints
the top functions (by own time) of the last "after" ``kbest`` run. It writes
``benchmarks/kbest_time.json`` (``--out`` another file) and prints the table of
``benchmarks/KBEST_TIME.md``; ``--markdown FILE ...`` prints it again from JSON files.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shlex
import sys
import time
from pathlib import Path

import annealq.baselines.tuned as tuned
import annealq.damped as damped
import solvers.kbest.search as search
from annealq.data.datasets import load_dataset
from annealq.data.models import reference_model
from annealq.files import atomic_write
from annealq.pipeline import quantize
from benchmarks.kbest_numpy import _beam_paths as numpy_beam

METHODS = (("tuned GPTQ", {"method": "gptq"}), ("kbest", {"solver": "kbest"}))


def unshared(lq, inputs, float_inputs=None, *, shared=None, **options):
    """Tuned GPTQ's rounding as before: every setting factorises its own Hessian."""
    return _gptq_rounding(lq, inputs, float_inputs, **options)


_gptq_rounding, _compiled_beam, _kept = tuned.gptq_rounding, search._beam_paths, damped.KEPT


def variant(name: str) -> None:
    """Put this process's kbest beam and tuned GPTQ in the ``name`` state."""
    search.BLAS_THREADS = None if name == "before" else 1
    tuned.gptq_rounding = unshared if name == "before" else _gptq_rounding
    search._beam_paths = numpy_beam if name == "before" else _compiled_beam
    damped.KEPT = 0 if name == "before" else _kept


def run(model, data, bits: int, arguments: dict, profile=None) -> dict:
    damped.forget()
    load = os.getloadavg()[0]
    begin = time.perf_counter()
    if profile is not None:
        profile.enable()
    result = quantize(
        model, data, bits=bits, calibration_size=1000, cache=False, quiet=True, seed=0, **arguments
    )
    if profile is not None:
        profile.disable()
    return {
        "seconds": round(time.perf_counter() - begin, 2),
        "layer_seconds": [round(layer.solve_seconds, 2) for layer in result.layers],
        "layer_errors": [layer.energy for layer in result.layers],
        "load": [round(load, 2), round(os.getloadavg()[0], 2)],
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| dataset | bits | variant | tuned GPTQ s (layer 1; run) | kbest s (layer 1; run) "
        "| kbest / GPTQ, layer 1 | kbest / GPTQ, run | errors equal to before | "
        "load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for name, runs in row["variants"].items():
            gptq, kbest = runs["tuned GPTQ"], runs["kbest"]
            same = (
                all(
                    runs[label]["layer_errors"] == row["variants"]["before"][label]["layer_errors"]
                    for label, _ in METHODS
                )
                if "before" in row["variants"]
                else "–"
            )
            loads = gptq["load"] + kbest["load"]
            lines.append(
                f"| {row['dataset']} | int{row['bits']} | {name} "
                f"| {gptq['layer_seconds'][0]:.1f}; {gptq['seconds']:.1f} "
                f"| {kbest['layer_seconds'][0]:.1f}; {kbest['seconds']:.1f} "
                f"| {kbest['layer_seconds'][0] / gptq['layer_seconds'][0]:.1f} "
                f"| {kbest['seconds'] / gptq['seconds']:.1f} | {same} "
                f"| {min(loads):.1f}–{max(loads):.1f} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "cifar10"])
    parser.add_argument("--bits", nargs="+", type=int, default=[4])
    parser.add_argument("--variants", nargs="+", default=["before", "after"])
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", default="benchmarks/kbest_time.json")
    parser.add_argument(
        "--markdown",
        metavar="FILE",
        nargs="+",
        help="print the table of written JSON files (nothing is run)",
    )
    args = parser.parse_args(argv)
    if args.markdown:
        saved = [json.loads(Path(name).read_text()) for name in args.markdown]
        print(
            "\n".join(f"    ANNEALQ_DATA=../shared/data {one['command']}" for one in saved),
            table([row for one in saved for row in one["rows"]]),
            sep="\n\n",
        )
        return 0
    command = "python -m benchmarks.kbest_time " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    rows, profile = [], None
    for name in args.datasets:
        data = load_dataset(name)
        model, _ = reference_model(data)
        for bits in args.bits:
            row = {"dataset": name, "bits": bits, "variants": {}}
            for which in args.variants:
                variant(which)
                runs = row["variants"][which] = {}
                for label, arguments in METHODS:
                    if args.profile and which == "after" and label == "kbest":
                        profile = cProfile.Profile()
                    runs[label] = run(model, data, bits, arguments, profile)
                    print(name, bits, which, label, runs[label], flush=True)
            rows.append(row)
            text = json.dumps({"command": command, "rows": rows}, indent=1).encode()
            atomic_write(Path(args.out), lambda stream, text=text: stream.write(text))
    variant("after")
    print(table(rows))
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
