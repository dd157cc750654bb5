"""Checks of a run's settings that :class:`~annealq.config.QuantizeConfig` runs: each raises
a ``ValueError`` that names the bad value.

Example:
    >>> validate_counts(1000, 0)
    >>> validate_counts(0, None)
    Traceback (most recent call last):
    ...
    ValueError: calibration_size must be a positive integer, got 0
"""

from __future__ import annotations

import numbers

from annealq.grid import MAX_WINDOW_BITS, SCHEMES

__all__ = ["validate_counts", "validate_grid", "validate_time_limit"]


def validate_grid(scheme, per_channel, window_bits, bias_window_bits) -> None:
    """The grid's scheme, ``per_channel`` and window widths, or a ``ValueError`` naming them."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown quantization scheme {scheme!r}; choose one of {SCHEMES}")
    if not isinstance(per_channel, bool):
        raise ValueError(f"per_channel must be True or False, got {per_channel!r}")
    for name, value in (("window_bits", window_bits), ("bias_window_bits", bias_window_bits)):
        if value is None and name == "bias_window_bits":
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Integral)
            or not 1 <= value <= MAX_WINDOW_BITS
        ):
            raise ValueError(
                f"{name} must be an integer from 1 to {MAX_WINDOW_BITS}, got {value!r}"
            )


def validate_time_limit(time_limit, method) -> None:
    """A per-layer time limit: positive seconds, for the qubo method only."""
    if time_limit is None:
        return
    if (
        isinstance(time_limit, bool)
        or not isinstance(time_limit, numbers.Real)
        or not 0 < time_limit < float("inf")
    ):
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    if method != "qubo":
        raise ValueError(
            f"time_limit applies to the qubo method's search solvers, not to method {method!r}"
        )


def validate_counts(calibration_size, seed) -> None:
    """A positive calibration size and a non-negative seed (each may be ``None``)."""
    if calibration_size is not None and (
        isinstance(calibration_size, bool)
        or not isinstance(calibration_size, numbers.Integral)
        or calibration_size <= 0
    ):
        raise ValueError(f"calibration_size must be a positive integer, got {calibration_size!r}")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0
    ):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
