import os
import subprocess
import sys

import pytest

from tests.conftest import CANARY_TOKEN


def _annealq(*args, cwd, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWAVE_")}
    env.update(
        {
            "HOME": str(cwd),
            "XDG_CONFIG_HOME": str(cwd),
            "DWAVE_CONFIG_FILE": str(cwd / "missing.conf"),
        }
    )
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "annealq", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _written_text(folder):
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_solvers_lists_backends_and_token_state(tmp_path):
    out = _annealq("solvers", cwd=tmp_path)
    assert out.returncode == 0
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    for name in ("neal", "tabu", "steepest", "exact", "qpu-mock"):
        assert lines[name].split()[1] == "yes"
    assert lines["qpu"].split()[1] == "no" and "no D-Wave API token" in lines["qpu"]
    assert "D-Wave API token: not configured" in out.stdout


@pytest.mark.parametrize("env_file", ["cwd", "variable"])
def test_token_from_dotenv_is_used_and_never_shown(tmp_path, env_file):
    if env_file == "cwd":
        (tmp_path / ".env").write_text(f"DWAVE_API_TOKEN={CANARY_TOKEN}\n")
        extra = {}
    else:
        (tmp_path / "secrets.env").write_text(f"DWAVE_API_TOKEN={CANARY_TOKEN}\n")
        extra = {"ANNEALQ_ENV_FILE": str(tmp_path / "secrets.env")}
    out = _annealq("solvers", cwd=tmp_path, env_extra=extra)
    assert "D-Wave API token: configured" in out.stdout
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert lines["qpu"].split()[1] == "yes"
    assert CANARY_TOKEN not in out.stdout + out.stderr


def test_cloud_solver_with_unreachable_leap_fails_fast_and_leaks_nothing(tmp_path):
    # The token is set but the network (here: none) cannot reach Leap: a clear error,
    # a non-zero exit within seconds, and the token in no output and no file.
    out = _annealq(
        "demo",
        "--bits",
        "2",
        "--solver",
        "qpu",
        cwd=tmp_path,
        env_extra={"DWAVE_API_TOKEN": CANARY_TOKEN},
    )
    assert out.returncode != 0
    assert "annealq: error:" in out.stderr and "Traceback" not in out.stderr
    assert CANARY_TOKEN not in out.stdout + out.stderr + _written_text(tmp_path)


@pytest.mark.parametrize(
    "args, message",
    [
        (["demo", "--bits", "9"], "bits must be from 1 to 8, got 9"),
        (["demo", "--solver", "nope"], "unknown solver 'nope'"),
        (["demo", "--solver", "hybrid"], "no D-Wave API token"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_nonzero_exit(tmp_path, args, message):
    out = _annealq(*args, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("annealq: error:")
    assert message in out.stderr and "Traceback" not in out.stderr


def test_cache_stats_and_clear(tmp_path):
    import numpy as np

    from annealq import formulate_layer, get_sampler, solve_bqms
    from annealq.cache import CacheStore

    db = tmp_path / "c.sqlite"
    rng = np.random.default_rng(0)
    lq = formulate_layer(
        rng.normal(size=(4, 5)), rng.normal(size=4), rng.normal(size=(9, 5)), bits=2
    )
    with CacheStore(db) as store:
        solve_bqms(lq.bqms(), get_sampler("exact"), cache=store, solver_name="exact")
        solve_bqms(lq.bqms(), get_sampler("steepest"), cache=store, solver_name="steepest")
        store.record_run(3, 1)
    out = _annealq("cache", "stats", "--cache", str(db), cwd=tmp_path)
    assert out.returncode == 0
    assert "8 entries" in out.stdout and "last run: 3 hits, 1 misses (75% hits)" in out.stdout
    out = _annealq("cache", "clear", "--cache", str(db), "--solver", "exact", cwd=tmp_path)
    assert out.stdout.strip() == "removed 4 cache entries of solver 'exact'"
    assert "4 entries" in _annealq("cache", "stats", "--cache", str(db), cwd=tmp_path).stdout
    missing = _annealq("cache", "stats", "--cache", str(tmp_path / "nope.sqlite"), cwd=tmp_path)
    assert missing.returncode == 2 and "no cache at" in missing.stderr


def _model_file(folder, kind):
    """A --model file of each bad kind (or None for a path that does not exist)."""
    import torch

    from annealq import save_model

    path = folder / f"{kind}.pt"
    nn = torch.nn
    if kind == "garbage":
        path.write_bytes(b"\x89 this is no model")
    elif kind == "state_dict":
        torch.save(nn.Linear(64, 10).state_dict(), path)
    elif kind == "nan":
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        with torch.no_grad():
            model[1].weight[2, 3] = float("nan")
        save_model(model, path)
    elif kind == "no_linear":
        save_model(nn.Sequential(nn.Flatten(), nn.ReLU()), path)
    return path


@pytest.mark.parametrize(
    "args, model, message",
    [
        (["--bits", "0"], None, "bits must be from 1 to 8, got 0"),
        (["--bits", "9"], None, "bits must be from 1 to 8, got 9"),
        (["--dataset", "imagenet"], None, "unknown dataset 'imagenet'"),
        (["--solver", "nope"], None, "unknown solver 'nope'"),
        (["--method", "magic"], None, "unknown method 'magic'"),
        (["--activation-bits", "1"], None, "activation_bits must be from 2 to 16"),
        (["--method", "gptq", "--damp", "-1"], None, "damp must be a finite number >= 0"),
        (["--ridge", "-1"], None, "ridge must be a finite number >= 0"),
        (["--method", "cd", "--ridge", "0.01"], None, "ridge regularises the qubo method"),
        (["--act-order", "off"], None, "GPTQ's act_order, damp go with start='gptq'"),
        ([], "missing", "does not exist"),
        ([], "garbage", "not a torch.save or TorchScript file"),
        ([], "state_dict", "not a torch.nn.Module"),
        ([], "nan", "contains NaN or Inf values"),
        ([], "no_linear", "no nn.Linear layer to quantize"),
    ],
)
def test_quantize_bad_input_one_line_exit_2_no_traceback_no_files(
    tmp_path, monkeypatch, capsys, args, model, message
):
    from annealq.cli import main

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    model_args = ["--model", str(_model_file(tmp_path, model))] if model else []
    before = {p.name for p in tmp_path.iterdir()}
    defaults = {"--dataset": "digits", "--bits": "2", "--solver": "steepest"}
    for flag, value in zip(args[::2], args[1::2]):
        defaults[flag] = value
    argv = [
        "quantize",
        *[x for pair in defaults.items() for x in pair],
        *model_args,
        "--report",
        "r.json",
        "--out",
        "q.pt",
        "--no-cache",
        "--quiet",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("annealq: error:") and message in err and "Traceback" not in err
    assert {p.name for p in tmp_path.iterdir()} == before  # no report, model or temp file


def test_quantize_bad_input_through_the_installed_command(tmp_path):
    out = _annealq(
        "quantize",
        "--dataset",
        "digits",
        "--bits",
        "2",
        "--model",
        str(tmp_path / "missing.pt"),
        "--report",
        "r.json",
        cwd=tmp_path,
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"annealq: error: model file {tmp_path / 'missing.pt'} does not exist"
    ]
    assert not (tmp_path / "r.json").exists()


def test_quantize_digits_with_neal_writes_a_valid_report(tmp_path):
    import json

    out = _annealq(
        "quantize",
        "--dataset",
        "digits",
        "--bits",
        "2",
        "--solver",
        "neal",
        "--report",
        "r.json",
        "--out",
        "q.pt",
        "--calibration",
        "300",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert (report["dataset"], report["bits"], report["solver"], report["method"]) == (
        "digits",
        2,
        "neal",
        "qubo",
    )
    assert [(l["in_features"], l["out_features"]) for l in report["layers"]] == [(64, 64), (64, 10)]
    assert all(0 < l["energy"] < l["rtn_energy"] for l in report["layers"])
    assert report["cache"] == {"hits": 0, "misses": 74}
    accuracy = report["accuracy"]
    assert accuracy["quantized"] >= accuracy["rtn"] and accuracy["float"] > 0.9
    assert report["calibration_size"] == 300
    # the summary table shows the same numbers
    first = report["layers"][0]
    row = next(line for line in out.stdout.splitlines() if line.startswith("1 "))
    assert row.split()[1:4] == ["64x64", f"{first['rtn_energy']:.6g}", f"{first['energy']:.6g}"]
    assert f"qubo {accuracy['quantized']:.2%}" in out.stdout
    # the saved model reproduces the report's accuracy
    import annealq
    from annealq.data.datasets import load_digits
    from annealq.data.models import accuracy as model_accuracy

    data = load_digits()
    loaded = annealq.load(tmp_path / "q.pt")
    assert model_accuracy(loaded.model, data.x_test, data.y_test) == accuracy["quantized"]
    # a second run is served by the cache
    again = _annealq(
        "quantize",
        "--dataset",
        "digits",
        "--bits",
        "2",
        "--solver",
        "neal",
        "--report",
        "r2.json",
        "--calibration",
        "300",
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "r2.json").read_text())["cache"] == {"hits": 74, "misses": 0}


def test_no_cache_neither_reads_nor_writes_the_default_cache(tmp_path):
    import json

    cache = tmp_path / "default.sqlite"
    out = _annealq(
        "quantize",
        "--dataset",
        "digits",
        "--bits",
        "2",
        "--solver",
        "batch-sa",
        "--calibration",
        "200",
        "--no-cache",
        "--report",
        "a.json",
        "--quiet",
        cwd=tmp_path,
        env_extra={"ANNEALQ_CACHE": str(cache)},
    )
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "a.json").read_text())["cache"] == {"hits": 0, "misses": 74}
    assert not cache.exists()  # a second run could read nothing: one run shows both
