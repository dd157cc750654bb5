"""Capture: find a torch model's ``nn.Linear`` and ``nn.Conv2d`` layers through forward
hooks, in execution order, and record what each one receives on the calibration set. Any
module works (not only ``nn.Sequential``): a layer is reached when the forward pass runs it.

Example:
    >>> import numpy as np, torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3),
    ...                             torch.nn.ReLU(), torch.nn.Linear(3, 2))
    >>> [name for name, _ in linear_layers(model, np.zeros((1, 2, 2)))]
    ['1', '3']
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from annealq.conv import quantizable, unsupported_reason
from annealq.errors import first_line


def linear_layers(model, example) -> list[tuple[str, object]]:
    """The model's quantizable layers (``nn.Linear``, ``nn.Conv2d`` with ``groups=1``) as
    ``(name, module)`` in the order the forward pass runs them."""
    names = {module: name for name, module in model.named_modules()}
    order: list = []
    tied = tied_layers(model)
    hooks = [
        module.register_forward_hook(lambda m, i, o: order.append(m) if m not in order else None)
        for module in model.modules()
        if quantizable(module) and module not in tied
    ]
    try:
        forward(model, example)
    finally:
        for hook in hooks:
            hook.remove()
    if not order:
        raise ValueError("the model has no nn.Linear layer to quantize (and no nn.Conv2d)")
    return [(names[module], module) for module in order]


def tied_layers(model) -> dict:
    """Layers whose weight is also another module's parameter (a language model's output
    head tied to its embedding), mapped to that module's name: quantizing one would change
    the other, so they stay in float."""
    owners: dict = {}
    for name, module in model.named_modules():
        for parameter in module.parameters(recurse=False):
            owners.setdefault(id(parameter), []).append(name)
    names = {module: name for name, module in model.named_modules()}
    tied = {}
    for module in model.modules():
        if quantizable(module):
            others = [n for n in owners[id(module.weight)] if n != names[module]]
            if others:
                tied[module] = others[0]
    return tied


def replace_module(root, name: str, module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def layer_inputs(model, modules, calibration) -> list[np.ndarray]:
    """What each of ``modules`` receives in one forward pass: ``(m, f)`` float64 arrays for
    linear layers, the input tensors ``(N, C, H, W)`` themselves for convolutions."""
    return [
        x if isinstance(module, nn.Conv2d) else x.double().cpu().numpy()
        for module, x in zip(modules, layer_input_tensors(model, modules, calibration))
    ]


def layer_input_tensors(model, modules, calibration) -> list:
    captured: dict = {}

    def capture(module, inputs, output):
        x = inputs[0].detach()
        captured.setdefault(
            module, x if isinstance(module, nn.Conv2d) else x.reshape(-1, module.in_features)
        )

    hooks = [module.register_forward_hook(capture) for module in modules]
    try:
        forward(model, calibration)
    finally:
        for hook in hooks:
            hook.remove()
    return [captured[module] for module in modules]


def forward(model, x):
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    device = parameter.device if parameter is not None else None
    with torch.no_grad():
        array = np.asarray(x)
        # token ids stay integers (annealq.calibration keeps them only for token models)
        inputs = torch.as_tensor(
            array,
            device=device,
            dtype=torch.long if np.issubdtype(array.dtype, np.integer) else dtype,
        )
        try:
            return model(inputs)
        except RuntimeError as exc:  # shape mismatches and the like: a user error here
            raise ValueError(
                f"the model cannot run on inputs of shape {tuple(inputs.shape)}: {first_line(exc)}"
            ) from None


def not_quantized(model, float_layers) -> list[dict]:
    """Modules with parameters of their own that were left in float."""
    done = {name for name, _ in float_layers}
    tied = tied_layers(model)
    entries = []
    for name, module in model.named_modules():
        count = sum(p.numel() for p in module.parameters(recurse=False))
        if count == 0 or name in done:
            continue
        reason = unsupported_reason(module) or "not run on the calibration inputs"
        if module in tied:
            reason = (
                f"its weight is tied to {tied[module]}'s, which would change with it: kept in float"
            )
        entries.append(
            {"name": name, "type": type(module).__name__, "parameters": count, "reason": reason}
        )
    return entries


def check_group_size(group_size, float_layers) -> None:
    """A group of inputs wider than every layer is a mistake (a layer narrower than the
    group gets one group, as the last group of a row may be shorter)."""
    widest = max((layer.weight[0].numel() for _, layer in float_layers), default=0)
    if group_size is not None and widest and group_size > widest:
        raise ValueError(
            f"group_size {group_size} is larger than the widest layer "
            f"({widest} inputs); pass at most {widest}"
        )
