"""The reference CNNs: the tiny digits CNN trained reproducibly and quantized end to end
(every conv and linear layer), through the API and the command line, in seconds."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import annealq  # noqa: E402
from annealq.data.cnn import REFERENCE_CNNS, build_cnn, reference_cnn  # noqa: E402
from annealq.data.datasets import load_digits  # noqa: E402
from annealq.data.models import accuracy, describe  # noqa: E402


@pytest.fixture(scope="module")
def digits_cnn(tmp_path_factory):
    data = load_digits()
    model, path = reference_cnn(data, models_dir=tmp_path_factory.mktemp("models"))
    return data, model, path


def test_digits_cnn_is_trained_reproducibly_once_and_then_read_from_the_cache(digits_cnn):
    data, model, path = digits_cnn
    assert path.is_file() and "cnn" in path.name
    cached, _ = reference_cnn(data, models_dir=path.parent)
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), cached.state_dict().values())
    )
    assert accuracy(model, data.x_test, data.y_test) > 0.93
    assert describe(model) == "CNN conv 1-8-16 linear 256-10"


def test_cifar_cnn_is_a_small_vgg_style_network():
    model = build_cnn("cifar10")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == list(REFERENCE_CNNS["cifar10"].blocks)
    rows = torch.rand(2, 32 * 32 * 3)  # rows in the dataset's height, width, channel order
    assert model.eval()(rows).shape == (2, 10)
    image = rows.reshape(2, 32, 32, 3).permute(0, 3, 1, 2)
    assert torch.equal(model[0](rows), image)


def test_qubo_quantizes_every_layer_of_the_digits_cnn_below_rtn(digits_cnn):
    data, model, _ = digits_cnn
    result = annealq.quantize(
        model,
        data,
        bits=3,
        solver="lns",
        window_bits=3,
        start="gptq",
        calibration_size=100,
        cache=False,
        quiet=True,
    )
    report = result.report
    assert [layer.get("kernel") for layer in report["layers"]] == [
        [8, 1, 3, 3],
        [16, 8, 3, 3],
        None,
    ]
    assert report["layers"][0]["patches"] == 100 * 64
    assert report["not_quantized"] == [] and len(report["folded_batchnorm"]) == 2
    assert all(layer.energy < layer.rtn_energy for layer in result.layers)
    assert report["accuracy"]["quantized"] >= report["accuracy"]["float"] - 0.02


def test_quantize_command_with_the_digits_cnn(tmp_path, digits_cnn):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWAVE_")}
    env.update(
        {
            "HOME": str(tmp_path),
            "ANNEALQ_MODELS": str(digits_cnn[2].parent),
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        }
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "annealq",
            "quantize",
            "--dataset",
            "digits",
            "--arch",
            "cnn",
            "--bits",
            "4",
            "--method",
            "gptq",
            "--calibration",
            "200",
            "--report",
            "r.json",
            "--out",
            "q.pt",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert [layer["name"] for layer in report["layers"]] == ["1", "4", "9"]
    assert "CNN conv 1-8-16 linear 256-10" in out.stdout
    assert "BatchNorm 2 folded into layer 1" in out.stdout
    row = next(line for line in out.stdout.splitlines() if line.startswith("4 "))
    assert row.split()[1] == "16x8x3x3"
    # the file reloads into the float CNN: its BatchNorms folded as the run folded them
    data, model, _ = digits_cnn
    loaded = annealq.load(tmp_path / "q.pt", model=model)
    assert [type(m).__name__ for m in loaded.model][2] == "Identity"
    assert accuracy(loaded.model, data.x_test, data.y_test) == pytest.approx(
        report["accuracy"]["quantized"]
    )
