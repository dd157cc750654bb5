"""SQLite's errors as one clear :class:`~annealq.errors.CacheError` naming the cache file
and what to do, so no caller ever sees an ``sqlite3`` traceback.

Example:
    >>> import sqlite3
    >>> try:
    ...     with sqlite_errors("/tmp/c.sqlite"):
    ...         raise sqlite3.DatabaseError("database disk image is malformed")
    ... except CacheError as exc:
    ...     print(exc)  # doctest: +ELLIPSIS
    cache /tmp/c.sqlite is damaged (database disk image is malformed); run 'annealq cache repair ...
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from annealq.errors import CacheError, first_line

_SQLITE_MAGIC = b"SQLite format 3\x00"
_TABLES = frozenset({"entries", "meta"})
_ENTRY_COLUMNS = frozenset({"key", "solver", "sample", "energy", "info", "wall_seconds"})


@contextlib.contextmanager
def sqlite_errors(path, timeout: float | None = None):
    """Turn any ``sqlite3.Error`` raised inside into a :class:`CacheError`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise CacheError(describe(path, exc, timeout)) from None


def describe(path, exc: Exception, timeout: float | None = None) -> str:
    """One line: what is wrong with the cache at ``path`` and what to do about it."""
    text = first_line(exc)
    lower = text.lower()
    if os.path.isdir(path):
        return f"cache {path} is a folder, not a file; pass a file such as {path}/cache.sqlite"
    if "not a database" in lower:
        return (
            f"cache {path} is not a usable annealq cache ({text}): a damaged or foreign "
            "file; delete it, or pass another --cache, or run with --no-cache"
        )
    if "malformed" in lower or "corrupt" in lower:
        return (
            f"cache {path} is damaged ({text}); run 'annealq cache repair --cache {path}' "
            "to keep its valid entries, or delete it, or run with --no-cache"
        )
    if "locked" in lower or "busy" in lower:
        waited = f" beyond the {timeout:g} s timeout" if timeout is not None else ""
        return (
            f"cache {path} is locked by another process{waited}; wait for that run to "
            "finish, or pass another --cache"
        )
    if "readonly" in lower or "read-only" in lower:
        return (
            f"cache {path} is read-only ({text}); make it writable, or pass another "
            "--cache, or run with --no-cache"
        )
    if "unable to open" in lower or "disk i/o" in lower or "full" in lower:
        return (
            f"cannot use cache {path} ({text}): check that it and its folder are "
            "readable and writable with space left, or pass another --cache"
        )
    return f"cache {path}: SQLite error ({text}); pass another --cache or run with --no-cache"


def require_cache(path) -> None:
    """Raise :class:`CacheError` unless ``path`` is missing, empty or an annealq cache.

    Read-only and before anything else touches the file: its first bytes, then its schema
    through a ``mode=ro`` connection (no journal switch, no table created), so a foreign
    SQLite database or a text file named as the cache keeps every byte.
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with open(path, "rb") as stream:
            head = stream.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise CacheError(describe(path, exc)) from None
    if head != _SQLITE_MAGIC:
        raise CacheError(
            f"cache {path} is not a usable annealq cache (not an SQLite "
            "database): annealq leaves it untouched; pass another --cache, "
            "or run with --no-cache"
        )
    with sqlite_errors(path):
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if not row[0].startswith("sqlite_")
            }
            columns = {row[1] for row in conn.execute("PRAGMA table_info(entries)")}
        finally:
            conn.close()
    if tables and (tables - _TABLES or not _ENTRY_COLUMNS <= columns):
        raise CacheError(
            f"cache {path} is not a usable annealq cache (an SQLite database "
            f"of tables {', '.join(sorted(tables))[:120]}): annealq leaves it "
            "untouched; pass another --cache, or run with --no-cache"
        )
