"""An uploaded BQM file (dimod's format) read into numpy vectors.

Building a :class:`dimod.BinaryQuadraticModel` from a file inserts its couplings one
neighbourhood at a time; for the dense BQMs annealq packs (~5 neurons, ~700k couplings,
17 MB) that was half the emulator's work, and the emulator anneals each connected
component as a BQM of its own anyway. So a hybrid problem is kept as the vectors of
:meth:`~dimod.BinaryQuadraticModel.to_numpy_vectors`, read from the file's sections in one
pass; a file this does not recognise goes through ``from_file`` itself.

Example:
    >>> import dimod
    >>> bqm = dimod.BQM({"a": 1.0, "b": -1.0}, {("a", "b"): 0.5}, 2.0, "BINARY")
    >>> vectors = read_bqm_vectors(bqm.to_file().read())
    >>> vectors.labels, vectors.num_variables, float(vectors.energy([1, 1]))
    (['a', 'b'], 2, 2.5)
"""

from __future__ import annotations

import dataclasses
import io

import dimod
import numpy as np
from dimod.serialization.fileview import VariablesSection, read_header

__all__ = ["BQMVectors", "read_bqm_vectors"]

_MAGIC = b"DIMODBQM"


@dataclasses.dataclass
class BQMVectors:
    """A BQM as vectors: biases per variable (in ``labels`` order) and per coupling."""

    linear: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    offset: float
    vartype: dimod.Vartype
    labels: list

    @classmethod
    def of(cls, bqm: dimod.BinaryQuadraticModel) -> "BQMVectors":
        labels = list(bqm.variables)
        linear, (rows, cols, values), offset = bqm.to_numpy_vectors(labels)
        return cls(linear, rows, cols, values, float(offset), bqm.vartype, labels)

    @property
    def num_variables(self) -> int:
        return len(self.linear)

    def energy(self, values) -> float:
        """The energy of one sample (values in ``labels`` order)."""
        x = np.asarray(values, dtype=np.float64)
        return self.offset + self.linear @ x + self.values @ (x[self.rows] * x[self.cols])


def read_bqm_vectors(raw: bytes) -> BQMVectors:
    """The BQM in ``raw`` (the bytes of ``bqm.to_file()``), as vectors.

    Raises:
        ValueError: the bytes are not a BQM file dimod can read.
    """
    stream = io.BytesIO(raw)
    header = read_header(stream, _MAGIC)
    data = header.data
    if header.version != (2, 0) or np.dtype(data["dtype"]) == np.dtype("O"):
        return BQMVectors.of(dimod.BinaryQuadraticModel.from_file(io.BytesIO(raw)))
    n, m = data["shape"]
    dtype, itype, ntype = (np.dtype(data[key]) for key in ("dtype", "itype", "ntype"))
    linear_dtype = np.dtype([("nidx", ntype), ("bias", dtype)], align=False)
    quadratic_dtype = np.dtype([("outvar", itype), ("bias", dtype)], align=False)
    start = stream.tell()
    sizes = (dtype.itemsize, n * linear_dtype.itemsize, 2 * m * quadratic_dtype.itemsize)
    if len(raw) < start + sum(sizes):
        raise ValueError("given file is missing biases")
    offset = np.frombuffer(raw, dtype, 1, start)[0]
    linear = np.frombuffer(raw, linear_dtype, n, start + sizes[0])
    quadratic = np.frombuffer(raw, quadratic_dtype, 2 * m, start + sizes[0] + sizes[1])
    # each coupling is stored at both of its ends; keep one (the higher end's entry)
    owner = np.repeat(np.arange(n), np.diff(np.append(linear["nidx"].astype(np.int64), 2 * m)))
    lower = quadratic["outvar"] < owner
    labels = list(range(n))
    if data["variables"]:
        stream.seek(start + sum(sizes))
        labels = list(VariablesSection.load(stream))
    return BQMVectors(
        linear["bias"].astype(np.float64),
        owner[lower],
        quadratic["outvar"][lower].astype(np.int64),
        quadratic["bias"][lower].astype(np.float64),
        float(offset),
        dimod.as_vartype(data["vartype"]),
        labels,
    )
