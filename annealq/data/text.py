"""Text as bytes: a byte-level language-modelling corpus (vocabulary 256) split in train/test.

``pystdlib`` is the bundled-offline corpus: the CPython 3.11.7 standard library's source,
split by file (``pystdlib_train.txt.gz``, ``pystdlib_test.txt.gz`` in the data folder, see
:func:`~annealq.data.datasets.data_folder`). Those two files are checked against their
SHA-256 digests: a different file under the same name is refused.

Any other text reads the same way (:func:`load_text` with a path): a file is split into
its first 90 % (train) and last 10 % (test) bytes; a folder holding ``train`` and ``test``
files (``*train*``, ``*test*``: ``.txt``, ``.raw``, optionally ``.gz``, as WikiText's
``wiki.train.raw``) uses them, any other folder is every text file in it, sorted, joined.

Evaluation follows the literature: the test split concatenated and cut into
non-overlapping windows of the context length (:meth:`TextDataset.windows`).

Example:
    >>> data = TextDataset("toy", np.arange(100, dtype=np.uint8), np.arange(50, dtype=np.uint8))
    >>> data.windows(16).shape, data.calibration(3, context=8, seed=0).shape
    ((3, 16), (3, 8))
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from annealq.data.datasets import data_folder
from annealq.errors import DatasetNotFoundError

TEXT_DATASETS = ("pystdlib",)
# the shared corpus files and their SHA-256 digests (their provenance: the data folder's README)
_PYSTDLIB = {
    "pystdlib_train.txt.gz": "e9e2a3fb9fa47b2b604170c591b8e8483d9bbb709c49942ef1e6a4e7e661bdd2",
    "pystdlib_test.txt.gz": "de01f3a55e5a3aacd2f8c0d0cafb1d612227d86e9047f02128d06c2c691d9e6b",
}
_SUFFIXES = (".txt", ".raw", ".txt.gz", ".raw.gz")


@dataclass(frozen=True)
class TextDataset:
    """A corpus as bytes: ``train`` and ``test`` are ``uint8`` arrays (vocabulary 256)."""

    name: str
    train: np.ndarray
    test: np.ndarray

    @property
    def vocabulary(self) -> int:
        return 256

    def calibration(self, size: int, *, context: int, seed: int = 0) -> np.ndarray:
        """``size`` windows of ``context`` bytes from the **training** split, at random
        non-overlapping offsets: token ids ``(size, context)`` (int64)."""
        slots = len(self.train) // context
        if not 0 < size <= slots:
            raise ValueError(
                f"calibration size must be 1..{slots} windows of {context} "
                f"bytes of {self.name}'s training split, got {size}"
            )
        index = np.sort(np.random.default_rng(seed).choice(slots, size=size, replace=False))
        starts = index[:, None] * context + np.arange(context)
        return self.train[starts].astype(np.int64)

    def windows(self, context: int, limit: int | None = None) -> np.ndarray:
        """The test split cut into non-overlapping windows of ``context`` bytes (the last
        partial one dropped), ``(W, context)`` int64; ``limit`` keeps that many, evenly
        spaced over the split."""
        count = len(self.test) // context
        if count == 0:
            raise ValueError(
                f"{self.name}'s test split ({len(self.test)} bytes) is shorter "
                f"than one window of {context}"
            )
        all_windows = self.test[: count * context].reshape(count, context)
        if limit is not None and limit < count:
            all_windows = all_windows[np.linspace(0, count - 1, limit).round().astype(int)]
        return all_windows.astype(np.int64)


def load_text(name: str = "pystdlib", *, data_dir=None, path=None) -> TextDataset:
    """A byte-level corpus: ``pystdlib`` from the data folder, or any text ``path``.

    Raises:
        DatasetNotFoundError: the corpus files are not in the data folder.
        ValueError: a file whose digest differs from the recorded one, or no text found.
    """
    if path is not None:
        return _from_path(Path(path).expanduser())
    if name not in TEXT_DATASETS:
        raise ValueError(
            f"unknown text dataset {name!r}; choose one of "
            f"{', '.join(TEXT_DATASETS)} or pass a path"
        )
    folder, origin = data_folder(data_dir)
    files = [folder / file for file in _PYSTDLIB]
    missing = [str(file) for file in files if not file.is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"{name} needs {', '.join(missing)} (data folder from "
            f"{origin}); see the data folder's README for its source"
        )
    for file, digest in zip(files, _PYSTDLIB.values()):
        actual = hashlib.sha256(file.read_bytes()).hexdigest()
        if actual != digest:
            raise ValueError(
                f"{file} is not the recorded {file.name} (SHA-256 {actual[:16]}…, "
                f"expected {digest[:16]}…)"
            )
    return TextDataset(name, _read(files[0]), _read(files[1]))


def _from_path(path: Path) -> TextDataset:
    if path.is_file():
        data = _read(path)
        cut = int(len(data) * 0.9)
        return TextDataset(path.name, data[:cut], data[cut:])
    if not path.is_dir():
        raise DatasetNotFoundError(f"text path {path} does not exist")
    texts = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(_SUFFIXES))
    train = [p for p in texts if "train" in p.name]
    test = [p for p in texts if "test" in p.name]
    if train and test:
        return TextDataset(path.name, _join(train), _join(test))
    if not texts:
        raise DatasetNotFoundError(f"no text files ({', '.join(_SUFFIXES)}) in {path}")
    data = _join(texts)
    cut = int(len(data) * 0.9)
    return TextDataset(path.name, data[:cut], data[cut:])


def _join(paths) -> np.ndarray:
    return np.concatenate([_read(p) for p in paths])


def _read(path: Path) -> np.ndarray:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as stream:
        return np.frombuffer(stream.read(), dtype=np.uint8)
