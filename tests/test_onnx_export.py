"""ONNX export (annealq.onnx_export): ONNX Runtime computes what the quantized torch model
computes, from the integers themselves (INT2/INT4/INT8 initializers), for the digits MLP and
CNN at every width and grid; files hold ~bits/8 bytes per weight; a fresh interpreter with
only onnxruntime and numpy reproduces the accuracy; what cannot be exported is one error."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, numpy_helper  # noqa: E402

import annealq  # noqa: E402
from annealq.cli import main  # noqa: E402
from annealq.data.cnn import reference_cnn  # noqa: E402
from annealq.data.datasets import load_digits  # noqa: E402
from annealq.data.model_file import save_model  # noqa: E402
from annealq.errors import ExportError  # noqa: E402

MODELS = Path(__file__).resolve().parents[1] / "benchmarks" / "models"
STORAGE = {TensorProto.INT2: 2, TensorProto.INT4: 4, TensorProto.INT8: 8}


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def models(digits, tmp_path_factory):
    mlp, _ = annealq.reference_model(digits, models_dir=MODELS)  # the committed weights
    cnn, _ = reference_cnn(digits, models_dir=tmp_path_factory.mktemp("models"))
    return {"mlp": mlp, "cnn": cnn}


def _quantize(model, data, bits, method="rtn", *, accuracy=False, **options):
    """A cheap result: round to nearest on 50 calibration images (accuracy in the report
    only when asked: three more passes over the test split)."""
    calibration = (
        {"calibration": data, "calibration_size": 50}
        if accuracy
        else {"calibration": data.calibration(50, seed=0)}
    )
    return annealq.quantize(
        model, **calibration, bits=bits, method=method, cache=False, quiet=True, **options
    )


def _onnx_outputs(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def _torch_outputs(result, x):
    with torch.no_grad():
        return result.model(torch.from_numpy(x)).numpy()


def _weights(path):
    """The file's integer weight initializers by layer: (ONNX type, integers)."""
    return {
        init.name.removesuffix(".weight_q"): (init.data_type, numpy_helper.to_array(init))
        for init in onnx.load(str(path)).graph.initializer
        if init.name.endswith(".weight_q")
    }


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize(
    "grid", [{"per_channel": True}, {"group_size": 32}], ids=["per-channel", "group32"]
)
def test_onnx_runtime_computes_the_quantized_model_from_its_integers(
    models, digits, tmp_path, arch, bits, grid
):
    result = _quantize(models[arch], digits, bits, **grid)
    path = tmp_path / "model.onnx"
    result.to_onnx(path)
    x = digits.x_test.astype(np.float32)
    got, expected = _onnx_outputs(path, x), _torch_outputs(result, x)
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()
    assert np.array_equal(got.argmax(1), expected.argmax(1))
    stored = _weights(path)
    assert sorted(stored) == sorted(layer.name for layer in result.layers)
    for layer in result.layers:
        kind, integers = stored[layer.name]
        assert STORAGE[kind] == {2: 2, 3: 4, 4: 4, 8: 8}[bits]
        assert np.array_equal(integers.astype(np.int64), layer.int_weight)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"scheme": "affine", "per_channel": True},
        {"scheme": "affine", "group_size": 32},
        {"group_size": 24},
        {"method": "qubo", "solver": "steepest", "per_channel": True},
    ],
    ids=["per-tensor", "affine", "affine-group32", "group24-partial", "qubo"],
)
def test_per_tensor_affine_partial_groups_and_solver_integers_export_exactly(
    models, digits, tmp_path, options
):
    result = _quantize(models["mlp"], digits, 3, **options)
    path = tmp_path / "model.onnx"
    annealq.export_onnx(result, path)
    x = digits.x_test.astype(np.float32)
    got, expected = _onnx_outputs(path, x), _torch_outputs(result, x)
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()
    assert np.array_equal(got.argmax(1), expected.argmax(1))


@pytest.mark.parametrize("arch, activation_bits", [("mlp", 8), ("cnn", 8), ("mlp", 4)])
def test_integer_activations_agree_on_top1_up_to_near_ties(
    models, digits, tmp_path, arch, activation_bits
):
    result = _quantize(models[arch], digits, 4, per_channel=True, activation_bits=activation_bits)
    path = tmp_path / "model.onnx"
    result.to_onnx(path)
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert ops.count("QuantizeLinear") == len(result.layers)
    assert ("Clip" in ops) == (activation_bits < 8)
    x = digits.x_test.astype(np.float32)
    got, expected = _onnx_outputs(path, x), _torch_outputs(result, x)
    differ = got.argmax(1) != expected.argmax(1)
    assert differ.mean() <= 0.001
    top2 = np.sort(expected[differ], axis=1)[:, -2:]
    assert np.all(top2[:, 1] - top2[:, 0] <= 1e-3 * np.abs(expected).max())


def test_weight_bytes_are_the_integers_bits_packed_and_a_seventh_or_fourteenth(tmp_path):
    # an MNIST-shaped MLP (784-128-10): the sizes depend on the shapes only
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    )
    x = np.random.default_rng(0).random((200, 784), dtype=np.float32)
    float_bytes = 4 * (784 * 128 + 128 * 10)
    for bits, storage, bound in ((4, "int2", 7), (2, "int2", 14), (2, "int4", 7)):
        result = annealq.quantize(model, x, bits=bits, method="rtn", per_channel=True, quiet=True)
        path = tmp_path / f"int{bits}-{storage}.onnx"
        result.to_onnx(path, int2_storage=storage)
        initializers = {i.name: i for i in onnx.load(str(path)).graph.initializer}
        weight_bytes = 0
        for layer in result.layers:
            integers = initializers[f"{layer.name}.weight_q"].raw_data
            width = 4 if storage == "int4" else bits
            assert len(integers) == math.ceil(layer.int_weight.size * width / 8)
            weight_bytes += len(integers) + len(initializers[f"{layer.name}.weight_scale"].raw_data)
        assert weight_bytes <= float_bytes / bound


def test_a_fresh_interpreter_with_only_onnxruntime_reproduces_the_accuracy(
    models, digits, tmp_path
):
    result = _quantize(models["mlp"], digits, 2, per_channel=True, accuracy=True)
    result.to_onnx(tmp_path / "model.onnx")
    np.save(tmp_path / "x.npy", digits.x_test.astype(np.float32))
    np.save(tmp_path / "y.npy", digits.y_test)
    script = (
        "import sys, numpy as np, onnxruntime as ort\n"
        "s = ort.InferenceSession('model.onnx', providers=['CPUExecutionProvider'])\n"
        "logits = s.run(None, {'input': np.load('x.npy')})[0]\n"
        "print((logits.argmax(1) == np.load('y.npy')).mean())\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'annealq'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    accuracy, loaded = out.stdout.splitlines()
    assert float(accuracy) == pytest.approx(result.report["accuracy"]["quantized"], abs=1e-12)
    assert loaded == "[]"


def test_quantize_and_export_commands_write_the_same_onnx_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ANNEALQ_MODELS", str(MODELS))
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "quantize",
                "--dataset",
                "digits",
                "--bits",
                "2",
                "--method",
                "rtn",
                "--per-channel",
                "--calibration",
                "100",
                "--quiet",
                "--out",
                "q.safetensors",
                "--onnx",
                "q.onnx",
                "--int2-storage",
                "int4",
            ]
        )
        == 0
    )
    assert "ONNX model written to q.onnx" in capsys.readouterr().out
    assert main(["export", "q.safetensors", "--onnx", "e.onnx", "--int2-storage", "int4"]) == 0
    assert (tmp_path / "q.onnx").read_bytes() == (tmp_path / "e.onnx").read_bytes()
    assert {kind for kind, _ in _weights(tmp_path / "e.onnx").values()} == {TensorProto.INT4}


def _unexportable(tmp_path):
    """A quantized model with an nn.Hardswish, which the exporter has no form for."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 16), torch.nn.Hardswish(), torch.nn.Linear(16, 10)
    )
    x = np.random.default_rng(0).random((50, 64), dtype=np.float32)
    return model, annealq.quantize(model, x, bits=4, method="rtn", quiet=True)


def test_a_module_the_exporter_cannot_express_is_one_error_naming_it(tmp_path, capsys):
    model, result = _unexportable(tmp_path)
    with pytest.raises(ExportError, match=r"cannot export layer '1' \(Hardswish\(\)\)"):
        result.to_onnx(tmp_path / "a.onnx")
    result.save(tmp_path / "q.safetensors")
    assert (
        main(["export", str(tmp_path / "q.safetensors"), "--onnx", str(tmp_path / "b.onnx")]) == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("annealq: error: cannot export layer '1'") and err.count("\n") == 1
    save_model(model, tmp_path / "float.safetensors")
    assert (
        main(
            [
                "quantize",
                "--dataset",
                "digits",
                "--model",
                str(tmp_path / "float.safetensors"),
                "--bits",
                "4",
                "--method",
                "rtn",
                "--out",
                str(tmp_path / "q2.safetensors"),
                "--onnx",
                str(tmp_path / "c.onnx"),
            ]
        )
        == 2
    )
    assert "cannot export layer '1'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["float.safetensors", "q.safetensors"]


def test_a_graph_the_checker_rejects_is_never_written(models, digits, tmp_path, monkeypatch):
    result = _quantize(models["mlp"], digits, 2, per_channel=True)
    monkeypatch.setattr("annealq.onnx_export.OPSET", 19)  # no INT2 before opset 25
    with pytest.raises(ExportError, match="checker rejects"):
        result.to_onnx(tmp_path / "model.onnx")
    with pytest.raises(ExportError, match="int2_storage"):
        result.to_onnx(tmp_path / "model.onnx", int2_storage="int3")
    assert list(tmp_path.iterdir()) == []
