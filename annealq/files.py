"""Writing files atomically: readers see the old file or the complete new one.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> atomic_write(path, lambda stream: stream.write(b"done"))
    >>> open(path).read()
    'done'
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path, write: Callable) -> None:
    """Call ``write(binary_stream)`` on a temporary file beside ``path``, then rename it.

    Readers see the old file or the complete new one, never a partial one; on any error
    the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.",
                                             suffix=".tmp")
    try:
        os.fchmod(descriptor, 0o666 & ~_umask())  # mkstemp's 0600 is for secrets, not this
        with os.fdopen(descriptor, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
