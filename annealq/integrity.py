"""Checks that a file's numbers are the ones written: a checksum of its tensors, and a
quantized layer's integers and steps checked against what a quantization can produce.

Model files (:mod:`annealq.data.model_file`) and result files (:mod:`annealq.quantized`)
record :func:`tensor_digest` of their tensors and are refused when it does not match, so
a flipped byte is named as damage instead of loading as a huge integer or a NaN step.

Example:
    >>> import torch
    >>> state = {"w": torch.arange(4)}
    >>> tensor_digest(state) == tensor_digest({"w": torch.arange(4)})
    True
    >>> tensor_digest(state) == tensor_digest({"w": torch.tensor([0, 1, 2, 4])})
    False
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from annealq.grid import INT32_MAX, INT32_MIN, integer_range

log = logging.getLogger(__name__)


def tensor_digest(state: dict) -> str:
    """SHA-256 of tensors by name: each one's name, dtype, shape and bytes, names sorted."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name]
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def check_digest(path, meta: dict, tensors: dict) -> None:
    """Raise ``ValueError`` when a result file's tensors do not match the checksum its
    metadata records; a file written before results carried one loads with a warning."""
    if "sha256" not in meta:
        log.warning(
            "%s predates result checksums: its tensors cannot be verified (save it "
            "again to add one)",
            path,
        )
    elif meta["sha256"] != tensor_digest(tensors):
        raise ValueError(
            f"{path} is damaged: its tensors do not match their checksum "
            "(flipped bytes or an edit); replace it with a good copy"
        )


def check_layer_numbers(layer, bits) -> None:
    """Raise ``ValueError`` unless ``layer``'s (a ``LayerResult``) integer weights lie on
    the ``bits``-bit grid (any int32 when ``bits`` is unknown), its bias integers in int32,
    and its steps (and offsets) are finite, the steps positive."""
    low, high = (
        integer_range(bits) if isinstance(bits, int) and 1 <= bits <= 8 else (INT32_MIN, INT32_MAX)
    )
    for name, values, (least, most) in (
        ("integer weights", layer.int_weight, (low, high)),
        ("integer biases", layer.int_bias, (INT32_MIN, INT32_MAX)),
    ):
        if values.size and (values.min() < least or values.max() > most):
            raise ValueError(
                f"layer {layer.name!r}: {name} from {values.min()} to "
                f"{values.max()}, outside the grid's {least}..{most}"
            )
    for name in ("weight_step", "bias_step", "weight_offset"):
        values = getattr(layer, name)
        if values is None:
            continue
        if not np.all(np.isfinite(values)) or (name != "weight_offset" and np.any(values <= 0)):
            raise ValueError(
                f"layer {layer.name!r}: {name} holds non-finite or non-positive values"
            )
