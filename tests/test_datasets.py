import gzip
import io
from pathlib import Path

import numpy as np
import pytest

from annealq.data.datasets import (
    DATA_ENV,
    DatasetNotFoundError,
    data_folder,
    load_dataset,
    read_idx,
    validate_dataset,
)

# the project's offline copies, at ../shared/data from the project root (see the Makefile)
SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _write_idx(path, array, *, compress=False):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    header = (
        bytes([0, 0, codes[array.dtype], array.ndim])
        + np.asarray(array.shape, dtype=">u4").tobytes()
    )
    data = header + array.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def _toy_mnist_idx(folder, *, compress=False, n_train=5, n_test=3):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        _write_idx(folder / (name + (".gz" if compress else "")), array, compress=compress)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_reads_what_was_written(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    floats = np.linspace(-1, 1, 6).astype(">f4").reshape(3, 2)
    _write_idx(tmp_path / "i", images, compress=compress)
    _write_idx(tmp_path / "f", floats, compress=compress)
    suffix = ".gz" if compress else ""
    (tmp_path / "i").rename(tmp_path / f"i{suffix}")
    (tmp_path / "f").rename(tmp_path / f"f{suffix}")
    np.testing.assert_array_equal(read_idx(tmp_path / f"i{suffix}"), images)
    got = read_idx(tmp_path / f"f{suffix}")
    np.testing.assert_array_equal(got, floats)
    assert got.dtype.isnative


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    _write_idx(tmp_path / "short", np.zeros((4, 2), np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match="7 bytes|header says"):
        read_idx(tmp_path / "short")


@pytest.mark.parametrize("layout", [".", "mnist", "MNIST/raw"])
def test_idx_folders_in_flat_dataset_and_torchvision_layouts(tmp_path, layout):
    arrays = _toy_mnist_idx(tmp_path / layout, compress=layout == "mnist")
    data = load_dataset("mnist", data_dir=tmp_path)
    assert data.x_train.shape == (5, 784) and data.x_test.shape == (3, 784)
    assert data.x_train.dtype == np.float32
    np.testing.assert_allclose(data.x_train[1], arrays["train-images-idx3-ubyte"][1].ravel() / 255)
    np.testing.assert_array_equal(data.y_test, arrays["t10k-labels-idx1-ubyte"])


def test_npz_file_is_preferred_and_scaled_to_unit_interval(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    np.savez(
        tmp_path / "fashion_mnist.npz",
        x_train=x,
        y_train=np.arange(4, dtype=np.uint8),
        x_test=x[:2],
        y_test=np.arange(2, dtype=np.uint8),
    )
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    data = load_dataset("fashion_mnist")
    assert data.name == "fashion-mnist" and data.x_train.shape == (4, 784)
    assert data.x_train.max() <= 1.0 and data.x_train.min() >= 0.0
    np.testing.assert_allclose(data.x_train * 255, x.reshape(4, -1), atol=1e-4)


def test_jpeg_npz_is_decoded_once_and_cached(tmp_path, monkeypatch):
    Image = pytest.importorskip("PIL.Image")
    import annealq.data.jpeg as jpeg

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rng = np.random.default_rng(2)
    blobs, offsets, originals = [], [0], []
    for _ in range(3):
        image = np.repeat(rng.integers(0, 256, (1, 1, 3), dtype=np.uint8), 32, 0).repeat(32, 1)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=95)
        blobs.append(buffer.getvalue())
        offsets.append(offsets[-1] + len(blobs[-1]))
        originals.append(image)
    blob = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    (tmp_path / "data").mkdir()
    np.savez(
        tmp_path / "data" / "cifar10_jpeg.npz",
        jpeg_train=blob,
        offsets_train=offsets,
        y_train=np.array([0, 1, 2], np.uint8),
        jpeg_test=blob,
        offsets_test=offsets,
        y_test=np.array([2, 1, 0], np.uint8),
    )
    data = load_dataset("cifar10", data_dir=tmp_path / "data")
    assert data.x_train.shape == (3, 32 * 32 * 3)
    # flat colours survive JPEG almost exactly
    np.testing.assert_allclose(data.x_train * 255, np.stack(originals).reshape(3, -1), atol=3)
    assert len(list((tmp_path / "cache" / "annealq" / "decoded").glob("*.npy"))) == 2

    def must_not_decode(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(jpeg, "decode_jpegs", must_not_decode)
    again = load_dataset("cifar10", data_dir=tmp_path / "data")
    np.testing.assert_array_equal(again.x_train, data.x_train)


def test_data_folder_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert data_folder()[0] == tmp_path / ".cache" / "annealq" / "data"
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "env"))
    assert data_folder() == (tmp_path / "env", f"${DATA_ENV}")
    assert data_folder(tmp_path / "given")[0] == tmp_path / "given"


def test_missing_dataset_says_where_it_looked_and_what_to_do(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torchvision(name, *args, **kwargs):
        if name.startswith("torchvision"):
            raise ImportError("no torchvision here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torchvision)
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("emnist", data_dir=tmp_path / "nowhere")
    message = str(error.value)
    assert "\n" not in message
    for part in (
        "emnist",
        str(tmp_path / "nowhere"),
        "does not exist",
        "emnist_bymerge_subset.npz",
        "emnist-bymerge-train-images-idx3-ubyte",
        "ANNEALQ_DATA",
        "torchvision",
    ):
        assert part in message


def test_unknown_dataset_is_a_value_error():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; choose one of digits"):
        validate_dataset("imagenet")


@pytest.mark.skipif(not (SHARED_DATA / "mnist.npz").is_file(), reason="no offline MNIST copy")
def test_offline_mnist_copy_loads_with_the_canonical_shapes():
    data = load_dataset("mnist", data_dir=SHARED_DATA)
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
    assert data.n_classes == 10 and data.x_train.dtype == np.float32
    assert 0.0 == data.x_train.min() and data.x_train.max() == 1.0
    calibration = data.calibration(100, seed=3)
    assert calibration.shape == (100, 784)
