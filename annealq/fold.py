"""Folding each BatchNorm into the layer before it, so that the layer is quantized with the
weights it effectively computes with.

In eval mode ``BatchNorm(y) = γ (y − μ) / √(σ² + ε) + β`` is an affine map per channel. When
it reads the output of a ``Conv2d`` (or ``Linear``) and nothing else does, the pair is one
layer with weights ``W' = a·W`` and bias ``b' = a·(b − μ) + β``, ``a = γ / √(σ² + ε)`` per
output channel. annealq quantizes ``W'`` and ``b'`` (the grid, the QUBO and the baselines
all see the folded layer), and the BatchNorm becomes an ``nn.Identity``: a BatchNorm left
after a quantized layer would rescale its error channel by channel, so the QUBO would no
longer minimise the network's actual output error, and deployed int kernels fold it anyway.

Pairs are found through forward hooks (a BatchNorm whose input *is* the layer's output
tensor), so any module structure works; the folded copy is checked to compute the same
outputs as the model on the calibration inputs, and nothing is folded when it does not (a
layer output that is also read elsewhere, say by a skip connection).

Example:
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)).eval()
    >>> model[1].running_mean += 0.5
    >>> folded, pairs = fold_batchnorm(model, torch.randn(4, 1, 5, 5))
    >>> pairs, type(folded[1]).__name__, folded[0].bias is not None
    ([{'layer': '0', 'batchnorm': '1'}], 'Identity', True)
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from annealq.capture import forward, replace_module

log = logging.getLogger(__name__)

_PAIRS = ((nn.Conv2d, nn.BatchNorm2d), (nn.Linear, nn.BatchNorm1d))


def fold_batchnorm(model, example) -> tuple[nn.Module, list[dict]]:
    """A copy of ``model`` (eval mode) with every BatchNorm that directly follows a conv or
    linear layer folded into it, and the folded pairs ``[{"layer", "batchnorm"}]``.

    Returns ``model`` itself and ``[]`` when there is nothing to fold (or when folding would
    change the outputs on ``example``, with a warning).
    """
    pairs = _find_pairs(model, example)
    if not pairs:
        return model, []
    folded = apply_folds(model, [{"layer": a, "batchnorm": b} for a, b in pairs])
    expected, got = forward(model, example), forward(folded, example)
    scale = max(float(expected.abs().max()), 1.0)
    if not torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * scale):
        log.warning(
            "not folding BatchNorm: the folded model's outputs differ (a layer's "
            "output is read by more than its BatchNorm?)"
        )
        return model, []
    return folded, [{"layer": a, "batchnorm": b} for a, b in pairs]


def apply_folds(model, pairs) -> nn.Module:
    """A copy of ``model`` (eval mode) with the ``pairs`` ``[{"layer", "batchnorm"}]`` folded:
    what :func:`fold_batchnorm` found; also how a saved result of a folded model is loaded
    into its float model (the layers gain their biases, the BatchNorms become identities).

    Raises:
        ValueError: a pair that does not name a conv or linear layer and its BatchNorm.
    """
    folded = copy.deepcopy(model).eval()
    modules = dict(folded.named_modules())
    for pair in pairs:
        layer, norm = modules.get(pair["layer"]), modules.get(pair["batchnorm"])
        if layer is None or norm is None or not _matches(layer, norm):
            raise ValueError(
                f"the model has no layer {pair['layer']!r} followed by "
                f"BatchNorm {pair['batchnorm']!r} to fold"
            )
        replace_module(folded, pair["layer"], _folded_layer(layer, norm))
        replace_module(folded, pair["batchnorm"], nn.Identity())
    return folded


def _find_pairs(model, example) -> list[tuple[str, str]]:
    names = {module: name for name, module in model.named_modules()}
    produced: dict = {}  # id of an output tensor -> the layer that returned it
    pairs: list = []

    def layer_hook(module, inputs, output):
        produced[id(output)] = (module, output)

    def norm_hook(module, inputs, output):
        source = produced.get(id(inputs[0]))
        if source is not None and source[1] is inputs[0] and _matches(source[0], module):
            pair = (names[source[0]], names[module])
            if pair not in pairs:
                pairs.append(pair)

    hooks = []
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            hooks.append(module.register_forward_hook(layer_hook))
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and _foldable(module):
            hooks.append(module.register_forward_hook(norm_hook))
    try:
        forward(model, example)
    finally:
        for hook in hooks:
            hook.remove()
    used = [name for pair in pairs for name in pair]
    # a layer (or norm) reached twice with different partners cannot be folded once
    return [pair for pair in pairs if used.count(pair[0]) == 1 and used.count(pair[1]) == 1]


def _matches(layer, norm) -> bool:
    return any(
        isinstance(layer, a) and isinstance(norm, b) for a, b in _PAIRS
    ) and norm.num_features == (
        layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
    )


def _foldable(norm) -> bool:
    # without running statistics a BatchNorm normalises by each batch's: not a fixed map
    return norm.track_running_stats and norm.running_mean is not None


def _folded_layer(layer, norm):
    """A copy of ``layer`` computing ``norm(layer(x))``, with a bias."""
    with torch.no_grad():
        scale = (
            norm.weight / torch.sqrt(norm.running_var + norm.eps)
            if norm.affine
            else 1.0 / torch.sqrt(norm.running_var + norm.eps)
        )
        shift = norm.bias if norm.affine else torch.zeros_like(scale)
        bias = layer.bias if layer.bias is not None else torch.zeros_like(scale)
        new = copy.deepcopy(layer)
        if layer.bias is None:
            new.bias = nn.Parameter(torch.zeros_like(scale, dtype=layer.weight.dtype))
        shape = (-1,) + (1,) * (layer.weight.dim() - 1)
        new.weight.copy_(layer.weight * scale.reshape(shape))
        new.bias.copy_((bias - norm.running_mean) * scale + shift)
    return new
