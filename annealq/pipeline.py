"""Post-training quantization of a torch network's ``nn.Linear`` layers, one layer at a time.

Stages (plain data between them): capture the layer's float and quantized inputs →
(optionally) round the quantized inputs to integer activations → ``formulate_layer`` →
round the weights (``solve_layer`` for the QUBO, or a baseline) → decode integers → write
the dequantized weights into the quantized copy, which feeds the next layer (sequential
calibration, DESIGN.md §1).

Example:
    >>> import numpy as np, torch
    >>> torch.manual_seed(0) and None
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    >>> x = np.random.default_rng(0).normal(size=(20, 4))
    >>> result = quantize(model, x, bits=2, solver="exact", cache=False, quiet=True)
    >>> [layer.name for layer in result.layers], result.report["method"]
    (['0', '2'], 'qubo')
    >>> all(layer.energy <= layer.rtn_energy for layer in result.layers)
    True
"""

from __future__ import annotations

import copy
import inspect
import logging
import time
from dataclasses import dataclass

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from annealq.activations import ActivationGrid, QuantizedInputLinear
from annealq.baselines import adaround_layer, cd_layer, gptq_layer
from annealq.cache import open_cache
from annealq.capture import layer_input_tensors, layer_inputs, linear_layers, replace_module
from annealq.config import DEFAULT_SOLVER, QuantizeConfig, run_config
from annealq.data.datasets import Dataset
from annealq.data.models import accuracy
from annealq.dispatch import solve_layer
from annealq.execution import Execution, cloud_fallback, execution_summary, resolve
from annealq.executors import InlineExecutor
from annealq.formulation import LayerQUBO, formulate_layer
from annealq.plan import check_budget, run_plan
from annealq.quantized import LayerResult, QuantizationResult, load, write_layer
from annealq.report import build_report

__all__ = ["QuantizationResult", "LayerResult", "load", "quantize", "rtn_model"]

log = logging.getLogger(__name__)

DEFAULT_CALIBRATION_SIZE = 1000
BASELINES = {"gptq": gptq_layer, "adaround": adaround_layer, "cd": cd_layer}
_WINDOW_OPTIONS = frozenset({"window_bits", "bias_window_bits"})


def quantize(model, calibration, *, bits: int | None = None, solver=DEFAULT_SOLVER,
             cache=None, evaluation=None, quiet: bool = False, solver_name: str | None = None,
             config: QuantizeConfig | None = None, **options) -> QuantizationResult:
    """Quantize every ``nn.Linear`` of ``model``, each layer on what the quantized ones feed it.

    Args:
        model: a ``torch.nn.Module``; it is not modified (it is put in eval mode).
        calibration: inputs ``(m, …)`` (numpy array or tensor), or a
            :class:`~annealq.data.datasets.Dataset`: then ``calibration_size`` inputs are drawn
            from its training split and accuracy is measured on its test split.
        bits: weight bit width, 1..8.
        solver: a registered solver name (``"auto"``, ``"neal"``, ``"qpu"``, …) or any
            ``dimod.Sampler``; used by ``method="qubo"`` only.
        cache: ``None`` for the default cache, ``False`` for none, a path or a
            ``CacheStore``; solved neurons are skipped on later runs.
        method: ``"qubo"`` (the exact rounding QUBO), ``"rtn"`` (round to nearest), or the
            baselines ``"gptq"``, ``"cd"`` and ``"adaround"`` from :mod:`annealq.baselines`; all on the
            same grids, calibration set and sequential scheme.
        activation_bits: round every quantized layer's input to this many bits (asymmetric
            min/max per tensor from the calibration set, :mod:`annealq.activations`); the
            bias step is then ``s_x · s``. ``None`` keeps float inputs.
        calibration_size: the number of calibration inputs drawn from a ``Dataset``
            (default 1,000).
        evaluation: ``(x, y)`` to measure accuracy on (float, RTN and quantized models).
        quiet: no progress bar (it is shown on a terminal only anyway).
        solver_params: the solver's parameters (``num_reads``, ``time_limit``, …).
        fallback: a solver to use instead when ``solver`` cannot run here.
        seed: passed to every ``sample`` call of solvers that take one (and to the
            calibration draw from a ``Dataset``).
        solver_name: names a sampler object in reports and cache keys.
        start: the QUBO solvers' warm start, ``"rtn"`` or ``"gptq"`` (``None``: each
            solver's own). With ``"gptq"`` every window is centred on GPTQ's integers
            (``window_bits``), and a neuron's result is never worse than the start's.
        config: a :class:`~annealq.config.QuantizeConfig` instead of the keyword
            arguments that describe the run (``bits``, ``method``, ``solver`` by name, …).
        **options: :func:`~annealq.formulation.formulate_layer` options (``scheme``,
            ``per_channel``, ``window_bits``, …); with ``gptq``/``adaround``/``cd`` also that
            method's own options; and :class:`~annealq.execution.Execution`'s (``workers``,
            ``dask_scheduler``, ``max_in_flight``, ``pack``, …: where problems run).

    Returns:
        A :class:`QuantizationResult`.

    Raises:
        ValueError: bad bits, method, options, model or calibration data (named).
    """
    began = time.perf_counter()
    execution = Execution.pop_from(options)
    config = run_config(config, bits, solver, options)
    dataset, calibration, evaluation = _calibration_data(
        calibration, config.calibration_size, evaluation, config.seed)
    model = _validate_model(model).eval()
    float_layers = linear_layers(model, calibration)

    sampler, executor, notes = None, InlineExecutor(), []
    if config.method == "qubo":
        solver_name, sampler = resolve(solver, config, solver_name, notes)
        if execution.max_cloud_seconds is not None:  # refuse a plan over budget up front
            check_budget(run_plan(model, calibration, sampler, config, pack=execution.pack),
                         execution.max_cloud_seconds)
        executor = execution.open(sampler, fallback=cloud_fallback(sampler, config))
    else:
        solver_name = None
    store = open_cache(cache) if config.method == "qubo" else None
    try:
        run = _Run(config, sampler, solver_name, store, executor)
        result = run.quantize(model, float_layers, calibration, quiet=quiet)
        if store is not None:
            store.record_run(result.cache_hits, result.cache_misses)
    finally:
        executor.close()
        if store is not None and store is not cache:
            store.close()

    evaluate_start = time.perf_counter()
    accuracies = None
    if evaluation is not None:
        accuracies = _accuracies(model, result.model, calibration, evaluation, config)
    timing = {"total_seconds": time.perf_counter() - began,
              "solve_seconds": sum(layer.solve_seconds for layer in result.layers),
              "evaluate_seconds": time.perf_counter() - evaluate_start}
    result.report = build_report(result, model, float_layers, dataset, config,
                                 len(calibration), accuracies, timing)
    result.report.update(execution=execution.to_dict(), solver_notes=notes,
                         **({"cloud": executor.stats()} if executor.stats() else {}))
    return result


def rtn_model(model, calibration, *, bits: int, activation_bits: int | None = None,
              **scheme_options):
    """A copy of ``model`` with every ``nn.Linear`` rounded to nearest on the same grids."""
    return quantize(model, calibration, bits=bits, method="rtn", cache=False, quiet=True,
                    activation_bits=activation_bits, **scheme_options).model


@dataclass
class _Run:
    """One quantization pass: the settings shared by every layer."""

    config: QuantizeConfig
    sampler: object
    solver_name: str | None
    store: object
    executor: object
    progress: object = None

    def quantize(self, model, float_layers, calibration, *, quiet: bool) -> QuantizationResult:
        config = self.config
        quantized = copy.deepcopy(model)
        result = QuantizationResult(quantized, self.solver_name, method=config.method)
        float_inputs = layer_inputs(model, [layer for _, layer in float_layers], calibration)
        total = sum(layer.out_features for _, layer in float_layers)
        # disable=None: a bar on a terminal only, so logs and pipes stay clean
        with tqdm(total=total, unit="neuron", desc=f"{config.method} int{config.bits}",
                  disable=True if quiet else None) as bar:
            for (name, float_layer), X in zip(float_layers, float_inputs):
                bar.set_postfix_str(f"layer {name} ({float_layer.out_features} neurons)")
                self.progress = bar.update  # the QUBO's neurons count as they are answered
                layer = self._layer(result, name, float_layer, X, calibration)
                result.layers.append(layer)
                bar.update(0 if config.method == "qubo" else layer.out_features)
                log.info("layer %s (%dx%d): error %.6g, RTN %.6g, %.2f s", name,
                         layer.in_features, layer.out_features, layer.energy,
                         layer.rtn_energy, layer.solve_seconds)
        return result

    def _layer(self, result, name, float_layer, X, calibration) -> LayerResult:
        config = self.config
        quantized = result.model
        module = quantized.get_submodule(name)
        [raw] = layer_input_tensors(quantized, [module], calibration)
        input_grid = None
        options = config.formulation_options()
        if config.activation_bits is not None:
            input_grid = ActivationGrid.calibrate(raw, bits=config.activation_bits)
            raw = input_grid.fake_quantize(raw)
            module = QuantizedInputLinear.from_linear(module, input_grid)
            if name:
                replace_module(quantized, name, module)
            else:  # the model is this one nn.Linear
                result.model = module
            options["input_step"] = input_grid.step
        X_hat = raw.double().cpu().numpy()
        weight, bias = float_layer.weight, float_layer.bias
        lq = formulate_layer(weight, bias, X_hat, bits=config.bits, float_inputs=X, **options)
        start = time.perf_counter()
        start_integers = lq.rtn_integers() if config.start == "rtn" else None
        if config.method == "qubo" and config.start == "gptq":
            # the windows are centred on GPTQ's integers, so GPTQ's solution is a state
            q_g, q_b_g = self._baseline_round("gptq", weight, bias, X, X_hat, options)
            start_integers = np.column_stack([q_g, q_b_g])
            lq = formulate_layer(weight, bias, X_hat, bits=config.bits, float_inputs=X,
                                 center=start_integers, **options)
        q, q_b, hits, proven = self._round(lq, weight, bias, X, X_hat, options,
                                           start_integers)
        seconds = time.perf_counter() - start
        rtn = lq.rtn_integers()
        layer = LayerResult(name, lq.n_inputs, lq.n_neurons, q, q_b, lq.weight_grid.step,
                            lq.bias_grid.step, _output_error(lq, X, X_hat, q, q_b),
                            _output_error(lq, X, X_hat, rtn[:, :-1], rtn[:, -1]), seconds,
                            hits, (lq.n_neurons - hits) if config.method == "qubo" else 0,
                            has_bias=lq.has_bias, input_grid=input_grid,
                            weight_offset=lq.weight_grid.offset, proven_optimal=proven,
                            execution=self.layer_execution if config.method == "qubo" else None)
        write_layer(module, layer)
        return layer

    def _round(self, lq: LayerQUBO, weight, bias, X, X_hat, options, start_integers=None):
        """Integer weights and bias of the layer by this run's method, cache hits, and how
        many neurons the solver proved optimal (``None`` for solvers that prove nothing)."""
        method = self.config.method
        if method == "qubo":
            return self._solve(lq, start_integers)
        if method == "rtn":
            rtn = lq.rtn_integers()
            return rtn[:, :-1], rtn[:, -1], 0, None
        return (*self._baseline_round(method, weight, bias, X, X_hat, options), 0, None)

    def _solve(self, lq: LayerQUBO, start_integers):
        seed = self.config.seed
        parameters = {"seed": seed} if seed is not None and "seed" in self.sampler.parameters \
            else {}
        starts = None if start_integers is None else lq.samples(lq.states(start_integers))
        began = time.perf_counter()
        solved = solve_layer(lq, self.sampler, cache=self.store, initial_states=starts,
                             solver_name=self.solver_name, executor=self.executor,
                             progress=self.progress, **parameters)
        self.layer_execution = execution_summary(solved, self.solver_name, began)
        samples = [r.sample for r in solved]
        if starts is not None:
            # never worse than the warm start, whatever the solver does with it
            samples = [start if lq.energy(i, start) < lq.energy(i, sample) else sample
                       for i, (sample, start) in enumerate(zip(samples, starts))]
        q, q_b = lq.decode(samples)
        proofs = [r.info["proven_optimal"] for r in solved if "proven_optimal" in r.info]
        return (q, q_b, sum(bool(r.info.get("cached")) for r in solved),
                sum(map(bool, proofs)) if proofs else None)

    def _baseline_round(self, method, weight, bias, X, X_hat, options):
        function = BASELINES[method]
        extra = dict(self.config.method_options) if method == self.config.method else {}
        if self.config.seed is not None and "seed" in inspect.signature(function).parameters:
            extra.setdefault("seed", self.config.seed)
        grid_options = {k: v for k, v in options.items() if k not in _WINDOW_OPTIONS}
        q, q_b = function(weight, bias, X_hat, bits=self.config.bits, float_inputs=X,
                          **grid_options, **extra)
        return np.asarray(q, dtype=np.int64), np.asarray(q_b, dtype=np.int64)


def _output_error(lq: LayerQUBO, X, X_hat, q, q_b) -> float:
    """``‖X Wᵀ + b − X̂ (s q)ᵀ − s_b q_b‖²``: the layer's squared output error, directly."""
    f = lq.n_inputs
    target = X @ lq.values[:, :f].T + lq.values[:, f]
    output = X_hat @ lq.weight_grid.dequantize(q).T + lq.bias_grid.dequantize(q_b)
    return float(np.sum((target - output) ** 2))


def _calibration_data(calibration, size, evaluation, seed):
    """``(dataset name or None, calibration array, evaluation pair or None)``."""
    dataset = None
    if isinstance(calibration, Dataset):
        dataset = calibration.name
        if evaluation is None:
            evaluation = (calibration.x_test, calibration.y_test)
        calibration = calibration.calibration(
            DEFAULT_CALIBRATION_SIZE if size is None else size, seed=seed or 0)
    elif size is not None:
        raise ValueError("calibration_size applies to a Dataset; with an array of inputs, "
                         "pass the inputs you want to calibrate on")
    if hasattr(calibration, "detach"):
        calibration = calibration.detach().cpu().numpy()
    try:
        calibration = np.asarray(calibration, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"calibration must be a numeric array: {exc}") from None
    if calibration.ndim < 2 or len(calibration) == 0:
        raise ValueError(f"calibration must be a non-empty batch (m, …) of inputs, got shape "
                         f"{calibration.shape}")
    if not np.all(np.isfinite(calibration)):
        raise ValueError("calibration contains NaN or Inf values")
    return dataset, calibration, evaluation


def _validate_model(model):
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise ValueError(f"the model's {name} contains NaN or Inf values")
    return model


def _accuracies(model, quantized, calibration, evaluation, config) -> dict:
    x, y = evaluation
    rounded = quantized if config.method == "rtn" else rtn_model(
        model, calibration, bits=config.bits, activation_bits=config.activation_bits,
        **config.formulation_options())
    return {"float": accuracy(model, x, y), "rtn": accuracy(rounded, x, y),
            "quantized": accuracy(quantized, x, y)}
