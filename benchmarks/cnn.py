"""The reference CNNs quantized by every method: accuracy, per-layer error and time, into
``benchmarks/CNN.md`` and ``benchmarks/cnn_results.json`` (resumed from the JSON, one cell
at a time, so an interrupted run loses at most one cell).

    ANNEALQ_DATA=../shared/data python benchmarks/cnn.py --dataset cifar10 --bits 4 8 3 2

Accuracy is measured once per cell on the test split (not through ``quantize``'s
``evaluation``, which would quantize a second, RTN model); time is ``quantize``'s own.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import annealq
from annealq.data.cnn import reference_cnn
from annealq.data.datasets import load_dataset
from annealq.data.models import accuracy, describe

# (column, method, solver, solver parameters, other quantize options)
METHODS = (
    ("RTN", "rtn", None, None, {}),
    ("GPTQ (act-order, 1 % damping)", "gptq", None, None, {}),
    ("GPTQ (no act-order, 0.1 % damping)", "gptq", None, None, {"act_order": False, "damp": 0.001}),
    ("AdaRound", "adaround", None, None, {}),
    ("QUBO down/up, neal (1 read, 1,000 sweeps)", "qubo", "neal", {}, {}),
    (
        "QUBO whole grid to int4 (4-bit window), lns from GPTQ",
        "qubo",
        "lns",
        {},
        {"window_bits": 4, "start": "gptq"},
    ),
    # group-wise steps: one per g consecutive inputs of each row (int4 checkpoints' layout)
    *(
        (f"{name}, groups of {g}", method, solver, params, {**extra, "group_size": g})
        for g in (32, 128)
        for name, method, solver, params, extra in (
            ("RTN", "rtn", None, None, {}),
            ("GPTQ (act-order, 1 % damping)", "gptq", None, None, {}),
            (
                "QUBO whole grid, lns from GPTQ",
                "qubo",
                "lns",
                {},
                {"window_bits": 4, "start": "gptq"},
            ),
        )
    ),
)


def run(
    dataset: str,
    bits_list,
    columns,
    *,
    calibration: int,
    out_dir: Path,
    command: str,
    progress=print,
) -> dict:
    json_path = out_dir / "cnn_results.json"
    table = json.loads(json_path.read_text()) if json_path.is_file() else {"cells": {}}
    table["commands"] = [*table.get("commands", []), command]
    table["machine"] = f"{platform.machine()}, {platform.python_version()}"
    data = load_dataset(dataset)
    start = time.perf_counter()
    model, path = reference_cnn(data)
    float_key = f"{dataset}|float"
    if float_key not in table["cells"]:
        table["cells"][float_key] = {
            "accuracy": accuracy(model, data.x_test, data.y_test),
            "model": describe(model),
            "file": path.name,
            "load_or_train_seconds": time.perf_counter() - start,
        }
    calibration_x = data.calibration(calibration, seed=0)
    for bits in bits_list:
        for column, method, solver, params, extra in columns:
            key = f"{dataset}|{bits}|{column}"
            if key in table["cells"]:
                continue
            result = annealq.quantize(
                model,
                calibration_x,
                bits=bits,
                method=method,
                solver=solver or "auto",
                solver_params=params,
                cache=False,
                quiet=True,
                seed=0,
                **extra,
            )
            report = result.report
            table["cells"][key] = {
                "accuracy": accuracy(result.model, data.x_test, data.y_test),
                "seconds": report["timing"]["total_seconds"],
                "layers": [
                    {
                        k: layer.get(k)
                        for k in (
                            "name",
                            "kernel",
                            "in_features",
                            "out_features",
                            "patches",
                            "energy",
                            "rtn_energy",
                            "solve_seconds",
                        )
                    }
                    for layer in report["layers"]
                ],
                "not_quantized": report["not_quantized"],
                "folded_batchnorm": report["folded_batchnorm"],
            }
            json_path.write_text(json.dumps(table, indent=1) + "\n")
            cell = table["cells"][key]
            progress(f"{key}: {cell['accuracy']:.2%}, {cell['seconds']:.0f} s")
    json_path.write_text(json.dumps(table, indent=1) + "\n")
    (out_dir / "CNN.md").write_text(markdown(table))
    return table


def markdown(table: dict) -> str:
    cells = table["cells"]
    lines = [
        "# The reference CNNs quantized: accuracy, per-layer error and time",
        "",
        "Filled by these runs of the committed code (each skips the cells already in "
        "`cnn_results.json`):",
        "",
    ]
    lines += [f"- `{c}`" for c in table["commands"]]
    lines += [
        "",
        f"Machine: {table['machine']}, 2 cores shared with other jobs. 1,000 "
        "calibration images from the training split (seed 0); accuracy on the test "
        "split. Reference grid (per tensor, docs/design.md §1), BatchNorm folded into each "
        "conv, layers quantized in turn on what the quantized layers before them feed "
        "them. A conv's error is its squared output error summed over every output "
        "position of the calibration images. Time: `quantize` (formulation with the "
        "patch statistics, rounding, decoding), without evaluation.",
        "",
    ]
    for dataset in sorted({key.split("|")[0] for key in cells}):
        base = cells[f"{dataset}|float"]
        lines += [
            f"## {dataset}: {base['model']}",
            "",
            f"Float accuracy {base['accuracy']:.2%} (`{base['file']}`).",
            "",
        ]
        keys = [k for k in cells if k.startswith(f"{dataset}|") and k != f"{dataset}|float"]
        columns = list(dict.fromkeys(k.split("|", 2)[2] for k in keys))
        bits_list = sorted({int(k.split("|")[1]) for k in keys}, reverse=True)
        lines += [
            "| bits | method | accuracy | time (s) | per-layer error (RTN's) |",
            "|---:|---|---:|---:|---|",
        ]
        for bits in bits_list:
            for column in columns:
                cell = cells.get(f"{dataset}|{bits}|{column}")
                if cell is None:
                    continue
                errors = "; ".join(
                    f"{_layer_name(layer)}: {layer['energy']:.4g} ({layer['rtn_energy']:.4g})"
                    for layer in cell["layers"]
                )
                lines.append(
                    f"| int{bits} | {column} | {cell['accuracy']:.2%} | "
                    f"{cell['seconds']:.0f} | {errors} |"
                )
        lines.append("")
    return "\n".join(lines)


def _layer_name(layer: dict) -> str:
    if layer.get("kernel"):
        return f"conv {'x'.join(map(str, layer['kernel']))}"
    return f"linear {layer['in_features']}x{layer['out_features']}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 8, 3, 2])
    parser.add_argument(
        "--methods", nargs="+", default=None, help="columns or method names to run (default all)"
    )
    parser.add_argument("--calibration", type=int, default=1000)
    parser.add_argument("--out-dir", default=str(Path(__file__).resolve().parent))
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help="only rewrite CNN.md from cnn_results.json (nothing is run)",
    )
    args = parser.parse_args(argv)
    if args.markdown_only:
        table = json.loads((Path(args.out_dir) / "cnn_results.json").read_text())
        (Path(args.out_dir) / "CNN.md").write_text(markdown(table))
        return 0
    columns = [
        m for m in METHODS if args.methods is None or m[0] in args.methods or m[1] in args.methods
    ]
    command = "python benchmarks/cnn.py " + " ".join(map(shlex.quote, argv or sys.argv[1:]))
    run(
        args.dataset,
        args.bits,
        columns,
        calibration=args.calibration,
        out_dir=Path(args.out_dir),
        command=command,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
