"""Every value is checked at the boundary: solver parameters, group sizes, worker counts,
dataset files whose headers declare huge arrays, model files whose architecture is
malformed or larger than their tensors, and a Ctrl-C while annealq starts. Each is one
``annealq: error:`` line (or ``annealq: interrupted``), never a traceback."""

import json
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from annealq import save_model
from annealq.data.datasets import load_dataset
from tests.test_hardening import QUANTIZE, one_error_line, run


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--solver-param", "num_reads=abc"], "num_reads must be an integer from 1"),
        (["--solver-param", "num_reads=nan"], "num_reads must be an integer"),
        (["--solver-param", "num_reads=1e9"], "got 1000000000.0"),
        (["--solver", "neal", "--solver-param", "num_sweeps=1e12"], "num_sweeps must be"),
        (["--solver", "auto", "--solver-param", "num_reads=0"], "num_reads must be"),
        (["--solver-param", "beta_range=[0,inf]"], "beta_range must be two positive"),
        (["--group-size", "100000000"], "larger than the widest layer (64 inputs)"),
        (["--workers", "10000", "--dry-run"], "workers must be at most"),
    ],
)
def test_bad_values_are_one_line(tmp_path, capsys, args, fragment):
    code, out, err = run(capsys, *QUANTIZE, "--no-cache", "--report", tmp_path / "r.json", *args)
    assert code == 2 and out == ""
    one_error_line(err, fragment)
    assert list(tmp_path.iterdir()) == []


def test_a_dask_scheduler_may_have_more_workers():
    from annealq.execution import Execution, max_local_workers

    with pytest.raises(ValueError, match="workers must be at most"):
        Execution(workers=max_local_workers() + 1)
    Execution(workers=max_local_workers() + 1, dask_scheduler="tcp://127.0.0.1:8786")


def test_an_npz_header_declaring_a_huge_array_allocates_nothing(tmp_path):
    x, y = np.zeros((6, 28, 28), np.uint8), np.arange(6) % 3
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    raw = (tmp_path / "mnist.npz").read_bytes()
    old, new = b"(6, 28, 28), }", b"(60000000000, 28, 28), }"
    at = raw.find(old)  # the header's padding absorbs the longer shape
    (tmp_path / "mnist.npz").write_bytes(raw[:at] + new + raw[at + len(new) :])
    began = time.perf_counter()
    with pytest.raises(ValueError, match=r"declares shape \(60000000000, 28, 28\)"):
        load_dataset("mnist", data_dir=tmp_path)
    assert time.perf_counter() - began < 1.0


def _forged(path, edit):
    """A save_model file whose JSON architecture ``edit`` changed (tensors untouched)."""
    nn = torch.nn
    save_model(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), path)
    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    meta = json.loads(header["__metadata__"]["annealq_model"])
    edit(meta["architecture"]["children"][1])
    header["__metadata__"]["annealq_model"] = json.dumps(meta)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + size :])


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda layer: layer.update(kwargs=[64, 10]), "are an object of names"),
        (lambda layer: layer["kwargs"].update(device="cuda"), "device is not part"),
        (lambda layer: layer["kwargs"].update(in_features={"a": 1}), "not a JSON number"),
        (lambda layer: layer["kwargs"].update(in_features=-5), "cannot build a Linear"),
        (
            lambda layer: layer["kwargs"].update(in_features=30000, out_features=30000),
            "declares 900,030,000 numbers, the file's tensors hold 650",
        ),
    ],
)
def test_forged_model_architectures_are_refused_before_anything_is_built(
    tmp_path, capsys, edit, fragment
):
    _forged(tmp_path / "m.safetensors", edit)
    began = time.perf_counter()
    code, out, err = run(capsys, *QUANTIZE, "--no-cache", "--model", tmp_path / "m.safetensors")
    assert code == 2 and out == ""
    one_error_line(err, fragment)
    assert time.perf_counter() - began < 5.0


@pytest.mark.parametrize("delay", [0.3, 1.5])
def test_ctrl_c_while_annealq_starts_is_one_line(tmp_path, delay):
    child = subprocess.Popen(
        [sys.executable, "-m", "annealq", *QUANTIZE, "--no-cache"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(delay)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode in (130, 2) and err == "annealq: interrupted\n", err
