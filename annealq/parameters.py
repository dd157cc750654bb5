"""Solver parameters checked by type and range before any sampler is built.

dimod samplers declare their parameters' names (``sampler.parameters``), not their types;
the well-known ones are typed here, so ``num_reads="abc"``, ``num_reads=nan`` or
``num_sweeps=1e12`` is one clear ``ValueError`` naming the parameter rather than a
traceback deep in a solver (or an hour-long run). Unknown names are left to the sampler,
which rejects names it does not declare.

Example:
    >>> validate_solver_params({"num_reads": 100, "chain_strength": 2.5})
    {'num_reads': 100, 'chain_strength': 2.5}
    >>> validate_solver_params({"num_reads": 1e9})
    Traceback (most recent call last):
    ...
    ValueError: solver parameter num_reads must be an integer from 1 to 100000, got 1000000000.0
"""

from __future__ import annotations

import math
import numbers

INTEGERS = {
    "num_reads": (1, 100_000),
    "num_sweeps": (0, 10**8),
    "num_sweeps_per_beta": (1, 10**6),
    "seed": (0, 2**32 - 1),
    "num_restarts": (0, 10**6),
    "tenure": (0, 10**6),
    "rounds": (1, 10**6),
    "width": (1, 10**6),
}
"""Integer parameters and their inclusive ranges."""

REALS = {
    "time_limit": (0.0, 86_400.0),
    "layer_time_limit": (0.0, 86_400.0),
    "timeout": (0.0, 86_400_000.0),
    "annealing_time": (0.0, 100_000.0),
    "chain_strength": (0.0, 1e12),
    "t_start": (0.0, 1e12),
    "t_stop": (0.0, 1e12),
}
"""Positive real parameters (above the low bound, at most the high one)."""


def validate_solver_params(params: dict) -> dict:
    """``params`` unchanged, or a ``ValueError`` naming the first known parameter whose
    value has the wrong type or lies outside its range (:data:`INTEGERS`, :data:`REALS`,
    ``beta_range``: two positive finite numbers)."""
    if not isinstance(params, dict):
        raise TypeError(f"solver parameters must be a dict, got {type(params).__name__}")
    for name, value in params.items():
        if not isinstance(name, str):
            raise ValueError(f"solver parameter names are strings, got {name!r}")
        if name in INTEGERS:
            low, high = INTEGERS[name]
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Integral)
                or not low <= value <= high
            ):
                raise ValueError(
                    f"solver parameter {name} must be an integer from {low} to "
                    f"{high}, got {_shown(value)}"
                )
        elif name in REALS:
            low, high = REALS[name]
            if not _real(value) or not low < value <= high:
                raise ValueError(
                    f"solver parameter {name} must be a number above {low:g} "
                    f"and at most {high:g}, got {_shown(value)}"
                )
        elif name == "beta_range":
            if not (
                isinstance(value, (list, tuple))
                and len(value) == 2
                and all(_real(v) and 0 < v < 1e12 for v in value)
            ):
                raise ValueError(
                    f"solver parameter beta_range must be two positive finite "
                    f"numbers, got {_shown(value)}"
                )
    return params


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
