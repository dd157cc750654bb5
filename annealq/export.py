"""Writing files atomically, and saving / loading a quantization result.

A saved result is one ``torch.save`` file holding the integer weights and biases, their
steps, the input grids of quantized activations, the report, and the quantized module
itself (its structure); :func:`load` rebuilds every quantized layer's weights from the
integers, so the integers are what the file means.

Loading unpickles the module (``torch.load(..., weights_only=False)``), which can run
arbitrary code: load only files you trust.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> atomic_write(path, lambda stream: stream.write(b"done"))
    >>> open(path).read()
    'done'
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

FORMAT = "annealq.quantized"
FORMAT_VERSION = 1


def atomic_write(path, write: Callable) -> None:
    """Call ``write(binary_stream)`` on a temporary file beside ``path``, then rename it.

    Readers see the old file or the complete new one, never a partial one; on any error
    the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.",
                                             suffix=".tmp")
    try:
        os.fchmod(descriptor, 0o666 & ~_umask())  # mkstemp's 0600 is for secrets, not this
        with os.fdopen(descriptor, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save(result, path) -> None:
    """Write a :class:`~annealq.pipeline.QuantizationResult` to ``path`` atomically."""
    import torch

    payload = {"format": FORMAT, "version": FORMAT_VERSION,
               "layers": [layer.to_dict() for layer in result.layers],
               "report": result.report, "solver": result.solver, "method": result.method,
               "model": result.model}
    atomic_write(path, lambda stream: torch.save(payload, stream))


def load(path):
    """Read a result written by :meth:`QuantizationResult.save`.

    Returns:
        A :class:`~annealq.pipeline.QuantizationResult` whose ``model`` computes with the
        stored integers times their steps.

    Raises:
        ValueError: the file is missing, unreadable, or not an annealq result.
    """
    import torch

    from annealq.pipeline import LayerResult, QuantizationResult, write_layer

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
