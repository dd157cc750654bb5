import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from annealq.data.datasets import load_digits  # noqa: E402
from annealq.data.models import REFERENCE_MODELS, accuracy, load_model, reference_model  # noqa: E402

nn = torch.nn


def _sequential():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(6, 5),
        nn.GELU(approximate="tanh"),
        nn.Dropout(0.1),
        nn.Linear(5, 4, bias=False),
        nn.LeakyReLU(0.3),
        nn.Linear(4, 2),
    ).eval()


def _outputs(model, x):
    with torch.no_grad():
        return model(torch.as_tensor(x, dtype=torch.float32))


def test_a_pickled_module_loads_only_when_trusted(tmp_path):
    model, x = _sequential(), np.random.default_rng(0).normal(size=(7, 6))
    torch.save(model, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="is a pickled module.*--trust-pickle"):
        load_model(tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt", trust_pickle=True)
    assert torch.equal(_outputs(loaded, x), _outputs(model, x))


def test_a_saved_model_loads_without_unpickling_and_checks_its_tensors(tmp_path):
    from annealq import save_model

    model, x = _sequential(), np.random.default_rng(0).normal(size=(7, 6))
    save_model(model, tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert torch.equal(_outputs(loaded, x), _outputs(model, x))
    data = bytearray((tmp_path / "m.safetensors").read_bytes())
    data[-8:] = b"\x7f" * 8  # the last tensor's bytes
    (tmp_path / "bad.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="is damaged"):
        load_model(tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="not an nn.Sequential of standard"):
        save_model(_Custom(), tmp_path / "custom.safetensors")
    assert not (tmp_path / "custom.safetensors").exists()


def test_scripted_sequential_is_rebuilt_as_an_ordinary_module_with_equal_outputs(tmp_path):
    model, x = _sequential(), np.random.default_rng(1).normal(size=(7, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(model).save(str(tmp_path / "s.pt"))
    with pytest.raises(ValueError, match="is TorchScript: loading it runs code"):
        load_model(tmp_path / "s.pt", example=x)  # its code runs only with consent
    loaded = load_model(tmp_path / "s.pt", example=x, trust_torchscript=True)
    assert not isinstance(loaded, torch.jit.ScriptModule)
    assert [type(m).__name__ for m in loaded] == [type(m).__name__ for m in model]
    assert loaded[4].bias is None and loaded[2].approximate == "tanh"
    assert torch.equal(_outputs(loaded, x), _outputs(model, x))


class _Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        return self.fc(x) * 2


def test_torchscript_with_a_custom_forward_is_refused_clearly(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(_Custom()).save(str(tmp_path / "c.pt"))
    with pytest.raises(ValueError, match="only nn.Sequential models of standard torch.nn"):
        load_model(tmp_path / "c.pt", trust_torchscript=True)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        (b"\x00garbage", "not a torch.save or TorchScript file"),
        ("state_dict", "holds a OrderedDict, not a torch.nn.Module.*state_dict"),
        ("tensor", "holds a Tensor, not a torch.nn.Module"),
    ],
)
def test_bad_model_files_are_one_line_value_errors(tmp_path, content, message):
    path = tmp_path / "m.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "state_dict":
        torch.save(_sequential().state_dict(), path)
    elif content == "tensor":
        torch.save(torch.zeros(3), path)
    with pytest.raises(ValueError, match=message) as error:
        load_model(path)
    assert "\n" not in str(error.value)


def test_reference_model_is_trained_reproducibly_once_and_then_read_from_the_cache(
    tmp_path, monkeypatch
):
    data = load_digits()
    model, path = reference_model(data, models_dir=tmp_path)
    assert path.parent == tmp_path and path.is_file()
    assert [m.out_features for m in model if isinstance(m, nn.Linear)] == [64, 10]
    assert accuracy(model, data.x_test, data.y_test) > 0.9

    import annealq.data.models as models

    monkeypatch.setattr(models, "_train", lambda *a: pytest.fail("trained again"))
    cached, _ = reference_model(data, models_dir=tmp_path)
    for a, b in zip(model.state_dict().values(), cached.state_dict().values()):
        assert torch.equal(a, b)
    monkeypatch.undo()
    retrained, _ = reference_model(data, models_dir=tmp_path / "again")
    for a, b in zip(model.state_dict().values(), retrained.state_dict().values()):
        assert torch.equal(a, b)  # same seed, same weights, bit for bit


def test_reference_configs_have_a_wide_hidden_layer_for_the_image_datasets():
    for name in ("mnist", "fashion-mnist", "emnist", "cifar10"):
        assert max(REFERENCE_MODELS[name].hidden) >= 128


def test_train_out_writes_a_model_file_that_loads_without_unpickling(tmp_path, monkeypatch):
    from annealq.cli import main

    monkeypatch.setenv("ANNEALQ_MODELS", str(tmp_path / "models"))
    assert main(["train", "--dataset", "digits", "--out", str(tmp_path / "m.safetensors")]) == 0
    loaded = load_model(tmp_path / "m.safetensors")
    x = np.random.default_rng(2).random((5, 64))
    from annealq import load_dataset, reference_model

    cached, _ = reference_model(load_dataset("digits"), models_dir=tmp_path / "models")
    assert torch.equal(_outputs(loaded, x), _outputs(cached, x))
