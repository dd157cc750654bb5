"""GPTQ at its best setting per layer: every setting of a small grid run, the one with the
lowest exact error kept — optionally with the clip search of the reference GPTQ code as one
more axis (the grid's steps scaled by the weights' best clipping ratio,
:func:`~annealq.grid.clip_ratios`).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> W, b, X = rng.normal(size=(4, 6)), rng.normal(size=4), rng.normal(size=(50, 6))
    >>> q, q_b, setting = tuned_gptq_layer(W, b, X, bits=2, clip_search=True)
    >>> len(setting["tried"]), sorted(setting)
    (12, ['act_order', 'clip_search', 'damp', 'error', 'tried'])
"""

from __future__ import annotations

import itertools
import numbers
from types import MappingProxyType

import numpy as np

from annealq.baselines.common import layer_error
from annealq.baselines.gptq import gptq_rounding
from annealq.formulation import formulate_layer

# The settings tuned_gptq_layer tries, in this order (the first minimum wins a tie); the
# first one is gptq_layer's default.
GPTQ_GRID = MappingProxyType({"act_order": (True, False), "damp": (0.01, 0.001, 0.0001)})


def tuned_gptq_layer(
    weight,
    bias,
    inputs,
    *,
    bits: int,
    float_inputs=None,
    act_order=None,
    damp=None,
    grid=GPTQ_GRID,
    clip_search: bool = False,
    **scheme_options,
):
    """GPTQ at the setting of ``grid`` with the lowest exact error on this layer.

    Every combination of ``grid["act_order"]`` × ``grid["damp"]`` (default
    :data:`GPTQ_GRID`: ``{True, False} × {0.01, 0.001, 0.0001}``, 6 runs) is run, in that
    order; a setting whose damped Hessian is not positive definite (``gptq_layer`` raises
    ``ValueError``) is skipped. The error is ``layer_error(...).sum()`` on the calibration
    inputs; the first minimum in grid order wins a tie. A given ``act_order`` or ``damp``
    replaces that axis of the grid by the one value. With ``clip_search`` every setting
    also runs on the clip-searched grid (after all the unclipped ones, so a tie keeps the
    unclipped grid): never worse than without it.

    Args:
        weight, bias, inputs, bits, float_inputs, **scheme_options: as in
            :func:`~annealq.baselines.gptq_layer`.
        act_order: fix GPTQ's column order (``None``: try the grid's).
        damp: fix the relative damping (``None``: try the grid's).
        grid: a mapping with sequences ``"act_order"`` and ``"damp"``.
        clip_search: also try each setting on the grid with clip-searched steps
            (``formulate_layer(..., clip_search=True)``).

    Returns:
        ``(int_weight, int_bias, setting)`` with ``setting = {"act_order", "damp", "error",
        "tried": [{"act_order", "damp", "error"}, ...]}`` (skipped settings not listed);
        with ``clip_search`` each entry also says ``"clip_search"``: whether the integers
        are on the clip-searched grid.

    Raises:
        ValueError: a bad ``act_order``, ``damp`` or ``grid``, no setting that runs, or
            anything ``formulate_layer`` rejects.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> W, b, X = rng.normal(size=(4, 6)), rng.normal(size=4), rng.normal(size=(50, 6))
        >>> q, q_b, setting = tuned_gptq_layer(W, b, X, bits=2)
        >>> len(setting["tried"]), setting["error"] == min(t["error"] for t in setting["tried"])
        (6, True)
        >>> tuned_gptq_layer(W, b, X, bits=2, act_order=False, damp=0.01)[2]["tried"][0]["damp"]
        0.01
    """
    orders, damps = _validate_grid(grid, act_order, damp)
    if not isinstance(clip_search, (bool, np.bool_)):
        raise ValueError(f"clip_search must be True or False, got {clip_search!r}")
    clips = (False, True) if clip_search else (False,)
    layers = {
        clip: formulate_layer(
            weight,
            bias,
            inputs,
            bits=bits,
            float_inputs=float_inputs,
            clip_search=clip,
            **scheme_options,
        )
        for clip in clips
    }
    best, tried = None, []
    # each grid's factorisations, shared by its settings of one damping
    shared = {clip: {} for clip in clips}
    for clip, order, value in itertools.product(clips, orders, damps):
        try:
            q, q_b = gptq_rounding(
                layers[clip], inputs, float_inputs, act_order=order, damp=value, shared=shared[clip]
            )
        except ValueError:  # not positive definite at this damping
            continue
        error = float(
            layer_error(layers[clip], q, q_b, inputs=inputs, float_inputs=float_inputs).sum()
        )
        tried.append(
            {
                "act_order": order,
                "damp": value,
                "error": error,
                **({"clip_search": clip} if clip_search else {}),
            }
        )
        if best is None or error < best[2]["error"]:
            best = (q, q_b, tried[-1])
    if best is None:
        raise ValueError(
            f"GPTQ ran at none of the settings act_order={list(orders)} × "
            f"damp={list(damps)}: the Hessian is never positive definite"
        )
    q, q_b, chosen = best
    return q, q_b, {**chosen, "tried": tried}


def _validate_grid(grid, act_order, damp) -> tuple[tuple, tuple]:
    """The ``act_order`` and ``damp`` values to try, each fixed one replacing its axis."""
    try:
        orders, damps = tuple(grid["act_order"]), tuple(grid["damp"])
    except (TypeError, KeyError):
        raise ValueError(
            f"grid must map 'act_order' and 'damp' to sequences, got {grid!r}"
        ) from None
    orders = orders if act_order is None else (act_order,)
    damps = damps if damp is None else (damp,)
    for value in orders:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"act_order must be a bool, got {value!r}")
    for value in damps:
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not np.isfinite(value)
            or value < 0
        ):
            raise ValueError(f"damp must be a finite number >= 0, got {value!r}")
    if not orders or not damps:
        raise ValueError(f"grid has no settings to try: {grid!r}")
    return orders, damps
