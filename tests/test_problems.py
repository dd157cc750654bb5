"""annealq.problems: the one builder of layer problems, and that nothing else builds them."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from annealq import QuantizeConfig, formulate_layer
from annealq.capture import layer_inputs, linear_layers
from annealq.integer_model import IntegerForm
from annealq.problems import LayerProblem, LayerProblems, layer_problem

ROOT = Path(__file__).resolve().parents[1]
# where a layer's inputs may be captured and its QUBO built
BUILDERS = {"annealq/capture.py", "annealq/blocks.py", "annealq/problems.py"}
# the old entry points: capturing a layer's inputs or formulating a model's layer by hand,
# the pipeline's private names, a solve's side attribute
OLD = {
    "benchmarks": (
        r"\blayer_inputs\(",
        r"\bformulate_layer\(",
        r"annealq\.pipeline import",
        r"\blinear_layers\(",
    ),
    "notebooks": (
        r"\blayer_inputs\(",
        r"\bformulate_layer\(",
        r"annealq\.pipeline import",
        r"\blinear_layers\(",
    ),
    "annealq": (
        r"\blayer_inputs\(",
        r"from annealq\.pipeline import _",
        r"\blayer_execution\b",
        r"\b_Run\b",
    ),
}
PUBLIC_PIPELINE = re.compile(r"from annealq\.pipeline import (quantize|rtn_model|load)\b")


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(5, 4),
        torch.nn.Tanh(),
        torch.nn.Linear(4, 3),
        torch.nn.ReLU(),
        torch.nn.Linear(3, 2),
    ).double()


def test_no_layer_problem_is_built_outside_the_builder():
    found = []
    for folder, patterns in OLD.items():
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".ipynb") or str(path.relative_to(ROOT)) in BUILDERS:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if PUBLIC_PIPELINE.search(line) or line.lstrip().startswith((">>>", "...")):
                    continue
                found += [
                    f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
                    for pattern in patterns
                    if re.search(pattern, line)
                ]
    assert found == []


def test_the_float_walk_is_formulate_layer_on_each_layers_captured_inputs():
    model, x = _model(), np.random.default_rng(0).normal(size=(30, 5))
    layers = linear_layers(model, x)
    inputs = layer_inputs(model, [m for _, m in layers], x)
    problems = list(LayerProblems(model, x, QuantizeConfig(bits=3), sequential=False))
    assert [p.name for p in problems] == ["0", "2", "4"]
    for problem, (_, module), X in zip(problems, layers, inputs):
        direct = formulate_layer(module.weight, module.bias, X, bits=3)
        assert np.array_equal(problem.qubo.gram, direct.gram)
        assert np.array_equal(problem.qubo.linear, direct.linear)
    # one layer alone is the same problem, and its start is centred as asked
    one = layer_problem(model, x, QuantizeConfig(bits=3, window_bits=2, start="gptq"), 1)
    assert one.name == "2" and one.start.shape == (3, 5) and one.setting is not None
    assert np.array_equal(one.qubo.entry_gram, problems[1].qubo.entry_gram)
    assert np.array_equal(one.qubo.rtn_integers(), problems[1].qubo.rtn_integers())
    with pytest.raises(ValueError, match="layer must be from 0 to 2, got 3"):
        layer_problem(model, x, QuantizeConfig(bits=3), 3)


def test_each_layer_costs_one_forward_pass_at_most():
    model, x = _model(), np.random.default_rng(1).normal(size=(30, 5))
    calls = []
    model.register_forward_pre_hook(lambda m, args: calls.append(len(args[0])))
    float_layers = linear_layers(model, x)
    calls.clear()
    list(
        LayerProblems(model, x, QuantizeConfig(bits=2), sequential=False, float_layers=float_layers)
    )
    assert len(calls) == 1  # every layer's float inputs from one pass
    calls.clear()
    problems = LayerProblems(model, x, QuantizeConfig(bits=2), float_layers=float_layers)
    quantized_calls = []
    problems.quantized.register_forward_pre_hook(lambda m, a: quantized_calls.append(1))
    for problem in problems:
        assert problem.module is problems.quantized.get_submodule(problem.name)
    # the quantized copy (which copied the counting hook too): one pass per layer; the
    # float model: one pass for every layer's float inputs
    assert len(quantized_calls) == 3 and len(calls) == 3 + 1


def test_the_integer_form_is_built_once():
    rng = np.random.default_rng(2)
    problem = LayerProblem.of_arrays(
        rng.normal(size=(3, 6)), rng.normal(size=3), rng.normal(size=(40, 6)), bits=3, window_bits=2
    )
    form = IntegerForm.of_layer(problem.qubo, [2, 0])
    for row, i in enumerate([2, 0]):
        span, e, p = problem.qubo.integer_form(i)
        assert np.array_equal(span, form.span[row]) and np.array_equal(e, form.steps[row])
        assert np.array_equal(p, form.projection[row])
