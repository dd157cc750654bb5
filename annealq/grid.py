"""Quantization grids: integer ranges, steps, and round-to-nearest on them.

A grid maps an integer ``q`` in ``[q_min, q_max]`` to the float ``step * q``. Weights of a
layer share one step (per tensor) or have one per output row (per channel); the bias has
a grid of its own over the int32 range.

Schemes (docs/design.md §1):

* ``"reference"`` — the seed paper's scheme: ``s = max|W| / 2^(B-1)`` and
  ``q ∈ [-2^(B-1), 2^(B-1) - 1]`` (so int1 is ``{-1, 0}``). The default, so that results
  reproduce the paper.
* ``"symmetric"`` — ``s = max|W| / q_max`` over the same integer range, so the largest
  weight is representable; needs ``B >= 2`` (``q_max`` is 0 at one bit).
* ``"affine"`` — asymmetric min/max: the grid's ``2^B`` levels run from ``min W`` to
  ``max W`` (an offset per row or tensor, ``value = offset + s·q``); at one bit the two
  levels are ``{min, max}`` instead of the reference ``{−max|W|, 0}``.

**Group-wise steps** (``group_size=g``, the format of GPTQ's and AWQ's int4 checkpoints):
one step (and offset) per ``g`` consecutive inputs of each row, from that group's weights
by the same scheme; ``step`` is then ``(n, ⌈f/g⌉)``. The rounding problem stays the same
exact QUBO: a weight's variables just carry its group's step (the Gram form's rows and
columns are rescaled group by group).

**Clip search** (``clip_search=True``, the reference GPTQ and AWQ code's MSE clipping): each
row's (or group's) step — and offset — is scaled by the ratio of :data:`CLIP_RATIOS` (1.0
down to 0.2) whose grid rounds the row's (group's) weights to nearest with the least squared
error; ties keep the larger ratio, so the error is never above the unclipped grid's.

Example:
    >>> import numpy as np
    >>> grid = weight_grid(np.array([[0.5, -1.0], [0.25, 0.0]]), bits=2)
    >>> grid.q_min, grid.q_max, grid.step.tolist()
    (-2, 1, [0.5, 0.5])
    >>> grid.rtn(np.array([[0.5, -1.0], [0.25, 0.0]])).tolist()
    [[1, -2], [0, 0]]
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

SCHEMES = ("reference", "symmetric", "affine")
# 1.0, 0.95, …, 0.2: the reference GPTQ code's range (it shrinks the range by up to 80 %)
CLIP_RATIOS = tuple(round(1.0 - 0.05 * i, 2) for i in range(17))
MIN_BITS, MAX_BITS = 1, 8
MIN_ACTIVATION_BITS, MAX_ACTIVATION_BITS = 2, 16
MAX_WINDOW_BITS = 16  # binary variables per weight, at most
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def validate_bits(bits) -> int:
    """Return ``bits`` as an int, or raise ``ValueError`` unless it is an integer in 1..8."""
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
        raise ValueError(f"bits must be an integer from {MIN_BITS} to {MAX_BITS}, got {bits!r}")
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"bits must be from {MIN_BITS} to {MAX_BITS}, got {bits}")
    return int(bits)


def validate_activation_bits(bits) -> int | None:
    """``None`` (float inputs) or an integer in 2..16, else ``ValueError``."""
    if bits is None:
        return None
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
        raise ValueError(
            f"activation_bits must be None or an integer from "
            f"{MIN_ACTIVATION_BITS} to {MAX_ACTIVATION_BITS}, got {bits!r}"
        )
    if not MIN_ACTIVATION_BITS <= bits <= MAX_ACTIVATION_BITS:
        raise ValueError(
            f"activation_bits must be from {MIN_ACTIVATION_BITS} to "
            f"{MAX_ACTIVATION_BITS}, got {bits}"
        )
    return int(bits)


def integer_range(bits: int) -> tuple[int, int]:
    """The signed range ``[-2^(B-1), 2^(B-1) - 1]`` of a ``bits``-bit integer."""
    bits = validate_bits(bits)
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


@dataclass(frozen=True)
class Grid:
    """Integers ``[q_min, q_max]`` times a step per row (``step`` has one entry per row).

    Attributes:
        step: float64 array ``(n,)``; per-tensor grids repeat one value.
        q_min, q_max: the admissible integers.
        offset: float64 ``(n,)`` added to every value (``None``: 0, a grid through zero).
    """

    step: np.ndarray
    q_min: int
    q_max: int
    offset: np.ndarray | None = None
    group_size: int | None = None  # step and offset (n, groups): one per g inputs

    def rtn(self, values: np.ndarray) -> np.ndarray:
        """Round-to-nearest integers of ``values`` (rows match ``step``), clipped to the range."""
        return np.clip(np.rint(self._scaled(values)), self.q_min, self.q_max).astype(np.int64)

    def floor(self, values: np.ndarray) -> np.ndarray:
        """The grid point at or below each value (unclipped): the "round down" candidate."""
        return np.floor(self._scaled(values)).astype(np.int64)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """The float values ``offset + step * q``."""
        values = np.asarray(q, dtype=np.float64) * self._per_row(self.step, q)
        return values if self.offset is None else values + self._per_row(self.offset, q)

    def scaled(self, factor) -> Grid:
        """This grid with each row's (group's) step and offset times ``factor`` (shaped as
        ``step``): the levels shrink or widen around zero."""
        factor = np.asarray(factor, dtype=np.float64)
        return Grid(
            self.step * factor,
            self.q_min,
            self.q_max,
            None if self.offset is None else self.offset * factor,
            self.group_size,
        )

    def row_errors(self, values: np.ndarray) -> np.ndarray:
        """The squared round-to-nearest error of ``values`` ``(n, f)`` summed per row, or per
        row and group (shaped as ``step``)."""
        error = (values - self.dequantize(self.rtn(values))) ** 2
        if self.step.ndim == 1:
            return error.sum(axis=1)
        return np.add.reduceat(error, np.arange(0, error.shape[1], self.group_size), axis=1)

    def select(self, rows) -> Grid:
        """The grid of ``rows`` only (their steps and offsets), for a sub-layer."""
        rows = np.asarray(rows, dtype=int)
        return Grid(
            self.step[rows],
            self.q_min,
            self.q_max,
            None if self.offset is None else self.offset[rows],
            self.group_size,
        )

    def column_steps(self, columns: int) -> np.ndarray:
        """Each weight's step ``(n, columns)`` (its row's, or its group's)."""
        return np.broadcast_to(
            self._per_row(self.step, np.empty((1, columns))), (len(self.step), columns)
        )

    def _scaled(self, values) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if self.offset is not None:
            values = values - self._per_row(self.offset, values)
        return values / self._per_row(self.step, values)

    def _per_row(self, array, values) -> np.ndarray:
        # 2-D values are (rows, columns): broadcast one entry per row (or repeat each
        # group's over its columns); 1-D ones are per row.
        if array.ndim == 2:
            return array[:, np.arange(np.shape(values)[-1]) // self.group_size]
        return array[:, None] if np.ndim(values) == 2 else array


def weight_grid(
    weight: np.ndarray,
    bits: int,
    *,
    scheme: str = "reference",
    per_channel: bool = False,
    group_size: int | None = None,
    clip_search: bool = False,
) -> Grid:
    """The grid of a weight matrix ``(n, f)`` for ``bits`` bits.

    Args:
        weight: the float weights, one row per output neuron.
        bits: 1..8.
        scheme: ``"reference"`` (default, the paper's) or ``"symmetric"``.
        per_channel: one step per output row instead of one for the tensor.
        group_size: one step per ``group_size`` consecutive inputs of each row (the last
            group may be shorter); overrides ``per_channel``.
        clip_search: scale each row's (group's) step by its best ratio of
            :data:`CLIP_RATIOS` (:func:`clip_ratios`); the steps are then per row even on
            a per-tensor grid.

    Raises:
        ValueError: bits out of range, an unknown scheme, ``"symmetric"`` at one bit, or
            a group size that is not a positive integer.
    """
    bits = validate_bits(bits)
    if scheme not in SCHEMES:
        raise ValueError(f"unknown quantization scheme {scheme!r}; choose one of {SCHEMES}")
    q_min, q_max = integer_range(bits)
    if scheme == "symmetric" and q_max == 0:
        raise ValueError("the symmetric scheme needs bits >= 2 (q_max is 0 at one bit)")
    weight = np.asarray(weight, dtype=np.float64)
    if not isinstance(clip_search, (bool, np.bool_)):
        raise ValueError(f"clip_search must be True or False, got {clip_search!r}")
    if clip_search:
        grid = weight_grid(
            weight, bits, scheme=scheme, per_channel=per_channel, group_size=group_size
        )
        return grid.scaled(clip_ratios(weight, grid))
    if group_size is not None:
        return _group_grid(weight, bits, scheme, validate_group_size(group_size))
    if scheme == "affine":
        return _affine_grid(weight, q_min, q_max, per_channel)
    if per_channel:
        peak = np.abs(weight).max(axis=1) if weight.shape[1] else np.zeros(len(weight))
    else:
        peak = np.full(len(weight), np.abs(weight).max() if weight.size else 0.0)
    divisor = -q_min if scheme == "reference" else q_max
    # An all-zero tensor (or row) is exact on any grid; a unit step avoids dividing by 0.
    step = np.where(peak > 0, peak / divisor, 1.0)
    return Grid(step=step, q_min=q_min, q_max=q_max)


def clip_ratios(weight: np.ndarray, grid: Grid, ratios=CLIP_RATIOS) -> np.ndarray:
    """Per row (or group) the ratio of ``ratios`` whose scaled grid (:meth:`Grid.scaled`)
    rounds ``weight`` to nearest with the least squared error; the first of equal ones.

    Example:
        >>> w = np.array([[2.0, 0.4, -0.5, 0.3, 0.6, -0.45]])
        >>> grid = weight_grid(w, bits=3, scheme="symmetric")
        >>> clip_ratios(w, grid).tolist()   # one outlier: a shorter step serves the rest
        [0.9]
        >>> bool(grid.scaled(0.9).row_errors(w)[0] < grid.row_errors(w)[0])
        True
    """
    weight = np.asarray(weight, dtype=np.float64)
    best = np.ones_like(grid.step)
    lowest = np.full(grid.step.shape, np.inf)
    for ratio in ratios:  # a handful of grids, each rounding every row at once
        error = grid.scaled(ratio).row_errors(weight)
        better = error < lowest
        best[better], lowest[better] = ratio, error[better]
    return best


def validate_group_size(group_size) -> int:
    """``group_size`` as an int, or ``ValueError`` unless it is a positive integer."""
    if (
        isinstance(group_size, bool)
        or not isinstance(group_size, numbers.Integral)
        or group_size < 1
    ):
        raise ValueError(f"group_size must be a positive integer, got {group_size!r}")
    return int(group_size)


def _group_grid(weight: np.ndarray, bits: int, scheme: str, g: int) -> Grid:
    """One grid per ``g`` consecutive columns: each group's per-row grid, side by side."""
    grids = [
        weight_grid(weight[:, start : start + g], bits, scheme=scheme, per_channel=True)
        for start in range(0, weight.shape[1], g)
    ]
    offset = None if grids[0].offset is None else np.column_stack([x.offset for x in grids])
    return Grid(np.column_stack([x.step for x in grids]), grids[0].q_min, grids[0].q_max, offset, g)


def bias_grid(weight_step: np.ndarray, *, bias_step=None, input_step=None) -> Grid:
    """The int32 grid of the bias, one step per output row.

    The step is ``bias_step`` when given (a scalar or one per row); otherwise
    ``input_step * weight_step`` when the layer's inputs are quantized with step
    ``input_step`` (the integer-arithmetic convention), else the weight step. With
    group-wise weight steps ``(n, groups)`` the row's largest one is used.
    """
    weight_step = np.asarray(weight_step, dtype=np.float64)
    if weight_step.ndim == 2:
        weight_step = weight_step.max(axis=1)
    if bias_step is not None:
        step = np.broadcast_to(np.asarray(bias_step, dtype=np.float64), weight_step.shape).copy()
    elif input_step is not None:
        step = float(input_step) * weight_step
    else:
        step = weight_step.copy()
    if not np.all(np.isfinite(step)) or np.any(step <= 0):
        raise ValueError(f"bias step must be positive and finite, got {step}")
    return Grid(step=step, q_min=INT32_MIN, q_max=INT32_MAX)


def _affine_grid(weight: np.ndarray, q_min: int, q_max: int, per_channel: bool) -> Grid:
    """Levels from the minimum to the maximum weight (per row or per tensor)."""
    if per_channel:
        low, high = weight.min(axis=1), weight.max(axis=1)
    else:
        low = np.full(len(weight), weight.min())
        high = np.full(len(weight), weight.max())
    spread = high - low
    # a constant row is exact on any grid: a unit step then, with its value as the offset
    step = np.where(spread > 0, spread / (q_max - q_min), 1.0)
    return Grid(step=step, q_min=q_min, q_max=q_max, offset=low - q_min * step)
