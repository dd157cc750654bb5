"""The ``MatMulNBits`` graph of :mod:`benchmarks.deploy`: a quantized MLP with every
``Linear`` as ONNX Runtime's contrib operator on annealq's integers (blocks of
``NBITS_BLOCK`` along K, unsigned with the default zero point, ``accuracy_level`` 0).
"""

from __future__ import annotations

import numpy as np
import torch

from annealq.onnx_export import OPSET

NBITS_BLOCK = 32


def nbits_model(result, bits: int):
    """The MLP with every quantized ``Linear`` a ``MatMulNBits`` on its integers (signed
    ``q`` stored as ``q + 2^(b-1)``, the operator's default zero point), or ``None`` when
    the layout does not map (convs, affine offsets, groups other than 32)."""
    from onnx import TensorProto, helper, numpy_helper

    width = 2 if bits <= 2 else 4 if bits <= 4 else 8
    layers = {layer.name: layer for layer in result.layers}
    nodes, inits, x = [], [], "input"
    for name, module in result.model.named_children():
        layer = layers.get(name)
        if isinstance(module, torch.nn.Flatten):
            nodes.append(helper.make_node("Flatten", [x], [f"{name}.out"], axis=1))
        elif isinstance(module, torch.nn.ReLU):
            nodes.append(helper.make_node("Relu", [x], [f"{name}.out"]))
        elif (
            layer is not None
            and layer.weight_offset is None
            and layer.group_size in (None, NBITS_BLOCK)
        ):
            blob, scales = _nbits_arrays(layer, width)
            inits += [
                numpy_helper.from_array(blob, f"{name}.B"),
                numpy_helper.from_array(scales, f"{name}.scales"),
                numpy_helper.from_array(
                    (layer.int_bias * layer.bias_step).astype(np.float32), f"{name}.bias"
                ),
            ]
            nodes += [
                helper.make_node(
                    "MatMulNBits",
                    [x, f"{name}.B", f"{name}.scales"],
                    [f"{name}.mm"],
                    domain="com.microsoft",
                    K=layer.in_features,
                    N=layer.out_features,
                    bits=width,
                    block_size=NBITS_BLOCK,
                    accuracy_level=0,
                ),
                helper.make_node("Add", [f"{name}.mm", f"{name}.bias"], [f"{name}.out"]),
            ]
        else:
            return None
        x = f"{name}.out"
    nodes.append(helper.make_node("Identity", [x], ["output"]))
    graph = helper.make_graph(
        nodes,
        "nbits",
        [
            helper.make_tensor_value_info(
                "input", TensorProto.FLOAT, ["batch", result.layers[0].in_features]
            )
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)],
    )


def _nbits_arrays(layer, width: int):
    n, k = layer.int_weight.shape
    blocks = -(-k // NBITS_BLOCK)
    q = np.zeros((n, blocks * NBITS_BLOCK), dtype=np.uint8)
    q[:, :k] = layer.int_weight + 2 ** (width - 1)  # padding: the zero point, weight 0
    q[:, k:] = 2 ** (width - 1)
    per_byte = 8 // width
    q = q.reshape(n, blocks, NBITS_BLOCK // per_byte, per_byte)
    blob = sum((q[..., j].astype(np.uint8) << (width * j)) for j in range(per_byte))
    steps = layer.weight_step
    scales = steps if steps.ndim == 2 else np.repeat(steps[:, None], blocks, axis=1)
    return blob.astype(np.uint8), scales.astype(np.float32).reshape(-1)
