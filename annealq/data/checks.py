"""Checks that name a damaged or wrong dataset file as such, instead of failing later with
whatever numpy or zipfile raises.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "mnist.npz"
    >>> _ = path.write_text("hello")
    >>> check_is_zip(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: dataset file ... is not an .npz (zip) archive (it starts with b'hell'): ...
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from annealq.errors import first_line

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError)
"""What reading a truncated or corrupted archive raises."""


def check_is_zip(path: Path) -> None:
    """A ``.npz`` is a zip archive: anything else is the wrong file or a damaged one."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(4)
    except OSError as exc:
        raise ValueError(f"cannot read dataset file {path}: {exc.strerror or exc}") from None
    if head not in _ZIP_MAGIC:
        what = "is empty" if not head else f"starts with {head!r}"
        raise ValueError(
            f"dataset file {path} is not an .npz (zip) archive (it {what}): "
            "a damaged or wrong file; replace it with a good copy"
        )


MAX_ARRAY_BYTES = 16 * 2**30
"""The largest array a dataset file may declare (CIFAR-10's pixels are 180 MB)."""


def check_archive(path: Path) -> None:
    """A ``.npz`` is a zip archive (:func:`check_is_zip`) whose arrays' headers declare no
    more bytes than the archive holds for them, nor more than :data:`MAX_ARRAY_BYTES`:
    checked from the headers alone, before numpy allocates anything."""
    check_is_zip(path)
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".npy"):
                    with archive.open(info) as member:
                        _check_header(path, info, member)
    except (*DAMAGED, OSError) as exc:
        raise unreadable(path, exc) from None


def _check_header(path: Path, info, member) -> None:
    name = info.filename.removesuffix(".npy")
    try:
        version = np.lib.format.read_magic(member)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read(member)
    except (*DAMAGED, OSError):
        raise  # the archive's own damage, named by the caller
    except Exception as exc:  # numpy parses the header as a literal: it raises anything
        raise ValueError(
            f"dataset file {path}: array {name} has no valid .npy header "
            f"({first_line(exc)}): a damaged or wrong file"
        ) from None
    declared = math.prod(shape) * dtype.itemsize
    if declared > MAX_ARRAY_BYTES or declared > info.file_size - member.tell():
        raise ValueError(
            f"dataset file {path}: array {name} declares shape {shape} of "
            f"{dtype} ({declared:,} bytes) but holds "
            f"{max(info.file_size - member.tell(), 0):,} bytes (at most "
            f"{MAX_ARRAY_BYTES:,} are read): a damaged or forged file"
        )


def check_members(path: Path, name: str, files) -> None:
    """The arrays a dataset ``.npz`` must hold (images as pixels or as JPEG bytes)."""
    wanted = ("jpeg", "offsets") if "jpeg_train" in files else ("x",)
    missing = [
        f"{kind}_{split}"
        for kind in (*wanted, "y")
        for split in ("train", "test")
        if f"{kind}_{split}" not in files
    ]
    if missing:
        raise ValueError(
            f"dataset file {path} lacks the array(s) {', '.join(missing)} (it "
            f"holds {', '.join(files) or 'none'}): not a {name} dataset file"
        )


def unreadable(path: Path, exc: Exception) -> ValueError:
    """The one-line error for an ``.npz`` that fails to load with ``exc``."""
    text = first_line(exc)
    if isinstance(exc, ValueError) and text.startswith("dataset file"):
        return exc  # ours, already naming the file
    if isinstance(exc, DAMAGED):
        return ValueError(
            f"dataset file {path} is damaged ({text}): truncated or "
            "corrupted; replace it with a good copy"
        )
    if "pickle" in text.lower() or "object arrays" in text.lower():
        return ValueError(
            f"dataset file {path} holds object (pickled) arrays, which annealq "
            "does not load: not a dataset file"
        )
    return ValueError(f"cannot read dataset file {path}: {text}")


def check_arrays(path: Path, images: dict, labels: dict) -> None:
    """Per split, images ``(N, …)`` of numbers and ``N`` non-negative integer labels; the
    same image shape in both splits."""
    for split in ("train", "test"):
        x, y = np.asarray(images[split]), np.asarray(labels[split])
        if x.ndim < 2 or len(x) == 0 or not np.issubdtype(x.dtype, np.number):
            raise ValueError(
                f"dataset file {path}: x_{split} is {x.dtype} of shape "
                f"{x.shape}, not a batch of numeric images (N, ...)"
            )
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"dataset file {path}: y_{split} is {y.dtype} of shape "
                f"{y.shape}, not one integer label per image"
            )
        if len(y) != len(x) or y.min() < 0:
            raise ValueError(
                f"dataset file {path}: {len(x)} {split} images but {len(y)} "
                f"labels (smallest {y.min()}); they must match and be >= 0"
            )
    if images["train"].shape[1:] != images["test"].shape[1:]:
        raise ValueError(
            f"dataset file {path}: train images {images['train'].shape[1:]} and "
            f"test images {images['test'].shape[1:]} differ in shape"
        )
