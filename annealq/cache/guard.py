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

from annealq.errors import CacheError, first_line


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
        return (f"cache {path} is not a usable annealq cache ({text}): a damaged or foreign "
                "file; delete it, or pass another --cache, or run with --no-cache")
    if "malformed" in lower or "corrupt" in lower:
        return (f"cache {path} is damaged ({text}); run 'annealq cache repair --cache {path}' "
                "to keep its valid entries, or delete it, or run with --no-cache")
    if "locked" in lower or "busy" in lower:
        waited = f" beyond the {timeout:g} s timeout" if timeout is not None else ""
        return (f"cache {path} is locked by another process{waited}; wait for that run to "
                "finish, or pass another --cache")
    if "readonly" in lower or "read-only" in lower:
        return (f"cache {path} is read-only ({text}); make it writable, or pass another "
                "--cache, or run with --no-cache")
    if "unable to open" in lower or "disk i/o" in lower or "full" in lower:
        return (f"cannot use cache {path} ({text}): check that it and its folder are "
                "readable and writable with space left, or pass another --cache")
    return f"cache {path}: SQLite error ({text}); pass another --cache or run with --no-cache"
