"""The layout of the paper's table (:mod:`benchmarks.paper`): its datasets, bit widths and
columns (a method with its solver and options each), and ``benchmarks/RESULTS.md`` written
from ``results.json``'s cells in that order.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.bounds import bounds_markdown
from benchmarks.shared import write_text

PAPER_DATASETS = ("digits", "mnist", "fashion-mnist", "emnist", "cifar10")


PAPER_BITS = (8, 4, 3, 2, 1)


# (column, method, solver, solver parameters, other quantize options)
PAPER_METHODS = (
    ("RTN", "rtn", None, None, {}),
    # GPTQ tuned per layer over act-order × damping (annealq.baselines.methods), and the
    # fixed setting the table used before the tuning
    ("GPTQ", "gptq", None, None, {}),
    ("GPTQ, fixed (act-order, 1 % damp)", "gptq", None, None, {"act_order": True, "damp": 0.01}),
    # the reference GPTQ code's clip search as one more axis of the tuning (issue 37)
    ("GPTQ + clip search", "gptq", None, None, {"clip_search": True}),
    ("CD (tuned GPTQ, then greedy coordinate descent)", "cd", None, None, {}),
    ("AdaRound", "adaround", None, None, {}),
    ("QUBO, neal (paper: 1 read, 1,000 sweeps)", "qubo", "neal", {"seed": 0}, {}),
    ("QUBO, batch-sa", "qubo", "batch-sa", {}, {}),
    ("QUBO, lns", "qubo", "lns", {}, {}),
    (
        "QUBO 2-bit window, lns from GPTQ",
        "qubo",
        "lns",
        {"search": "bits"},
        {"window_bits": 2, "start": "gptq"},
    ),
    (
        "QUBO 4-bit window (whole grid to int4), lns from GPTQ",
        "qubo",
        "lns",
        {},
        {"window_bits": 4, "start": "gptq"},
    ),
    (
        "QUBO 4-bit window, exact-bb from GPTQ (10 s per neuron)",
        "qubo",
        "exact-bb",
        {"time_limit": 10.0},
        {"window_bits": 4, "start": "gptq"},
    ),
    # K-best over GPTQ's order: its defaults are the whole grid from tuned GPTQ
    ("QUBO whole grid, kbest from GPTQ", "qubo", "kbest", {}, {}),
    # and its search on the lattice-reduced basis of each neuron of at most 200 entries
    # (solvers/kbest/reduced.py)
    ("QUBO whole grid, kbest + reduced basis, from GPTQ", "qubo", "kbest", {"reduced": "auto"}, {}),
    # each row's step and the bias re-fitted to the chosen integers, kbest re-run (issue 37)
    (
        "QUBO whole grid, kbest from GPTQ, re-fitted steps",
        "qubo",
        "kbest",
        {},
        {"refit_steps": True},
    ),
    (
        "QUBO whole grid, kbest from GPTQ + clip search, re-fitted steps",
        "qubo",
        "kbest",
        {},
        {"clip_search": True, "refit_steps": True},
    ),
    # the grid for one bit: each weight its row's minimum or maximum (docs/design.md's {−1, 0}·s
    # leaves half the weights only 0)
    ("RTN, affine per-channel grid", "rtn", None, None, {"scheme": "affine", "per_channel": True}),
    (
        "QUBO affine per-channel grid, lns",
        "qubo",
        "lns",
        {},
        {"scheme": "affine", "per_channel": True},
    ),
)


def _seconds(cell) -> str:
    """A cell's wall time, with its worker processes where there were several."""
    workers = cell.get("workers", 1)
    return f"{cell['seconds']:.1f}" + (f" ({workers} processes)" if workers > 1 else "")


def rewrite_paper_markdown(out_dir: str | Path = "benchmarks", *, skip=()) -> Path:
    """Rewrite ``RESULTS.md`` from ``results.json`` alone (new layout, same numbers)."""
    json_path = Path(out_dir) / "results.json"
    if not json_path.is_file():
        raise ValueError(f"no {json_path} to rewrite RESULTS.md from")
    table = json.loads(json_path.read_text())
    path = Path(out_dir) / "RESULTS.md"
    write_text(path, paper_markdown(table, sorted(set(table.get("skipped", [])) | set(skip))))
    return path


def paper_markdown(table, skip) -> str:
    """Every dataset, bit width and column with a cell in ``table`` (whatever this run
    chose to fill), in the standard order."""
    keys = [key.split("|") for key in table["cells"]] + [
        [item.split(":", 1)[0], None, item.split(":", 1)[1]] for item in skip
    ]
    datasets = [d for d in PAPER_DATASETS if any(k[0] == d for k in keys)] + sorted(
        {k[0] for k in keys} - set(PAPER_DATASETS)
    )
    present = {int(k[1]) for k in keys if k[1] is not None}
    bits_list = [b for b in PAPER_BITS if b in present] + sorted(present - set(PAPER_BITS))
    columns = [m for m in PAPER_METHODS if any(k[2] == m[0] for k in keys)]
    machine = table["machine"]
    lines = [
        "# Accuracy, layer error and time: float, RTN, GPTQ, AdaRound and QUBO",
        "",
        "Filled by these runs of the committed code, in order (each run skips the cells "
        "already in `results.json`; a run stopped early keeps the cells it finished):",
        "",
        *[f"- `{c}`" for c in table.get("commands", [])],
        "",
        f"Machine: {machine}. Calibration: {table['calibration']} images from each "
        "training split; accuracy on the test split. Reference grid (docs/design.md §1), "
        "layers quantized in turn, each on what the quantized layers before it feed it. "
        "Error: the sum over layers of the squared pre-activation output error on the "
        "calibration set. Time: the quantization (formulation, solving, decoding), "
        "without evaluation. GPTQ is tuned per layer (act-order on/off × damping 1 %, "
        "0.1 %, 0.01 %, the lowest layer error on the calibration set; "
        '`annealq/baselines/methods.py`), and the columns "from GPTQ" and CD start '
        'from it; "GPTQ, fixed" is the setting this table used before the tuning.',
        "",
    ]
    for name in datasets:
        lines += [f"## {name}", ""]
        float_acc = next(
            (c["accuracy"]["float"] for k, c in table["cells"].items() if k.startswith(f"{name}|")),
            None,
        )
        if float_acc is not None:
            models = sorted(
                {c.get("model", "") for k, c in table["cells"].items() if k.startswith(f"{name}|")}
                - {""}
            )
            lines += [
                f"Float accuracy {float_acc:.2%}"
                + (f" (reference model {', '.join(models)})" if models else "")
                + ".",
                "",
            ]
            mixed = sorted(
                {
                    c["accuracy"]["float"]
                    for k, c in table["cells"].items()
                    if k.startswith(f"{name}|")
                }
            )
            if len(models) > 1 or len(mixed) > 1:
                lines += [
                    "**These cells come from different trainings of the model "
                    f"(float accuracies {', '.join(f'{a:.2%}' for a in mixed)}): "
                    "they do not compare. Rerun `annealq bench paper` on one machine.**",
                    "",
                ]
        header = "| bits | " + " | ".join(c[0] for c in columns) + " |"
        lines += ["Accuracy:", "", header, "|---:|" + "---:|" * len(columns)]
        lines += [
            _row(table, name, bits, columns, skip, lambda c: f"{c['accuracy']['quantized']:.2%}")
            for bits in bits_list
        ]
        lines += [
            "",
            "Total layer error (squared output error):",
            "",
            header,
            "|---:|" + "---:|" * len(columns),
        ]
        lines += [
            _row(table, name, bits, columns, skip, lambda c: f"{c['energy']:.4g}")
            for bits in bits_list
        ]
        lines += ["", "Time (seconds):", "", header, "|---:|" + "---:|" * len(columns)]
        lines += [_row(table, name, bits, columns, skip, _seconds) for bits in bits_list]
        lines += _relative_to_gptq(table, name, bits_list, columns)
        lines.append("")
    lines += bounds_markdown(table)
    return "\n".join(lines) + "\n"


def _relative_to_gptq(table, name, bits_list, columns) -> list[str]:
    """Each layer's error over GPTQ's at the same bit width (first / second / … layer)."""
    others = [c for c in columns if c[0] != "GPTQ"]
    rows = []
    for bits in bits_list:
        gptq = table["cells"].get(f"{name}|{bits}|GPTQ")
        if gptq is None:
            continue
        values = []
        for column, *_ in others:
            cell = table["cells"].get(f"{name}|{bits}|{column}")
            values.append(
                "—"
                if cell is None
                else " / ".join(
                    f"{mine['energy'] / theirs['energy']:.3f}"
                    for mine, theirs in zip(cell["layers"], gptq["layers"])
                )
            )
        rows.append(f"| int{bits} | " + " | ".join(values) + " |")
    if not rows or not others:
        return []
    return [
        "",
        "Layer error relative to GPTQ's (GPTQ tuned per layer; each layer's error "
        "over GPTQ's, first / second layer; below 1: lower than GPTQ; each method's later "
        "layers see its own quantized inputs):",
        "",
        "| bits | " + " | ".join(c[0] for c in others) + " |",
        "|---:|" + "---:|" * len(others),
        *rows,
    ]


def _row(table, name, bits, columns, skip, show) -> str:
    values = []
    for column, *_ in columns:
        cell = table["cells"].get(f"{name}|{bits}|{column}")
        values.append(show(cell) if cell else "not run" if f"{name}:{column}" in skip else "—")
    return f"| int{bits} | " + " | ".join(values) + " |"
