"""Hostile input and faults: a damaged or poisoned cache, unusable paths, damaged dataset
and model files, late write failures and nonsense arguments. Each is one ``annealq: error:``
line and exit 2 (or, for a poisoned cache, the clean result and one warning), and leaves
no partial output."""

import json
import logging
import sqlite3

import numpy as np
import pytest
import torch

from annealq import formulate_layer, get_sampler, save_model, solve_bqms
from annealq.cache import CacheStore
from annealq.cache.keys import entry_checksum
from annealq.cache.repair import check_cache, repair_cache
from annealq.cli import main
from annealq.data.datasets import load_dataset
from annealq.errors import CacheError

QUANTIZE = [
    "quantize",
    "--dataset",
    "digits",
    "--bits",
    "2",
    "--solver",
    "steepest",
    "--calibration",
    "200",
    "--quiet",
]


@pytest.fixture(autouse=True)
def shared_models(tmp_path_factory, monkeypatch):
    """The digits reference MLP trained once for this module, not once per test."""
    monkeypatch.setenv("ANNEALQ_MODELS", str(tmp_path_factory.getbasetemp() / "models"))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("annealq: error:"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert str(fragment) in lines[0], (fragment, lines[0])
    return lines[0]


def _layer():
    rng = np.random.default_rng(5)
    return formulate_layer(
        rng.normal(size=(6, 7)), rng.normal(size=6), rng.normal(size=(30, 7)), bits=2
    )


def _poison(path, keys, *, fix_checksum):
    """Flip every bit of these entries' samples (still valid JSON); with ``fix_checksum``
    the checksum is recomputed, so only the energy check can tell."""
    with sqlite3.connect(path) as db:
        for key in keys:
            solver, sample, energy = db.execute(
                "SELECT solver, sample, energy FROM entries WHERE key = ?", (key,)
            ).fetchone()
            flipped = json.dumps(
                [[label, 1 - value] for label, value in json.loads(sample)], separators=(",", ":")
            )
            checksum = entry_checksum(key, solver, flipped, energy) if fix_checksum else "x"
            db.execute(
                "UPDATE entries SET sample = ?, checksum = ? WHERE key = ?",
                (flipped, checksum, key),
            )


def test_poisoned_entries_are_misses_with_one_warning_and_are_replaced(tmp_path, caplog):
    lq, path, exact = _layer(), tmp_path / "c.sqlite", get_sampler("exact")
    with CacheStore(path) as store:
        clean = solve_bqms(lq.bqms(), exact, cache=store, solver_name="exact")
        keys = list(store._conn.execute("SELECT key FROM entries ORDER BY key"))
    keys = [k for (k,) in keys]
    _poison(path, keys[:2], fix_checksum=False)  # caught by the checksum
    _poison(path, keys[2:4], fix_checksum=True)  # caught by the recomputed energy
    with CacheStore(path) as store, caplog.at_level(logging.INFO, logger="annealq.cache"):
        again = solve_bqms(lq.bqms(), exact, cache=store, solver_name="exact")
        assert store.rejected == 4
    assert [r.sample for r in again] == [r.sample for r in clean]
    assert [r.energy for r in again] == pytest.approx([r.energy for r in clean])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "treating it as a miss" in warnings[0].getMessage()
    assert sum(bool(r.info.get("cached")) for r in again) == len(again) - 4
    report = check_cache(path)  # replaced: the file is sound again
    assert report.healthy and report.valid == len(keys)


def test_cli_run_on_a_poisoned_cache_gives_the_clean_result_and_a_warning(tmp_path, capsys, caplog):
    cache = tmp_path / "c.sqlite"
    assert run(capsys, *QUANTIZE, "--cache", cache, "--report", tmp_path / "a.json")[0] == 0
    with sqlite3.connect(cache) as db:
        keys = [k for (k,) in db.execute("SELECT key FROM entries LIMIT 20")]
    _poison(cache, keys, fix_checksum=False)
    with caplog.at_level(logging.WARNING, logger="annealq"):
        code, _, err = run(capsys, *QUANTIZE, "--cache", cache, "--report", tmp_path / "b.json")
    assert code == 0 and "Traceback" not in err
    assert len([r for r in caplog.records if "fails its checksum" in r.getMessage()]) == 1
    first, second = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert [l["energy"] for l in second["layers"]] == [l["energy"] for l in first["layers"]]
    assert second["cache"] == {"hits": 74 - 20, "misses": 20}


def _damage_middle(path, count=16):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + count] = b"\xa5" * count
    path.write_bytes(bytes(data))


def test_damaged_cache_file_is_one_line_then_check_and_repair_keep_the_valid_entries(
    tmp_path, capsys
):
    cache = tmp_path / "c.sqlite"
    assert run(capsys, *QUANTIZE, "--cache", cache)[0] == 0
    _damage_middle(cache)
    code, out, err = run(capsys, *QUANTIZE, "--cache", cache, "--out", tmp_path / "m.pt")
    assert code == 2
    one_error_line(err, cache, "damaged", "annealq cache repair")
    assert not (tmp_path / "m.pt").exists()
    code, out, _ = run(capsys, "cache", "check", "--cache", cache)
    assert code == 1 and "damaged" in out
    code, out, _ = run(capsys, "cache", "repair", "--cache", cache)
    assert code == 0 and "kept" in out
    code, out, _ = run(capsys, "cache", "check", "--cache", cache)
    assert code == 0 and out.strip().endswith("healthy")
    assert run(capsys, *QUANTIZE, "--cache", cache)[0] == 0  # and it serves runs again


@pytest.mark.parametrize("kind", ["folder", "proc", "missing_folder", "not_sqlite"])
def test_unusable_cache_paths_are_one_line(tmp_path, capsys, kind):
    path = {
        "folder": tmp_path,
        "proc": "/proc/annealq-c.sqlite",
        "missing_folder": tmp_path / "nope" / "c.sqlite",
        "not_sqlite": tmp_path / "c.sqlite",
    }[kind]
    if kind == "not_sqlite":
        path.write_text("not a database at all " * 100)
    code, _, err = run(capsys, *QUANTIZE, "--cache", path)
    assert code == 2
    one_error_line(err, path)
    assert not (tmp_path / "nope").exists()  # a user-given folder is never created


def test_a_lock_held_beyond_the_timeout_is_a_cache_error(tmp_path):
    path = tmp_path / "c.sqlite"
    CacheStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(CacheError, match="locked by another process"):
            with CacheStore(path, timeout=0.1) as store:
                store.record_run(1, 1)
    finally:
        holder.close()


def test_a_cache_written_before_checksums_is_read_and_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the schema of the previous release
        db.execute(
            "CREATE TABLE entries (key TEXT PRIMARY KEY, solver TEXT NOT NULL, sample "
            "TEXT NOT NULL, energy REAL NOT NULL, info TEXT NOT NULL, wall_seconds "
            "REAL NOT NULL, sampleset TEXT, created REAL NOT NULL)"
        )
        db.execute(
            "INSERT INTO entries VALUES ('k', 'neal', '[[\"a\",1]]', 1.5, '{}', 0.1, NULL, 0)"
        )
    with CacheStore(path) as store:
        assert store.get_many(["k"])["k"].sample == {"a": 1}
    report = check_cache(path)
    assert report.healthy and report.unverified == 1
    assert repair_cache(path)[1] == 1


def _npz(path, kind):
    x = np.zeros((6, 28, 28), np.uint8)
    y = np.arange(6) % 3
    if kind == "truncated":
        np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y)
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "text":
        path.write_text("hello, I am not an archive\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "wrong_arrays":
        np.savez(path, images=x, labels=y)
    elif kind == "label_count":
        np.savez(path, x_train=x, y_train=y[:5], x_test=x, y_test=y)
    elif kind == "float_labels":
        np.savez(path, x_train=x, y_train=y + 0.5, x_test=x, y_test=y)
    elif kind == "corrupted_member":
        np.savez_compressed(
            path,
            x_train=np.arange(6 * 784, dtype=np.uint8).reshape(6, 28, 28),
            y_train=y,
            x_test=x,
            y_test=y,
        )
        data = bytearray(path.read_bytes())
        data[80:96] = b"\x00" * 16  # inside x_train's compressed bytes
        path.write_bytes(bytes(data))
    elif kind == "folder":
        path.mkdir()


@pytest.mark.parametrize(
    "kind, message",
    [
        ("truncated", "is damaged"),
        ("text", "is not an .npz (zip) archive"),
        ("empty", "is empty"),
        ("wrong_arrays", "lacks the array(s) x_train"),
        ("label_count", "6 train images but 5 labels"),
        ("float_labels", "integer label"),
        ("corrupted_member", "is damaged"),
        ("folder", "is a folder, not a file"),
    ],
)
def test_damaged_or_wrong_dataset_files_are_named_as_such(tmp_path, kind, message):
    _npz(tmp_path / "mnist.npz", kind)
    with pytest.raises(ValueError) as raised:
        load_dataset("mnist", data_dir=tmp_path)
    text = str(raised.value)
    assert message in text and str(tmp_path / "mnist.npz") in text and "\n" not in text


def test_a_truncated_dataset_through_the_cli(tmp_path, capsys):
    _npz(tmp_path / "mnist.npz", "truncated")
    argv = [a if a != "digits" else "mnist" for a in QUANTIZE]
    code, _, err = run(capsys, *argv, "--data-dir", tmp_path, "--report", tmp_path / "r.json")
    assert code == 2
    one_error_line(err, tmp_path / "mnist.npz", "damaged")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist.npz"]


def _models(folder):
    nn = torch.nn
    torch.manual_seed(0)
    good = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    torch.save(good, folder / "pickled.pt")  # a torch.save zip, damaged below
    data = bytearray((folder / "pickled.pt").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = b"\xff" * 16
    (folder / "damaged.pt").write_bytes(bytes(data))
    save_model(good, folder / "good.pt")
    save_model(nn.Sequential(nn.Flatten(), nn.Linear(64, 5)), folder / "five.pt")
    save_model(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), folder / "wide.pt")
    (folder / "folder.pt").mkdir()


@pytest.mark.parametrize(
    "name, message",
    [
        ("damaged.pt", "is damaged"),
        ("five.pt", "gives 5 outputs per input, but digits has 10"),
        ("pickled.pt", "is a pickled module"),
        ("wide.pt", "cannot run on digits's inputs"),
        ("folder.pt", "is a folder, not a file"),
    ],
)
def test_bad_model_files_and_models_that_do_not_fit_the_dataset(tmp_path, capsys, name, message):
    _models(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run(
        capsys,
        *QUANTIZE,
        "--model",
        tmp_path / name,
        "--no-cache",
        "--report",
        tmp_path / "r.json",
        "--out",
        tmp_path / "q.pt",
    )
    assert code == 2
    one_error_line(err, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_late_write_failure_leaves_no_output(tmp_path, capsys, monkeypatch):
    from annealq import commands

    def failing(data):
        def write(stream):
            stream.write(b"{")
            raise OSError(28, "No space left on device")

        return write

    monkeypatch.setattr(commands, "_json_writer", failing)
    code, _, err = run(
        capsys,
        *QUANTIZE,
        "--method",
        "rtn",
        "--report",
        tmp_path / "r.json",
        "--out",
        tmp_path / "m.pt",
    )
    assert code == 2
    one_error_line(err, tmp_path / "r.json", "No space left")
    assert list(tmp_path.iterdir()) == []  # neither output, no temporary


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--report", "/proc/r.json", "--out", "{tmp}/m.pt"], ["--report /proc/r.json"]),
        (["--report", "{tmp}/x", "--out", "{tmp}/x"], ["--report and --out name the same file"]),
        (["--out", "{tmp}/missing/m.pt"], ["does not exist"]),
        (["--calibration", "100000"], ["--calibration 100000", "1348"]),
        (["--calibration", "0"], ["argument --calibration"]),
        (["--seed", "-1"], ["argument --seed", "-1"]),
        (["--seed", "x"], ["argument --seed"]),
        (["--bits", "two"], ["argument --bits"]),
        (["--bits", "9"], ["argument --bits", "bits must be from 1 to 8, got 9"]),
        (["--window-bits", "99"], ["argument --window-bits"]),
        (["--scheme", "odd"], ["argument --scheme", "invalid choice"]),
        (["--frobnicate"], ["unrecognized arguments: --frobnicate"]),
    ],
)
def test_nonsense_arguments_are_one_line_naming_the_flag(tmp_path, capsys, args, fragments):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, out, err = run(capsys, *QUANTIZE, "--no-cache", *args)
    assert code == 2 and out == ""
    one_error_line(err, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_a_tiny_calibration_set_is_warned_about_and_reported(tmp_path, capsys, caplog):
    with caplog.at_level(logging.WARNING, logger="annealq"):
        code, _, _ = run(
            capsys,
            *[a if a != "200" else "5" for a in QUANTIZE],
            "--method",
            "rtn",
            "--report",
            tmp_path / "r.json",
        )
    assert code == 0
    [warning] = [r.getMessage() for r in caplog.records if "calibration" in r.getMessage()]
    assert "only 5 calibration inputs" in warning
    assert json.loads((tmp_path / "r.json").read_text())["warnings"] == [warning]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--cache", "/nonexistent/c.sqlite"], "folder /nonexistent does not exist"),
        (["--calibration", "5000"], "--calibration 5000 is larger than the training split"),
    ],
)
def test_demo_checks_its_cache_and_calibration_before_any_work(capsys, args, fragment):
    code, out, err = run(capsys, "demo", "--bits", "2", *args)
    assert code == 2 and out == ""
    one_error_line(err, fragment)
