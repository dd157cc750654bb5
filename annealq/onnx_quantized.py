"""The ONNX nodes of one quantized layer (for :mod:`annealq.onnx_export`): its integer
weights as a packed ``INT2``/``INT4``/``INT8`` initializer behind a ``DequantizeLinear``
(per tensor, per row or per group of inputs), an affine grid's float offset added after
it, its bias as int32 integers times their steps, and, with quantized activations, its
input rounded by a ``QuantizeLinear``/``DequantizeLinear`` pair.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from annealq.architecture import check_linear
from annealq.errors import ExportError
from annealq.onnx_layers import GraphBuilder, conv, gemm


def quantized_layer(graph: GraphBuilder, prefix: str, module, layer, x: str, storage: int) -> str:
    """Add the nodes of ``module`` quantized as ``layer`` (its
    :class:`~annealq.layer_result.LayerResult`) applied to ``x``, the integers stored in
    ``storage`` bits; return the output's name."""
    try:
        check_linear(
            module,
            layer.name,
            (layer.out_features, layer.in_features),
            layer.int_weight.shape,
            layer.int_bias.shape,
            layer.weight_step.shape,
        )
    except ValueError as exc:
        raise ExportError(f"cannot export: {exc}") from None
    if layer.input_grid is not None:
        x = _quantized_input(graph, prefix, layer.input_grid, x)
    weight = _weight(graph, prefix, layer, storage)
    bias = None if module.bias is None else _bias(graph, prefix, layer)
    if isinstance(module, nn.Conv2d):
        shape = graph.constant(
            f"{prefix}.kernel_shape", np.array(module.weight.shape, dtype=np.int64)
        )
        weight = graph.node("Reshape", [weight, shape], f"{prefix}.weight")
        return conv(graph, prefix, module, x, weight, bias)
    return gemm(graph, prefix, x, weight, bias)


def _integers(layer, storage: int) -> np.ndarray:
    """The layer's integer weights in the numpy type of ``storage`` bits (packed on save)."""
    import ml_dtypes

    q = layer.int_weight
    low, high = -(2 ** (storage - 1)), 2 ** (storage - 1) - 1
    if q.min() < low or q.max() > high:
        raise ExportError(
            f"layer {layer.name!r}: integers from {q.min()} to {q.max()} do "
            f"not fit INT{storage} [{low}, {high}]"
        )
    return q.astype({2: ml_dtypes.int2, 4: ml_dtypes.int4, 8: np.int8}[storage])


def _weight(graph: GraphBuilder, prefix: str, layer, storage: int) -> str:
    """``offset + step · q`` as ``DequantizeLinear`` (then ``Add``): ``(out, in)`` floats."""
    q = graph.constant(f"{prefix}.weight_q", _integers(layer, storage))
    steps, attributes = layer.weight_step, {}
    if steps.ndim == 2:  # one step per row and group of inputs
        scale, attributes = steps, {"axis": 1, "block_size": int(layer.group_size)}
    elif np.all(steps == steps[0]):
        scale = steps[0]
    else:
        scale, attributes = steps, {"axis": 0}
    scale = graph.constant(f"{prefix}.weight_scale", np.asarray(scale, dtype=np.float32))
    weight = graph.node("DequantizeLinear", [q, scale], f"{prefix}.weight_dq", **attributes)
    if layer.weight_offset is None:
        return weight
    return graph.node("Add", [weight, _offset(graph, prefix, layer)], f"{prefix}.weight_affine")


def _offset(graph: GraphBuilder, prefix: str, layer) -> str:
    """The affine offsets, broadcastable to ``(out, in)``: a scalar, a column, or each
    group's offset gathered onto its inputs."""
    offset = np.asarray(layer.weight_offset, dtype=np.float32)
    if offset.ndim == 2:
        columns = np.arange(layer.in_features, dtype=np.int64) // int(layer.group_size)
        return graph.node(
            "Gather",
            [
                graph.constant(f"{prefix}.weight_offset", offset),
                graph.constant(f"{prefix}.offset_groups", columns),
            ],
            f"{prefix}.weight_offsets",
            axis=1,
        )
    value = offset[0] if np.all(offset == offset[0]) else offset[:, None]
    return graph.constant(f"{prefix}.weight_offset", value)


def _bias(graph: GraphBuilder, prefix: str, layer) -> str:
    """The int32 bias integers times their steps (one per output)."""
    ints = graph.constant(f"{prefix}.bias_q", layer.int_bias.astype(np.int32))
    steps = graph.constant(f"{prefix}.bias_scale", layer.bias_step.astype(np.float32))
    return graph.node("DequantizeLinear", [ints, steps], f"{prefix}.bias", axis=0)


def _quantized_input(graph: GraphBuilder, prefix: str, grid, x: str) -> str:
    """``x`` rounded to the activation ``grid``: Clip (narrow ranges), Quantize, Dequantize."""
    width = 8 if -128 <= grid.q_min and grid.q_max <= 127 else 16
    if not -(2**15) <= grid.q_min <= grid.q_max < 2**15:
        raise ExportError(
            f"layer {prefix!r}: an input grid [{grid.q_min}, {grid.q_max}] wider than int16"
        )
    if (grid.q_min, grid.q_max) != (-(2 ** (width - 1)), 2 ** (width - 1) - 1):
        low, high = ((q - grid.zero_point) * grid.step for q in (grid.q_min, grid.q_max))
        x = graph.node(
            "Clip",
            [
                x,
                graph.constant(f"{prefix}.input_min", np.float32(low)),
                graph.constant(f"{prefix}.input_max", np.float32(high)),
            ],
            f"{prefix}.input_clipped",
        )
    step = graph.constant(f"{prefix}.input_scale", np.float32(grid.step))
    zero = graph.constant(
        f"{prefix}.input_zero_point",
        np.asarray(grid.zero_point, dtype=np.int8 if width == 8 else np.int16),
    )
    q = graph.node("QuantizeLinear", [x, step, zero], f"{prefix}.input_q")
    return graph.node("DequantizeLinear", [q, step, zero], f"{prefix}.input")
