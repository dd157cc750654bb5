"""A module's architecture as plain JSON data, and the module rebuilt from it without
unpickling anything: ``nn.Sequential``s of standard ``torch.nn`` layers (each rebuilt from
its class name and constructor arguments read from its attributes) and annealq's
:class:`~annealq.activations.QuantizedInputLinear`.

Only classes of the ``torch.nn`` namespace (and that one of annealq) can be named, and only
with JSON arguments, so reading a description runs no code of the file's choosing.

Example:
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> description = describe(model)
    >>> description["children"][1]
    {'type': 'Linear', 'kwargs': {'in_features': 4, 'out_features': 3, 'bias': True}}
    >>> build(description)
    Sequential(
      (0): Flatten(start_dim=1, end_dim=-1)
      (1): Linear(in_features=4, out_features=3, bias=True)
      (2): ReLU()
      (3): Linear(in_features=3, out_features=2, bias=True)
    )
"""

from __future__ import annotations

import copy
import inspect

import numpy as np
import torch
from torch import nn

from annealq.activations import ActivationGrid, QuantizedInputLinear
from annealq.capture import replace_module
from annealq.fold import apply_folds

_CONTAINERS = frozenset(
    {"Module", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Sequential"}
)
_SKIPPED = frozenset({"device", "dtype", "self"})


def describe(module) -> dict | None:
    """A JSON description :func:`build` turns back into an equal module (same class, same
    settings, same parameter names and shapes), or ``None`` when the module is not a
    ``Sequential`` of standard layers."""
    try:
        description = _describe(module)
        rebuilt = build(description)
    except (TypeError, ValueError, RuntimeError):
        return None
    same = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()} == {
        k: tuple(v.shape) for k, v in module.state_dict().items()
    }
    return description if same and repr(rebuilt) == repr(module) else None


def build(description: dict):
    """The module a :func:`describe` description stands for.

    Raises:
        ValueError: a type that is not a standard ``torch.nn`` layer, or bad arguments.
    """
    if not isinstance(description, dict) or not isinstance(description.get("type"), str):
        raise ValueError(f"not a module description: {description!r:.80}")
    name = description["type"]
    if name == "Sequential":
        children = description.get("children", [])
        if not isinstance(children, list):
            raise ValueError(f"a Sequential's children are a list, got {children!r:.80}")
        return nn.Sequential(*(build(child) for child in children))
    kwargs = _kwargs(name, description.get("kwargs", {}))
    if name == "QuantizedInputLinear":
        grid = kwargs.pop("input_grid", None)
        if not isinstance(grid, dict):
            raise ValueError(f"a QuantizedInputLinear's input_grid is an object, got {grid!r:.80}")
        try:
            return QuantizedInputLinear(**kwargs, input_grid=ActivationGrid(**grid))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"cannot build a QuantizedInputLinear from {kwargs}: {exc}") from None
    cls = getattr(nn, name, None)
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)) or name in _CONTAINERS:
        raise ValueError(f"{name!r} is not a standard torch.nn layer")
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"cannot build a {name} from {kwargs}: {exc}") from None


def build_bounded(description: dict, numbers: int, *, exact: bool):
    """:func:`build`, once the description is known to declare ``numbers`` parameters and
    buffers (``exact``) or at most that many: counted on the ``meta`` device, where nothing
    is allocated, so a small file declaring a huge layer is refused at no cost.

    Example:
        >>> description = {"type": "Linear", "kwargs": {"in_features": 30000,
        ...                                            "out_features": 30000}}
        >>> build_bounded(description, 12, exact=True)
        Traceback (most recent call last):
        ...
        ValueError: the architecture declares 900,030,000 numbers, the file's tensors hold 12
    """
    with torch.device("meta"):
        declared = sum(t.numel() for t in build(description).state_dict().values())
    if declared > numbers or (exact and declared != numbers):
        raise ValueError(
            f"the architecture declares {declared:,} numbers, the file's tensors hold {numbers:,}"
        )
    return build(description)


def _kwargs(name: str, kwargs) -> dict:
    """A layer's constructor arguments: an object of JSON values, never a device or dtype
    (those are the loader's to choose)."""
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise ValueError(f"the arguments of a {name} are an object of names, got {kwargs!r:.80}")
    chosen = sorted(set(kwargs) & _SKIPPED)
    if chosen:
        raise ValueError(f"a {name}'s {', '.join(chosen)} is not part of its description")
    for key, value in kwargs.items():
        plain = (type(None), bool, int, float, str)
        if not (
            isinstance(value, plain)
            or key == "input_grid"
            or (isinstance(value, list) and all(isinstance(v, plain) for v in value))
        ):
            raise ValueError(
                f"{name}.{key} is {value!r:.60}, not a JSON number, string or list of them"
            )
    return dict(kwargs)


def target_module(architecture, dtype: str, model, input_grids: dict, folded=(), *, numbers: int):
    """The module a saved result loads into: a copy of ``model`` (the BatchNorms the run
    ``folded`` folded the same way, its layers with an input grid made
    :class:`QuantizedInputLinear`), else the one ``architecture`` describes (with at most
    ``numbers`` parameters, the numbers the file's tensors hold)."""
    if model is None:
        if architecture is None:
            raise ValueError(
                "the file records no architecture (not an nn.Sequential of "
                "standard layers): pass the float model, load(path, model=...)"
            )
        if dtype not in ("float16", "bfloat16", "float32", "float64"):
            raise ValueError(f"the file's dtype {dtype!r} is not a float type")
        return build_bounded(architecture, numbers, exact=False).to(getattr(torch, dtype)).eval()
    module = apply_folds(model, folded) if folded else copy.deepcopy(model).eval()
    for name, grid in input_grids.items():
        current = module.get_submodule(name)
        if grid is not None and not isinstance(current, QuantizedInputLinear):
            replaced = QuantizedInputLinear.from_linear(current, grid)
            if not name:
                return replaced
            replace_module(module, name, replaced)
    return module


def check_linear(module, name: str, shape: tuple, *stored_shapes) -> None:
    """``module`` is an ``nn.Linear`` or ``nn.Conv2d`` whose weight rows are ``shape`` (out,
    in; a conv's in is ``C_in·kh·kw``); ``stored_shapes`` are the integer weights', the
    integer bias's and the steps' (one per row, or per row and group)."""
    if not isinstance(module, (nn.Linear, nn.Conv2d)):
        raise ValueError(f"layer {name!r} is no nn.Linear or nn.Conv2d of the model")
    weight = tuple(module.weight.shape)
    rows = (weight[0], int(np.prod(weight[1:])))
    weights, bias, steps = (tuple(shape_) for shape_ in stored_shapes)
    if (
        rows != tuple(shape)
        or weights != tuple(shape)
        or bias != tuple(shape[:1])
        or steps[:1] != tuple(shape[:1])
    ):
        raise ValueError(
            f"layer {name!r}: the model's weight is {weight}, the file's "
            f"{tuple(shape)} (integers {weights})"
        )


def _describe(module) -> dict:
    if type(module) is nn.Sequential:
        return {"type": "Sequential", "children": [_describe(m) for m in module]}
    if type(module) is QuantizedInputLinear:
        return {
            "type": "QuantizedInputLinear",
            "kwargs": {
                "in_features": module.in_features,
                "out_features": module.out_features,
                "bias": module.bias is not None,
                "input_grid": module.input_grid.to_dict(),
            },
        }
    name = type(module).__name__
    if getattr(nn, name, None) is not type(module) or name in _CONTAINERS:
        raise ValueError(f"{name} is not a standard torch.nn layer")
    kwargs = {}
    for parameter in list(inspect.signature(type(module).__init__).parameters)[1:]:
        if parameter == "bias":  # a flag in the constructor, a tensor (or None) after it
            kwargs["bias"] = getattr(module, "bias", None) is not None
        elif parameter not in _SKIPPED and hasattr(module, parameter):
            kwargs[parameter] = _plain(getattr(module, parameter), name, parameter)
    return {"type": name, "kwargs": kwargs}


def _plain(value, name, parameter):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)) and all(
        isinstance(v, (bool, int, float, str)) for v in value
    ):
        return list(value)
    raise ValueError(f"{name}.{parameter} is a {type(value).__name__}")
