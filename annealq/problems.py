"""Each layer's rounding problem, built in one place: the pipeline, the plan, the benchmarks
and the notebooks all take their layers' problems from :class:`LayerProblems`.

A layer's problem is its float weight and bias, what it receives (``X̂``: rows, or a
convolution's patch moments) with the float network's inputs ``X`` as the target, the
:class:`~annealq.layer.LayerQUBO` on the run's grids, and the warm start's integers where the
run asks for one (its windows are then centred on them). Two ways to walk a model:

* **sequential** (the pipeline): each layer on what the already-quantized layers feed it.
  The problems are yielded one at a time; the caller writes each layer's answer into
  :attr:`LayerProblems.quantized` (``problem.module``) before asking for the next, whose
  inputs come from that copy. Inputs are carried forward block by block where the model is
  a chain of blocks (:func:`annealq.blocks.input_source`), else one forward pass per layer.
* **float** (``sequential=False``: the plan, the benchmarks): every layer on the float
  network's own inputs, captured for all the layers asked for in one forward pass.

Example:
    >>> import numpy as np, torch
    >>> from annealq.config import QuantizeConfig
    >>> torch.manual_seed(0) and None
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    >>> x = np.random.default_rng(0).normal(size=(20, 4))
    >>> problems = LayerProblems(model, x, QuantizeConfig(bits=2), sequential=False)
    >>> [(p.name, p.qubo.n_neurons, p.qubo.n_inputs) for p in problems]
    [('0', 3, 4), ('2', 2, 3)]
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace

import numpy as np

from annealq.activations import ActivationGrid
from annealq.baselines import baseline_round, tuned_grid
from annealq.blocks import input_source
from annealq.capture import layer_inputs, linear_layers, replace_module
from annealq.conv import dense_parameters, layer_rows, with_input_grid
from annealq.formulation import LayerQUBO, formulate_layer
from annealq.starts import kbest_start

__all__ = ["LayerProblem", "LayerProblems", "layer_problem"]


@dataclass
class LayerProblem:
    """One layer's rounding problem.

    Attributes:
        name: the layer's module name; layer: the float module.
        weight, bias: the float weight as a matrix ``(outputs, inputs)`` and the bias.
        inputs: ``X̂``, what the layer receives (rows ``(m, f)``, or patch moments).
        float_inputs: ``X``, the float network's inputs to it (``None``: ``X̂`` is ``X``).
        bits: the weight bits; options: the formulation options ``qubo`` was built with.
        qubo: the layer's :class:`~annealq.layer.LayerQUBO`.
        start: the warm start's integers ``(n, f+1)`` (bias last), or ``None``.
        setting: GPTQ's setting where GPTQ gave the start.
        start_seconds: ``kbest``'s own recorded search seconds (0 for other starts).
        seconds: the wall seconds spent on the start here.
        input_grid: the grid the layer's inputs are rounded to (``activation_bits``).
        module: the quantized copy's module that takes the layer's answer (sequential).
    """

    name: str
    layer: object
    weight: object
    bias: object
    inputs: object
    float_inputs: object
    bits: int
    options: dict
    qubo: LayerQUBO
    start: np.ndarray | None = None
    setting: dict | None = None
    start_seconds: float = 0.0
    seconds: float = 0.0
    input_grid: ActivationGrid | None = None
    module: object = None

    @classmethod
    def of_arrays(
        cls, weight, bias, inputs, *, bits: int, float_inputs=None, name: str = "", **options
    ) -> LayerProblem:
        """A problem from arrays (a layer outside any model: synthetic tests, saved data).

        Example:
            >>> import numpy as np
            >>> rng = np.random.default_rng(0)
            >>> problem = LayerProblem.of_arrays(rng.normal(size=(2, 3)), None,
            ...                                  rng.normal(size=(9, 3)), bits=2)
            >>> problem.qubo.n_neurons, problem.qubo.has_bias
            (2, False)
        """
        problem = cls(name, None, weight, bias, inputs, float_inputs, bits, options, None)
        problem.qubo = problem.formulate()
        return problem

    def formulate(self, options: dict | None = None, **changes) -> LayerQUBO:
        """The layer's QUBO on formulation ``options`` (default :attr:`options`) with some
        changed (``center``, ``window_bits``, ``step_scale``, …), or on another ``weight``
        and ``bias`` (a few of its rows) over the same inputs."""
        weight, bias = changes.pop("weight", self.weight), changes.pop("bias", self.bias)
        options = {**(self.options if options is None else options), **changes}
        return formulate_layer(
            weight, bias, self.inputs, bits=self.bits, float_inputs=self.float_inputs, **options
        )

    def with_bits(self, bits: int) -> LayerProblem:
        """The same layer on a ``bits``-bit grid, without a warm start."""
        problem = replace(self, bits=bits, start=None, setting=None)
        problem.qubo = problem.formulate()
        return problem

    def numpy_parameters(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The weight and bias as float64 arrays (``None``: no bias)."""
        return tuple(
            None
            if x is None
            else np.asarray(
                x.detach().cpu().double().numpy() if hasattr(x, "detach") else x, dtype=np.float64
            )
            for x in (self.weight, self.bias)
        )


class LayerProblems:
    """The problems of a model's layers, in the order its forward pass runs them.

    Args:
        model: a ``torch.nn.Module`` in eval mode (not modified).
        calibration: its calibration inputs (array or tensor).
        config: a :class:`~annealq.config.QuantizeConfig` (bits, grids, windows, start).
        sequential: quantized inputs, layer after layer (see the module docs); ``False``:
            every layer on the float network's inputs.
        float_layers: the model's ``(name, module)`` layers when already found.
        layers: only these layers (indices in the forward order), float walk only;
            :attr:`all_layers` keeps the model's whole list.
        store: the run's cache, where ``kbest`` starts look up their answers.
        starts: compute the warm start ``config.start`` asks for (``False``: sizes only).
    """

    def __init__(
        self,
        model,
        calibration,
        config,
        *,
        sequential: bool = True,
        float_layers=None,
        layers=None,
        store=None,
        starts: bool = True,
    ):
        self.model, self.calibration, self.config = model, calibration, config
        self.float_layers = float_layers or linear_layers(model, calibration)
        self.sequential, self.store, self.starts = sequential, store, starts
        self.all_layers = self.float_layers
        if layers is not None:
            if sequential:
                raise ValueError("layers= selects layers of a float walk (sequential=False)")
            for index in layers:
                if not 0 <= index < len(self.all_layers):
                    raise ValueError(
                        f"layer must be from 0 to {len(self.all_layers) - 1}, got {index}"
                    )
            self.float_layers = [self.all_layers[index] for index in layers]
        self.quantized = copy.deepcopy(model) if sequential else None

    def __iter__(self):
        if not self.sequential:
            modules = [module for _, module in self.float_layers]
            for (name, layer), X in zip(
                self.float_layers, layer_inputs(self.model, modules, self.calibration)
            ):
                X_hat, X = layer_rows(layer, X, None)  # a conv's rows: its patches' moments
                yield self._problem(name, layer, X_hat, X, self.config.formulation_options())
            return
        source = input_source(self.model, self.float_layers, self.calibration)
        for name, layer in self.float_layers:
            raw, X = source.inputs(self.quantized, name, layer)
            options, input_grid = self.config.formulation_options(), None
            module = self.quantized.get_submodule(name)
            if self.config.activation_bits is not None:
                input_grid = ActivationGrid.calibrate(raw, bits=self.config.activation_bits)
                raw = input_grid.fake_quantize(raw)
                module = with_input_grid(module, input_grid)
                if name:
                    replace_module(self.quantized, name, module)
                else:  # the model is this one layer
                    self.quantized = module
                options["input_step"] = input_grid.step
            X_hat, X = source.rows(layer, raw, X)  # conv patches, tokens: their moments
            yield self._problem(
                name, layer, X_hat, X, options, input_grid=input_grid, module=module
            )

    def _problem(self, name, layer, X_hat, X, options, **extra) -> LayerProblem:
        weight, bias = dense_parameters(layer)
        problem = LayerProblem(
            name, layer, weight, bias, X_hat, X, self.config.bits, options, None, **extra
        )
        problem.qubo = problem.formulate()
        return self._start(problem) if self.starts else problem

    def _start(self, problem: LayerProblem) -> LayerProblem:
        """The warm start ``config.start`` asks for; GPTQ's and kbest's centre the windows
        (the start is then a state of the QUBO)."""
        config, began = self.config, time.perf_counter()
        if config.start == "rtn":
            problem.start = problem.qubo.rtn_integers()
        elif config.method == "qubo" and config.start in ("gptq", "kbest"):
            extra, grid = config.baseline_options("gptq", problem.options)
            q, q_b, problem.setting = baseline_round(
                "gptq",
                problem.weight,
                problem.bias,
                problem.inputs,
                bits=problem.bits,
                float_inputs=problem.float_inputs,
                method_options=extra,
                **grid,
            )
            problem.start = np.column_stack([q, q_b])
            problem.options = tuned_grid(problem.options, problem.setting)
            if config.start == "kbest":
                whole = {
                    k: v
                    for k, v in problem.options.items()
                    if k not in ("window_bits", "bias_window_bits")
                }
                problem.start, problem.start_seconds = kbest_start(
                    problem.formulate(whole, window_bits=problem.bits, center=problem.start),
                    problem.start,
                    self.store,
                )
            problem.qubo = problem.formulate(center=problem.start)
        problem.seconds = time.perf_counter() - began
        return problem


def layer_problem(model, calibration, config, layer: int) -> LayerProblem:
    """Layer ``layer`` (its index in the forward pass) of ``model`` on the float network's
    inputs: the problem a benchmark studies.

    Example:
        >>> import numpy as np, torch
        >>> from annealq.config import QuantizeConfig
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(),
        ...                             torch.nn.Linear(3, 2))
        >>> x = np.random.default_rng(0).normal(size=(20, 4))
        >>> problem = layer_problem(model, x, QuantizeConfig(bits=2, start="rtn"), 1)
        >>> problem.name, problem.start.shape
        ('2', (2, 4))
    """
    [problem] = LayerProblems(model, calibration, config, sequential=False, layers=[layer])
    return problem
