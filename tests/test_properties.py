"""Property-based tests (hypothesis): the QUBO's energy is the squared output error for
random layers, bit widths, schemes and windows; random command lines over good, damaged and
wrong files end in exit 0 or 2, one ``annealq: error:`` line at most, no traceback, and
never a partial output."""

import json
import shutil
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annealq import formulate_layer, save_model
from annealq.cli import main

FAST = settings(max_examples=40, deadline=None, derandomize=True, database=None)


@st.composite
def layers(draw):
    n, f, m = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 8))
    scheme = draw(st.sampled_from(["reference", "symmetric", "affine"]))
    bits = draw(st.integers(2 if scheme == "symmetric" else 1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weight = rng.normal(size=(n, f)) * draw(st.sampled_from([1e-3, 1.0, 50.0]))
    bias = rng.normal(size=n) if draw(st.booleans()) else None
    inputs = rng.normal(size=(m, f))
    float_inputs = inputs + 0.1 * rng.normal(size=(m, f)) if draw(st.booleans()) else None
    options = {
        "scheme": scheme,
        "per_channel": draw(st.booleans()),
        "window_bits": draw(st.integers(1, 3)),
    }
    return weight, bias, inputs, float_inputs, bits, options


def neuron_samples(lq, weight, bias, target_inputs, data):
    """Per neuron: its index, BQM, a drawn sample of its variables and its float target."""
    for i in range(lq.n_neurons):
        bqm = lq.bqm(i)
        labels = list(bqm.variables)
        sample = dict(
            zip(
                labels,
                data.draw(st.lists(st.integers(0, 1), min_size=len(labels), max_size=len(labels))),
            )
        )
        yield i, bqm, sample, target_inputs @ weight[i] + (0.0 if bias is None else bias[i])


@FAST
@given(layer=layers(), data=st.data())
def test_bqm_energy_is_the_squared_output_error(layer, data):
    weight, bias, inputs, float_inputs, bits, options = layer
    lq = formulate_layer(weight, bias, inputs, bits=bits, float_inputs=float_inputs, **options)
    target_inputs = inputs if float_inputs is None else float_inputs
    for i, bqm, sample, target in neuron_samples(lq, weight, bias, target_inputs, data):
        w_row, b_value = lq.dequantize(i, sample)
        error = float(np.sum((target - inputs @ w_row - b_value) ** 2))
        scale = float(np.sum(target**2) + np.sum((inputs @ w_row) ** 2) + 1e-300)
        assert abs(bqm.energy(sample) - error) <= 1e-9 * scale
        assert abs(lq.energy(i, sample) - error) <= 1e-9 * scale
        q_row, q_bias = lq.quantize(i, sample)
        lo, hi = lq.weight_grid.q_min, lq.weight_grid.q_max
        assert np.all((q_row >= lo) & (q_row <= hi))  # every assignment is admissible


# ---- the command line over random arguments and damaged files ---------------------------


def _files(folder: Path) -> dict:
    """Good, damaged and wrong input files, made once."""
    nn = torch.nn
    torch.manual_seed(0)
    made = {}
    good = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    torch.save(good, folder / "pickled.pt")  # a torch.save zip, damaged below
    data = bytearray((folder / "pickled.pt").read_bytes())
    data[len(data) // 2 : len(data) // 2 + 16] = b"\xff" * 16
    (folder / "damaged.pt").write_bytes(bytes(data))
    save_model(good, folder / "good.pt")
    save_model(nn.Sequential(nn.Flatten(), nn.Linear(64, 5)), folder / "five.pt")
    (folder / "text.pt").write_text("not a model\n")
    for name in ("good", "damaged", "five", "text"):
        made[f"model:{name}"] = folder / f"{name}.pt"
    x = np.zeros((30, 28, 28), np.uint8)
    y = np.arange(30) % 10
    for kind in ("good", "truncated", "text", "wrong"):
        where = folder / f"data-{kind}"
        where.mkdir()
        if kind == "text":
            (where / "mnist.npz").write_text("hello")
        elif kind == "wrong":
            np.savez(where / "mnist.npz", pixels=x)
        else:
            np.savez(where / "mnist.npz", x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
            if kind == "truncated":
                (where / "mnist.npz").write_bytes((where / "mnist.npz").read_bytes()[:500])
        made[f"data:{kind}"] = where
    (folder / "text.sqlite").write_text("not a database " * 200)
    made["cache:text"] = folder / "text.sqlite"
    return made


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return _files(tmp_path_factory.mktemp("inputs"))


# per flag: (values that make sense, values that do not)
ARGUMENTS = {
    "--bits": (["1", "2", "4"], ["0", "9", "x", ""]),
    "--method": (["rtn", "qubo", "gptq"], ["magic"]),
    "--solver": (["steepest"], ["nope"]),
    "--scheme": (["reference", "symmetric", "affine"], ["odd"]),
    "--window-bits": (["1", "2"], ["0", "17"]),
    "--calibration": (["5", "60", "200"], ["0", "100000", "-3"]),
    "--seed": (["0", "7"], ["-1", "2147483648"]),
    "--activation-bits": (["8"], ["1", "x"]),
    "--start": (["rtn", "gptq"], ["sideways"]),
}


@st.composite
def command_lines(draw):
    """Mostly sensible command lines with at most one nonsense value, over good, damaged
    and wrong files and output places."""
    dataset = draw(st.sampled_from(["digits"] * 4 + ["mnist", "imagenet"]))
    argv = ["quantize", "--dataset", dataset, "--quiet"]
    bad = draw(st.sampled_from([None] * 4 + sorted(ARGUMENTS)))
    chosen = {"--bits", "--calibration"} | draw(
        st.sets(st.sampled_from(sorted(ARGUMENTS)), max_size=3)
    )
    if bad is not None:
        chosen.add(bad)
    for flag in sorted(chosen):
        good, nonsense = ARGUMENTS[flag]
        argv += [flag, draw(st.sampled_from(nonsense if flag == bad else good))]
    if dataset == "mnist":
        kind = draw(st.sampled_from(["good", "truncated", "text", "wrong"]))
        argv += ["--data-dir", f"data:{kind}"]
    model = draw(st.sampled_from([None, None, "good", "damaged", "five", "text"]))
    if model:
        argv += ["--model", f"model:{model}"]
    argv += draw(
        st.sampled_from(
            [
                ["--no-cache"],
                ["--cache", "{tmp}/c.sqlite"],
                ["--cache", "{tmp}/c.sqlite"],
                ["--cache", "cache:text"],
                ["--cache", "{tmp}"],
                ["--cache", "{tmp}/missing/c.sqlite"],
            ]
        )
    )
    for flag, name in (("--report", "r.json"), ("--out", "q.pt")):
        where = draw(st.sampled_from([None, "{tmp}", "{tmp}", "/proc", "{tmp}/missing"]))
        if where:
            argv += [flag, f"{where}/{name}"]
    return argv


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(argv=command_lines())
def test_random_command_lines_exit_0_or_2_with_one_line_and_no_partial_output(
    argv, inputs, capsys, monkeypatch, tmp_path_factory
):
    monkeypatch.setenv("ANNEALQ_MODELS", str(tmp_path_factory.getbasetemp() / "models"))
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        work = tmp / "work"
        work.mkdir()
        for key, path in inputs.items():  # each example gets its own copies
            if key.startswith("cache:"):
                shutil.copy(path, work / path.name)
                inputs = {**inputs, key: work / path.name}
        argv = [str(inputs.get(a, a)).replace("{tmp}", str(work)) for a in argv]
        before = {p.name for p in work.iterdir()}
        code = main(argv)
        out, err = capsys.readouterr()
        assert "Traceback" not in err and "Traceback" not in out, (argv, err)
        assert all(line.startswith("annealq: ") for line in err.strip().splitlines()), err
        errors = [line for line in err.splitlines() if line.startswith("annealq: error:")]
        assert code in (0, 2), (argv, code, err)
        assert len(errors) == (1 if code == 2 else 0), (argv, err)
        made = (
            {p.name for p in work.iterdir()} - before - {"c.sqlite", "c.sqlite-wal", "c.sqlite-shm"}
        )
        expected = (
            {Path(argv[k + 1]).name for k, a in enumerate(argv) if a in ("--report", "--out")}
            if code == 0
            else set()
        )
        assert made == expected, (argv, made, err)  # no temporary, nothing partial
        if code == 0 and "--report" in argv:
            json.loads((work / "r.json").read_text())
        if code == 0:
            assert all(
                Path(argv[k + 1]).parent == work
                for k, a in enumerate(argv)
                if a in ("--report", "--out")
            )
        for key in inputs:
            if key.startswith("cache:") and (work / inputs[key].name).exists():
                with pytest.raises(sqlite3.DatabaseError):  # a foreign file stays as it was
                    sqlite3.connect(work / inputs[key].name).execute(
                        "SELECT * FROM entries"
                    ).fetchall()
