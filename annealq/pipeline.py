"""Post-training quantization of a torch network's ``nn.Linear`` layers, one layer at a time.

Stages (plain data between them): capture the layer's float and quantized inputs →
(optionally) round the quantized inputs to integer activations → ``formulate_layer`` →
round the weights (``solve_layer`` for the QUBO, or a baseline) → decode integers → write
the dequantized weights into the quantized copy, which feeds the next layer (sequential
calibration, docs/design.md §1).

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
import functools
import logging
import time
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from annealq.activations import ActivationGrid
from annealq.baselines import baseline_rechoose, baseline_round, tuned_grid
from annealq.blocks import input_source
from annealq.cache import open_cache
from annealq.calibration import calibration_data, validate_model
from annealq.capture import (  # noqa: F401 (layer_inputs: re-exported for the notebooks)
    check_group_size,
    layer_inputs,
    linear_layers,
    replace_module,
)
from annealq.config import DEFAULT_SOLVER, QuantizeConfig, run_config
from annealq.conv import dense_parameters, describe_layer, outputs, with_input_grid
from annealq.dispatch import solve_layer
from annealq.evaluation import evaluate
from annealq.execution import Execution, cloud_fallback, execution_summary, resolve
from annealq.executors import InlineExecutor
from annealq.executors.cloud import CloudExecutor
from annealq.fold import fold_batchnorm
from annealq.formulation import LayerQUBO, formulate_layer
from annealq.plan import check_budget, run_plan
from annealq.quantized import LayerResult, QuantizationResult, load, write_layer
from annealq.refit import refit_run
from annealq.report import build_report
from annealq.starts import budget_polisher, kbest_start, keep_start
from annealq.statistics import output_error

__all__ = ["QuantizationResult", "LayerResult", "load", "quantize", "rtn_model"]

log = logging.getLogger(__name__)


def quantize(model, calibration, *, bits: int | None = None, solver=DEFAULT_SOLVER,
             cache=None, evaluation=None, quiet: bool = False, solver_name: str | None = None,
             config: QuantizeConfig | None = None, **options) -> QuantizationResult:
    """Quantize every ``nn.Linear`` of ``model``, each layer on what the quantized ones feed it.

    Args:
        model: a ``torch.nn.Module``; it is not modified (it is put in eval mode).
        calibration: inputs ``(m, …)`` (numpy array or tensor; integer token ids ``(N, T)``
            for a model with an ``nn.Embedding``: every token is a row), or a ``Dataset`` or
            ``TextDataset``: ``calibration_size`` inputs (windows) from its training split.
        bits: weight bit width, 1..8.
        solver: a registered solver name or any ``dimod.Sampler`` (``method="qubo"``
            only). The default ``"auto"`` is ``kbest``'s answer polished (``start``).
        cache: ``None`` for the default cache, ``False`` for none, a path or a
            ``CacheStore``; solved neurons are skipped on later runs.
        method: ``"qubo"`` (the exact rounding QUBO), ``"rtn"`` (round to nearest), or the
            baselines ``"gptq"``, ``"cd"`` and ``"adaround"`` from :mod:`annealq.baselines`;
            all on the same grids, calibration set and sequential scheme.
        activation_bits: round every quantized layer's input to this many bits (asymmetric
            min/max per tensor from the calibration set, :mod:`annealq.activations`); the
            bias step is then ``s_x · s``. ``None`` keeps float inputs.
        calibration_size: inputs drawn from a ``Dataset`` (default 1,000).
        evaluation: ``(x, y)`` for accuracy, or held-out token ids ``(W, T)`` for
            :func:`~annealq.language.language_metrics`; quiet: no progress bar.
        solver_params: the solver's parameters (``num_reads``, ``time_limit``, …).
        time_limit: seconds per layer for ``lns`` and ``exact-bb`` (anytime: the best
            found within it, never worse than the start).
        fallback: a solver to use instead when ``solver`` cannot run here.
        seed: every seeded solver's ``seed`` (and the calibration draw's).
        solver_name: names a sampler object in reports and cache keys.
        start: the QUBO solvers' warm start, ``"rtn"``, ``"gptq"`` or ``"kbest"``: windows
            centred on its integers, and no neuron ends worse than its start. ``polish=``
            a solver polishes ``kbest``'s answer; ``paper=True``: the paper's setting.
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
    dataset, calibration, evaluation = calibration_data(
        calibration, config.calibration_size, evaluation, config.seed, model)
    # BatchNorms after a layer are folded into it (annealq.fold): the float model is that copy
    model, folded = fold_batchnorm(validate_model(model).eval(), calibration)
    float_layers = linear_layers(model, calibration)
    check_group_size(config.group_size, float_layers)

    sampler, executor, notes = None, InlineExecutor(), []
    if config.method == "qubo":
        solver_name, sampler = resolve(solver, config, solver_name, notes)
        if execution.max_cloud_seconds is not None:  # refuse a plan over budget up front
            check_budget(run_plan(model, calibration, sampler, config, pack=execution.pack),
                         execution.max_cloud_seconds)
        executor = execution.open(sampler, fallback=cloud_fallback(sampler, config))
        if config.time_limit is not None and "layer_time_limit" not in sampler.parameters:
            raise ValueError(f"solver {solver_name!r} takes no time limit per layer; "
                             f"time_limit applies to lns and exact-bb")
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
    evaluated = {} if evaluation is None else evaluate(
        model, result.model, evaluation, result.model if config.method == "rtn" else rtn_model(
            model, calibration, bits=config.bits, activation_bits=config.activation_bits,
            **config.grid_options()))
    timing = {"total_seconds": time.perf_counter() - began,
              "solve_seconds": sum(layer.solve_seconds for layer in result.layers),
              "evaluate_seconds": time.perf_counter() - evaluate_start}
    result.report = build_report(result, model, float_layers, dataset, config,
                                 len(calibration), evaluated.get("accuracy"), timing,
                                 folded=folded)
    stats = executor.stats()
    if stats and all("cloud" in (layer.execution or {}) for layer in result.layers):
        # what each layer sent and was billed
        stats["layers"] = [{"layer": layer.name, **layer.execution["cloud"]}
                           for layer in result.layers]
    # a pool's counts (layers, tasks) are no cloud's: they go under "workers"
    where = "cloud" if isinstance(executor, CloudExecutor) else "workers"
    result.report.update(execution=execution.to_dict(), solver_notes=notes,
                         **({"language": evaluated["language"]} if "language" in evaluated
                            else {}),
                         **({where: stats} if stats else {}))
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
    start_seconds: float = 0.0

    def quantize(self, model, float_layers, calibration, *, quiet: bool) -> QuantizationResult:
        config = self.config
        quantized = copy.deepcopy(model)
        result = QuantizationResult(quantized, self.solver_name, method=config.method)
        source = input_source(model, float_layers, calibration)
        total = sum(outputs(layer) for _, layer in float_layers)
        # disable=None: a bar on a terminal only, so logs and pipes stay clean
        with tqdm(total=total, unit="neuron", desc=f"{config.method} int{config.bits}",
                  disable=True if quiet else None) as bar:
            for name, float_layer in float_layers:
                bar.set_postfix_str(f"layer {name} ({outputs(float_layer)} neurons)")
                self.progress = bar.update  # the QUBO's neurons count as they are answered
                raw, X = source.inputs(result.model, name, float_layer)
                layer = self._layer(result, name, float_layer, raw, X, source)
                result.layers.append(layer)
                bar.update(0 if config.method == "qubo" else layer.out_features)
                log.info("layer %s (%dx%d): error %.6g, RTN %.6g, %.2f s", name,
                         layer.in_features, layer.out_features, layer.energy,
                         layer.rtn_energy, layer.solve_seconds)
        return result

    def _layer(self, result, name, float_layer, raw, X, source) -> LayerResult:
        config = self.config
        quantized = result.model
        module = quantized.get_submodule(name)
        input_grid = None
        options = config.formulation_options()
        if config.activation_bits is not None:
            input_grid = ActivationGrid.calibrate(raw, bits=config.activation_bits)
            raw = input_grid.fake_quantize(raw)
            module = with_input_grid(module, input_grid)
            if name:
                replace_module(quantized, name, module)
            else:  # the model is this one nn.Linear
                result.model = module
            options["input_step"] = input_grid.step
        X_hat, X = source.rows(float_layer, raw, X)  # conv patches, tokens: their moments
        weight, bias = dense_parameters(float_layer)
        formulate = functools.partial(formulate_layer, weight, bias, X_hat, bits=config.bits,
                                      float_inputs=X)
        lq = formulate(**options)
        start = time.perf_counter()
        start_integers = lq.rtn_integers() if config.start == "rtn" else None
        setting = None
        if config.method == "qubo" and config.start in ("gptq", "kbest"):
            # the windows are centred on the start's integers, so the start is a state
            q_g, q_b_g, setting = self._baseline_round("gptq", weight, bias, X, X_hat, options)
            start_integers = np.column_stack([q_g, q_b_g])
            options = tuned_grid(options, setting)
            if config.start == "kbest":
                start_integers, self.start_seconds = kbest_start(
                    weight, bias, X_hat, X, bits=config.bits, options=options,
                    gptq=start_integers, store=self.store)
            lq = formulate(center=start_integers, **options)
        q, q_b, hits, proven, chosen = self._round(lq, weight, bias, X, X_hat, options,
                                                   start_integers)
        setting = setting or chosen
        if tuned_grid(options, chosen) != options:  # GPTQ's tuning kept the unclipped grid
            options = tuned_grid(options, chosen)
            lq = formulate(**options)
        refit = None
        if config.refit_steps:
            formulate = functools.partial(formulate, **options)
            lq, q, q_b, refit = self._refit(lq, q, q_b, formulate, weight, bias, X, X_hat,
                                            options, setting)
        seconds = time.perf_counter() - start
        rtn = lq.rtn_integers()
        layer = LayerResult(name, lq.n_inputs, lq.n_neurons, q, q_b, lq.weight_grid.step,
                            lq.bias_grid.step, output_error(lq, q, q_b, X_hat, X),
                            output_error(lq, rtn[:, :-1], rtn[:, -1], X_hat, X), seconds,
                            hits, (lq.n_neurons - hits) if config.method == "qubo" else 0,
                            has_bias=lq.has_bias, input_grid=input_grid,
                            weight_offset=lq.weight_grid.offset, proven_optimal=proven,
                            gptq_setting=setting, refit=refit,
                            group_size=lq.weight_grid.group_size,
                            execution=self.layer_execution if config.method == "qubo" else None,
                            **describe_layer(float_layer, X_hat))
        write_layer(module, layer)
        return layer

    def _round(self, lq: LayerQUBO, weight, bias, X, X_hat, options, start_integers=None):
        """Integer weights and bias of the layer by this run's method, cache hits, how
        many neurons the solver proved optimal (``None`` for solvers that prove nothing),
        and the GPTQ setting a baseline chose (``None`` without GPTQ)."""
        method = self.config.method
        if method == "qubo":
            return (*self._solve(lq, start_integers), None)
        if method == "rtn":
            rtn = lq.rtn_integers()
            return rtn[:, :-1], rtn[:, -1], 0, None, None
        q, q_b, setting = self._baseline_round(method, weight, bias, X, X_hat, options)
        return q, q_b, 0, None, setting

    def _solve(self, lq: LayerQUBO, start_integers):
        seed = self.config.seed
        parameters = {"seed": seed} if seed is not None and "seed" in self.sampler.parameters \
            else {}
        if self.config.time_limit is not None:
            parameters["layer_time_limit"] = self.config.time_limit
        budget_polisher(self.sampler, self.store, self.start_seconds)
        start_states = None if start_integers is None else lq.states(start_integers)
        starts = None if start_states is None else lq.samples(start_states)
        began, before = time.perf_counter(), self.executor.stats()
        solved = solve_layer(lq, self.sampler, cache=self.store, initial_states=starts,
                             solver_name=self.solver_name, executor=self.executor,
                             progress=self.progress, **parameters)
        self.layer_execution = execution_summary(solved, self.solver_name, began,
                                                 before, self.executor.stats())
        samples = [r.sample for r in solved]
        if starts is not None:  # never worse than the warm start, counted in the report
            samples, self.layer_execution["kept_start"] = keep_start(lq, samples, starts)
        q, q_b = lq.decode(samples)
        proofs = [r.info["proven_optimal"] for r in solved if "proven_optimal" in r.info]
        return (q, q_b, sum(bool(r.info.get("cached")) for r in solved),
                sum(map(bool, proofs)) if proofs else None)

    def _refit(self, lq, q, q_b, formulate, weight, bias, X, X_hat, options, setting):
        """Steps re-fitted and integers re-chosen alternately (:mod:`annealq.refit`)."""
        extra, grid = self.config.baseline_options(self.config.method, options)
        baseline = functools.partial(baseline_rechoose, self.config.method, weight, bias,
                                     X_hat, bits=self.config.bits, setting=setting,
                                     float_inputs=X, method_options=extra, **grid)
        return refit_run(self.config.method, lq, q, q_b, X_hat, X, formulate, baseline,
                         lambda layer, start: np.column_stack(self._solve(layer, start)[:2]))

    def _baseline_round(self, method, weight, bias, X, X_hat, options):
        """A baseline's integers and GPTQ setting."""
        extra, grid_options = self.config.baseline_options(method, options)
        return baseline_round(method, weight, bias, X_hat, bits=self.config.bits,
                              float_inputs=X, method_options=extra, **grid_options)
