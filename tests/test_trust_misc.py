"""Smaller trust fixes: the summary of a run with local workers, available_samplers()
reading .env as get_sampler does, the reference-model cache keyed on the data's content,
and TorchScript model files read only with --trust-torchscript."""

import os
import warnings

import torch

import annealq
from annealq.data.datasets import load_digits
from annealq.data.models import REFERENCE_MODELS, _reference_path
from annealq.summary import print_summary
from tests.conftest import CANARY_TOKEN
from tests.test_hardening import QUANTIZE, one_error_line, run


def test_the_summary_of_a_run_with_local_workers(capsys):
    """The pool's counts (layers, tasks) once went under "cloud" and the summary's cloud
    line failed with KeyError: 'problems' after the results were printed."""
    data = load_digits()
    model = annealq.reference_model(data)[0]
    result = annealq.quantize(model, data.x_train[:100], bits=2, method="rtn", quiet=True)
    for key in ("workers", "cloud"):  # the new key, and a report of the old shape
        result.report[key] = {"executor": "processes", "layers": 2, "tasks": 13}
        print_summary(result, data, model, "test")
        out = capsys.readouterr().out
        assert "time: " in out and "cloud:" not in out  # no cloud was used


def test_available_samplers_reads_dot_env_like_get_sampler(no_token):
    os.environ.pop("DWAVE_API_TOKEN", None)
    (no_token / ".env").write_text(f"DWAVE_API_TOKEN={CANARY_TOKEN}\n")
    [hybrid] = [s for s in annealq.available_samplers() if s.name == "hybrid"]
    assert "no D-Wave API token" not in (hybrid.reason or "")
    os.environ.pop("DWAVE_API_TOKEN", None)


def test_the_reference_model_cache_is_keyed_on_the_data_not_its_size(tmp_path):
    one, other = load_digits(seed=0), load_digits(seed=1)  # same sizes, other images
    assert len(one.x_train) == len(other.x_train)
    config = REFERENCE_MODELS["digits"]
    paths = {_reference_path(d, config, 0, tmp_path) for d in (one, other, load_digits(seed=0))}
    assert len(paths) == 2


def test_torchscript_model_files_need_consent(tmp_path, capsys):
    nn = torch.nn
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(model).save(str(tmp_path / "s.pt"))
    code, out, err = run(capsys, *QUANTIZE, "--method", "rtn", "--model", tmp_path / "s.pt")
    assert code == 2 and out == ""
    one_error_line(err, "is TorchScript", "--trust-torchscript")
    code, out, _ = run(
        capsys, *QUANTIZE, "--method", "rtn", "--model", tmp_path / "s.pt", "--trust-torchscript"
    )
    assert code == 0 and "accuracy: float" in out


def test_qpu_mock_starts_from_rtn_and_counts_the_neurons_that_keep_it():
    from annealq.config import QuantizeConfig

    assert QuantizeConfig.from_options(bits=2, solver="qpu-mock").start == "rtn"
    assert "no measure of a QPU" in annealq.registry.emulation_note("qpu-mock")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 3))
    x = torch.randn(30, 5).numpy()
    result = annealq.quantize(model, x, bits=2, solver="qpu-mock", cache=False, quiet=True)
    [layer] = result.report["layers"]
    assert 0 <= layer["kept_start"] <= 3
    assert layer["energy"] <= layer["rtn_energy"] * (1 + 1e-9)  # never worse than its start
