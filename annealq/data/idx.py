"""IDX files (MNIST's format): a magic number naming the element type and the number of
dimensions, the dimensions, then the array, big-endian.

Example:
    >>> import gzip, tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "x.gz"
    >>> path.write_bytes(gzip.compress(bytes([0, 0, 0x08, 1, 0, 0, 0, 2, 7, 9]))) and None
    >>> read_idx(path).tolist()
    [7, 9]
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

__all__ = ["read_idx"]

# IDX element types: the third byte of the magic number -> big-endian numpy dtype
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` compressed or not), in native byte order.

    Raises:
        ValueError: the file is not a well-formed IDX file.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            raw = stream.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"cannot read IDX file {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is not an IDX file (truncated header)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = header + dtype.itemsize * int(np.prod(shape))
    if len(raw) != expected:
        raise ValueError(
            f"{path}: IDX header says shape {shape} ({expected} bytes), the file "
            f"has {len(raw)} bytes"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))
