"""Conv2d through the exact QUBO: energies equal the squared output error over every output
position, against torch's own convolution; every method and solver; BatchNorm folding;
export and reload."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import annealq  # noqa: E402
from annealq.conv import dense_parameters, patch_statistics, patches  # noqa: E402
from annealq.fold import fold_batchnorm  # noqa: E402
from annealq.formulation import formulate_layer  # noqa: E402
from annealq.pipeline import quantize  # noqa: E402
from annealq.statistics import InputStatistics  # noqa: E402

nn = torch.nn
F = torch.nn.functional

GEOMETRIES = [
    {"stride": 1, "padding": 0, "dilation": 1, "bias": True},
    {"stride": 2, "padding": 1, "dilation": 1, "bias": True},
    {"stride": (2, 1), "padding": (2, 1), "dilation": (2, 1), "bias": False},
    {"stride": 1, "padding": "same", "dilation": 2, "bias": True},
    {"stride": 3, "padding": 2, "dilation": 1, "bias": True, "padding_mode": "reflect"},
]


def _conv(geometry, c_in=3, c_out=4, kernel=3, seed=0):
    torch.manual_seed(seed)
    return nn.Conv2d(c_in, c_out, kernel, **geometry).double().eval()


def _inputs(shape, seed=0, drift=0.05):
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(rng.normal(size=shape))
    return x + drift * torch.as_tensor(rng.normal(size=shape)), x  # (X̂, X)


def _torch_error(conv, weight, bias, x_hat, x):
    """Σ over images, channels and positions of (conv(x) − conv_q(x̂))², by torch."""
    quantized = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        padding_mode=conv.padding_mode,
        bias=bias is not None,
    ).double()
    with torch.no_grad():
        quantized.weight.copy_(torch.as_tensor(weight).reshape(conv.weight.shape))
        if bias is not None:
            quantized.bias.copy_(torch.as_tensor(bias))
        return ((conv(x) - quantized(x_hat)) ** 2).sum(dim=(0, 2, 3)).numpy()


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("bits, window_bits", [(2, 1), (3, 3)])
def test_energy_is_the_squared_error_over_all_output_positions(geometry, bits, window_bits):
    conv = _conv(geometry)
    x_hat, x = _inputs((5, 3, 9, 8))
    stats = patch_statistics(conv, x_hat, x, max_rows=37)  # many small chunks
    assert stats.rows == patches(conv, x).shape[0] == 5 * conv(x).shape[2] * conv(x).shape[3]
    weight, bias = dense_parameters(conv)
    lq = formulate_layer(
        weight,
        bias,
        stats.inputs,
        float_inputs=stats.float_inputs,
        bits=bits,
        window_bits=window_bits,
    )
    rng = np.random.default_rng(1)
    for trial in range(3):
        states = rng.integers(0, 2, size=lq.free.shape) if trial else lq.states(lq.rtn_integers())
        samples = lq.samples(states)
        w = np.stack([lq.dequantize(i, s)[0] for i, s in enumerate(samples)])
        b = np.array([lq.dequantize(i, s)[1] for i, s in enumerate(samples)])
        expected = _torch_error(conv, w, b if conv.bias is not None else None, x_hat, x)
        energies = [lq.bqm(i).energy(s) for i, s in enumerate(samples)]
        np.testing.assert_allclose(energies, expected, rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(
            [lq.energy(i, s) for i, s in enumerate(samples)], expected, rtol=1e-8, atol=1e-9
        )


def test_statistics_give_the_formulation_of_the_explicit_patches():
    conv = _conv(GEOMETRIES[1])
    x_hat, x = _inputs((4, 3, 7, 7), seed=2)
    weight, bias = dense_parameters(conv)
    stats = patch_statistics(conv, x_hat, x, max_rows=10)
    from_stats = formulate_layer(
        weight, bias, stats.inputs, float_inputs=stats.float_inputs, bits=3
    )
    direct = formulate_layer(
        weight, bias, patches(conv, x_hat).numpy(), float_inputs=patches(conv, x).numpy(), bits=3
    )
    for name in ("gram", "linear", "offset", "base", "scales"):
        np.testing.assert_allclose(
            getattr(from_stats, name), getattr(direct, name), rtol=1e-10, atol=1e-9
        )


def test_statistics_reject_sides_that_do_not_belong_together():
    stats = InputStatistics.from_arrays(np.ones((4, 2)), np.zeros((4, 2)))
    other = InputStatistics.from_arrays(np.ones((4, 2)))
    with pytest.raises(ValueError, match="float side of the same"):
        formulate_layer(
            np.ones((1, 2)), None, stats.inputs, float_inputs=other.float_inputs, bits=2
        )
    with pytest.raises(ValueError, match="pass their float_inputs side"):
        formulate_layer(np.ones((1, 2)), None, stats.inputs, bits=2)
    with pytest.raises(ValueError, match="3 columns"):
        formulate_layer(np.ones((1, 3)), None, other.inputs, bits=2)


def _cnn(seed=0, bias=True):
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, stride=2, padding=1, bias=bias),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 3, 2, padding=1, dilation=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 4 * 4, 5),
    ).eval()
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.3, 0.3)
        model[1].running_var.uniform_(0.5, 2.0)
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.uniform_(-0.2, 0.2)
    return model


def _data(m=12, seed=0):
    return np.random.default_rng(seed).normal(size=(m, 2, 8, 8)).astype(np.float32)


def _check_sequential_errors(model, result, x):
    """Each layer's energy is the error of its output in the quantized network (its own
    inputs) against the float network's (BatchNorm folded), computed by torch."""
    folded, _ = fold_batchnorm(model, x)
    xt = torch.as_tensor(x)
    for layer in result.layers:
        index = int(layer.name)
        with torch.no_grad():
            target = folded[: index + 1](xt).double()
            output = result.model[: index + 1](xt).double()
        assert layer.energy == pytest.approx(((target - output) ** 2).sum().item(), rel=1e-4)


@pytest.mark.parametrize(
    "method, options",
    [
        ("rtn", {}),
        ("gptq", {}),
        ("adaround", {"iterations": 200}),
        ("cd", {}),
        ("qubo", {"solver": "steepest"}),
        ("qubo", {"solver": "lns", "window_bits": 3, "start": "gptq"}),
        ("qubo", {"solver": "batch-sa", "start": "rtn", "solver_params": {"num_sweeps": 50}}),
    ],
)
def test_every_method_quantizes_a_cnn_sequentially_with_exact_errors(method, options):
    model, x = _cnn(), _data()
    result = quantize(model, x, bits=3, method=method, cache=False, quiet=True, seed=0, **options)
    assert [layer.name for layer in result.layers] == ["0", "3", "6"]
    assert result.report["folded_batchnorm"] == [{"layer": "0", "batchnorm": "1"}]
    assert result.report["not_quantized"] == []
    first = result.report["layers"][0]
    assert first["kernel"] == [4, 2, 3, 3] and first["patches"] == 12 * 4 * 4
    assert "kernel" not in result.report["layers"][2]
    _check_sequential_errors(model, result, x)
    if "start" in options:  # never worse than the warm start (RTN, or GPTQ below RTN here)
        assert all(layer.energy <= layer.rtn_energy * (1 + 1e-9) for layer in result.layers)


@pytest.mark.parametrize(
    "solver, params",
    [("neal", {}), ("tabu", {}), ("exact", {}), ("exact-bb", {}), ("qpu-mock", {})],
)
def test_every_solver_solves_conv_neurons(solver, params):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 2, 2, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    x = np.random.default_rng(3).random((6, 1, 4, 4)).astype(np.float32)
    exact = quantize(model, x, bits=2, solver="exact", cache=False, quiet=True)
    result = quantize(
        model, x, bits=2, solver=solver, cache=False, quiet=True, seed=1, solver_params=params
    )
    _check_sequential_errors(model, result, x)
    if solver in ("exact", "exact-bb"):  # ≤ 5 variables: the proven optimum
        assert result.layers[0].energy == pytest.approx(exact.layers[0].energy, rel=1e-9)
    assert result.layers[0].energy >= exact.layers[0].energy * (1 - 1e-9)


def test_grouped_convolutions_stay_float_with_the_reason():
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, groups=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
    )
    result = quantize(model, _data(6), bits=2, method="rtn", cache=False, quiet=True)
    assert [layer.name for layer in result.layers] == ["3"]
    [entry] = result.report["not_quantized"]
    assert entry["name"] == "0" and "groups=2" in entry["reason"]
    assert torch.equal(result.model[0].weight, model[0].weight)


def test_integer_activations_round_a_conv_input_as_the_formulation_assumed():
    model, x = _cnn(bias=False), _data()
    result = quantize(model, x, bits=4, method="gptq", activation_bits=8, cache=False, quiet=True)
    assert type(result.model[0]).__name__ == "QuantizedInputConv2d"
    _check_sequential_errors(model, result, x)


def test_batchnorm_folding_keeps_the_outputs_and_leaves_the_model_alone():
    model, x = _cnn(bias=False), _data()
    before = [p.clone() for p in model.parameters()]
    folded, pairs = fold_batchnorm(model, x)
    assert pairs == [{"layer": "0", "batchnorm": "1"}]
    assert isinstance(folded[1], nn.Identity) and folded[0].bias is not None
    xt = torch.as_tensor(x)
    with torch.no_grad():
        assert torch.allclose(folded(xt), model(xt), rtol=1e-5, atol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


class _Skip(nn.Module):
    """A conv whose output is read by its BatchNorm and by a skip connection."""

    def __init__(self):
        super().__init__()
        self.conv, self.norm = nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2)

    def forward(self, x):
        y = self.conv(x)
        return self.norm(y) + y


def test_a_batchnorm_whose_input_is_also_read_elsewhere_is_not_folded():
    model = _Skip().eval()
    with torch.no_grad():
        model.norm.running_var.fill_(4.0)
    folded, pairs = fold_batchnorm(model, _data(4))
    assert folded is model and pairs == []


def test_quantized_cnn_saves_and_reloads(tmp_path):
    model, x = _cnn(), _data()
    result = quantize(model, x, bits=2, method="gptq", cache=False, quiet=True)
    result.save(tmp_path / "cnn.pt")
    loaded = annealq.load(tmp_path / "cnn.pt")
    xt = torch.as_tensor(x)
    with torch.no_grad():
        assert torch.equal(loaded.model(xt), result.model(xt))
    conv = loaded.model[0]
    first = loaded.layers[0]
    assert first.kernel == [4, 2, 3, 3]
    np.testing.assert_allclose(
        conv.weight.detach().numpy().reshape(4, -1),
        first.int_weight * first.weight_step[:, None],
        rtol=1e-6,
    )
    assert first.int_weight.min() >= -2 and first.int_weight.max() <= 1


class _Net(nn.Module):
    """Not a Sequential: the head is registered first but runs last."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(4 * 4 * 4, 3)
        self.body = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(4)

    def forward(self, x):
        y = F.avg_pool2d(torch.relu(self.norm(self.body(x))), 2)
        return self.head(y.flatten(1))


def _outputs(model, names, x):
    found = {}

    def keep(name):
        def hook(module, inputs, output):
            found[name] = output.detach().double()  # returns None: the output stays

        return hook

    hooks = [model.get_submodule(n).register_forward_hook(keep(n)) for n in names]
    with torch.no_grad():
        model(torch.as_tensor(x))
    for hook in hooks:
        hook.remove()
    return found


def test_any_module_is_captured_in_execution_order_with_exact_errors():
    torch.manual_seed(5)
    model = _Net().eval()
    with torch.no_grad():
        model.norm.running_var.uniform_(0.5, 2.0)
    x = _data(10)
    result = quantize(model, x, bits=2, method="cd", cache=False, quiet=True)
    assert [layer.name for layer in result.layers] == ["body", "head"]
    assert result.report["folded_batchnorm"] == [{"layer": "body", "batchnorm": "norm"}]
    folded, _ = fold_batchnorm(model, x)
    target = _outputs(folded, ["body", "head"], x)
    output = _outputs(result.model, ["body", "head"], x)
    for layer in result.layers:
        error = ((target[layer.name] - output[layer.name]) ** 2).sum().item()
        assert layer.energy == pytest.approx(error, rel=1e-4)
