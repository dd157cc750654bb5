"""Writing files atomically, several at once or not at all, and checking files before use.

* :func:`atomic_write`: readers see the old file or the complete new one;
* :func:`write_together`: every output complete, or none of them changed;
* :func:`check_writable`: an output path that cannot be written is an error before work;
* :func:`check_outputs`: outputs that are inputs of the run, each other, special files or
  links are refused before work (the inputs are never replaced);
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
import stat
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
    outputs = list(outputs)
    for path, _ in outputs:
        check_target("output", path)  # never replace a link, device or FIFO
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
    exists, is writable, ``path`` is a regular file or a new name, and the temporary name
    the atomic writer uses beside it is not too long); ``option`` names it in the message."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputError(f"{option} {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise OutputError(f"{option} {path} is a folder, not a file")
    check_target(option, path)
    _check_name_length(option, path, folder)
    try:
        descriptor, probe = tempfile.mkstemp(dir=folder, prefix=".annealq-probe-")
    except OSError as exc:
        raise OutputError(
            f"{option} {path}: cannot write in folder {folder} ({exc.strerror or exc})"
        ) from None
    os.close(descriptor)
    os.unlink(probe)


def check_target(option: str, path) -> None:
    """Raise :class:`OutputError` when ``path`` exists and is not a regular file (a symbolic
    link, a device, a FIFO, a socket): a rename onto it would replace the link or node."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(f"{option} {path}: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode):
        return
    kind = (
        "a symbolic link"
        if stat.S_ISLNK(mode)
        else "a folder"
        if stat.S_ISDIR(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "a FIFO"
        if stat.S_ISFIFO(mode)
        else "a special file"
    )
    raise OutputError(
        f"{option} {path} is {kind}, not a regular file: annealq writes only "
        "regular files or new paths; name another file"
    )


def check_outputs(outputs, inputs=()) -> None:
    """Refuse, before any work, outputs that would destroy an input or each other.

    Each output must be writable (:func:`check_writable`), and none may be the same file
    as an input of the run or as another output: paths are compared after resolving
    ``.``, ``..`` and symbolic links, and existing files also by device and inode (hard
    links).

    Args:
        outputs: ``(option, path)`` pairs; a ``None`` path is skipped.
        inputs: ``(what, path)`` pairs the run reads (model, cache, data files).

    Raises:
        OutputError: naming the options (or the input) involved.

    Example:
        >>> import tempfile
        >>> model = os.path.join(tempfile.mkdtemp(), "model.safetensors")
        >>> _ = open(model, "wb").write(b"weights")
        >>> check_outputs([("--out", model)], [("the --model file", model)])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        annealq.files.OutputError: --out ... is the --model file: an output never replaces ...
    """
    seen: dict = {}
    for what, path in inputs:
        if path is not None:
            for identity in _identities(path):
                seen.setdefault(identity, ("input", what))
    for option, path in outputs:
        if path is None:
            continue
        check_writable(option, path)
        for identity in _identities(path):
            if identity in seen:
                kind, other = seen[identity]
                if kind == "input":
                    raise OutputError(
                        f"{option} {path} is {other}: an output never "
                        "replaces an input; name another file"
                    )
                raise OutputError(f"{other} and {option} name the same file {path}")
        for identity in _identities(path):
            seen[identity] = ("output", option)


def _identities(path) -> list:
    """The resolved path and, for an existing file, its (device, inode)."""
    found: list = [os.path.realpath(os.path.abspath(path))]
    with contextlib.suppress(OSError):
        info = os.stat(path)
        found.append((info.st_dev, info.st_ino))
    return found


def _check_name_length(option: str, path, folder: str) -> None:
    """The atomic writer's temporary, ``.<name>.<8 random>.tmp``, must fit the folder's
    name limit: a name that fits but whose temporary does not would fail after the run."""
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    name = len(os.fsencode(os.path.basename(path)))
    extra = len(os.fsencode(_temporary_prefix(path))) - name + len(".tmp") + 8
    if name + extra > limit:
        raise OutputError(
            f"{option}: the file name {os.path.basename(path)[:40]}... is too "
            f"long ({name} bytes; at most {limit - extra} here, leaving room "
            "for the temporary file written beside it)"
        )


def _temporary_prefix(path) -> str:
    return f".{os.path.basename(path)}."


def check_zip(path, what: str) -> None:
    """Raise ``ValueError`` when ``path``, a zip archive, is truncated or has a member
    whose bytes do not match their CRC; ``what`` names the kind of file in the message."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise ValueError(
            f"{what} {path} is damaged (not a complete zip archive: "
            f"{first_line(exc)}); replace it with a good copy"
        ) from None
    if bad is not None:
        raise ValueError(
            f"{what} {path} is damaged (the bytes of {bad} do not match their "
            "checksum); replace it with a good copy"
        )


def _write_temporary(path: Path, write: Callable) -> str:
    try:
        descriptor, temporary = tempfile.mkstemp(
            dir=path.parent or ".", prefix=_temporary_prefix(path), suffix=".tmp"
        )
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
            raise OutputError(
                f"refusing to write {path}: it would contain the D-Wave API "
                "token (a redaction was missed; please report this)"
            )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
