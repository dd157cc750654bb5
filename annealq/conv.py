"""``nn.Conv2d`` as a dense layer over patches, so that it goes through the same exact QUBO.

Output channel ``o`` of a convolution computes ``w_o · p + b_o`` at every output position,
``p`` being the patch of ``C_in·kh·kw`` input values it covers (``F.unfold``'s order, the
same as ``weight.reshape(C_out, -1)``). So the convolution is the dense layer
``W = weight.reshape(C_out, C_in·kh·kw)`` whose calibration rows are **all patches of all
calibration images**, and the per-neuron decomposition of docs/design.md §1 holds unchanged:
one QUBO of ``C_in·kh·kw + 1`` variables per output channel, its energy the squared output
error summed over every output position of the calibration set.

There are ``N·H_out·W_out`` patches (a million for 1,000 CIFAR-10 images in the first
layer), so they are never held at once: :func:`patch_statistics` unfolds a few images at a
time and accumulates the moments of :class:`~annealq.statistics.InputStatistics`, with
memory bounded by ``max_rows`` patches whatever the calibration set's size.

Stride, padding (any ``padding_mode``, ``"same"``/``"valid"``), dilation and the bias are
handled; ``groups > 1`` (depthwise and grouped convolutions) is not: such a layer is kept
in float and listed in the report's ``not_quantized`` with that reason.

Example:
    >>> import torch
    >>> conv = torch.nn.Conv2d(2, 3, 3, stride=2, padding=1).double()
    >>> x = torch.randn(4, 2, 7, 7, dtype=torch.float64)
    >>> P = patches(conv, x)
    >>> P.shape  # 4 images × 4×4 positions, 2·3·3 values each
    torch.Size([64, 18])
    >>> W, b = dense_parameters(conv)
    >>> y = (P @ W.T + b).reshape(4, 16, 3).permute(0, 2, 1).reshape(4, 3, 4, 4)
    >>> bool(torch.allclose(y, conv(x)))
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from annealq.activations import QuantizedInputLinear
from annealq.statistics import InputStatistics

# patches per accumulation step: ~4 million float64 values (32 MB) per side at 1,000 features
MAX_ROWS = 4096


def quantizable(module) -> bool:
    """Whether annealq quantizes ``module``: an ``nn.Linear``, or an ``nn.Conv2d`` that
    :func:`unsupported_reason` accepts."""
    return isinstance(module, nn.Linear) or (
        isinstance(module, nn.Conv2d) and unsupported_reason(module) is None
    )


def unsupported_reason(module) -> str | None:
    """Why a layer with weights stays in float (``None`` when it is quantized)."""
    if isinstance(module, nn.Linear):
        return None
    if isinstance(module, nn.Conv2d):
        if module.groups != 1:
            return (
                f"a grouped convolution (groups={module.groups}): each group is a dense "
                f"layer of its own, not supported yet; kept in float"
            )
        return None
    if isinstance(module, nn.Embedding):
        return "an embedding (a lookup table, no calibration inputs to fit): kept in float"
    if isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)):
        return "a normalization layer (a few scales per feature): kept in float"
    return "not an nn.Linear or nn.Conv2d: kept in float"


def dense_parameters(module):
    """The layer's weight as a matrix ``(outputs, inputs per output)`` and its bias."""
    if isinstance(module, nn.Conv2d):
        return module.weight.detach().flatten(1), module.bias
    return module.weight, module.bias


def outputs(module) -> int:
    """Output neurons (linear) or channels (conv)."""
    return module.out_channels if isinstance(module, nn.Conv2d) else module.out_features


def patches(conv: nn.Conv2d, x) -> torch.Tensor:
    """Every patch of ``x`` ``(N, C_in, H, W)`` that ``conv`` sees: ``(N·H_out·W_out,
    C_in·kh·kw)``, image by image, positions in row-major order."""
    x = _padded(conv, x)
    columns = F.unfold(x, conv.kernel_size, dilation=conv.dilation, stride=conv.stride)
    return columns.transpose(1, 2).reshape(-1, columns.shape[1])


def patch_statistics(
    conv: nn.Conv2d, inputs, float_inputs=None, *, max_rows: int = MAX_ROWS
) -> InputStatistics:
    """The moments of all patches of ``inputs`` (the quantized network's, ``(N, C, H, W)``)
    and of ``float_inputs`` (the float network's), accumulated a few images at a time.

    Args:
        conv: the convolution (its geometry; its weights are not used).
        inputs, float_inputs: tensors ``(N, C_in, H, W)``; ``float_inputs`` defaults to
            ``inputs``.
        max_rows: patches per step (at least one image's).
    """
    per_image = positions(conv, inputs.shape[-2:])
    step = max(1, max_rows // max(per_image, 1))
    stats = InputStatistics.empty(conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1])
    same = float_inputs is None or float_inputs is inputs
    with torch.no_grad():
        for start in range(0, len(inputs), step):
            x_hat = patches(conv, inputs[start : start + step].double())
            x = None if same else patches(conv, float_inputs[start : start + step].double())
            stats = stats.add(x_hat, x)
    return stats


def positions(conv: nn.Conv2d, size) -> int:
    """Output positions ``H_out·W_out`` of one image of spatial ``size``."""
    probe = torch.zeros(1, conv.in_channels, *size)
    return int(
        F.unfold(
            _padded(conv, probe), conv.kernel_size, dilation=conv.dilation, stride=conv.stride
        ).shape[-1]
    )


def layer_rows(module, inputs, float_inputs):
    """``(inputs, float_inputs)`` as the formulation takes them: arrays for a linear layer
    (``float_inputs`` as given), the two sides of the patch statistics for a conv."""
    if isinstance(module, nn.Conv2d):
        stats = patch_statistics(module, inputs, float_inputs)
        return stats.inputs, stats.float_inputs
    if hasattr(inputs, "detach"):  # the tensor a hook captured
        inputs = inputs.detach().double().cpu().numpy()
    return inputs, float_inputs


def describe_layer(module, inputs) -> dict:
    """The conv fields of a layer's result: ``kernel`` ``[C_out, C_in, kh, kw]`` and
    ``patches`` (calibration rows seen); nothing for a linear layer."""
    if not isinstance(module, nn.Conv2d):
        return {}
    return {
        "kernel": [module.out_channels, module.in_channels, *module.kernel_size],
        "patches": inputs.shape[0],
    }


def with_input_grid(module, input_grid):
    """A copy of ``module`` that rounds its input to ``input_grid`` first."""
    if isinstance(module, nn.Conv2d):
        return QuantizedInputConv2d.from_conv(module, input_grid)
    return QuantizedInputLinear.from_linear(module, input_grid)


class QuantizedInputConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` whose input is first rounded to an activation grid (same parameters,
    same ``state_dict`` keys as the float layer)."""

    @classmethod
    def from_conv(cls, layer: nn.Conv2d, input_grid) -> QuantizedInputConv2d:
        new = cls(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            layer.dilation,
            layer.groups,
            layer.bias is not None,
            layer.padding_mode,
        )
        new.to(dtype=layer.weight.dtype, device=layer.weight.device)
        new.load_state_dict(layer.state_dict())
        new.input_grid = input_grid
        return new.train(layer.training)

    def forward(self, x):
        return super().forward(self.input_grid.fake_quantize(x))


def _padded(conv: nn.Conv2d, x):
    """``x`` padded as ``conv`` pads it (then unfolded without padding)."""
    if conv.padding == "valid":
        return x
    if conv.padding == "same":
        pads = []
        for d, k in zip(reversed(conv.dilation), reversed(conv.kernel_size)):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
    else:
        pads = [p for p in reversed(conv.padding) for _ in range(2)]
    if not any(pads):
        return x
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    return F.pad(x, pads, mode=mode)
