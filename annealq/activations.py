"""Integer activations: asymmetric min/max quantization of a layer's inputs.

With ``activation_bits=B`` every quantized ``nn.Linear`` receives its input rounded to a
``B``-bit grid (int8 for ``B = 8``): one step ``s_x`` and zero point ``z`` per tensor, from
the minimum and maximum of that input over the calibration set (widened to contain 0, so
that 0 is exact), as in the paper's reference scheme:

    s_x = (max − min) / (2^B − 1),   z = q_min − round(min / s_x),
    x̂ = s_x · (clip(round(x / s_x) + z, q_min, q_max) − z),   q ∈ [−2^(B−1), 2^(B−1) − 1].

Example:
    >>> import torch
    >>> q = ActivationGrid.from_range(0.0, 1.0, bits=8)
    >>> round(q.step * 255, 6), q.zero_point
    (1.0, -128)
    >>> q.fake_quantize(torch.tensor([-0.5, 0.0, 1.0, 2.0])).tolist()  # clipped to [0, 1]
    [0.0, 0.0, 1.0, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

# validated beside the weights' bit widths, where the CLI reads it without torch
from annealq.grid import validate_activation_bits


@dataclass(frozen=True)
class ActivationGrid:
    """A per-tensor affine grid: ``x ≈ step · (q − zero_point)``, ``q ∈ [q_min, q_max]``."""

    step: float
    zero_point: int
    q_min: int
    q_max: int

    @classmethod
    def from_range(cls, low: float, high: float, *, bits: int) -> ActivationGrid:
        """The min/max grid of values in ``[low, high]`` (the range is widened to hold 0)."""
        bits = validate_activation_bits(bits)
        q_min, q_max = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        low, high = min(float(low), 0.0), max(float(high), 0.0)
        step = (high - low) / (q_max - q_min)
        if step == 0.0:  # an all-zero input: any step represents it exactly
            step = 1.0
        zero_point = int(min(max(q_min - round(low / step), q_min), q_max))
        return cls(step, zero_point, q_min, q_max)

    @classmethod
    def calibrate(cls, x, *, bits: int) -> ActivationGrid:
        """The grid of a calibration tensor's range."""
        return cls.from_range(x.min().item(), x.max().item(), bits=bits)

    def fake_quantize(self, x):
        """``x`` rounded to the grid and mapped back to floats (same dtype as ``x``)."""
        import torch

        q = torch.clamp(torch.round(x / self.step) + self.zero_point, self.q_min, self.q_max)
        return (q - self.zero_point) * self.step

    def to_dict(self) -> dict:
        return {
            "step": self.step,
            "zero_point": self.zero_point,
            "q_min": self.q_min,
            "q_max": self.q_max,
        }


class QuantizedInputLinear(nn.Linear):
    """An ``nn.Linear`` whose input is first rounded to an :class:`ActivationGrid`.

    It is still an ``nn.Linear`` (same parameters, same ``state_dict`` keys), so the
    quantized model keeps the float model's structure.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool, input_grid: ActivationGrid):
        super().__init__(in_features, out_features, bias=bias)
        self.input_grid = input_grid

    @classmethod
    def from_linear(cls, layer: nn.Linear, input_grid: ActivationGrid) -> QuantizedInputLinear:
        """A copy of ``layer`` (same weights, dtype and device) with quantized inputs."""
        new = cls(layer.in_features, layer.out_features, layer.bias is not None, input_grid)
        new.to(dtype=layer.weight.dtype, device=layer.weight.device)
        new.load_state_dict(layer.state_dict())
        new.train(layer.training)
        return new

    def forward(self, x):
        return super().forward(self.input_grid.fake_quantize(x))

    def extra_repr(self) -> str:
        grid = self.input_grid
        return (
            f"{super().extra_repr()}, input_step={grid.step:.6g}, "
            f"input_zero_point={grid.zero_point}, input_range=[{grid.q_min}, {grid.q_max}]"
        )
