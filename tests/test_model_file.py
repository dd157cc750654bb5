"""The quantized-model file: safetensors plus JSON, loaded without unpickling, with the
caller's float model or the recorded architecture; the old pickle format only on trust."""

import json
import pickle

import numpy as np
import pytest
import torch
from torch import nn

import annealq
from annealq.pipeline import quantize
from annealq.quantized import FORMAT, writer


class _Custom(nn.Module):  # not a Sequential: its architecture cannot be recorded
    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(6, 5), nn.Linear(5, 3)
        self.scale = nn.Parameter(torch.tensor(1.5))

    def forward(self, x):
        return self.second(torch.tanh(self.first(x))) * self.scale


def _x(seed=0):
    return np.random.default_rng(seed).normal(size=(40, 6)).astype(np.float32)


def _same_outputs(a, b, x):
    with torch.no_grad():
        return torch.equal(a(torch.as_tensor(x)), b(torch.as_tensor(x)))


def test_a_custom_module_loads_with_the_float_model_it_came_from(tmp_path):
    torch.manual_seed(0)
    model, x = _Custom(), _x()
    result = quantize(
        model, x, bits=3, solver="steepest", cache=False, quiet=True, activation_bits=8
    )
    result.save(tmp_path / "q.safetensors")
    with pytest.raises(ValueError, match="records no architecture.*model="):
        annealq.load(tmp_path / "q.safetensors")
    fresh = _Custom()  # any weights: the file's integers and float parameters win
    with torch.no_grad():
        fresh.scale.fill_(-4.0)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    loaded = annealq.load(tmp_path / "q.safetensors", model=fresh)
    assert _same_outputs(loaded.model, result.model, x)
    assert loaded.report == result.report
    assert all(torch.equal(v, before[k]) for k, v in fresh.state_dict().items())  # untouched


def test_the_file_is_not_a_pickle_and_opening_it_runs_no_code(tmp_path):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    result = quantize(model, _x(1), bits=2, solver="steepest", cache=False, quiet=True)
    path = tmp_path / "q.pt"
    result.save(path)
    data = path.read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    meta = json.loads(header["__metadata__"]["annealq"])
    assert meta["format"] == FORMAT and meta["architecture"]["type"] == "Sequential"
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(data)
    assert _same_outputs(annealq.load(path).model, result.model, _x(1))


class _Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickled code ran')",))


def test_the_old_pickle_format_needs_an_explicit_trust_flag(tmp_path):
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    result = quantize(model, _x(2), bits=2, solver="steepest", cache=False, quiet=True)
    payload = {
        "format": FORMAT,
        "version": 1,
        "layers": [l.to_dict() for l in result.layers],
        "report": result.report,
        "solver": result.solver,
        "method": result.method,
        "model": result.model,
    }
    torch.save(payload, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="old pickle format.*trust_pickle=True"):
        annealq.load(tmp_path / "old.pt")
    trusted = annealq.load(tmp_path / "old.pt", trust_pickle=True)
    assert _same_outputs(trusted.model, result.model, _x(2))
    torch.save({"format": FORMAT, "boom": _Boom()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="old pickle format"):  # nothing was unpickled
        annealq.load(tmp_path / "evil.pt")


def _resave(path, result, edit):
    """``result``'s file with its metadata edited by ``edit(meta)``."""
    from safetensors.torch import load_file, save_file

    from annealq.integrity import tensor_digest

    result.save(path)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as archive:
        meta = json.loads(archive.metadata()["annealq"])
    tensors = load_file(str(path))
    edit(meta, tensors)
    meta["sha256"] = tensor_digest(tensors)  # resealed: the structural checks must catch it
    save_file(tensors, str(path), metadata={"annealq": json.dumps(meta)})


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda meta, t: meta["layers"][0].update(out_features=7), "the file's (7, 6)"),
        (lambda meta, t: t.pop("layers.1.int_weight"), "layers.1.int_weight"),
        (lambda meta, t: t.update(extra=torch.zeros(2)), "not described"),
        (lambda meta, t: meta["layers"][0].update(name="9"), "'0.weight'"),
    ],
)
def test_metadata_and_tensors_that_disagree_are_an_error_naming_the_file(tmp_path, edit, message):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    result = quantize(model, _x(3), bits=2, solver="steepest", cache=False, quiet=True)
    path = tmp_path / "q.pt"
    _resave(path, result, edit)
    with pytest.raises(ValueError) as raised:
        annealq.load(path)
    assert str(path) in str(raised.value) and message in str(raised.value)
    assert "disagree" in str(raised.value)


def test_damaged_and_foreign_files_are_named(tmp_path):
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    result = quantize(model, _x(4), bits=2, solver="steepest", cache=False, quiet=True)
    path = tmp_path / "q.pt"
    with open(path, "wb") as stream:
        writer(result)(stream)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # truncated
    with pytest.raises(ValueError, match="cannot read .*damaged"):
        annealq.load(path)
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ValueError, match="not a quantized model saved by annealq"):
        annealq.load(tmp_path / "text.pt")
