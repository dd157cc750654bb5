"""Inputs are sacred: an output naming an input of the run (by path, ``./``, a symbolic or
a hard link), another output, a link, a device or a FIFO is one line and exit 2 before
any work, and no input's bytes change; a name too long for the atomic writer's temporary
fails before the run."""

import hashlib
import os

import numpy as np
import pytest
import torch

from annealq import save_model
from annealq.files import OutputError, atomic_write, check_outputs
from tests.test_hardening import QUANTIZE, one_error_line, run


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def model_file(tmp_path):
    nn = torch.nn
    torch.manual_seed(0)
    path = tmp_path / "model.safetensors"
    save_model(nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10)), path)
    os.link(path, tmp_path / "hard")
    os.symlink(path.name, tmp_path / "soft")
    return path


@pytest.mark.parametrize(
    "flag, target, fragment",
    [
        ("--out", "{tmp}/./model.safetensors", "is the --model file"),
        ("--out", "{tmp}/sub/../model.safetensors", "is the --model file"),
        ("--report", "{tmp}/hard", "is the --model file"),
        ("--out", "{tmp}/soft", "is a symbolic link"),
        ("--report", "{tmp}/cache.sqlite", "is the cache file"),
        ("--out", "{tmp}/cache.sqlite-wal", "is the cache file"),
        ("--report", "/dev/null", "is a device"),
        ("--report", "{tmp}/fifo", "is a FIFO"),
        ("--report", "{tmp}/" + "r" * 245, "is too long"),
    ],
)
def test_outputs_never_replace_inputs_or_special_files(
    tmp_path, capsys, model_file, flag, target, fragment
):
    (tmp_path / "sub").mkdir()
    (tmp_path / "cache.sqlite").write_bytes(b"")
    (tmp_path / "cache.sqlite-wal").write_bytes(b"wal")
    os.mkfifo(tmp_path / "fifo")
    before = {p.name: _digest(p) for p in tmp_path.iterdir() if p.is_file()}
    listing = sorted(os.listdir(tmp_path))
    code, out, err = run(
        capsys,
        *QUANTIZE,
        "--model",
        model_file,
        "--cache",
        tmp_path / "cache.sqlite",
        flag,
        target.replace("{tmp}", str(tmp_path)),
    )
    assert code == 2 and out == ""
    one_error_line(err, fragment)
    assert sorted(os.listdir(tmp_path)) == listing
    assert {p.name: _digest(p) for p in tmp_path.iterdir() if p.is_file()} == before
    assert os.path.islink(tmp_path / "soft")


def test_an_output_onto_a_dataset_file_is_refused(tmp_path, capsys):
    x, y = np.zeros((6, 28, 28), np.uint8), np.arange(6) % 3
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    before = _digest(tmp_path / "mnist.npz")
    argv = [a if a != "digits" else "mnist" for a in QUANTIZE]
    code, _, err = run(
        capsys, *argv, "--data-dir", tmp_path, "--no-cache", "--report", tmp_path / "mnist.npz"
    )
    assert code == 2
    one_error_line(err, "is a dataset file")
    assert _digest(tmp_path / "mnist.npz") == before


def test_the_api_writer_never_replaces_a_link(tmp_path):
    (tmp_path / "target").write_text("keep")
    os.symlink("target", tmp_path / "link")
    with pytest.raises(OutputError, match="is a symbolic link"):
        atomic_write(tmp_path / "link", lambda stream: stream.write(b"new"))
    assert os.path.islink(tmp_path / "link") and (tmp_path / "target").read_text() == "keep"
    assert sorted(os.listdir(tmp_path)) == ["link", "target"]


def test_two_outputs_through_a_hard_link_are_the_same_file(tmp_path):
    (tmp_path / "a").write_text("a")
    os.link(tmp_path / "a", tmp_path / "b")
    with pytest.raises(OutputError, match="name the same file"):
        check_outputs([("--report", tmp_path / "a"), ("--out", tmp_path / "b")])
    check_outputs([("--report", tmp_path / "a"), ("--out", tmp_path / "c")])
