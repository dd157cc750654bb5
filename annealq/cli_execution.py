"""The CLI's cloud and executor options: ``--solver-param``, ``--workers``, ``--max-in-flight``,
``--no-pack``, ``--max-cloud-seconds``, ``--dry-run`` and friends, turned into the API's
arguments.

Example:
    >>> parse_solver_params(["num_reads=100", "chain_strength=2.5", "answer_mode=raw"])
    {'num_reads': 100, 'chain_strength': 2.5, 'answer_mode': 'raw'}
    >>> parse_solver_params(["num_reads"])
    Traceback (most recent call last):
    ...
    ValueError: --solver-param 'num_reads' must be KEY=VALUE
"""

from __future__ import annotations

import ast

from annealq.execution import Execution
from annealq.plan import format_plan, run_plan
from annealq.registry import resolve_sampler


def parse_solver_params(items) -> dict:
    """``KEY=VALUE`` strings → parameters; values are Python literals (numbers, booleans,
    lists) where they parse as one, else strings. The solver checks the names."""
    params = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--solver-param {item!r} must be KEY=VALUE")
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()
        params[key.strip()] = value
    return params


def execution_from(args) -> Execution:
    return Execution(
        workers=args.workers,
        dask_scheduler=args.dask_scheduler,
        max_in_flight=args.max_in_flight,
        pack=not args.no_pack,
        max_cloud_seconds=args.max_cloud_seconds,
        retries=args.retries,
        problem_timeout=args.problem_timeout,
    )


def dry_run(model, calibration, sampler, solver_name, config, execution) -> str:
    """The plan's text; ``sampler`` may be a name (``"auto"``), resolved here."""
    if isinstance(sampler, str):
        solver_name, sampler = resolve_sampler(
            config.solver, fallback=config.fallback, **config.solver_params
        )
    return format_plan(
        run_plan(model, calibration, sampler, config, pack=execution.pack), solver_name
    )
