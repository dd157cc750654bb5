"""The paper's table: accuracy, layer error and time per dataset, bit width and method
(``python -m benchmarks paper``, ``benchmarks/RESULTS.md`` and ``results.json``)."""

from __future__ import annotations

import json
from pathlib import Path

from annealq.data.datasets import load_dataset
from annealq.data.models import accuracy, model_fingerprint, reference_model
from annealq.pipeline import quantize
from benchmarks.paper_table import (  # noqa: F401 (re-exported: benchmarks.harness)
    PAPER_BITS,
    PAPER_DATASETS,
    PAPER_METHODS,
    paper_markdown,
    rewrite_paper_markdown,
)
from benchmarks.shared import machine, write_json, write_text


def bench_paper(
    datasets=PAPER_DATASETS,
    bits_list=PAPER_BITS,
    *,
    methods=None,
    calibration: int = 1000,
    data_dir=None,
    out_dir: str | Path = "benchmarks",
    command: str = "",
    skip=(),
    unskip=(),
    rerun=(),
    workers: int | None = None,
    progress=print,
) -> Path:
    """Run every (dataset, bits, method) cell not yet in ``out_dir/results.json``, writing
    the JSON after each cell (so an interrupted run resumes) and ``RESULTS.md`` at the end.

    A cell counts as done only if it was computed on this machine's reference model: each
    records the model's fingerprint (:func:`~annealq.data.models.model_fingerprint`), and a
    cell from another training (cells older than the fingerprint: a different float
    accuracy) is run again,
    so no table mixes two trainings of a model. ``rerun`` names columns or methods to run
    again anyway (after a solver changed). ``skip`` lists ``"dataset:column"`` cells to
    leave out (marked "not run" in the table); the list is kept in the JSON for later runs
    until ``unskip`` names a cell again. ``workers`` solves each layer's neurons in that
    many local processes (the same integers; the wall time is recorded with the count).
    """
    out_dir = Path(out_dir)
    json_path = out_dir / "results.json"
    table = json.loads(json_path.read_text()) if json_path.is_file() else {"cells": {}}
    table.update({"calibration": calibration, "machine": machine()})
    if command:  # every run that filled cells, in order
        table["commands"] = [*table.get("commands", []), command]
    skip = sorted((set(table.get("skipped", [])) | set(skip)) - set(unskip))  # kept
    table["skipped"] = skip
    columns = [m for m in PAPER_METHODS if methods is None or m[0] in methods or m[1] in methods]
    again = {m[0] for m in PAPER_METHODS if m[0] in rerun or m[1] in rerun}
    for name in datasets:
        data = load_dataset(name, data_dir=data_dir)
        model, _ = reference_model(data)
        fingerprint = model_fingerprint(model)
        float_accuracy = accuracy(model, data.x_test, data.y_test)
        for bits in bits_list:
            for column, method, solver, params, extra in columns:
                key = f"{name}|{bits}|{column}"
                done = (
                    key in table["cells"]
                    and column not in again
                    and _same_model(table["cells"][key], fingerprint, float_accuracy)
                )
                if done or f"{name}:{column}" in skip:
                    continue
                result = quantize(
                    model,
                    data,
                    bits=bits,
                    method=method,
                    solver=solver or "auto",
                    solver_params=params,
                    calibration_size=calibration,
                    cache=False,
                    quiet=True,
                    seed=0,
                    **({"workers": workers} if workers else {}),
                    **extra,
                )
                report = result.report
                table["cells"][key] = {
                    "accuracy": report["accuracy"],
                    "energy": sum(layer["energy"] for layer in report["layers"]),
                    "rtn_energy": sum(layer["rtn_energy"] for layer in report["layers"]),
                    "seconds": report["timing"]["total_seconds"]
                    - report["timing"].get("evaluate_seconds", 0.0),
                    "layers": report["layers"],
                    "model": fingerprint,
                    "workers": workers or 1,
                }
                progress(
                    f"{key}: accuracy {report['accuracy']['quantized']:.4f}, "
                    f"error {table['cells'][key]['energy']:.6g}"
                )
                write_json(json_path, table)
                write_text(out_dir / "RESULTS.md", paper_markdown(table, skip))
    write_json(json_path, table)
    path = out_dir / "RESULTS.md"
    write_text(path, paper_markdown(table, skip))
    return path


def _same_model(cell, fingerprint: str, float_accuracy: float) -> bool:
    """Whether ``cell`` was computed on the model with this fingerprint (a cell from
    before fingerprints: on a model with the same float test accuracy)."""
    if "model" in cell:
        return cell["model"] == fingerprint
    return cell["accuracy"]["float"] == float_accuracy
