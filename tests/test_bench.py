import json

import pytest

from benchmarks.harness import bench_paper, bench_solvers, rewrite_paper_markdown


def test_solver_benchmark_writes_its_section_and_keeps_others(tmp_path):
    out = tmp_path / "SOLVERS.md"
    out.write_text("# Solver benchmark\n\n## other, layer 0\n\nkept\n")
    section = bench_solvers(
        "digits",
        [2],
        neurons=3,
        exact_neurons=1,
        exact_time=5,
        out=out,
        command="annealq bench solvers --dataset digits",
        skip_slow=True,
        progress=lambda line: None,
    )
    text = out.read_text()
    assert "## other, layer 0\n\nkept" in text
    assert text.count("## digits, layer 0") == 1
    for label in ("neal, defaults", "batch-sa", "lns", "exact-bb"):
        assert label in section
    assert "neal, 10 reads" not in section  # skipped as slow
    assert "| 0 | yes |" in section  # a 65-variable digits neuron is proven optimal
    bench_solvers(
        "digits",
        [2],
        neurons=2,
        exact_neurons=0,
        out=out,
        skip_slow=True,
        progress=lambda line: None,
    )
    assert out.read_text().count("## digits, layer 0") == 1  # replaced, not appended


def test_paper_benchmark_resumes_from_its_json(tmp_path):
    pytest.importorskip("torch")
    lines = []
    bench_paper(
        ["digits"], [4], methods=["RTN", "QUBO, lns"], out_dir=tmp_path, progress=lines.append
    )
    cells = json.loads((tmp_path / "results.json").read_text())["cells"]
    assert set(cells) == {"digits|4|RTN", "digits|4|QUBO, lns"}
    rtn, qubo = cells["digits|4|RTN"], cells["digits|4|QUBO, lns"]
    assert qubo["energy"] < rtn["energy"]
    assert qubo["rtn_energy"] > 0 and 0 < qubo["accuracy"]["quantized"] <= 1
    markdown = (tmp_path / "RESULTS.md").read_text()
    assert "| int4 |" in markdown and "## digits" in markdown
    bench_paper(["digits"], [4], methods=["RTN"], out_dir=tmp_path, progress=lines.append)
    assert len(lines) == 2  # the second run found its cell done and solved nothing


def test_paper_benchmark_remembers_skipped_cells_until_unskipped(tmp_path):
    pytest.importorskip("torch")
    lines = []
    bench_paper(
        ["digits"],
        [4],
        methods=["RTN"],
        out_dir=tmp_path,
        skip=["digits:RTN"],
        progress=lines.append,
    )
    bench_paper(["digits"], [4], methods=["RTN"], out_dir=tmp_path, progress=lines.append)
    assert lines == []  # the skip was kept in the JSON
    assert json.loads((tmp_path / "results.json").read_text())["skipped"] == ["digits:RTN"]
    bench_paper(
        ["digits"],
        [4],
        methods=["RTN"],
        out_dir=tmp_path,
        unskip=["digits:RTN"],
        progress=lines.append,
    )
    table = json.loads((tmp_path / "results.json").read_text())
    assert len(lines) == 1 and "digits|4|RTN" in table["cells"] and table["skipped"] == []


def test_paper_benchmark_reruns_cells_of_another_model_and_on_request(tmp_path):
    pytest.importorskip("torch")
    lines = []
    bench_paper(["digits"], [4], methods=["RTN"], out_dir=tmp_path, progress=lines.append)
    json_path = tmp_path / "results.json"
    table = json.loads(json_path.read_text())
    cell = table["cells"]["digits|4|RTN"]
    assert (
        len(cell["model"]) == 16
        and "reference model " + cell["model"] in (tmp_path / "RESULTS.md").read_text()
    )
    bench_paper(
        ["digits"], [4], methods=["RTN"], out_dir=tmp_path, rerun=["GPTQ"], progress=lines.append
    )
    assert len(lines) == 1  # same model, another column named: nothing to do
    # a cell from another training of the model (another fingerprint, or before
    # fingerprints another float accuracy) is run again
    for stale in ({"model": "0" * 16}, {"accuracy": {**cell["accuracy"], "float": 0.5}}):
        table["cells"]["digits|4|RTN"] = {
            **{k: v for k, v in cell.items() if k != "model"},
            **stale,
        }
        json_path.write_text(json.dumps(table))
        bench_paper(["digits"], [4], methods=["RTN"], out_dir=tmp_path, progress=lines.append)
        again = json.loads(json_path.read_text())["cells"]["digits|4|RTN"]
        assert (again["model"], again["energy"], again["accuracy"]) == (
            cell["model"],
            cell["energy"],
            cell["accuracy"],
        )
    assert len(lines) == 3
    bench_paper(
        ["digits"], [4], methods=["RTN"], out_dir=tmp_path, rerun=["rtn"], progress=lines.append
    )
    assert len(lines) == 4


def test_paper_markdown_flags_cells_of_different_trainings(tmp_path):
    pytest.importorskip("torch")
    bench_paper(["digits"], [4], methods=["RTN"], out_dir=tmp_path, progress=lambda _: None)
    table = json.loads((tmp_path / "results.json").read_text())
    other = dict(table["cells"]["digits|4|RTN"], model="0" * 16)
    other["accuracy"] = {**other["accuracy"], "float": 0.5}
    table["cells"]["digits|8|RTN"] = other
    (tmp_path / "results.json").write_text(json.dumps(table))
    text = rewrite_paper_markdown(tmp_path).read_text()
    assert "different trainings of the model (float accuracies 50.00%, 96.66%)" in text


def test_solver_benchmark_of_the_window_formulation_from_gptq(tmp_path):
    out = tmp_path / "SOLVERS.md"
    section = bench_solvers(
        "digits",
        [3],
        neurons=4,
        exact_neurons=0,
        out=out,
        window_bits=2,
        start="gptq",
        progress=lambda line: None,
    )
    assert "## digits, layer 0, 2-bit windows, from GPTQ" in section
    assert "GPTQ (the warm start) energy" in section
    rows = [line for line in section.splitlines() if line.startswith("| lns from the start")]
    assert len(rows) == 2
    for row in rows:  # never worse than GPTQ: the "vs GPTQ" ratio is at most 1
        ratio = float(row.split("|")[4].strip().rstrip("×"))
        assert ratio <= 1.0
    # 65 entries per neuron: exact-bb proves each one over its integer windows
    assert "proved 4 of 4 neurons optimal" in section
    assert "- GPTQ (the warm start): +" in section


def test_results_markdown_is_rewritten_from_the_json_with_ratios_to_gptq(tmp_path):
    from benchmarks.harness import rewrite_paper_markdown

    def cell(first, second):
        return {
            "accuracy": {"float": 0.9, "quantized": 0.8},
            "energy": first + second,
            "rtn_energy": 10.0,
            "seconds": 1.0,
            "layers": [{"energy": first}, {"energy": second}],
        }

    table = {
        "machine": "test",
        "calibration": 10,
        "skipped": ["digits:QUBO, lns"],
        "cells": {"digits|2|GPTQ": cell(4.0, 2.0), "digits|2|RTN": cell(8.0, 1.0)},
    }
    (tmp_path / "results.json").write_text(json.dumps(table))
    text = rewrite_paper_markdown(tmp_path).read_text()
    assert "| int2 | 2.000 / 0.500 |" in text  # RTN's error over GPTQ's, layer by layer
    assert "not run" in text  # the lns cell, skipped by an earlier run


def test_paper_benchmark_in_worker_processes_gives_the_same_cell_and_says_so(tmp_path):
    pytest.importorskip("torch")
    column = "QUBO, neal (paper: 1 read, 1,000 sweeps)"
    one, two = tmp_path / "one", tmp_path / "two"
    bench_paper(["digits"], [2], methods=[column], out_dir=one, progress=lambda line: None)
    bench_paper(
        ["digits"], [2], methods=[column], out_dir=two, workers=2, progress=lambda line: None
    )
    cell = {
        d: json.loads((d / "results.json").read_text())["cells"][f"digits|2|{column}"]
        for d in (one, two)
    }
    assert cell[one]["workers"] == 1 and cell[two]["workers"] == 2
    assert cell[one]["energy"] == cell[two]["energy"]
    assert cell[one]["accuracy"] == cell[two]["accuracy"]
    assert "processes)" not in (one / "RESULTS.md").read_text()
    assert f"{cell[two]['seconds']:.1f} (2 processes)" in (two / "RESULTS.md").read_text()
