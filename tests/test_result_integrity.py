"""A saved result carries a checksum of its tensors, checked on load: a flipped byte is
named as damage; integers off the grid or non-finite steps are refused even when the
checksum was forged to match; a file written before checksums loads with a warning."""

import json
import logging
import struct

import numpy as np
import pytest
import torch

import annealq
from annealq.integrity import tensor_digest


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    x = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    path = tmp_path_factory.mktemp("result") / "q.safetensors"
    annealq.quantize(model, x, bits=3, method="rtn", cache=False, quiet=True).save(path)
    return path


def _parts(path):
    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8 : 8 + size]), raw[8 + size :]


def _rewrite(path, header, data, *, meta_edit=None, reseal=False):
    meta = json.loads(header["__metadata__"]["annealq"])
    if meta_edit:
        meta_edit(meta)
    if reseal:  # a forger recomputes the checksum over the edited tensors
        from safetensors.torch import load

        meta["sha256"] = tensor_digest(load(_pack(header, data)))
    header["__metadata__"]["annealq"] = json.dumps(meta)
    path.write_bytes(_pack(header, data))


def _pack(header, data):
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def _set(header, data, name, value):
    """``data`` with the first element of tensor ``name`` replaced by ``value``."""
    start = header[name]["data_offsets"][0]
    dtype = {"I64": "<i8", "F64": "<f8"}[header[name]["dtype"]]
    return data[:start] + np.array([value], dtype=dtype).tobytes() + data[start + 8 :]


def test_a_flipped_tensor_byte_is_named_as_damage(saved, tmp_path):
    header, data = _parts(saved)
    start = header["layers.0.int_weight"]["data_offsets"][0]
    flipped = data[: start + 7] + bytes([data[start + 7] ^ 0x40]) + data[start + 8 :]
    _rewrite(tmp_path / "q.safetensors", header, flipped)
    with pytest.raises(ValueError, match="do not match their checksum"):
        annealq.load(tmp_path / "q.safetensors")


@pytest.mark.parametrize(
    "name, value, fragment",
    [
        ("layers.0.int_weight", 4.6e18, "outside the grid's -4..3"),
        ("layers.1.weight_step", float("nan"), "weight_step holds non-finite"),
        ("layers.0.bias_step", -1.0, "bias_step holds non-finite or non-positive"),
    ],
)
def test_forged_numbers_are_refused_even_with_a_matching_checksum(
    saved, tmp_path, name, value, fragment
):
    header, data = _parts(saved)
    _rewrite(tmp_path / "q.safetensors", header, _set(header, data, name, value), reseal=True)
    with pytest.raises(ValueError, match=fragment) as raised:
        annealq.load(tmp_path / "q.safetensors")
    assert "\n" not in str(raised.value)


def test_a_file_without_a_checksum_loads_with_a_warning(saved, tmp_path, caplog):
    header, data = _parts(saved)
    _rewrite(tmp_path / "q.safetensors", header, data, meta_edit=lambda meta: meta.pop("sha256"))
    with caplog.at_level(logging.WARNING, logger="annealq"):
        old = annealq.load(tmp_path / "q.safetensors")
    assert "predates result checksums" in caplog.text
    assert np.array_equal(old.layers[0].int_weight, annealq.load(saved).layers[0].int_weight)
