"""A quantization's result — integers, steps, errors and the quantized module — and its
file format.

A saved result is one safetensors file: the integer weights and biases, their steps (and
offsets), and the parameters of the modules left in float as tensors; the layers' other
fields, the input grids of quantized activations, the report and the architecture as JSON
metadata. Nothing is pickled, so opening a shared file runs no code. :func:`load` rebuilds
the module from the architecture (an ``nn.Sequential`` of standard layers, as the
reference MLPs) or from the float model the caller passes, then every quantized layer's
weights from the integers, so the integers are what the file means. Files of the older
pickle format are read only with ``trust_pickle=True``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from annealq.architecture import check_linear, describe, target_module
from annealq.errors import first_line
from annealq.files import atomic_write
from annealq.integrity import check_digest, check_layer_numbers, tensor_digest
from annealq.layer_result import LayerResult, as_array  # noqa: F401 (re-exported)
from annealq.onnx_export import export_onnx

FORMAT = "annealq.quantized"
FORMAT_VERSION = 2  # 1: one torch.save pickle (read with trust_pickle=True only)
_ARRAYS = ("int_weight", "int_bias", "weight_step", "bias_step", "weight_offset")


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

        :func:`annealq.load` reads it back; nothing is pickled.
        """
        save(self, path)

    def to_onnx(self, path, *, int2_storage: str = "int2") -> None:
        """Write the model as ONNX with integer weights: :func:`annealq.export_onnx`."""
        export_onnx(self, path, int2_storage=int2_storage)


def write_layer(module, layer: LayerResult) -> None:
    """Set ``module``'s weight and bias to ``layer``'s integers times their steps."""
    import torch

    with torch.no_grad():
        # a conv's weight (C_out, C_in, kh, kw) is its rows (C_out, C_in·kh·kw)
        module.weight.copy_(torch.as_tensor(layer.weight).reshape(module.weight.shape))
        if module.bias is not None:
            module.bias.copy_(torch.as_tensor(layer.int_bias * layer.bias_step))


def save(result, path) -> None:
    """Write a :class:`QuantizationResult` to ``path`` atomically (safetensors + JSON)."""
    atomic_write(path, writer(result))


def writer(result):
    """``write(stream)`` that saves ``result``, for :func:`annealq.files.write_together`:
    the integers, steps and offsets, and the parameters of the modules left in float, as
    tensors; the layers' other fields, the report and the architecture as JSON metadata."""
    from safetensors.torch import save as to_bytes

    tensors, layers = {}, []
    for k, layer in enumerate(result.layers):
        entry = layer.to_dict()
        for name in _ARRAYS:
            value = entry.pop(name)
            if value is not None:
                tensors[f"layers.{k}.{name}"] = _tensor(value)
        layers.append(entry)
    quantized = {
        f"{layer.name}.{p}".lstrip(".") for layer in result.layers for p in ("weight", "bias")
    }
    state = {
        name: value for name, value in result.model.state_dict().items() if name not in quantized
    }
    tensors.update(
        {f"state.{name}": value.detach().cpu().contiguous() for name, value in state.items()}
    )
    parameter = next(result.model.parameters(), None)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "layers": layers,
        "report": result.report,
        "solver": result.solver,
        "method": result.method,
        "architecture": describe(result.model),
        "state": sorted(state),
        "dtype": str(parameter.dtype).removeprefix("torch.")
        if parameter is not None
        else "float32",
        "sha256": tensor_digest(tensors),
    }
    data = to_bytes(tensors, metadata={"annealq": json.dumps(meta, allow_nan=False)})
    return lambda stream: stream.write(data)


def load(path, model=None, *, trust_pickle: bool = False):
    """Read a result written by :meth:`QuantizationResult.save`, without unpickling.

    Args:
        path: the file.
        model: the float model it was quantized from (its architecture; any weights), for
            models that are not ``nn.Sequential``s of standard layers. Default: the
            architecture recorded in the file.
        trust_pickle: read a file of the older pickle format (``torch.save``), which can
            run arbitrary code: only for files from a source you trust.

    Returns:
        A :class:`QuantizationResult` whose ``model`` computes with the stored integers
        times their steps.

    Raises:
        ValueError: the file is missing, damaged, not an annealq result, of the pickle
            format without ``trust_pickle``, or its metadata and tensors disagree (or
            disagree with ``model``); the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no quantized model file at {path}")
    with open(path, "rb") as stream:
        head = stream.read(9)
    if len(head) == 9 and head[8:9] == b"{":
        return _load_safe(path, model)
    if head[:2] == b"PK" or head[:1] == b"\x80":
        if not trust_pickle:
            raise ValueError(
                f"{path} is a quantized model in annealq's old pickle format: "
                "loading it can run arbitrary code. If you trust its source, "
                "load it with trust_pickle=True and save it again"
            )
        return _load_pickle(path)
    raise ValueError(f"cannot read {path}: not a quantized model saved by annealq")


def _load_safe(path: Path, model) -> QuantizationResult:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as archive:
            meta = json.loads((archive.metadata() or {})["annealq"])
            tensors = {name: archive.get_tensor(name) for name in archive.keys()}
    except Exception as exc:  # safetensors' errors, a missing key, bad JSON
        raise ValueError(
            f"cannot read {path}: damaged, or not a quantized model saved by "
            f"annealq ({first_line(exc)})"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a quantized model saved by annealq")
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has format version {meta.get('version')!r}; this annealq "
            f"reads version {FORMAT_VERSION}"
        )
    check_digest(path, meta, tensors)
    numbers = sum(tensor.numel() for tensor in tensors.values())
    try:
        layers = [
            LayerResult.from_dict(
                {
                    **entry,
                    **{
                        name: _pop(tensors, f"layers.{k}.{name}", name == "weight_offset")
                        for name in _ARRAYS
                    },
                }
            )
            for k, entry in enumerate(meta["layers"])
        ]
        module = target_module(
            meta.get("architecture"),
            meta.get("dtype", "float32"),
            model,
            {layer.name: layer.input_grid for layer in layers},
            (meta.get("report") or {}).get("folded_batchnorm", ()),
            numbers=numbers,
        )
        state = {name: tensors.pop(f"state.{name}") for name in meta["state"]}
        if tensors:
            raise ValueError(f"tensors {', '.join(sorted(tensors)[:3])} are not described")
        missing, unexpected = module.load_state_dict(state, strict=False)
        quantized = {
            f"{layer.name}.{p}".lstrip(".") for layer in layers for p in ("weight", "bias")
        }
        if unexpected or set(missing) - quantized:
            raise ValueError(
                f"the model's parameters {sorted(set(missing) - quantized)[:3]} "
                f"are missing, {sorted(unexpected)[:3]} unexpected"
            )
        modules = dict(module.named_modules())
        for layer in layers:
            check_layer_numbers(layer, (meta.get("report") or {}).get("bits"))
            check_linear(
                modules.get(layer.name),
                layer.name,
                (layer.out_features, layer.in_features),
                layer.int_weight.shape,
                layer.int_bias.shape,
                layer.weight_step.shape,
            )
            write_layer(modules[layer.name], layer)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{path}: its metadata and tensors disagree ({first_line(exc)})") from None
    return QuantizationResult(
        module, meta["solver"], layers, method=meta["method"], report=meta["report"]
    )


def _load_pickle(path: Path) -> QuantizationResult:
    """The older format: one ``torch.save`` of everything, the module pickled."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # unpickling raises anything
        raise ValueError(f"cannot read {path}: {first_line(exc)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a quantized model saved by annealq")
    model = payload["model"]
    layers = [LayerResult.from_dict(entry) for entry in payload["layers"]]
    modules = dict(model.named_modules())
    for layer in layers:
        write_layer(modules[layer.name], layer)
    return QuantizationResult(
        model, payload["solver"], layers, method=payload["method"], report=payload["report"]
    )


def _tensor(value):
    import torch

    return torch.as_tensor(np.ascontiguousarray(value))


def _pop(tensors: dict, name: str, optional: bool):
    return None if optional and name not in tensors else tensors.pop(name).numpy()
