import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dwave.samplers import SteepestDescentSolver  # noqa: E402

from annealq.capture import linear_layers  # noqa: E402
from annealq.pipeline import quantize, rtn_model  # noqa: E402


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)
    ).double()


def test_sequential_calibration_uses_quantized_inputs_and_exact_energies():
    model = _model()
    x = np.random.default_rng(0).normal(size=(40, 6))
    result = quantize(model, x, bits=2, solver="exact")
    first, second = result.layers
    xt = torch.as_tensor(x)
    with torch.no_grad():
        float_hidden = torch.tanh(model[1](xt))
        quant_hidden = torch.tanh(result.model[1](xt))
        # the second layer's target is the float network's; its inputs the quantized one's
        target = model[3](float_hidden)
        output = result.model[3](quant_hidden)
        first_error = torch.sum((model[1](xt) - result.model[1](xt)) ** 2).item()
    assert first.energy == pytest.approx(first_error, rel=1e-9)
    assert second.energy == pytest.approx(torch.sum((target - output) ** 2).item(), rel=1e-9)
    assert not torch.allclose(float_hidden, quant_hidden)
    # integers on the int2 grid, and the model computes with them
    assert first.int_weight.min() >= -2 and first.int_weight.max() <= 1
    np.testing.assert_allclose(
        result.model[1].weight.detach().numpy(), first.int_weight * first.weight_step[:, None]
    )
    assert first.energy <= first.rtn_energy and second.energy <= second.rtn_energy


def test_original_model_is_untouched_and_rtn_model_rounds_to_nearest():
    model = _model(1)
    before = [p.clone() for p in model.parameters()]
    x = np.random.default_rng(1).normal(size=(10, 6))
    quantize(model, x, bits=3, solver=SteepestDescentSolver())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    rounded = rtn_model(model, x, bits=3)
    w = model[1].weight.detach().numpy()
    s = np.abs(w).max() / 4
    np.testing.assert_allclose(
        rounded[1].weight.detach().numpy(), s * np.clip(np.rint(w / s), -4, 3)
    )


def test_model_without_linear_layers_is_a_clear_error():
    with pytest.raises(ValueError, match="no nn.Linear"):
        linear_layers(torch.nn.Sequential(torch.nn.ReLU()), np.zeros((2, 3)))


def _mlp(seed=0):
    """Flatten → Linear → tanh → Linear → sigmoid → Linear → GELU → Linear (float32)."""
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(12, 9),
        nn.Tanh(),
        nn.Linear(9, 7),
        nn.Sigmoid(),
        nn.Linear(7, 5),
        nn.GELU(),
        nn.Linear(5, 3),
    )


def _data(m=60, seed=0):
    return np.random.default_rng(seed).normal(size=(m, 3, 4)).astype(np.float32)


def _layer_output_error(float_layer, quant_layer, x_float, x_hat):
    with torch.no_grad():
        return torch.sum((float_layer(x_float).double() - quant_layer(x_hat).double()) ** 2).item()


def test_multi_layer_mlp_with_tanh_sigmoid_gelu_every_layer_in_order_exact_energies():
    model = _mlp()
    x = _data()
    result = quantize(model, x, bits=3, solver="steepest", cache=False, quiet=True)
    assert [layer.name for layer in result.layers] == ["1", "3", "5", "7"]
    # rebuild every layer's float and quantized inputs independently, by running the models
    float_inputs, quant_inputs = [torch.as_tensor(x).flatten(1)] * 2
    for layer, index in zip(result.layers, (1, 3, 5, 7)):
        f, q = model[index], result.model[index]
        assert layer.energy == pytest.approx(
            _layer_output_error(f, q, float_inputs, quant_inputs), rel=1e-5
        )
        assert layer.energy <= layer.rtn_energy
        dequantized = (layer.int_weight * layer.weight_step[:, None]).astype(np.float32)
        np.testing.assert_array_equal(q.weight.detach().numpy(), dequantized)
        with torch.no_grad():
            activation = model[index + 1] if index + 1 < len(model) else torch.nn.Identity()
            float_inputs = activation(f(float_inputs))
            quant_inputs = activation(q(quant_inputs))
    assert sum(layer.energy for layer in result.layers) < sum(l.rtn_energy for l in result.layers)


def test_report_has_the_documented_schema_and_meanings():
    model = _mlp(1)
    x = _data(seed=1)
    y = np.random.default_rng(1).integers(0, 3, size=len(x))
    result = quantize(model, x, bits=2, solver="exact", cache=False, quiet=True, evaluation=(x, y))
    report = result.report
    assert {"dataset", "bits", "solver", "method", "accuracy", "layers", "cache", "timing"} <= set(
        report
    )
    assert (report["dataset"], report["bits"], report["solver"], report["method"]) == (
        None,
        2,
        "exact",
        "qubo",
    )
    assert set(report["accuracy"]) == {"float", "rtn", "quantized"}
    assert report["accuracy"]["quantized"] == pytest.approx(
        float((result.model(torch.as_tensor(x)).argmax(1).numpy() == y).mean())
    )
    assert report["accuracy"]["rtn"] == pytest.approx(
        float((rtn_model(model, x, bits=2)(torch.as_tensor(x)).argmax(1).numpy() == y).mean())
    )
    for entry, layer in zip(report["layers"], result.layers):
        assert {
            "name",
            "in_features",
            "out_features",
            "energy",
            "rtn_energy",
            "solve_seconds",
        } <= set(entry)
        assert (entry["energy"], entry["rtn_energy"]) == (layer.energy, layer.rtn_energy)
        assert entry["in_features"] == layer.int_weight.shape[1]
    assert report["cache"] == {"hits": 0, "misses": 9 + 7 + 5 + 3}
    assert report["timing"]["total_seconds"] >= report["timing"]["solve_seconds"] > 0
    assert report["not_quantized"] == []
    import json

    json.dumps(report, allow_nan=False)  # plain JSON
    no_eval = quantize(model, x, bits=2, solver="exact", cache=False, quiet=True).report
    assert "accuracy" not in no_eval


def test_save_and_load_round_trip_gives_identical_outputs(tmp_path):
    import annealq

    model, x = _mlp(2), _data(seed=2)
    for activation_bits in (None, 8):
        result = quantize(
            model,
            x,
            bits=2,
            solver="steepest",
            cache=False,
            quiet=True,
            activation_bits=activation_bits,
        )
        path = tmp_path / f"q{activation_bits}.pt"
        result.save(path)
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
        loaded = annealq.load(path)
        with torch.no_grad():
            assert torch.equal(loaded.model(torch.as_tensor(x)), result.model(torch.as_tensor(x)))
        for a, b in zip(loaded.layers, result.layers):
            np.testing.assert_array_equal(a.int_weight, b.int_weight)
            np.testing.assert_array_equal(a.int_bias, b.int_bias)
            np.testing.assert_array_equal(a.weight_step, b.weight_step)
            assert a.input_grid == b.input_grid
        assert loaded.report == result.report and loaded.solver == "steepest"
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot read"):
        annealq.load(tmp_path / "junk.pt")


def test_activation_bits_8_rounds_each_layers_inputs_to_int8_and_bias_step_is_sx_times_s():
    from annealq.activations import QuantizedInputLinear

    model, x = _mlp(3), _data(seed=3)
    result = quantize(
        model, x, bits=4, solver="steepest", cache=False, quiet=True, activation_bits=8
    )
    inputs = torch.as_tensor(x).flatten(1)
    for layer, index in zip(result.layers, (1, 3, 5, 7)):
        module = result.model[index]
        assert isinstance(module, QuantizedInputLinear)
        grid = layer.input_grid
        low, high = min(inputs.min().item(), 0.0), max(inputs.max().item(), 0.0)
        assert grid.step == pytest.approx((high - low) / 255)
        assert (grid.q_min, grid.q_max) == (-128, 127)
        np.testing.assert_allclose(layer.bias_step, grid.step * layer.weight_step)
        # what the layer computes with: at most 256 distinct values, on the grid
        rounded = grid.fake_quantize(inputs)
        codes = rounded / grid.step + grid.zero_point
        assert torch.allclose(codes, torch.round(codes), atol=1e-3)
        assert len(torch.unique(rounded)) <= 256
        assert torch.max(torch.abs(rounded - inputs)).item() <= grid.step / 2 + 1e-6
        with torch.no_grad():
            expected = rounded.double() @ torch.as_tensor(
                layer.int_weight * layer.weight_step[:, None]
            ).T + torch.as_tensor(layer.int_bias * layer.bias_step)
            out = module(inputs)
            assert torch.allclose(out.double(), expected, rtol=1e-5, atol=1e-5)
            inputs = result.model[index + 1](out) if index + 1 < len(model) else out
    assert result.report["activation_bits"] == 8


def test_layers_annealq_does_not_quantize_stay_float_and_are_reported():
    nn = torch.nn
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(28, 4), nn.ReLU(), nn.Linear(4, 2)
    )
    x = np.random.default_rng(4).normal(size=(30, 1, 16)).astype(np.float32)
    result = quantize(model, x, bits=2, solver="steepest", cache=False, quiet=True)
    assert [layer.name for layer in result.layers] == ["3", "5"]
    assert torch.equal(result.model[0].weight, model[0].weight)
    assert result.report["not_quantized"] == [
        {
            "name": "0",
            "type": "Conv1d",
            "parameters": 8,
            "reason": "not an nn.Linear or nn.Conv2d: kept in float",
        }
    ]


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"bits": 0}, "bits must be from 1 to 8"),
        ({"method": "round"}, "unknown method 'round'"),
        ({"activation_bits": 1}, "activation_bits must be from 2 to 16"),
        ({"per_chanel": True}, "unknown option"),
        ({"solver": "nope"}, "unknown solver 'nope'"),
    ],
)
def test_bad_arguments_are_clear_value_errors(bad, message):
    arguments = {"bits": 2, "solver": "steepest", "cache": False, "quiet": True, **bad}
    with pytest.raises(ValueError, match=message):
        quantize(_mlp(), _data(), **arguments)


def test_nan_weights_are_a_clear_error_naming_the_parameter():
    model = _mlp()
    with torch.no_grad():
        model[3].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"3\.weight contains NaN"):
        quantize(model, _data(), bits=2, solver="steepest", cache=False, quiet=True)


def test_calibration_from_a_dataset_comes_from_the_training_split_only():
    from annealq.data.datasets import Dataset

    rng = np.random.default_rng(5)
    # train inputs positive, test inputs negative: any test row would show
    data = Dataset(
        "toy",
        rng.random((50, 12)).astype(np.float32),
        rng.integers(0, 3, 50),
        -rng.random((20, 12)).astype(np.float32),
        rng.integers(0, 3, 20),
    )
    model = _mlp(5)
    seen = []
    hook = model[1].register_forward_hook(lambda m, i, o: seen.append(i[0].detach().clone()))
    result = quantize(
        model, data, bits=2, solver="steepest", cache=False, quiet=True, calibration_size=30, seed=1
    )
    hook.remove()
    calibration_batches = [x for x in seen if len(x) == 30]
    assert calibration_batches and all(bool((x >= 0).all()) for x in calibration_batches)
    rows = {tuple(r) for r in calibration_batches[0].numpy()}
    assert rows <= {tuple(r) for r in data.x_train} and len(rows) == 30
    assert result.report["dataset"] == "toy" and result.report["calibration_size"] == 30
    assert set(result.report["accuracy"]) == {"float", "rtn", "quantized"}  # on the test split
    with pytest.raises(ValueError, match="calibration_size applies to a Dataset"):
        quantize(model, data.x_train, bits=2, calibration_size=10, cache=False, quiet=True)


def test_rtn_method_energy_is_rtn_energy_and_uses_no_solver():
    result = quantize(_mlp(6), _data(seed=6), bits=3, method="rtn", quiet=True)
    assert result.solver is None and result.report["solver"] is None
    assert all(layer.energy == layer.rtn_energy for layer in result.layers)
    assert result.report["cache"] == {"hits": 0, "misses": 0}


def test_baseline_methods_go_through_annealq_baselines():
    baselines = pytest.importorskip("annealq.baselines")
    model, x = _mlp(7), _data(seed=7)
    gptq = quantize(model, x, bits=2, method="gptq", quiet=True)
    first = gptq.layers[0]
    X = torch.as_tensor(x).flatten(1).double().numpy()
    q, q_b, setting = baselines.tuned_gptq_layer(
        model[1].weight, model[1].bias, X, bits=2, float_inputs=X
    )
    np.testing.assert_array_equal(first.int_weight, q)
    np.testing.assert_array_equal(first.int_bias, q_b)
    assert gptq.report["layers"][0]["gptq_setting"] == setting
    # the fixed setting of the benchmarks before tuning, explicitly
    fixed = quantize(model, x, bits=2, method="gptq", act_order=True, damp=0.01, quiet=True)
    q, q_b = baselines.gptq_layer(model[1].weight, model[1].bias, X, bits=2, float_inputs=X)
    np.testing.assert_array_equal(fixed.layers[0].int_weight, q)
    assert [(t["act_order"], t["damp"]) for t in fixed.layers[0].gptq_setting["tried"]] == [
        (True, 0.01)
    ]
    assert fixed.report["options"] == {"act_order": True, "damp": 0.01}
    adaround = quantize(model, x, bits=2, method="adaround", iterations=20, quiet=True)
    assert adaround.report["options"] == {"iterations": 20}
    assert all(layer.energy <= layer.rtn_energy * 1.5 for layer in adaround.layers)


def test_tuned_gptq_is_chosen_per_layer_and_shared_by_cd_and_the_qubo_start():
    import torch

    torch.manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    x = np.random.default_rng(4).normal(size=(60, 10))
    gptq = quantize(model, x, bits=2, method="gptq", cache=False, quiet=True)
    settings = [layer["gptq_setting"] for layer in gptq.report["layers"]]
    for setting, layer in zip(settings, gptq.layers):
        assert len(setting["tried"]) == 6  # act-order on/off × three dampings
        assert setting["error"] == min(t["error"] for t in setting["tried"])
        assert setting["error"] == pytest.approx(layer.energy, rel=1e-9)
    # every fixed setting of the grid is worse or equal on the first layer (same inputs)
    for act_order in (True, False):
        fixed = quantize(
            model,
            x,
            bits=2,
            method="gptq",
            act_order=act_order,
            damp=0.001,
            cache=False,
            quiet=True,
        )
        assert gptq.layers[0].energy <= fixed.layers[0].energy * (1 + 1e-12)
    cd = quantize(model, x, bits=2, method="cd", cache=False, quiet=True)
    assert cd.report["layers"][0]["gptq_setting"] == settings[0]
    assert cd.layers[0].energy <= gptq.layers[0].energy * (1 + 1e-12)
    qubo = quantize(
        model,
        x,
        bits=2,
        solver="steepest",
        window_bits=2,
        start="gptq",
        damp=0.01,
        cache=False,
        quiet=True,
    )
    assert [t["damp"] for t in qubo.report["layers"][0]["gptq_setting"]["tried"]] == [0.01] * 2
    with pytest.raises(ValueError, match="go with start='gptq'"):
        quantize(model, x, bits=2, solver="steepest", damp=0.01, cache=False, quiet=True)
    with pytest.raises(ValueError, match="act_order must be True or False"):
        quantize(model, x, bits=2, method="gptq", act_order="yes", cache=False, quiet=True)


@pytest.mark.parametrize("solver", ["steepest", "batch-sa", "lns", "neal", "qpu-mock"])
def test_gptq_start_is_never_worse_than_gptq(solver):
    from annealq import quantize

    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    x = np.random.default_rng(3).normal(size=(60, 10))
    gptq = quantize(model, x, bits=3, method="gptq", cache=False, quiet=True)
    params = {"num_sweeps": 10} if solver == "neal" else None
    qubo = quantize(
        model,
        x,
        bits=3,
        solver=solver,
        solver_params=params,
        window_bits=2,
        start="gptq",
        cache=False,
        quiet=True,
        seed=0,
    )
    assert qubo.report["start"] == "gptq"
    # the first layer sees the same inputs in both runs: never worse than GPTQ's solution
    assert qubo.layers[0].energy <= gptq.layers[0].energy * (1 + 1e-9)
    # a mock QPU's results are labelled as the classical emulation they are
    assert qubo.report.get("emulation", False) is (solver == "qpu-mock")
    if solver == "qpu-mock":
        assert "classical emulation" in qubo.report["emulation_note"]


def test_the_command_line_summary_says_when_results_are_an_emulation(capsys):
    from types import SimpleNamespace

    from annealq.summary import print_summary

    _print_summary = print_summary

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 3))
    x = np.random.default_rng(0).normal(size=(30, 6))
    for solver, labelled in (("qpu-mock", True), ("steepest", False)):
        result = quantize(model, x, bits=2, solver=solver, cache=False, quiet=True)
        data = SimpleNamespace(name="toy", y_test=np.zeros(3))
        print_summary(result, data, model, "test model")
        out = capsys.readouterr().out
        assert (
            "NOTE: solver 'qpu-mock' is a classical emulation, not quantum hardware" in out
        ) is labelled


def test_start_needs_the_qubo_method():
    from annealq import quantize

    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="start must be one of"):
        quantize(model, np.zeros((4, 3)), bits=2, method="gptq", start="gptq", cache=False)


def test_affine_one_bit_grid_through_the_pipeline_and_save_load(tmp_path):
    from annealq import load, quantize

    torch.manual_seed(5)
    model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    x = np.random.default_rng(5).normal(size=(50, 8))
    result = quantize(
        model, x, bits=1, scheme="affine", per_channel=True, solver="exact", cache=False, quiet=True
    )
    first = result.layers[0]
    xt = torch.as_tensor(x, dtype=torch.float32)
    with torch.no_grad():
        error = torch.sum((model[0](xt).double() - result.model[0](xt).double()) ** 2).item()
        w = result.model[0].weight.numpy()
    assert first.energy == pytest.approx(error, rel=1e-4)
    # two levels per row, the row's min and max
    for row, original in zip(w, model[0].weight.detach().numpy()):
        np.testing.assert_allclose(
            sorted(set(np.round(row, 5))), np.round([original.min(), original.max()], 5), atol=1e-5
        )
    assert first.energy <= first.rtn_energy
    result.save(tmp_path / "q.pt")
    again = load(tmp_path / "q.pt")
    with torch.no_grad():
        assert torch.equal(again.model(xt), result.model(xt))
    with pytest.raises(ValueError, match="affine"):
        quantize(model, x, bits=2, scheme="affine", method="gptq", cache=False)


@pytest.mark.parametrize("solver", ["lns", "exact-bb"])
def test_time_limit_per_layer_is_anytime_and_never_worse_than_the_start(solver):
    import time

    import torch

    torch.manual_seed(5)
    model = torch.nn.Sequential(torch.nn.Linear(30, 12), torch.nn.ReLU(), torch.nn.Linear(12, 4))
    x = np.random.default_rng(5).normal(size=(80, 30))
    gptq = quantize(model, x, bits=3, method="gptq", cache=False, quiet=True)
    began = time.perf_counter()
    timed = quantize(
        model,
        x,
        bits=3,
        solver=solver,
        window_bits=3,
        start="gptq",
        time_limit=0.05,
        cache=False,
        quiet=True,
        seed=0,
    )
    assert time.perf_counter() - began < 30
    assert timed.report["config"]["time_limit"] == 0.05
    assert timed.layers[0].energy <= gptq.layers[0].energy * (1 + 1e-9)
    with pytest.raises(ValueError, match="takes no time limit per layer"):
        quantize(model, x, bits=3, solver="steepest", time_limit=1.0, cache=False, quiet=True)
    with pytest.raises(ValueError, match="time_limit must be a positive number"):
        quantize(model, x, bits=3, solver=solver, time_limit=0, cache=False, quiet=True)
