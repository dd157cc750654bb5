"""A quantized model as an ONNX file whose weights are the integers annealq found.

Every quantized ``nn.Linear`` and ``nn.Conv2d`` keeps its integers as an ``INT2`` (int1–int2
weights), ``INT4`` (int3–int4) or ``INT8`` (int5–int8) initializer, packed, and its steps
as the scales of a ``DequantizeLinear``: one scale (per tensor), one per output row
(``axis=0``) or one per row and group of ``group_size`` inputs (``axis=1``,
``block_size=group_size``). An affine grid's float offset is no integer zero point, so it
is added after the ``DequantizeLinear``. A conv's integers are stored as its rows
``(C_out, C_in·kh·kw)``, as annealq quantizes them, and reshaped to the kernel after
dequantization. Biases are their int32 integers times their steps. With quantized
activations, each quantized layer's input passes a ``QuantizeLinear``/``DequantizeLinear``
pair with the recorded step and zero point (int8 up to 8 bits, int16 above; a ``Clip``
first for ranges narrower than the type). Everything else stays float
(:mod:`annealq.onnx_layers`), so the graph computes what the quantized torch model
computes, in float32.

The graph is opset 25 (the first with ``INT2`` in ``DequantizeLinear``) and IR version 13;
ONNX's checker passes it (``full_check``) before anything is written. ONNX Runtime 1.32's
CPU provider runs it, ``INT2`` included; for runtimes without ``INT2`` kernels,
``int2_storage="int4"`` stores int1–int2 integers as ``INT4`` (twice the bytes).

Example:
    >>> import os, tempfile
    >>> import numpy as np, torch, annealq
    >>> torch.manual_seed(0) and None
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(),
    ...                             torch.nn.Linear(4, 3))
    >>> x = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    >>> result = annealq.quantize(model, x, bits=4, method="rtn", per_channel=True)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.onnx")
    >>> export_onnx(result, path)
    >>> import onnxruntime
    >>> session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    >>> [y] = session.run(None, {"input": x})
    >>> bool(np.allclose(y, result.model(torch.from_numpy(x)).detach().numpy(), atol=1e-5))
    True
"""

from __future__ import annotations

from torch import nn

from annealq.data.cnn import Images
from annealq.errors import ExportError
from annealq.files import atomic_write
from annealq.onnx_layers import GraphBuilder, emit_module, onnx_package
from annealq.onnx_quantized import quantized_layer

OPSET = 25
IR_VERSION = 13
INT2_STORAGE = ("int2", "int4")
INPUT, OUTPUT = "input", "output"


def export_onnx(result, path, *, int2_storage: str = "int2") -> None:
    """Write ``result`` (a :class:`~annealq.quantized.QuantizationResult`) to ``path`` as
    an ONNX model with integer weights (see the module docs), atomically.

    Args:
        result: what :func:`annealq.quantize` returns or :func:`annealq.load` reads.
        path: the ``.onnx`` file to write.
        int2_storage: ``"int2"`` (default) or ``"int4"``: the type int1–int2 weights are
            stored in.

    Raises:
        ExportError: a module with no ONNX form (named), integers outside their storage
            type, a graph ONNX's checker rejects, or no onnx package; nothing is written.
    """
    atomic_write(path, onnx_writer(result, int2_storage=int2_storage))


def onnx_writer(result, *, int2_storage: str = "int2"):
    """``write(stream)`` for :func:`annealq.files.write_together`: the model is built and
    checked now (so an error comes before any file is touched), written when called."""
    data = onnx_model(result, int2_storage=int2_storage).SerializeToString()
    return lambda stream: stream.write(data)


def check_exportable(model) -> None:
    """Raise :class:`ExportError` naming the first module of ``model`` that the exporter
    cannot express (a check before a long quantization whose result is to be exported)."""
    onnx_package()
    scratch = GraphBuilder()
    for name, module in _leaves(model):
        if type(module) not in (nn.Linear, nn.Conv2d):
            emit_module(scratch, name or "model", module, INPUT)
    _input_shape([module for _, module in _leaves(model)])


def onnx_model(result, *, int2_storage: str = "int2"):
    """The checked ``onnx.ModelProto`` of ``result`` (what :func:`export_onnx` writes)."""
    onnx = onnx_package()
    from onnx import TensorProto, helper

    if int2_storage not in INT2_STORAGE:
        raise ExportError(f"int2_storage must be one of {INT2_STORAGE}, got {int2_storage!r}")
    layers = {layer.name: layer for layer in result.layers}
    bits = (result.report or {}).get("bits")
    graph, x = GraphBuilder(), INPUT
    graph.name(INPUT)
    leaves = list(_leaves(result.model))
    for name, module in leaves:
        layer = layers.pop(name, None)
        prefix = name or "model"
        if layer is None:
            x = emit_module(graph, prefix, module, x)
        else:
            storage = storage_bits(_layer_bits(bits, layer), int2_storage)
            x = quantized_layer(graph, prefix, module, layer, x, storage)
    if layers:
        raise ExportError(f"the result's layers {sorted(layers)} are not modules of its model")
    graph.node("Identity", [x], OUTPUT)
    shape = _input_shape([module for _, module in leaves])
    model = _model(graph, helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, shape))
    helper.set_model_props(
        model,
        {
            "annealq.bits": str(bits),
            "annealq.method": str(result.method),
            "annealq.solver": str(result.solver),
        },
    )
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = (str(exc).strip().splitlines() or ["invalid"])[0]
        raise ExportError(f"ONNX's checker rejects the exported graph: {first}") from None
    return model


def _model(graph: GraphBuilder, input_info):
    """The model of ``graph``, its output's shape found by ONNX's shape inference."""
    from onnx import TensorProto, helper, shape_inference

    def model(outputs):
        body = helper.make_graph(graph.nodes, "annealq", [input_info], outputs, graph.initializers)
        return helper.make_model(
            body,
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name="annealq",
        )

    probe = model([helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", None])])
    inferred = {info.name: info for info in shape_inference.infer_shapes(probe).graph.value_info}
    output = inferred.get(OUTPUT, probe.graph.output[0])
    return model([output])


def storage_bits(bits: int, int2_storage: str = "int2") -> int:
    """The width of the ONNX integer type that holds ``bits``-bit weights: 2, 4 or 8.

    Example:
        >>> [storage_bits(b) for b in (1, 2, 3, 4, 5, 8)], storage_bits(2, "int4")
        ([2, 2, 4, 4, 8, 8], 4)
    """
    if bits <= 2:
        return 2 if int2_storage == "int2" else 4
    return 4 if bits <= 4 else 8


def _layer_bits(bits, layer) -> int:
    """The run's weight bits, else the fewest signed bits that hold the layer's integers."""
    if isinstance(bits, int) and 1 <= bits <= 8:
        return bits
    low, high = int(layer.int_weight.min()), int(layer.int_weight.max())
    return next(b for b in range(1, 9) if -(2 ** (b - 1)) <= low and high < 2 ** (b - 1))


def _leaves(module, prefix: str = ""):
    """``(name, module)`` of the modules an ``nn.Sequential`` (nested) runs, in order."""
    if type(module) is nn.Sequential:
        for child, submodule in module.named_children():
            yield from _leaves(submodule, f"{prefix}.{child}" if prefix else child)
    else:
        yield prefix, module


def _input_shape(modules) -> list:
    """``[batch, features]`` (the rows the datasets hold) up to the first ``Linear`` or
    :class:`Images`, ``[batch, C, H, W]`` up to a first ``Conv2d``."""
    for module in modules:
        if isinstance(module, Images):
            return ["batch", module.channels * module.height * module.width]
        if isinstance(module, nn.Linear):
            return ["batch", module.in_features]
        if isinstance(module, nn.Conv2d):
            return ["batch", module.in_channels, "height", "width"]
        if not isinstance(module, _SHAPE_KEEPING):
            break
    raise ExportError(
        "cannot tell the model's input shape: the exporter needs a Linear, "
        "Conv2d or Images layer first (after Flatten, Dropout or activations)"
    )


_SHAPE_KEEPING = (nn.Identity, nn.Dropout, nn.Flatten, nn.ReLU, nn.Tanh, nn.Sigmoid)
