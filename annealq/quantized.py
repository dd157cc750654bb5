"""A quantization's result — integers, steps, errors and the quantized module — and its
file format.

A saved result is one ``torch.save`` file holding the integer weights and biases, their
steps, the input grids of quantized activations, the report, and the quantized module
itself (its structure); :func:`load` rebuilds every quantized layer's weights from the
integers, so the integers are what the file means.

Loading unpickles the module (``torch.load(..., weights_only=False)``), which can run
arbitrary code: load only files you trust.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from annealq.activations import ActivationGrid
from annealq.files import atomic_write

FORMAT = "annealq.quantized"
FORMAT_VERSION = 1


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
    execution: dict | None = None  # solved_by, wall vs summed solve seconds (QUBO runs)

    @property
    def weight(self) -> np.ndarray:
        """The dequantized weights ``offset + int_weight * weight_step`` (offset: affine
        grids only)."""
        values = self.int_weight * self.weight_step[:, None]
        return values if self.weight_offset is None else values + self.weight_offset[:, None]

    def report(self) -> dict:
        entry = {"name": self.name, "in_features": self.in_features,
                 "out_features": self.out_features, "energy": self.energy,
                 "rtn_energy": self.rtn_energy, "solve_seconds": self.solve_seconds,
                 "cache": {"hits": self.cache_hits, "misses": self.cache_misses}}
        if self.input_grid is not None:
            entry["input_grid"] = self.input_grid.to_dict()
        if self.proven_optimal is not None:
            entry["proven_optimal"] = self.proven_optimal
        if self.execution is not None:
            entry.update(self.execution)
        return entry

    def to_dict(self) -> dict:
        """Plain data (numpy arrays, numbers, strings) for :func:`save`."""
        entry = {name: getattr(self, name) for name in self.__dataclass_fields__}
        entry["input_grid"] = None if self.input_grid is None else self.input_grid.to_dict()
        return entry

    @classmethod
    def from_dict(cls, entry: dict) -> LayerResult:
        entry = dict(entry)
        grid = entry.pop("input_grid", None)
        for name, dtype in (("int_weight", np.int64), ("int_bias", np.int64),
                            ("weight_step", np.float64), ("bias_step", np.float64)):
            entry[name] = as_array(entry[name], dtype)
        if entry.get("weight_offset") is not None:
            entry["weight_offset"] = as_array(entry["weight_offset"], np.float64)
        return cls(**entry, input_grid=None if grid is None else ActivationGrid(**grid))


@dataclass
class QuantizationResult:
    """What :func:`quantize` returns.

    Attributes:
        model: the quantized copy of the model, computing with the dequantized weights
            (and rounded inputs with ``activation_bits``).
        solver: the solver used (``None`` for methods that use none).
        layers: one :class:`LayerResult` per quantized layer, in execution order.
        method: ``"qubo"``, ``"rtn"``, ``"gptq"`` or ``"adaround"``.
        report: the run's report (the CLI's JSON schema; see the README).
    """

    model: object
    solver: str | None
    layers: list[LayerResult] = field(default_factory=list)
    method: str = "qubo"
    report: dict = field(default_factory=dict)

    @property
    def cache_hits(self) -> int:
        return sum(layer.cache_hits for layer in self.layers)

    @property
    def cache_misses(self) -> int:
        return sum(layer.cache_misses for layer in self.layers)

    def save(self, path) -> None:
        """Write integers, steps, report and model structure to ``path`` (atomically).

        :func:`annealq.load` reads it back. The file unpickles on load: share it only
        with people who trust you.
        """
        save(self, path)


def write_layer(module, layer: LayerResult) -> None:
    """Set ``module``'s weight and bias to ``layer``'s integers times their steps."""
    import torch

    with torch.no_grad():
        module.weight.copy_(torch.as_tensor(layer.weight))
        if module.bias is not None:
            module.bias.copy_(torch.as_tensor(layer.int_bias * layer.bias_step))


def save(result, path) -> None:
    """Write a :class:`QuantizationResult` to ``path`` atomically."""
    import torch

    payload = {"format": FORMAT, "version": FORMAT_VERSION,
               "layers": [layer.to_dict() for layer in result.layers],
               "report": result.report, "solver": result.solver, "method": result.method,
               "model": result.model}
    atomic_write(path, lambda stream: torch.save(payload, stream))


def load(path):
    """Read a result written by :meth:`QuantizationResult.save`.

    Returns:
        A :class:`QuantizationResult` whose ``model`` computes with the
        stored integers times their steps.

    Raises:
        ValueError: the file is missing, unreadable, or not an annealq result.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no quantized model file at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # unpickling raises anything
        raise ValueError(f"cannot read {path}: {_first_line(exc)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a quantized model saved by annealq")
    if payload.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format version {payload.get('version')!r}; this annealq "
                         f"reads version {FORMAT_VERSION}")
    model = payload["model"]
    layers = [LayerResult.from_dict(entry) for entry in payload["layers"]]
    modules = dict(model.named_modules())
    for layer in layers:
        write_layer(modules[layer.name], layer)
    return QuantizationResult(model, payload["solver"], layers, method=payload["method"],
                              report=payload["report"])


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def as_array(value, dtype) -> np.ndarray:
    """A numpy copy of a stored array (numpy or tensor)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.array(value, dtype=dtype)
