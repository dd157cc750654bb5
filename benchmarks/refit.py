"""Re-fitted steps and GPTQ's clip search on the reference MLPs (issue 37): per layer, the
error of tuned GPTQ without and with clip search, of ``kbest`` (the whole-grid QUBO from
tuned GPTQ) without and with clip search (the clip axis in its GPTQ start's tuning) and
re-fitted steps (``refit_steps=True``), with each whole run's time and the load average
beside it.

Run from the repository root:

    ANNEALQ_DATA=../shared/data python benchmarks/refit.py --datasets digits mnist \\
        --bits 4 3 2

It writes ``benchmarks/refit.json`` (every run, with the command; ``--out`` another file)
and prints the tables of ``benchmarks/REFIT.md``; ``--markdown FILE`` prints them again from
a JSON file, running nothing. Each method quantizes the layers in turn (1,000 calibration images,
seed 0), so a later layer's error is on that method's own quantized inputs: the pipeline's
report. "best GPTQ" is tuned GPTQ with clip search: its tuning tries every setting on both
grids, so it is the best of GPTQ with and without clip search at every tuning setting.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

from annealq.data.datasets import load_dataset
from annealq.data.models import model_fingerprint, reference_model
from annealq.files import atomic_write
from annealq.pipeline import quantize

METHODS = (  # (label, quantize() arguments; bits are added)
    ("GPTQ", {"method": "gptq"}),
    ("GPTQ + clip", {"method": "gptq", "clip_search": True}),
    ("GPTQ + clip + refit", {"method": "gptq", "clip_search": True, "refit_steps": True}),
    ("kbest", {"solver": "kbest"}),
    ("kbest + refit", {"solver": "kbest", "refit_steps": True}),
    ("kbest + clip", {"solver": "kbest", "clip_search": True}),
    ("kbest + clip + refit", {"solver": "kbest", "clip_search": True, "refit_steps": True}),
)
BEST_GPTQ, KBEST, REFIT = "GPTQ + clip", "kbest", "kbest + clip + refit"
# the runs that are columns of benchmarks/RESULTS.md (benchmarks/harness.py's PAPER_METHODS)
PAPER_COLUMNS = {
    "GPTQ + clip": "GPTQ + clip search",
    "kbest + refit": "QUBO whole grid, kbest from GPTQ, re-fitted steps",
    "kbest + clip + refit": "QUBO whole grid, kbest from GPTQ + clip search, re-fitted steps",
}


def run(model, data, bits: int, arguments: dict) -> dict:
    load = os.getloadavg()[0]
    begin = time.perf_counter()
    result = quantize(
        model, data, bits=bits, calibration_size=1000, cache=False, quiet=True, seed=0, **arguments
    )
    seconds = time.perf_counter() - begin
    report = result.report
    cell = {
        "accuracy": report["accuracy"],  # as bench paper records a cell
        "energy": sum(layer["energy"] for layer in report["layers"]),
        "rtn_energy": sum(layer["rtn_energy"] for layer in report["layers"]),
        "seconds": report["timing"]["total_seconds"]
        - report["timing"].get("evaluate_seconds", 0.0),
        "layers": report["layers"],
        "model": model_fingerprint(model),
        "workers": 1,
    }
    return {
        "cell": cell,
        "layer_errors": [layer.energy for layer in result.layers],
        "seconds": round(seconds, 2),
        "layer_seconds": [round(layer.solve_seconds, 2) for layer in result.layers],
        "load": [round(load, 2), round(os.getloadavg()[0], 2)],
        "accuracy": result.report.get("accuracy", {}).get("quantized"),
        "refit": [layer.refit for layer in result.layers],
        "gptq_setting": [
            None
            if layer.gptq_setting is None
            else {k: v for k, v in layer.gptq_setting.items() if k != "tried"}
            for layer in result.layers
        ],
    }


def _errors(runs: dict, label: str, layer: int, over: float | None = None) -> str:
    """A run's layer error (over ``over``, as a ratio), "–" where the run is missing."""
    if label not in runs:
        return "–"
    error = runs[label]["layer_errors"][layer]
    return f"{error:.6g}" if over is None else f"{error / over:.3f}"


def table(rows: list[dict]) -> str:
    lines = [
        "| dataset | bits | layer | GPTQ | GPTQ + clip (won) | kbest | kbest + refit "
        "| kbest + clip | kbest + clip + refit (rounds) | kbest / best GPTQ "
        "| kbest + clip + refit / best GPTQ |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        runs = row["runs"]
        best = runs[BEST_GPTQ]["layer_errors"]
        for layer, error in enumerate(best):
            won = runs[BEST_GPTQ]["gptq_setting"][layer].get("clip_search")
            rounds = f" ({runs[REFIT]['refit'][layer]['rounds']})" if REFIT in runs else ""
            lines.append(
                f"| {row['dataset']} | int{row['bits']} | {layer + 1} "
                f"| {_errors(runs, 'GPTQ', layer)} | {error:.6g} "
                f"({'clip' if won else 'plain'}) | {_errors(runs, KBEST, layer)} "
                f"| {_errors(runs, 'kbest + refit', layer)} "
                f"| {_errors(runs, 'kbest + clip', layer)} "
                f"| {_errors(runs, REFIT, layer)}{rounds} "
                f"| {_errors(runs, KBEST, layer, error)} "
                f"| {_errors(runs, REFIT, layer, error)} |"
            )
    return "\n".join(lines)


def _ratio(runs: dict, mine: str, theirs: str) -> str:
    if mine not in runs or theirs not in runs:
        return "–"
    return f"{runs[mine]['seconds'] / runs[theirs]['seconds']:.1f}"


def times(rows: list[dict]) -> str:
    labels = [label for label, _ in METHODS]
    lines = [
        "| dataset | bits | "
        + " | ".join(f"{label} s" for label in labels)
        + " | kbest / GPTQ | kbest + clip + refit / GPTQ | kbest + clip + refit / "
        "GPTQ + clip | load (1 min) |",
        "|---|---|" + "---|" * len(labels) + "---|---|---|---|",
    ]
    for row in rows:
        runs = row["runs"]
        loads = [value for label in labels if label in runs for value in runs[label]["load"]]
        lines.append(
            f"| {row['dataset']} | int{row['bits']} | "
            + " | ".join(
                f"{runs[label]['seconds']:.1f}" if label in runs else "–" for label in labels
            )
            + f" | {_ratio(runs, KBEST, 'GPTQ')} | {_ratio(runs, REFIT, 'GPTQ')}"
            + f" | {_ratio(runs, REFIT, BEST_GPTQ)}"
            + f" | {min(loads):.1f}–{max(loads):.1f} |"
        )
    return "\n".join(lines)


def verdict(rows: list[dict], *, error_ratio: float = 0.70, time_ratio: float = 2.0) -> str:
    """The issue's done-when check per row: ``kbest + clip + refit``'s worst layer ratio to
    the best GPTQ (at most ``error_ratio``) and its whole run's time over tuned GPTQ's and
    over GPTQ + clip's (at most ``time_ratio``)."""
    lines = [
        f"| dataset | bits | worst layer / best GPTQ (≤ {error_ratio:.2f}) "
        f"| time / GPTQ (≤ {time_ratio:g}) | time / GPTQ + clip (≤ {time_ratio:g}) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        runs = row["runs"]
        if REFIT not in runs:
            continue
        worst = max(
            mine / best
            for mine, best in zip(runs[REFIT]["layer_errors"], runs[BEST_GPTQ]["layer_errors"])
        )
        over = [runs[REFIT]["seconds"] / runs[label]["seconds"] for label in ("GPTQ", BEST_GPTQ)]
        lines.append(
            f"| {row['dataset']} | int{row['bits']} | {worst:.3f} "
            f"{'met' if worst <= error_ratio else 'NOT met'} | "
            + " | ".join(
                f"{value:.1f} {'met' if value <= time_ratio else 'NOT met'}" for value in over
            )
            + " |"
        )
    return "\n".join(lines)


def to_results(files: list[str], out_dir: Path = Path("benchmarks")) -> Path:
    """Put the runs of ``files`` that are RESULTS.md columns (:data:`PAPER_COLUMNS`) into
    ``results.json`` as bench paper's cells, and rewrite ``RESULTS.md``."""
    from benchmarks.harness import rewrite_paper_markdown

    path = out_dir / "results.json"
    table_ = json.loads(path.read_text())
    for name in files:
        saved = json.loads(Path(name).read_text())
        table_["commands"] = [
            *table_.get("commands", []),
            f"{saved['command']}, then python benchmarks/refit.py --to-results {name}",
        ]
        for row in saved["rows"]:
            for label, column in PAPER_COLUMNS.items():
                if label in row["runs"] and "cell" in row["runs"][label]:
                    key = f"{row['dataset']}|{row['bits']}|{column}"
                    table_["cells"][key] = row["runs"][label]["cell"]
    text = json.dumps(table_, indent=1, sort_keys=True).encode()
    atomic_write(path, lambda stream: stream.write(text))
    return rewrite_paper_markdown(out_dir)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist", "emnist"])
    parser.add_argument("--bits", nargs="+", type=int, default=[4, 3, 2])
    parser.add_argument("--methods", nargs="+", default=[label for label, _ in METHODS])
    parser.add_argument(
        "--out",
        default="benchmarks/refit.json",
        help="the JSON file; the runs it already holds are not run again",
    )
    parser.add_argument(
        "--markdown",
        metavar="FILE",
        nargs="+",
        help="print the tables of written JSON files (nothing is run)",
    )
    parser.add_argument(
        "--to-results",
        metavar="FILE",
        nargs="+",
        help="copy the runs of written JSON files that are RESULTS.md's "
        "columns into results.json and rewrite RESULTS.md",
    )
    args = parser.parse_args(argv)
    if args.to_results:
        print(f"wrote {to_results(args.to_results)}")
        return 0
    if args.markdown:
        saved = [json.loads(Path(name).read_text()) for name in args.markdown]
        rows = [row for one in saved for row in one["rows"]]
        print(
            "\n".join(f"    ANNEALQ_DATA=../shared/data {one['command']}" for one in saved),
            table(rows),
            times(rows),
            verdict(rows),
            sep="\n\n",
        )
        return 0
    command = "python benchmarks/refit.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    out = Path(args.out)
    rows = json.loads(out.read_text())["rows"] if out.is_file() else []
    for name in args.datasets:
        data = load_dataset(name)
        model, _ = reference_model(data)
        for bits in args.bits:
            row = next((r for r in rows if (r["dataset"], r["bits"]) == (name, bits)), None)
            if row is None:
                rows.append(row := {"dataset": name, "bits": bits, "runs": {}})
            for label, arguments in METHODS:
                if label in args.methods and label not in row["runs"]:
                    row["runs"][label] = run(model, data, bits, arguments)
                    print(
                        name,
                        bits,
                        label,
                        row["runs"][label]["layer_errors"],
                        row["runs"][label]["seconds"],
                        flush=True,
                    )
                    text = json.dumps({"command": command, "rows": rows}, indent=1).encode()
                    atomic_write(out, lambda stream, text=text: stream.write(text))
    print(table(rows), times(rows), verdict(rows), sep="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
