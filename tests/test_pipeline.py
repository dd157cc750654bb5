import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dwave.samplers import SteepestDescentSolver  # noqa: E402

from annealq.pipeline import linear_layers, quantize, rtn_model  # noqa: E402


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 5), torch.nn.Tanh(),
                               torch.nn.Linear(5, 3)).double()


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
    np.testing.assert_allclose(result.model[1].weight.detach().numpy(),
                               first.int_weight * first.weight_step[:, None])
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
    np.testing.assert_allclose(rounded[1].weight.detach().numpy(),
                               s * np.clip(np.rint(w / s), -4, 3))


def test_model_without_linear_layers_is_a_clear_error():
    with pytest.raises(ValueError, match="no nn.Linear"):
        linear_layers(torch.nn.Sequential(torch.nn.ReLU()), np.zeros((2, 3)))
