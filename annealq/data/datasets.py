"""Datasets as float arrays: images flattened to ``(N, features)`` in [0, 1], int labels.

``digits`` (scikit-learn's bundled 8×8 digits) needs no files. The others are read from
``data_dir``, else ``$ANNEALQ_DATA``, else ``~/.cache/annealq/data``; the first found of:

1. the ``.npz`` file (``mnist.npz``, ``fashion_mnist.npz``, ``emnist_bymerge_subset.npz``,
   ``cifar10_jpeg.npz``; keys ``x_train y_train x_test y_test``, CIFAR-10 as JPEG bytes);
2. IDX files (``train-images-idx3-ubyte`` …, optionally ``.gz``) in the folder itself, in a
   subfolder named after the dataset, or in torchvision's ``<Class>/raw`` layout;
3. when torchvision is installed, its downloader (into the same folder).

Example:
    >>> data = load_dataset("digits")
    >>> data.x_train.shape[1], data.n_classes
    (64, 10)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from annealq.data.checks import DAMAGED, check_archive, check_arrays, check_members, unreadable
from annealq.data.idx import read_idx  # noqa: F401 (re-exported)
from annealq.data.jpeg import decoded_jpegs
from annealq.errors import DatasetNotFoundError, first_line

DATA_ENV = "ANNEALQ_DATA"
_MNIST_IDX = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class Dataset:
    """A train/test split. ``x_*`` are float32 ``(N, features)``, ``y_*`` int64 ``(N,)``."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def calibration(self, size: int, seed: int = 0) -> np.ndarray:
        """``size`` inputs drawn without replacement from the **training** split."""
        if not 0 < size:
            raise ValueError(f"calibration size must be positive, got {size}")
        if size > len(self.x_train):
            raise ValueError(
                f"calibration size {size} is larger than the training split of "
                f"{self.name} ({len(self.x_train)} inputs)"
            )
        rng = np.random.default_rng(seed)
        index = rng.choice(len(self.x_train), size=size, replace=False)
        return self.x_train[np.sort(index)]


@dataclass(frozen=True)
class _Source:
    """Where one file-based dataset can come from."""

    npz: str
    idx: tuple[str, ...] = ()  # train images, train labels, test images, test labels
    folders: tuple[str, ...] = ()  # subfolders searched for the IDX files
    torchvision: str | None = None
    torchvision_options: tuple = ()
    transposed: bool = False  # EMNIST's raw images are stored transposed


_SOURCES = {
    "mnist": _Source("mnist.npz", _MNIST_IDX, ("mnist", "MNIST/raw"), "MNIST"),
    "fashion-mnist": _Source(
        "fashion_mnist.npz",
        _MNIST_IDX,
        ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw"),
        "FashionMNIST",
    ),
    "emnist": _Source(
        "emnist_bymerge_subset.npz",
        tuple(
            f"emnist-bymerge-{split}-{kind}"
            for split in ("train", "test")
            for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
        ),
        ("emnist", "gzip", "EMNIST/raw"),
        "EMNIST",
        (("split", "bymerge"),),
        transposed=True,
    ),
    "cifar10": _Source("cifar10_jpeg.npz", torchvision="CIFAR10"),
}
DATASETS = ("digits", *_SOURCES)


def load_dataset(name: str, *, data_dir=None, seed: int = 0) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASETS`).

    Args:
        name: ``digits``, ``mnist``, ``fashion-mnist``, ``emnist`` or ``cifar10``.
        data_dir: the folder holding the files (default ``$ANNEALQ_DATA``, else
            ``~/.cache/annealq/data``); ``digits`` needs none.
        seed: the train/test split of ``digits`` (the others come split).

    Raises:
        ValueError: an unknown name or an unreadable file.
        DatasetNotFoundError: no file for it in the folder, and no torchvision to fetch it;
            the message names the folder and the files looked for.
    """
    name = validate_dataset(name)
    if name == "digits":
        return load_digits(seed=seed)
    folder, origin = data_folder(data_dir)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"data folder {folder} ({origin}) is a file, not a folder")
    source = _SOURCES[name]
    if (folder / source.npz).is_dir():
        raise ValueError(f"dataset file {folder / source.npz} is a folder, not a file")
    if (folder / source.npz).exists():
        return _load_npz(name, folder / source.npz)
    idx_files = _find_idx(folder, source)
    if idx_files is not None:
        return _load_idx(name, idx_files, transposed=source.transposed)
    return _download(name, folder, origin, source)


def dataset_files(name: str, *, data_dir=None) -> list[Path]:
    """The files :func:`load_dataset` reads for ``name`` (none for ``digits``), so that no
    output of a run can replace them."""
    name = validate_dataset(name)
    if name == "digits":
        return []
    folder, source = data_folder(data_dir)[0], _SOURCES[name]
    if (folder / source.npz).exists():
        return [folder / source.npz]
    return _find_idx(folder, source) or []


def validate_dataset(name) -> str:
    """``name`` normalised (``fashion_mnist`` → ``fashion-mnist``), or a ``ValueError``."""
    key = name.lower().replace("_", "-") if isinstance(name, str) else name
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return key


def data_folder(data_dir=None) -> tuple[Path, str]:
    """The data folder and where it came from (``--data-dir``, ``$ANNEALQ_DATA``, default)."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), "data_dir"
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser(), f"${DATA_ENV}"
    return _cache_root() / "data", "the default folder"


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's 8×8 digits (1,797 images), split reproducibly into train and test."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    test, train = order[:n_test], order[n_test:]
    return Dataset("digits", x[train], y[train], x[test], y[test])


def _cache_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "annealq"


def _dataset(name: str, x_train, y_train, x_test, y_test) -> Dataset:
    return Dataset(
        name,
        _as_features(x_train),
        np.asarray(y_train, dtype=np.int64),
        _as_features(x_test),
        np.asarray(y_test, dtype=np.int64),
    )


def _as_features(images: np.ndarray) -> np.ndarray:
    """uint8 images ``(N, …)`` → float32 ``(N, features)`` in [0, 1]."""
    x = np.asarray(images).reshape(len(images), -1).astype(np.float32)
    x /= 255.0
    return x


def _load_npz(name: str, path: Path) -> Dataset:
    check_archive(path)  # headers first: a forged shape allocates nothing
    try:
        with np.load(path) as data:
            check_members(path, name, data.files)
            if "jpeg_train" in data.files:
                images = {
                    split: decoded_jpegs(path, data, split, _cache_root() / "decoded")
                    for split in ("train", "test")
                }
            else:
                images = {split: data[f"x_{split}"] for split in ("train", "test")}
            labels = {split: data[f"y_{split}"] for split in ("train", "test")}
    except (*DAMAGED, OSError, ValueError) as exc:
        raise unreadable(path, exc) from None
    check_arrays(path, images, labels)
    return _dataset(name, images["train"], labels["train"], images["test"], labels["test"])


def _find_idx(folder: Path, source: _Source) -> list[Path] | None:
    for place in (folder, *(folder / sub for sub in source.folders)):
        found = [_existing(place / name) for name in source.idx]
        if source.idx and all(found):
            return found
    return None


def _existing(path: Path) -> Path | None:
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _load_idx(name: str, files: list[Path], *, transposed: bool) -> Dataset:
    x_train, y_train, x_test, y_test = (read_idx(path) for path in files)
    if transposed:
        x_train, x_test = x_train.transpose(0, 2, 1), x_test.transpose(0, 2, 1)
    for images, labels, path in ((x_train, y_train, files[0]), (x_test, y_test, files[2])):
        if len(images) != len(labels):
            raise ValueError(
                f"{path} has {len(images)} images but its label file has {len(labels)} labels"
            )
    return _dataset(name, x_train, y_train, x_test, y_test)


def _download(name: str, folder: Path, origin: str, source: _Source) -> Dataset:
    looked = [source.npz]
    if source.idx:
        places = ", ".join(str(p) for p in (folder, *(folder / s for s in source.folders)))
        looked.append(f"IDX files {source.idx[0]}[.gz] and the other three in {places}")
    where = f"{folder} ({origin})" + ("" if folder.is_dir() else ", which does not exist")
    hint = (
        f"put the files there (see the README's Datasets section), or point --data-dir "
        f"or ${DATA_ENV} at a folder holding them"
    )
    try:
        import torchvision.datasets
    except ImportError:
        raise DatasetNotFoundError(
            f"dataset {name!r} not found in {where}: looked for "
            f"{' or '.join(looked)}; {hint}, or install torchvision "
            f"to download it"
        ) from None
    cls = getattr(torchvision.datasets, source.torchvision)
    options = dict(source.torchvision_options)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        train = cls(str(folder), train=True, download=True, **options)
        test = cls(str(folder), train=False, download=True, **options)
    except Exception as exc:  # torchvision raises anything from URLError to RuntimeError
        raise DatasetNotFoundError(
            f"dataset {name!r} not found in {where} and torchvision "
            f"could not download it ({first_line(exc)}); {hint}"
        ) from None
    x_train, x_test = (np.asarray(d.data) for d in (train, test))
    if source.transposed:
        x_train, x_test = x_train.transpose(0, 2, 1), x_test.transpose(0, 2, 1)
    return _dataset(name, x_train, np.asarray(train.targets), x_test, np.asarray(test.targets))
