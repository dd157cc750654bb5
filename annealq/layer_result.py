"""One quantized layer's result: its integers, steps and errors, as
:func:`~annealq.pipeline.quantize` records it and :mod:`annealq.quantized` saves it.

Example:
    >>> import numpy as np
    >>> layer = LayerResult("0", 2, 1, np.array([[1, -1]]), np.array([0]), np.array([0.5]),
    ...                     np.array([0.25]), 0.1, 0.2, 0.0)
    >>> layer.weight.tolist(), LayerResult.from_dict(layer.to_dict()).energy
    ([[0.5, -0.5]], 0.1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annealq.activations import ActivationGrid
from annealq.grid import Grid

__all__ = ["LayerResult", "as_array"]


@dataclass
class LayerResult:
    """One quantized layer: integers, steps and errors (squared output error on calibration).

    Attributes:
        int_weight: int64 ``(out_features, in_features)``; the layer computes with
            ``int_weight * weight_step[:, None]``.
        int_bias: int64 ``(out_features,)`` (zeros for a layer without bias), times
            ``bias_step``.
        energy: the layer's squared output error on the calibration set with this rounding.
        rtn_energy: the same with round-to-nearest on the same grids and inputs.
        input_grid: the grid its inputs are rounded to (``activation_bits``), or ``None``.
    """

    name: str
    in_features: int
    out_features: int
    int_weight: np.ndarray
    int_bias: np.ndarray
    weight_step: np.ndarray
    bias_step: np.ndarray
    energy: float
    rtn_energy: float
    solve_seconds: float
    cache_hits: int = 0
    cache_misses: int = 0
    has_bias: bool = True
    input_grid: ActivationGrid | None = None
    weight_offset: np.ndarray | None = None
    proven_optimal: int | None = None  # neurons whose solver proved their optimum
    kernel: list | None = None  # a conv's [C_out, C_in, kh, kw] (the weight's rows flatten it)
    patches: int | None = None  # a conv's calibration rows: patches of all images
    group_size: int | None = None  # weight_step (and offset) (n, groups): one per g inputs
    execution: dict | None = None  # solved_by, wall vs summed solve seconds (QUBO runs)
    gptq_setting: dict | None = None  # GPTQ's setting chosen for the layer (gptq, cd, start)
    refit: dict | None = None  # re-fitted steps: rounds, errors before/after, step ratios

    @property
    def weight(self) -> np.ndarray:
        """The dequantized weights ``offset + int_weight * weight_step`` (offset: affine
        grids only; steps and offsets per group of inputs with ``group_size``)."""
        grid = Grid(self.weight_step, 0, 0, self.weight_offset, self.group_size)
        return grid.dequantize(self.int_weight)

    def report(self) -> dict:
        entry = {
            "name": self.name,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "energy": self.energy,
            "rtn_energy": self.rtn_energy,
            "solve_seconds": self.solve_seconds,
            "cache": {"hits": self.cache_hits, "misses": self.cache_misses},
        }
        if self.input_grid is not None:
            entry["input_grid"] = self.input_grid.to_dict()
        if self.proven_optimal is not None:
            entry["proven_optimal"] = self.proven_optimal
        if self.group_size is not None:
            entry["group_size"] = self.group_size
        if self.kernel is not None:
            entry.update(kernel=list(self.kernel), patches=self.patches)
        if self.execution is not None:
            entry.update(self.execution)
        if self.gptq_setting is not None:
            entry["gptq_setting"] = self.gptq_setting
        if self.refit is not None:
            entry["refit"] = self.refit
        return entry

    def to_dict(self) -> dict:
        """Plain data (numpy arrays, numbers, strings) for :func:`~annealq.quantized.save`."""
        entry = {name: getattr(self, name) for name in self.__dataclass_fields__}
        entry["input_grid"] = None if self.input_grid is None else self.input_grid.to_dict()
        return entry

    @classmethod
    def from_dict(cls, entry: dict) -> LayerResult:
        entry = dict(entry)
        grid = entry.pop("input_grid", None)
        for name, dtype in (
            ("int_weight", np.int64),
            ("int_bias", np.int64),
            ("weight_step", np.float64),
            ("bias_step", np.float64),
        ):
            entry[name] = as_array(entry[name], dtype)
        if entry.get("weight_offset") is not None:
            entry["weight_offset"] = as_array(entry["weight_offset"], np.float64)
        return cls(**entry, input_grid=None if grid is None else ActivationGrid(**grid))


def as_array(value, dtype) -> np.ndarray:
    """A numpy copy of a stored array (numpy or tensor)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.array(value, dtype=dtype)
