"""The float side of the ONNX export: a graph under construction, and one ONNX node (or a
few) per standard ``torch.nn`` module of an ``nn.Sequential``.

The quantized ``nn.Linear`` and ``nn.Conv2d`` layers are :mod:`annealq.onnx_export`'s; here
are the layers around them (activations, pooling, BatchNorm, reshapes, dropout) and the
float ``Gemm``/``Conv`` nodes both use. A module with no ONNX form here is an
:class:`~annealq.errors.ExportError` naming it.

Example:
    >>> from torch import nn
    >>> graph = GraphBuilder()
    >>> emit_module(graph, "2", nn.ReLU(), "input")
    '2.out'
    >>> [node.op_type for node in graph.nodes]
    ['Relu']
"""

from __future__ import annotations

import numpy as np
from torch import nn

from annealq.data.cnn import Images
from annealq.errors import ExportError


def onnx_package():
    """``onnx``, or an :class:`ExportError` saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise ExportError(
            "ONNX export needs the onnx package: pip install 'annealq[onnx]'"
        ) from None
    return onnx


class GraphBuilder:
    """Nodes and initializers of one graph, with unique tensor names."""

    def __init__(self):
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = set()

    def name(self, hint: str) -> str:
        """``hint``, or ``hint`` with a number when it is taken."""
        name, k = hint, 1
        while name in self._names:
            name, k = f"{hint}_{k}", k + 1
        self._names.add(name)
        return name

    def constant(self, hint: str, array) -> str:
        """A new initializer holding ``array`` (its numpy dtype: ``ml_dtypes.int2`` and
        ``int4`` are stored packed); its tensor name."""
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list, hint: str, *, domain: str = "", **attributes) -> str:
        """Append an ``op`` node reading ``inputs`` (``""``: an omitted optional input);
        its one output's name."""
        from onnx import helper

        output = self.name(hint)
        self.nodes.append(
            helper.make_node(op, list(inputs), [output], name=output, domain=domain, **attributes)
        )
        return output


def float_array(tensor) -> np.ndarray:
    """A parameter as a float32 numpy array (the graph computes in float32)."""
    return tensor.detach().cpu().numpy().astype(np.float32)


def gemm(graph: GraphBuilder, prefix: str, x: str, weight: str, bias: str | None) -> str:
    """``x · weightᵀ + bias`` (an ``nn.Linear``; ``weight`` ``(out, in)``)."""
    return graph.node("Gemm", [x, weight] + ([bias] if bias else []), f"{prefix}.out", transB=1)


def conv(graph: GraphBuilder, prefix: str, module, x: str, weight: str, bias: str | None) -> str:
    """An ``nn.Conv2d``'s ``Conv`` node (``weight`` ``(C_out, C_in/groups, kh, kw)``)."""
    if module.padding_mode != "zeros":
        raise ExportError(
            f"cannot export layer {prefix!r}: a convolution with "
            f"padding_mode={module.padding_mode!r} (ONNX's Conv pads zeros)"
        )
    return graph.node(
        "Conv",
        [x, weight] + ([bias] if bias else []),
        f"{prefix}.out",
        kernel_shape=list(module.kernel_size),
        strides=list(module.stride),
        dilations=list(module.dilation),
        group=module.groups,
        pads=_conv_pads(module),
    )


def _conv_pads(module) -> list[int]:
    """ONNX's ``[h_begin, w_begin, h_end, w_end]`` for a conv's ``padding``."""
    if module.padding == "valid":
        return [0, 0, 0, 0]
    if module.padding == "same":  # as torch pads it: the odd pixel at the end
        totals = [d * (k - 1) for d, k in zip(module.dilation, module.kernel_size)]
        return [t // 2 for t in totals] + [t - t // 2 for t in totals]
    return [*module.padding, *module.padding]


def emit_float_layer(graph: GraphBuilder, prefix: str, module, x: str) -> str:
    """A ``Linear`` or ``Conv2d`` left in float: its float weights and bias."""
    weight = graph.constant(f"{prefix}.weight", float_array(module.weight))
    bias = (
        None if module.bias is None else graph.constant(f"{prefix}.bias", float_array(module.bias))
    )
    if isinstance(module, nn.Conv2d):
        return conv(graph, prefix, module, x, weight, bias)
    return gemm(graph, prefix, x, weight, bias)


_PASS_THROUGH = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)
_ELEMENTWISE = {nn.ReLU: "Relu", nn.Tanh: "Tanh", nn.Sigmoid: "Sigmoid"}


def emit_module(graph: GraphBuilder, prefix: str, module, x: str) -> str:
    """The nodes of one module that is not a quantized layer; the output's name.

    Raises:
        ExportError: a module with no ONNX form here (the message names it).
    """
    out = f"{prefix}.out"
    kind = type(module)
    if kind in _PASS_THROUGH:  # eval mode: dropout is the identity
        return x
    if kind in _ELEMENTWISE:
        return graph.node(_ELEMENTWISE[kind], [x], out)
    if kind is nn.LeakyReLU:
        return graph.node("LeakyRelu", [x], out, alpha=float(module.negative_slope))
    if kind is nn.ELU:
        return graph.node("Elu", [x], out, alpha=float(module.alpha))
    if kind is nn.GELU:
        return graph.node("Gelu", [x], out, approximate=module.approximate)
    if kind is nn.ReLU6:
        low = graph.constant(f"{prefix}.min", np.float32(0.0))
        high = graph.constant(f"{prefix}.max", np.float32(6.0))
        return graph.node("Clip", [x, low, high], out)
    if kind in (nn.Softmax, nn.LogSoftmax) and module.dim is not None:
        return graph.node(kind.__name__, [x], out, axis=int(module.dim))
    if kind is nn.Flatten and module.start_dim == 1 and module.end_dim == -1:
        return graph.node("Flatten", [x], out, axis=1)
    if kind is Images:
        return _images(graph, prefix, module, x)
    if kind in (nn.MaxPool2d, nn.AvgPool2d) and _plain_pool(module):
        return _pool(graph, prefix, module, x)
    if kind in (nn.BatchNorm1d, nn.BatchNorm2d) and module.running_mean is not None:
        return _batchnorm(graph, prefix, module, x)
    if isinstance(module, (nn.Linear, nn.Conv2d)) and kind in (nn.Linear, nn.Conv2d):
        return emit_float_layer(graph, prefix, module, x)
    raise ExportError(
        f"cannot export layer {prefix!r} ({_describe(module)}) to ONNX: the "
        "exporter writes nn.Sequential models of Linear, Conv2d, BatchNorm, "
        "pooling, Flatten, Dropout and the common activations"
    )


def _describe(module) -> str:
    text = repr(module).splitlines()[0]
    return text if len(text) <= 80 else text[:77] + "..."


def _images(graph: GraphBuilder, prefix: str, module, x: str) -> str:
    """annealq's :class:`Images`: rows of ``C·H·W`` (or ``H·W·C``) values → ``(N, C, H, W)``."""
    c, h, w = module.channels, module.height, module.width
    shape = [0, h, w, c] if module.channels_last else [0, c, h, w]
    images = graph.node(
        "Reshape",
        [x, graph.constant(f"{prefix}.shape", np.array(shape, np.int64))],
        f"{prefix}.reshaped" if module.channels_last else f"{prefix}.out",
    )
    if module.channels_last:
        return graph.node("Transpose", [images], f"{prefix}.out", perm=[0, 3, 1, 2])
    return images


def _pair(value) -> list[int]:
    return list(value) if isinstance(value, (tuple, list)) else [value, value]


def _plain_pool(module) -> bool:
    if isinstance(module, nn.MaxPool2d):
        return not module.return_indices
    return module.divisor_override is None


def _pool(graph: GraphBuilder, prefix: str, module, x: str) -> str:
    kernel = _pair(module.kernel_size)
    attributes = {
        "kernel_shape": kernel,
        "strides": _pair(module.stride or kernel),
        "pads": _pair(module.padding) * 2,
        "ceil_mode": int(module.ceil_mode),
    }
    if isinstance(module, nn.MaxPool2d):
        return graph.node(
            "MaxPool", [x], f"{prefix}.out", dilations=_pair(module.dilation), **attributes
        )
    return graph.node(
        "AveragePool",
        [x],
        f"{prefix}.out",
        count_include_pad=int(module.count_include_pad),
        **attributes,
    )


def _batchnorm(graph: GraphBuilder, prefix: str, module, x: str) -> str:
    """A BatchNorm left in the model (not folded): eval mode, its running statistics."""
    n = module.num_features
    scale = float_array(module.weight) if module.affine else np.ones(n, np.float32)
    shift = float_array(module.bias) if module.affine else np.zeros(n, np.float32)
    inputs = [x] + [
        graph.constant(f"{prefix}.{part}", value)
        for part, value in (
            ("scale", scale),
            ("shift", shift),
            ("mean", float_array(module.running_mean)),
            ("var", float_array(module.running_var)),
        )
    ]
    return graph.node("BatchNormalization", inputs, f"{prefix}.out", epsilon=float(module.eps))
