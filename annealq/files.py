"""Writing files atomically, several at once or not at all, and checking files before use.

* :func:`atomic_write`: readers see the old file or the complete new one;
* :func:`write_together`: every output complete, or none of them changed;
* :func:`check_writable`: an output path that cannot be written is an error before work;
* :func:`check_zip`: a damaged zip archive (``.npz``, ``torch.save``) is named as such.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> atomic_write(path, lambda stream: stream.write(b"done"))
    >>> open(path).read()
    'done'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

from annealq.credentials import contains_token
from annealq.errors import AnnealqError, first_line


class OutputError(AnnealqError, OSError):
    """An output file cannot be written; the message names it (never a temporary)."""


def atomic_write(path, write: Callable) -> None:
    """Call ``write(binary_stream)`` on a temporary file beside ``path``, then rename it.

    Readers see the old file or the complete new one, never a partial one; on any error
    the temporary file is removed and ``path`` is untouched.
    """
    write_together([(path, write)])


def write_together(outputs: Iterable[tuple[object, Callable]]) -> None:
    """Write each ``(path, write)`` to a temporary beside its path, then rename them all.

    Nothing is renamed before every output is complete, so a failure while writing leaves
    every path as it was and no temporary behind. (Should a rename itself fail, the
    outputs renamed before it are removed: none of the new set remains.)

    Raises:
        OutputError: an output cannot be written (the message names it); or whatever a
            ``write`` raised.
    """
    written: list[tuple[str, Path]] = []
    renamed: list[Path] = []
    try:
        for path, write in outputs:
            path = Path(path)
            written.append((_write_temporary(path, write), path))
        for temporary, path in written:
            try:
                os.replace(temporary, path)
            except OSError as exc:
                raise OutputError(f"cannot write {path} ({exc.strerror or exc})") from None
            renamed.append(path)
    except BaseException:
        for temporary, _ in written:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        for path in renamed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        raise


def check_writable(option: str, path) -> None:
    """Raise :class:`OutputError` unless a file can be created at ``path`` (its folder
    exists, is writable and ``path`` is not a folder); ``option`` names it in the message."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputError(f"{option} {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise OutputError(f"{option} {path} is a folder, not a file")
    try:
        descriptor, probe = tempfile.mkstemp(dir=folder, prefix=".annealq-probe-")
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot write in folder {folder} "
                          f"({exc.strerror or exc})") from None
    os.close(descriptor)
    os.unlink(probe)


def check_zip(path, what: str) -> None:
    """Raise ``ValueError`` when ``path``, a zip archive, is truncated or has a member
    whose bytes do not match their CRC; ``what`` names the kind of file in the message."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise ValueError(f"{what} {path} is damaged (not a complete zip archive: "
                         f"{first_line(exc)}); replace it with a good copy") from None
    if bad is not None:
        raise ValueError(f"{what} {path} is damaged (the bytes of {bad} do not match their "
                         "checksum); replace it with a good copy")


def _write_temporary(path: Path, write: Callable) -> str:
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent or ".",
                                                 prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {path} ({exc.strerror or exc})") from None
    try:
        os.fchmod(descriptor, 0o666 & ~_umask())  # mkstemp's 0600 is for secrets, not this
        with os.fdopen(descriptor, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        _refuse_token(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(exc, OSError) and not isinstance(exc, AnnealqError):
            raise OutputError(f"cannot write {path} ({exc.strerror or exc})") from None
        raise
    return temporary


def _refuse_token(temporary: str, path: Path) -> None:
    """The last guard on every output: a file holding any form of the D-Wave token is
    never written (the messages that reach files are redacted where they are made)."""
    with open(temporary, "rb") as stream:
        if contains_token(stream.read()):
            raise OutputError(f"refusing to write {path}: it would contain the D-Wave API "
                              "token (a redaction was missed; please report this)")



def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
