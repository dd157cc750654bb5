"""One layer of a run: its problem rounded by the run's method, decoded and recorded.

:class:`LayerRounder` takes a :class:`~annealq.problems.LayerProblem` and returns the
layer's :class:`~annealq.quantized.LayerResult`: the QUBO solved (through the run's cache
and executor, never worse than the warm start) or a baseline run on the same grids, the
steps re-fitted where asked (:mod:`annealq.refit`), and the errors of the answer and of
round-to-nearest. Each solve returns one :class:`Rounding`.

Example:
    >>> import numpy as np, torch
    >>> from annealq.config import QuantizeConfig
    >>> from annealq.problems import LayerProblems
    >>> torch.manual_seed(0) and None
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    >>> x = np.random.default_rng(0).normal(size=(20, 4))
    >>> [problem] = LayerProblems(model, x, QuantizeConfig(bits=2, method="rtn"))
    >>> layer = LayerRounder(QuantizeConfig(bits=2, method="rtn")).layer(problem)
    >>> layer.energy == layer.rtn_energy
    True
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np

from annealq.baselines import baseline_rechoose, baseline_round, tuned_grid
from annealq.conv import describe_layer
from annealq.dispatch import solve_layer
from annealq.execution import execution_summary
from annealq.formulation import LayerQUBO
from annealq.problems import LayerProblem
from annealq.quantized import LayerResult
from annealq.refit import refit_run
from annealq.starts import budget_polisher, keep_start
from annealq.statistics import output_error

__all__ = ["LayerRounder", "Rounding"]


@dataclass
class Rounding:
    """A layer's integers by the run's method, and what its solve reported.

    Attributes:
        q, q_b: integer weights ``(n, f)`` and bias ``(n,)``.
        cache_hits: neurons answered from the cache.
        proven: neurons the solver proved optimal (``None``: a solver that proves nothing).
        setting: the GPTQ setting a baseline chose (``None`` without GPTQ).
        execution: where and how long the QUBO's solve ran (QUBO runs only).
    """

    q: np.ndarray
    q_b: np.ndarray
    cache_hits: int = 0
    proven: int | None = None
    setting: dict | None = None
    execution: dict | None = None


@dataclass
class LayerRounder:
    """The settings every layer of a run shares: its config, and for QUBO runs the sampler,
    its name in reports and cache keys, the cache and the executor."""

    config: object
    sampler: object = None
    solver_name: str | None = None
    store: object = None
    executor: object = None
    progress: object = None  # called with the neurons answered, as they are

    def layer(self, problem: LayerProblem) -> LayerResult:
        """The layer's result: its problem rounded, re-fitted where asked, and measured."""
        began = time.perf_counter()
        rounding = self.round(problem)
        lq, options = problem.qubo, problem.options
        refit, setting = None, problem.setting or rounding.setting
        if tuned_grid(options, rounding.setting) != options:  # GPTQ kept the unclipped grid
            options = tuned_grid(options, rounding.setting)
            lq = problem.formulate(options)
        if self.config.refit_steps:
            lq, refit = self._refit(problem, lq, rounding, options, setting)
        q, q_b = rounding.q, rounding.q_b
        seconds = problem.seconds + time.perf_counter() - began
        X_hat, X = problem.inputs, problem.float_inputs
        rtn = lq.rtn_integers()
        qubo = self.config.method == "qubo"
        return LayerResult(
            problem.name,
            lq.n_inputs,
            lq.n_neurons,
            q,
            q_b,
            lq.weight_grid.step,
            lq.bias_grid.step,
            output_error(lq, q, q_b, X_hat, X),
            output_error(lq, rtn[:, :-1], rtn[:, -1], X_hat, X),
            seconds,
            rounding.cache_hits,
            (lq.n_neurons - rounding.cache_hits) if qubo else 0,
            has_bias=lq.has_bias,
            input_grid=problem.input_grid,
            weight_offset=lq.weight_grid.offset,
            proven_optimal=rounding.proven,
            gptq_setting=setting,
            refit=refit,
            group_size=lq.weight_grid.group_size,
            execution=rounding.execution,
            **describe_layer(problem.layer, X_hat),
        )

    def round(self, problem: LayerProblem) -> Rounding:
        """The layer's integers by the run's method: the QUBO solved from the problem's
        start, round to nearest, or a baseline on the problem's grids."""
        method = self.config.method
        if method == "qubo":
            return self.solve(problem.qubo, problem.start, problem.start_seconds)
        if method == "rtn":
            rtn = problem.qubo.rtn_integers()
            return Rounding(rtn[:, :-1], rtn[:, -1])
        extra, grid = self.config.baseline_options(method, problem.options)
        q, q_b, setting = baseline_round(
            method,
            problem.weight,
            problem.bias,
            problem.inputs,
            bits=problem.bits,
            float_inputs=problem.float_inputs,
            method_options=extra,
            **grid,
        )
        return Rounding(q, q_b, setting=setting)

    def solve(self, lq: LayerQUBO, start_integers=None, start_seconds: float = 0.0) -> Rounding:
        """``lq`` solved by the run's sampler (cache, executor), from ``start_integers``
        ``(n, f+1)`` where given: no neuron ends worse than its start."""
        seed = self.config.seed
        parameters = (
            {"seed": seed} if seed is not None and "seed" in self.sampler.parameters else {}
        )
        if self.config.time_limit is not None:
            parameters["layer_time_limit"] = self.config.time_limit
        budget_polisher(self.sampler, self.store, start_seconds)
        starts = None if start_integers is None else lq.samples(lq.states(start_integers))
        began, before = time.perf_counter(), self.executor.stats()
        solved = solve_layer(
            lq,
            self.sampler,
            cache=self.store,
            initial_states=starts,
            solver_name=self.solver_name,
            executor=self.executor,
            progress=self.progress,
            **parameters,
        )
        execution = execution_summary(
            solved, self.solver_name, began, before, self.executor.stats()
        )
        samples = [r.sample for r in solved]
        if starts is not None:  # never worse than the warm start, counted in the report
            samples, execution["kept_start"] = keep_start(lq, samples, starts)
        q, q_b = lq.decode(samples)
        proofs = [r.info["proven_optimal"] for r in solved if "proven_optimal" in r.info]
        return Rounding(
            q,
            q_b,
            sum(bool(r.info.get("cached")) for r in solved),
            sum(map(bool, proofs)) if proofs else None,
            execution=execution,
        )

    def _refit(self, problem: LayerProblem, lq, rounding: Rounding, options, setting):
        """Steps re-fitted and integers re-chosen alternately (:mod:`annealq.refit`):
        ``rounding`` takes the final integers (and the last re-solve's execution); returns
        the final grid's QUBO and the refit's record."""
        method = self.config.method
        extra, grid = self.config.baseline_options(method, options)
        baseline = functools.partial(
            baseline_rechoose,
            method,
            problem.weight,
            problem.bias,
            problem.inputs,
            bits=problem.bits,
            setting=setting,
            float_inputs=problem.float_inputs,
            method_options=extra,
            **grid,
        )

        def resolve(layer, start):
            again = self.solve(layer, start, problem.start_seconds)
            rounding.execution = again.execution
            return np.column_stack([again.q, again.q_b])

        lq, rounding.q, rounding.q_b, refit = refit_run(
            method,
            lq,
            rounding.q,
            rounding.q_b,
            problem.inputs,
            problem.float_inputs,
            functools.partial(problem.formulate, options),
            baseline,
            resolve,
        )
        return lq, refit
