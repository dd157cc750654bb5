"""Post-training quantization of a torch network's ``nn.Linear`` layers, one layer at a time.

The flow: fold the BatchNorms (:mod:`annealq.fold`) → discover the layers
(:func:`~annealq.capture.linear_layers`) → for each layer: its problem
(:class:`~annealq.problems.LayerProblems`: the float and quantized inputs, the QUBO, the warm
start) → round it (the solver on the QUBO, or a baseline) → decode the integers → record
them in the quantized copy, which feeds the next layer (sequential calibration,
docs/design.md §1) → the report.

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

import logging
import time

from tqdm.auto import tqdm

from annealq import damped
from annealq.cache import open_cache
from annealq.calibration import calibration_data, validate_model
from annealq.capture import (  # noqa: F401 (layer_inputs: re-exported for the notebooks)
    check_group_size,
    layer_inputs,
    linear_layers,
)
from annealq.config import DEFAULT_SOLVER, QuantizeConfig, run_config
from annealq.conv import outputs
from annealq.evaluation import evaluate
from annealq.execution import Execution, cloud_fallback, resolve
from annealq.executors import InlineExecutor
from annealq.executors.cloud import CloudExecutor
from annealq.fold import fold_batchnorm
from annealq.plan import check_budget, run_plan
from annealq.problems import LayerProblems
from annealq.quantized import LayerResult, QuantizationResult, load, write_layer
from annealq.report import build_report
from annealq.rounding import LayerRounder

__all__ = ["QuantizationResult", "LayerResult", "load", "quantize", "rtn_model"]

log = logging.getLogger(__name__)


def quantize(
    model,
    calibration,
    *,
    bits: int | None = None,
    solver=DEFAULT_SOLVER,
    cache=None,
    evaluation=None,
    quiet: bool = False,
    solver_name: str | None = None,
    config: QuantizeConfig | None = None,
    **options,
) -> QuantizationResult:
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
        calibration, config.calibration_size, evaluation, config.seed, model
    )
    # BatchNorms after a layer are folded into it (annealq.fold): the float model is that copy
    model, folded = fold_batchnorm(validate_model(model).eval(), calibration)
    float_layers = linear_layers(model, calibration)
    check_group_size(config.group_size, float_layers)
    solver_name, sampler, executor, notes = _open_solver(
        model, calibration, config, solver, solver_name, execution, float_layers
    )
    store = open_cache(cache) if config.method == "qubo" else None
    try:
        problems = LayerProblems(model, calibration, config, float_layers=float_layers, store=store)
        rounder = LayerRounder(config, sampler, solver_name, store, executor)
        result = _round_layers(problems, rounder, quiet=quiet)
        if store is not None:
            store.record_run(result.cache_hits, result.cache_misses)
    finally:
        executor.close()
        if store is not None and store is not cache:
            store.close()
        damped.forget()  # the run's kept factorisations (hundreds of MB on a wide layer)

    evaluate_start = time.perf_counter()
    evaluated = (
        {}
        if evaluation is None
        else evaluate(
            model,
            result.model,
            evaluation,
            result.model
            if config.method == "rtn"
            else _rtn_copy(model, calibration, config, float_layers),
        )
    )
    timing = {
        "total_seconds": time.perf_counter() - began,
        "solve_seconds": sum(layer.solve_seconds for layer in result.layers),
        "evaluate_seconds": time.perf_counter() - evaluate_start,
    }
    # a pool's counts (layers, tasks) are no cloud's: they go under "workers"
    where = "cloud" if isinstance(executor, CloudExecutor) else "workers"
    result.report = build_report(
        result,
        model,
        float_layers,
        dataset,
        config,
        len(calibration),
        evaluated,
        timing,
        folded=folded,
        execution=execution.to_dict(),
        notes=notes,
        executor_stats=(where, executor.stats()),
    )
    return result


def rtn_model(
    model, calibration, *, bits: int, activation_bits: int | None = None, **scheme_options
):
    """A copy of ``model`` with every ``nn.Linear`` rounded to nearest on the same grids."""
    return quantize(
        model,
        calibration,
        bits=bits,
        method="rtn",
        cache=False,
        quiet=True,
        activation_bits=activation_bits,
        **scheme_options,
    ).model


def _rtn_copy(model, calibration, config, float_layers):
    """The model rounded to nearest on the run's grids (what its accuracy is compared to)."""
    rtn = QuantizeConfig(
        bits=config.bits,
        method="rtn",
        activation_bits=config.activation_bits,
        **config.grid_options(),
    )
    problems = LayerProblems(model, calibration, rtn, float_layers=float_layers)
    return _round_layers(problems, LayerRounder(rtn), quiet=True).model


def _open_solver(model, calibration, config, solver, solver_name, execution, float_layers):
    """``(solver_name, sampler, executor, notes)`` of a run: a QUBO run's sampler (its plan
    checked against ``max_cloud_seconds`` before anything is sent) and where it runs."""
    if config.method != "qubo":
        return None, None, InlineExecutor(), []
    notes = []
    solver_name, sampler = resolve(solver, config, solver_name, notes)
    if execution.max_cloud_seconds is not None:  # refuse a plan over budget up front
        check_budget(
            run_plan(
                model, calibration, sampler, config, pack=execution.pack, float_layers=float_layers
            ),
            execution.max_cloud_seconds,
        )
    executor = execution.open(sampler, fallback=cloud_fallback(sampler, config))
    if config.time_limit is not None and "layer_time_limit" not in sampler.parameters:
        executor.close()
        raise ValueError(
            f"solver {solver_name!r} takes no time limit per layer; "
            f"time_limit applies to lns and exact-bb"
        )
    return solver_name, sampler, executor, notes


def _round_layers(
    problems: LayerProblems, rounder: LayerRounder, *, quiet: bool
) -> QuantizationResult:
    """Each layer's problem rounded and recorded in the quantized copy, in order."""
    config = rounder.config
    result = QuantizationResult(problems.quantized, rounder.solver_name, method=config.method)
    total = sum(outputs(layer) for _, layer in problems.float_layers)
    # disable=None: a bar on a terminal only, so logs and pipes stay clean
    with tqdm(
        total=total,
        unit="neuron",
        desc=f"{config.method} int{config.bits}",
        disable=True if quiet else None,
    ) as bar:
        rounder.progress = bar.update  # the QUBO's neurons count as they are answered
        for problem in problems:
            bar.set_postfix_str(f"layer {problem.name} ({outputs(problem.layer)} neurons)")
            layer = rounder.layer(problem)
            write_layer(problem.module, layer)  # the next layer's inputs see it
            result.layers.append(layer)
            bar.update(0 if config.method == "qubo" else layer.out_features)
            log.info(
                "layer %s (%dx%d): error %.6g, RTN %.6g, %.2f s",
                layer.name,
                layer.in_features,
                layer.out_features,
                layer.energy,
                layer.rtn_energy,
                layer.solve_seconds,
            )
    result.model = problems.quantized  # a one-layer model may have been replaced
    return result
