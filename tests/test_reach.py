"""benchmarks/reach.py: the Gaussian-heuristic counts and the table."""

import itertools
import json

import numpy as np
import pytest
import torch

from annealq.problems import LayerProblem
from benchmarks.reach import ellipsoid_points, layer_reach, markdown


def test_the_ellipsoid_count_matches_the_grid_points_of_a_large_ellipsoid():
    # weights (2) and a bias-like last entry; the count is over the weights, bias optimal
    H = np.array([[3.0, 1.2, 0.3], [1.2, 2.0, 0.2], [0.3, 0.2, 1.0]])
    b = np.array([-0.9, 0.7, 0.1])
    low, high = np.array([-60, -60, -500]), np.array([60, 60, 500])
    start = np.array([25, -30, 0])
    value = float(start @ H @ start + 2 * b @ start)
    count = 0  # weight vectors whose best real bias beats the start
    for w in itertools.product(range(-60, 61), repeat=2):
        o = np.array(w, dtype=float)
        beta = -(H[2, :2] @ o + b[2]) / H[2, 2]
        full = np.append(o, beta)
        count += full @ H @ full + 2 * b @ full < value
    logs, boxed, inside = ellipsoid_points(
        H, b, low, high, start, samples=2000, rng=np.random.default_rng(0)
    )
    assert 10**logs == pytest.approx(count, rel=0.05)
    assert inside == 2000 and boxed == pytest.approx(logs)  # the box holds it all


def test_a_layer_cell_and_its_row():
    rng = np.random.default_rng(0)
    X = np.maximum(rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)), 0)
    layer = torch.nn.Linear(6, 3).double()
    cell = layer_reach(LayerProblem.of_arrays(layer.weight, layer.bias, X, bits=3), samples=500)
    cell["model"] = "m"
    rows = cell["neurons"]
    assert len(rows) == 3 and all(r["entries"] == 7 for r in rows)
    assert all(r["lagrangian"] <= r["best"] + 1e-9 for r in rows)
    assert all(
        np.isfinite(r["log10_nodes"]["reduced"]) and np.isfinite(r["log10_nodes"]["unreduced"])
        for r in rows
    )
    text = markdown(
        {"command": "python benchmarks/reach.py", "cells": {"toy|0|3": cell}},
        {"toy|0|3": {"model": "m", "neurons": 3, "bound": 1.5, "proven": 2}},
    )
    row = text.splitlines()[-1]
    assert row.startswith("| toy 0 | 3 | 7 × 3 |") and "| 1.5 (2/3) |" in row


def test_markdown_only_rewrites_the_table_from_the_json(tmp_path):
    from benchmarks.reach import main

    row = {
        "entries": 5,
        "best": 2.0,
        "lagrangian": 1.0,
        "lagrangian_seconds": 0.1,
        "log10_ellipsoid": 1.0,
        "log10_in_box": 0.5,
        "samples_in_box": 3,
        "log10_nodes": {"unreduced": 4.0, "reduced": 3.0},
    }
    (tmp_path / "reach.json").write_text(
        json.dumps(
            {
                "command": "python benchmarks/reach.py",
                "cells": {"toy|1|2": {"neurons": [row], "samples": 10, "model": "m"}},
            }
        )
    )
    assert main(["--markdown-only", "--out-dir", str(tmp_path)]) == 0
    assert (
        "| toy 1 | 2 | 5 × 1 | 2 | 1 |  | 10^1.0 / 10^0.5 | 10^4.0 / 10^3.0 |"
        in (tmp_path / "REACH.md").read_text()
    )
