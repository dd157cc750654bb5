"""The SQLite store of solved problems, so repeated and interrupted runs skip solving.

:class:`CacheStore` keeps each key's best sample in SQLite (WAL mode), every result
committed on its own, so a run killed with ``kill -9`` keeps everything it solved.
:func:`open_cache` turns the API's ``cache=`` argument into a store.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import dimod
import numpy as np

from annealq.cache.keys import is_credential, label_from_json, validate_text
from annealq.results import SolveResult

logger = logging.getLogger(__name__)

_CHUNK = 900  # keys per query: under SQLite's historical limit of 999 bound variables


_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    solver TEXT NOT NULL,
    sample TEXT NOT NULL,        -- JSON [[label, value], ...]; tuple labels as lists
    energy REAL NOT NULL,
    info TEXT NOT NULL,          -- JSON object
    wall_seconds REAL NOT NULL,
    sampleset TEXT,              -- JSON of SampleSet.to_serializable(), or NULL
    created REAL NOT NULL        -- Unix time
);
CREATE INDEX IF NOT EXISTS entries_by_solver ON entries (solver);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def default_cache_path() -> Path:
    """``$ANNEALQ_CACHE``, else ``$XDG_CACHE_HOME/annealq/cache.sqlite``, else
    ``~/.cache/annealq/cache.sqlite``."""
    if os.environ.get("ANNEALQ_CACHE"):
        return Path(os.environ["ANNEALQ_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # XDG: ignore relative
    return root / "annealq" / "cache.sqlite"


class CacheStore:
    """Solved BQMs in an SQLite file, one row per cache key.

    WAL mode lets one process write while others read; each :meth:`put` is its own
    committed transaction (``synchronous=NORMAL``: a killed process loses nothing
    committed, a power cut may lose the last few). A row that cannot be decoded is logged
    once, read as a miss and replaced by the next :meth:`put` of its key. One connection
    per store: share a store between threads only with a lock of your own.

    Args:
        path: the SQLite file (created with its folder); default :func:`default_cache_path`.
        timeout: seconds to wait for another process's lock before failing.

    Raises:
        ValueError: ``path`` exists but is not an SQLite database.

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: every write below is a single statement, hence its own transaction.
        self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None,
                                     check_same_thread=False)
        self._warned: set[str] = set()
        try:
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise ValueError(f"{self.path} is not a usable annealq cache ({exc}); "
                             "delete it or choose another path") from None
        if mode.lower() != "wal":
            logger.warning("cache %s runs in %s journal mode, not WAL: concurrent readers "
                           "may wait for writers", self.path, mode)

    def get_many(self, keys: Iterable[str]) -> dict[str, SolveResult]:
        """The stored results of ``keys`` (misses are absent), in one query per 900 keys."""
        keys = list(dict.fromkeys(keys))
        for key in keys:
            validate_text(key, "key")
        found = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            rows = self._conn.execute(
                "SELECT key, sample, energy, info, wall_seconds FROM entries "
                f"WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            for key, *fields in rows:
                result = self._decode(key, *fields)
                if result is not None:
                    found[key] = result
        return found

    def get_sampleset(self, key: str) -> dimod.SampleSet | None:
        """The full sample set stored with ``key``, or ``None`` (absent or unreadable)."""
        validate_text(key, "key")
        row = self._conn.execute("SELECT sampleset FROM entries WHERE key = ?",
                                 (key,)).fetchone()
        if row is None or row[0] is None:
            return None
        try:
            return dimod.SampleSet.from_serializable(json.loads(row[0]))
        except (TypeError, ValueError, KeyError) as exc:
            self._warn_once(key, exc)
            return None

    def put(self, key: str, solver: str, result: SolveResult,
            sampleset: dimod.SampleSet | None = None) -> None:
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
        sample = _dumps([[label, int(value)] for label, value in result.sample.items()])
        serialized = None
        if sampleset is not None:
            try:
                serialized = _dumps(_plain_info(sampleset).to_serializable())
            except (TypeError, ValueError, AttributeError) as exc:
                logger.warning("sample set of cache entry %s not stored: %s", key[:12], exc)
        self._conn.execute(
            "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, solver, sample, float(result.energy), _dumps(dict(result.info)),
             float(result.wall_seconds), serialized, time.time()))
        self._warned.discard(key)

    def record_run(self, hits: int, misses: int) -> None:
        """Remember a run's cache hits and misses, reported by :meth:`stats`."""
        for name, value in (("hits", hits), ("misses", misses)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        value = json.dumps({"hits": hits, "misses": misses, "time": time.time()})
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_run', ?)", (value,))

    def stats(self) -> dict:
        """``{"path", "entries", "bytes", "solvers": {name: entries}, "last_run"}``.

        ``bytes`` counts the database and its write-ahead log; ``last_run`` is
        ``{"hits", "misses", "time"}`` from :meth:`record_run`, or ``None``.
        """
        solvers = dict(self._conn.execute(
            "SELECT solver, COUNT(*) FROM entries GROUP BY solver ORDER BY solver"))
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal"))
                   if p.exists())
        row = self._conn.execute("SELECT value FROM meta WHERE name = 'last_run'").fetchone()
        last_run = None
        if row is not None:
            try:
                last_run = dict(json.loads(row[0]))
            except (TypeError, ValueError) as exc:
                logger.warning("cache %s: unreadable last-run record ignored (%s)",
                               self.path, exc)
        return {"path": str(self.path), "entries": sum(solvers.values()), "bytes": size,
                "solvers": solvers, "last_run": last_run}

    def clear(self, solver: str | None = None) -> int:
        """Delete every entry, or only ``solver``'s; returns how many were deleted."""
        if solver is None:
            return self._conn.execute("DELETE FROM entries").rowcount
        validate_text(solver, "solver")
        return self._conn.execute("DELETE FROM entries WHERE solver = ?", (solver,)).rowcount

    def close(self) -> None:
        """Close the connection (the last one to close folds the WAL into the file)."""
        self._conn.close()

    def __enter__(self) -> CacheStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CacheStore({str(self.path)!r})"

    def _decode(self, key, sample, energy, info, wall_seconds) -> SolveResult | None:
        try:
            sample = {label_from_json(label): int(value) for label, value in json.loads(sample)}
            info = json.loads(info)
            if not isinstance(info, dict):
                raise ValueError(f"info is a JSON {type(info).__name__}, not an object")
            return SolveResult(sample, float(energy), info, float(wall_seconds))
        except (TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
            self._warn_once(key, exc)
            return None

    def _warn_once(self, key: str, exc: Exception) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("cache %s: entry %s is unreadable (%s); treating it as a miss, "
                           "the next result for it replaces it", self.path, key[:12], exc)


def _jsonable(value):
    """``value`` as plain JSON data: numpy to numbers, unknown objects to ``str``,
    credential-like mapping keys dropped."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): _jsonable(v) for k, v in value.items()
                if not is_credential(k)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _plain_info(sampleset: dimod.SampleSet) -> dimod.SampleSet:
    """``sampleset`` with JSON-safe info: dimod's serializer cannot take tuple-labelled
    mappings (a QPU's ``embedding_context`` keyed by ``("w", j)``)."""
    return dimod.SampleSet(sampleset.record, sampleset.variables,
                           _jsonable(dict(sampleset.info)), sampleset.vartype)


def _dumps(value) -> str:
    return json.dumps(_jsonable(value), separators=(",", ":"))


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
    raise TypeError(f"cache must be None, False, a path or a CacheStore, got "
                    f"{type(cache).__name__}")
