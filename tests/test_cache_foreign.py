"""A file that is not an annealq cache is refused before it is touched (its bytes hashed
before and after: no WAL switch, no table, no repair onto it), and a cache row of deeply
nested JSON is an unreadable entry, never a crash."""

import hashlib
import os
import sqlite3

import pytest

from annealq.cache import CacheStore
from annealq.cache.keys import entry_checksum
from annealq.cache.repair import check_cache, repair_cache
from annealq.errors import CacheError
from tests.test_hardening import QUANTIZE, one_error_line, run


def _foreign(folder, kind):
    path = folder / f"{kind}.db"
    if kind == "sqlite":
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT)")
            db.execute("INSERT INTO accounts VALUES (1, 'ada')")
        db.close()
    elif kind == "entries_lookalike":  # a table named entries, but another program's
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE entries (id INTEGER, note TEXT)")
        db.close()
    else:
        path.write_text("my notes, not a database\n" * 50)
    return path


def _state(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.mark.parametrize("kind", ["sqlite", "entries_lookalike", "text"])
@pytest.mark.parametrize(
    "command",
    [["cache", "repair"], ["cache", "clear"], ["cache", "check"], ["cache", "stats"], QUANTIZE],
)
def test_a_foreign_file_is_refused_and_keeps_its_bytes(tmp_path, capsys, kind, command):
    path = _foreign(tmp_path, kind)
    before = _state(tmp_path)
    code, out, err = run(capsys, *command, "--cache", path)
    assert code == 2 and out == ""
    one_error_line(err, "not a usable annealq cache", path)
    assert _state(tmp_path) == before  # same files, same bytes: no -wal, no repair


def test_the_api_refuses_a_foreign_file_too(tmp_path):
    path = _foreign(tmp_path, "sqlite")
    before = _state(tmp_path)
    for call in (CacheStore, check_cache, repair_cache):
        with pytest.raises(CacheError, match="not a usable annealq cache"):
            call(path)
    assert _state(tmp_path) == before


def test_repair_never_replaces_a_link(tmp_path, capsys):
    CacheStore(tmp_path / "real.sqlite").close()
    os.symlink("real.sqlite", tmp_path / "link.sqlite")
    code, _, err = run(capsys, "cache", "repair", "--cache", tmp_path / "link.sqlite")
    assert code == 2
    one_error_line(err, "is a symbolic link")
    assert os.path.islink(tmp_path / "link.sqlite")


def _nest(path, column, count=3):
    deep = "[" * 200_000 + "]" * 200_000
    with sqlite3.connect(path) as db:
        for key, solver, sample, energy in db.execute(
            f"SELECT key, solver, sample, energy FROM entries LIMIT {count}"
        ).fetchall():
            sample = deep if column == "sample" else sample
            db.execute(
                f"UPDATE entries SET {column} = ?, checksum = ? WHERE key = ?",
                (deep, entry_checksum(key, solver, sample, energy), key),
            )
    db.close()


@pytest.mark.parametrize("column", ["sample", "info"])
def test_deeply_nested_json_rows_are_unreadable_entries(tmp_path, capsys, column):
    path = tmp_path / "c.sqlite"
    assert run(capsys, *QUANTIZE, "--cache", path)[0] == 0
    entries = check_cache(path).valid
    _nest(path, column)
    code, out, err = run(capsys, "cache", "check", "--cache", path)
    assert code == 1 and err == "" and "3 unreadable" in out
    code, out, err = run(capsys, "cache", "repair", "--cache", path)
    assert code == 0 and err == "" and f"kept {entries - 3} valid entries" in out
    _nest(path, column)
    code, _, err = run(capsys, *QUANTIZE, "--cache", path)
    assert code == 0 and "Traceback" not in err and "treating it as a miss" in err
    assert check_cache(path).healthy  # the run replaced them
