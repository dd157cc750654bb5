"""The SQLite store of solved problems, so repeated and interrupted runs skip solving.

:class:`CacheStore` keeps each key's best sample in SQLite (WAL mode), every result
committed on its own, so a run killed with ``kill -9`` keeps everything it solved.
Every entry carries its energy and a checksum (:func:`~annealq.cache.keys.entry_checksum`):
a row that does not decode or whose checksum does not match is a miss, warned about once,
and replaced by the next result for its key. Every SQLite error becomes one
:class:`~annealq.errors.CacheError` naming the file. :func:`open_cache` turns the API's
``cache=`` argument into a store.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

import dimod

from annealq.cache.guard import require_cache, sqlite_errors
from annealq.cache.keys import entry_checksum, validate_text
from annealq.cache.location import check_location, default_cache_path
from annealq.cache.rows import COLUMNS, SCHEMA, decode_row, dumps, loads, plain_info
from annealq.errors import CacheError
from annealq.results import SolveResult

logger = logging.getLogger(__name__)

_CHUNK = 900  # keys per query: under SQLite's historical limit of 999 bound variables


ENERGY_RTOL = 1e-6
"""How far (relative) a hit's stored energy may be from the one recomputed from the problem
asked about: keys round coefficients to 24 bits, solvers report float64 energies."""


class CacheStore:
    """Solved BQMs in an SQLite file, one row per cache key.

    WAL mode lets one process write while others read; each :meth:`put` is its own
    committed transaction (``synchronous=NORMAL``: a killed process loses nothing
    committed, a power cut may lose the last few). A row that cannot be decoded is logged
    once, read as a miss and replaced by the next :meth:`put` of its key. One connection
    per store: share a store between threads only with a lock of your own.

    Args:
        path: the SQLite file (created if missing); default
            :func:`~annealq.cache.location.default_cache_path`.
            Its folder must exist, except the per-user cache folder, which is created.
        timeout: seconds to wait for another process's lock before failing.

    Attributes:
        rejected: entries read as misses because they failed verification.

    Raises:
        CacheError (a ``ValueError``): the folder does not exist, ``path`` is a folder or
            not an SQLite database, or any later SQLite error (damaged pages, a lock held
            beyond ``timeout``, a read-only file); the message names the file.

    Example:
        >>> import pathlib, tempfile
        >>> store = CacheStore(pathlib.Path(tempfile.mkdtemp()) / "c.sqlite")
        >>> store.put("k1", "exact", SolveResult({("w", 0): 1}, 0.25, {"note": "hi"}, 0.1))
        >>> store.get_many(["k1", "k2"])["k1"].sample
        {('w', 0): 1}
        >>> store.stats()["entries"], store.stats()["solvers"]
        (1, {'exact': 1})
        >>> store.close()
    """

    def __init__(self, path: str | os.PathLike | None = None, *, timeout: float = 30.0):
        self.path = Path(path) if path is not None else default_cache_path()
        self.timeout = timeout
        self.rejected = 0
        self._warned: set[str] = set()
        check_location(self.path)
        require_cache(self.path)  # read-only: a foreign file is refused before any write
        # Autocommit: every write below is a single statement, hence its own transaction.
        with self._guard():
            self._conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        try:
            with self._guard():
                mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.executescript(SCHEMA)
                columns = {row[1] for row in self._conn.execute("PRAGMA table_info(entries)")}
                if "checksum" not in columns:  # a cache written before entries had checksums
                    self._conn.execute("ALTER TABLE entries ADD COLUMN checksum TEXT")
        except CacheError:
            self._conn.close()
            raise
        if mode.lower() != "wal":
            logger.warning(
                "cache %s runs in %s journal mode, not WAL: concurrent readers "
                "may wait for writers",
                self.path,
                mode,
            )

    def get_many(self, keys: Iterable[str]) -> dict[str, SolveResult]:
        """The stored results of ``keys`` (misses are absent), in one query per 900 keys."""
        keys = list(dict.fromkeys(keys))
        for key in keys:
            validate_text(key, "key")
        found = {}
        with self._guard():
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                rows = self._conn.execute(
                    "SELECT key, solver, sample, energy, info, wall_seconds, checksum "
                    f"FROM entries WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                for row in rows.fetchall():
                    result, problem = decode_row(*row)
                    if problem is None:
                        found[row[0]] = result
                    else:
                        self.reject(row[0], problem)
        return found

    def verify_energy(self, key: str, stored: float, recomputed: float) -> bool:
        """Whether a hit's stored energy matches the one recomputed from the problem; a
        mismatch is :meth:`reject`-ed (warned about, and the caller treats it as a miss)."""
        if abs(stored - recomputed) <= ENERGY_RTOL * max(abs(stored), abs(recomputed)) + 1e-9:
            return True
        self.reject(key, f"has energy {stored!r} but its sample's energy is {recomputed!r}")
        return False

    def reject(self, key: str, problem: str) -> None:
        """Count an entry that failed verification; the first one of this store is a
        warning (the rest are logged at INFO level), each key's once."""
        if key in self._warned:
            return
        self._warned.add(key)
        self.rejected += 1
        level = logging.WARNING if self.rejected == 1 else logging.INFO
        logger.log(
            level,
            "cache %s: entry %s %s; treating it as a miss: it is solved again "
            "and replaced ('annealq cache check --cache %s' lists all such entries)",
            self.path,
            key[:12],
            problem,
            self.path,
        )

    def get_sampleset(self, key: str) -> dimod.SampleSet | None:
        """The full sample set stored with ``key``, or ``None`` (absent or unreadable)."""
        validate_text(key, "key")
        with self._guard():
            row = self._conn.execute(
                "SELECT sampleset FROM entries WHERE key = ?", (key,)
            ).fetchone()
        if row is None or row[0] is None:
            return None
        try:
            return dimod.SampleSet.from_serializable(loads(row[0]))
        except (TypeError, ValueError, KeyError) as exc:
            self.reject(key, f"has an unreadable sample set ({exc})")
            return None

    def put(
        self, key: str, solver: str, result: SolveResult, sampleset: dimod.SampleSet | None = None
    ) -> None:
        """Store (or replace) ``key``'s result, committed before returning.

        Args:
            key: from :func:`cache_key`.
            solver: the solver's name, for :meth:`stats` and :meth:`clear`.
            result: the best sample, its energy, info (made JSON: numpy values to numbers,
                unknown objects to ``str``, credential-like keys dropped) and wall time.
            sampleset: optionally the whole sample set, kept as dimod's serialization.

        Raises:
            TypeError: ``result`` is not a :class:`SolveResult`.
            ValueError: an empty key or solver name, or a non-finite energy.
        """
        validate_text(key, "key")
        validate_text(solver, "solver")
        if not isinstance(result, SolveResult):
            raise TypeError(f"result must be a SolveResult, got {type(result).__name__}")
        if not math.isfinite(result.energy):
            raise ValueError(f"result.energy must be finite, got {result.energy!r}")
        sample = dumps([[label, int(value)] for label, value in result.sample.items()])
        serialized = None
        if sampleset is not None:
            try:
                serialized = dumps(plain_info(sampleset).to_serializable())
            except (TypeError, ValueError, AttributeError) as exc:
                logger.warning("sample set of cache entry %s not stored: %s", key[:12], exc)
        energy = float(result.energy)
        with self._guard():
            self._conn.execute(
                f"INSERT OR REPLACE INTO entries ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    solver,
                    sample,
                    energy,
                    dumps(dict(result.info)),
                    float(result.wall_seconds),
                    serialized,
                    time.time(),
                    entry_checksum(key, solver, sample, energy),
                ),
            )
        self._warned.discard(key)

    def record_run(self, hits: int, misses: int) -> None:
        """Remember a run's cache hits and misses, reported by :meth:`stats`."""
        for name, value in (("hits", hits), ("misses", misses)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        value = json.dumps({"hits": hits, "misses": misses, "time": time.time()})
        with self._guard():
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_run', ?)", (value,))

    def stats(self) -> dict:
        """``{"path", "entries", "bytes", "solvers": {name: entries}, "last_run"}``.

        ``bytes`` counts the database and its write-ahead log; ``last_run`` is
        ``{"hits", "misses", "time"}`` from :meth:`record_run`, or ``None``.
        """
        with self._guard():
            solvers = dict(
                self._conn.execute(
                    "SELECT solver, COUNT(*) FROM entries GROUP BY solver ORDER BY solver"
                )
            )
            row = self._conn.execute("SELECT value FROM meta WHERE name = 'last_run'").fetchone()
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        last_run = None
        if row is not None:
            try:
                last_run = dict(loads(row[0]))
            except (TypeError, ValueError) as exc:
                logger.warning("cache %s: unreadable last-run record ignored (%s)", self.path, exc)
        return {
            "path": str(self.path),
            "entries": sum(solvers.values()),
            "bytes": size,
            "solvers": solvers,
            "last_run": last_run,
        }

    def clear(self, solver: str | None = None) -> int:
        """Delete every entry, or only ``solver``'s; returns how many were deleted."""
        if solver is not None:
            validate_text(solver, "solver")
        with self._guard():
            if solver is None:
                return self._conn.execute("DELETE FROM entries").rowcount
            return self._conn.execute("DELETE FROM entries WHERE solver = ?", (solver,)).rowcount

    def close(self) -> None:
        """Close the connection (the last one to close folds the WAL into the file)."""
        with self._guard():
            self._conn.close()

    def __enter__(self) -> CacheStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CacheStore({str(self.path)!r})"

    def _guard(self):
        return sqlite_errors(self.path, self.timeout)


def open_cache(cache) -> CacheStore | None:
    """The store an API ``cache=`` argument selects.

    ``None`` → the default store (``$ANNEALQ_CACHE`` or the per-user cache folder);
    ``False`` → no cache; a path → a store there; a :class:`CacheStore` → itself.
    """
    if cache is False:
        return None
    if cache is None:
        return CacheStore(default_cache_path())
    if isinstance(cache, CacheStore):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return CacheStore(cache)
    raise TypeError(
        f"cache must be None, False, a path or a CacheStore, got {type(cache).__name__}"
    )
