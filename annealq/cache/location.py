"""Where the cache lives: the default path (``$ANNEALQ_CACHE`` or the per-user folder) and
the checks of a path the user gives.

Example:
    >>> import os
    >>> os.environ.get("ANNEALQ_CACHE") is not None or default_cache_path().name == "cache.sqlite"
    True
"""

from __future__ import annotations

import os
from pathlib import Path

from annealq.cache.guard import sqlite_errors
from annealq.errors import CacheError

__all__ = ["check_location", "default_cache_path", "per_user_folder"]


def default_cache_path() -> Path:
    """``$ANNEALQ_CACHE``, else ``$XDG_CACHE_HOME/annealq/cache.sqlite``, else
    ``~/.cache/annealq/cache.sqlite``."""
    if os.environ.get("ANNEALQ_CACHE"):
        return Path(os.environ["ANNEALQ_CACHE"]).expanduser()
    return per_user_folder() / "cache.sqlite"


def per_user_folder() -> Path:
    """``$XDG_CACHE_HOME/annealq``, else ``~/.cache/annealq``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # XDG: ignore relative
    return root / "annealq"


def check_location(path: Path) -> None:
    """A user-given cache's folder must exist (only the per-user folder is created)."""
    if path.is_dir():
        raise CacheError(
            f"cache {path} is a folder, not a file; pass a file such as {path / 'cache.sqlite'}"
        )
    folder = path.parent
    if folder.is_dir():
        return
    if folder == per_user_folder():
        with sqlite_errors(path):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CacheError(
                    f"cannot create the cache folder {folder} ({exc.strerror}); "
                    "pass --cache PATH or --no-cache"
                ) from None
        return
    raise CacheError(
        f"cache {path}: folder {folder} does not exist; create it, or pass another --cache"
    )
