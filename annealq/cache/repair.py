"""Checking and repairing a cache file: SQLite's integrity check plus every entry's own
checks (decodes, checksum), and a repair that copies the sound entries to a fresh file and
swaps it in atomically.

Both read the file through a read-only connection, row range by row range, so entries in
damaged pages are counted and skipped rather than stopping the scan. Run a repair while no
other process uses the cache.

Example:
    >>> import pathlib, tempfile
    >>> from annealq.cache.store import CacheStore
    >>> from annealq.results import SolveResult
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "c.sqlite"
    >>> with CacheStore(path) as store:
    ...     store.put("k", "exact", SolveResult({"a": 1}, 1.0))
    >>> report = check_cache(path)
    >>> report.healthy, report.valid
    (True, 1)
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from annealq.cache.guard import require_cache, sqlite_errors
from annealq.cache.rows import COLUMNS, SCHEMA, decode_row
from annealq.errors import CacheError
from annealq.files import check_target

_BATCH = 512


@dataclass
class CheckReport:
    """What :func:`check_cache` found.

    Attributes:
        integrity: SQLite's ``PRAGMA integrity_check`` lines (``["ok"]`` when sound).
        valid: entries that decode and match their checksum.
        unverified: sound entries written before entries had checksums (kept, trusted on
            their energy, which every hit recomputes).
        bad_checksum, unreadable: entries that fail their checksum / do not decode.
        lost_rows: row reads that failed (entries in damaged pages).
    """

    path: Path
    integrity: list[str] = field(default_factory=list)
    valid: int = 0
    unverified: int = 0
    bad_checksum: int = 0
    unreadable: int = 0
    lost_rows: int = 0

    @property
    def healthy(self) -> bool:
        return (
            self.integrity == ["ok"]
            and not self.bad_checksum
            and not self.unreadable
            and not self.lost_rows
        )

    def lines(self) -> list[str]:
        state = (
            "ok"
            if self.integrity == ["ok"]
            else (f"{len(self.integrity)} problem(s), first: {self.integrity[0]}")
        )
        lines = [
            f"cache {self.path}: SQLite integrity check {state}",
            f"entries: {self.valid} valid, {self.bad_checksum} failing their checksum, "
            f"{self.unreadable} unreadable, {self.lost_rows} in damaged pages",
        ]
        if self.unverified:
            lines.append(
                f"  ({self.unverified} of the valid entries predate checksums: "
                "each hit is still checked against its recomputed energy)"
            )
        lines.append(
            "healthy"
            if self.healthy
            else f"damaged: 'annealq cache repair --cache {self.path}' keeps the "
            f"{self.valid} valid entries"
        )
        return lines


def check_cache(path) -> CheckReport:
    """Run SQLite's integrity check and every entry's checks on the cache at ``path``.

    Raises:
        CacheError: no file there, or one SQLite cannot open at all.
    """
    report = CheckReport(Path(path))
    with _reader(path) as conn:
        _integrity(conn, report)
        for row in _scan(conn, report):
            _result, problem = decode_row(*row[1:8])
            _count(report, row, problem)
    return report


def repair_cache(path) -> tuple[CheckReport, int]:
    """Copy the sound entries of the cache at ``path`` (and its last-run record) to a fresh
    file beside it and swap that in atomically; returns the check of the old file and the
    number of entries kept.

    Raises:
        CacheError: no file there, or the fresh file cannot be written.
    """
    path = Path(path)
    report = CheckReport(path)
    with _reader(path):  # no such file, or not a cache: an error before anything is written
        pass
    check_target("cache", path)  # a link is never replaced by the repaired file
    try:
        descriptor, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".repair"
        )
    except OSError as exc:
        raise CacheError(
            f"cannot repair cache {path}: no fresh file can be written in "
            f"{path.parent} ({exc.strerror or exc})"
        ) from None
    os.close(descriptor)
    try:
        with _reader(path) as source, sqlite_errors(path):
            _integrity(source, report)
            target = sqlite3.connect(temporary, isolation_level=None)
            try:
                target.executescript(SCHEMA)
                target.execute("BEGIN")
                kept = 0
                for row in _scan(source, report):
                    _result, problem = decode_row(*row[1:8])
                    _count(report, row, problem)
                    if problem is None:
                        target.execute(
                            f"INSERT OR REPLACE INTO entries ({COLUMNS}) VALUES "
                            "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            _stored(row),
                        )
                        kept += 1
                with contextlib.suppress(sqlite3.Error):
                    target.executemany(
                        "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                        source.execute("SELECT name, value FROM meta"),
                    )
                target.execute("COMMIT")
            finally:
                target.close()
        for sidecar in (f"{path}-wal", f"{path}-shm"):  # the old file's; never replay them
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sidecar)
        os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return report, kept


@contextlib.contextmanager
def _reader(path):
    path = Path(path)
    if not path.is_file():
        raise CacheError(
            f"no cache file at {path}" + (" (it is a folder)" if path.is_dir() else "")
        )
    require_cache(path)
    with sqlite_errors(path):
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


_READ = (
    "SELECT rowid, key, solver, sample, energy, info, wall_seconds, checksum, "
    "sampleset, created FROM entries"
)


def _scan(conn, report: CheckReport):
    """Every row that can still be read, range by range; failed reads are counted."""
    try:
        top = conn.execute("SELECT max(rowid) FROM entries").fetchone()[0] or 0
    except sqlite3.DatabaseError:
        report.lost_rows += 1
        return
    for low in range(1, top + 1, _BATCH):
        try:
            rows = conn.execute(
                f"{_READ} WHERE rowid BETWEEN ? AND ?", (low, low + _BATCH - 1)
            ).fetchall()
        except sqlite3.DatabaseError:
            rows = []
            for rowid in range(low, min(low + _BATCH, top + 1)):
                try:
                    rows += conn.execute(f"{_READ} WHERE rowid = ?", (rowid,)).fetchall()
                except sqlite3.DatabaseError:
                    report.lost_rows += 1
        yield from rows


def _integrity(conn, report: CheckReport) -> None:
    try:
        report.integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        report.integrity = [str(exc)]


def _count(report: CheckReport, row, problem) -> None:
    if problem is None:
        report.valid += 1
        report.unverified += row[7] is None
    elif "checksum" in problem:
        report.bad_checksum += 1
    else:
        report.unreadable += 1


def _stored(row) -> tuple:
    """The store's column order (``COLUMNS``) from a ``_READ`` row."""
    _rowid, key, solver, sample, energy, info, wall, checksum, sampleset, created = row
    return key, solver, sample, energy, info, wall, sampleset, created, checksum
