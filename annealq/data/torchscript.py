"""TorchScript model files rebuilt as ordinary modules: TorchScript runs no forward hooks,
which annealq needs to reach each layer's inputs, so a scripted ``nn.Sequential`` of
standard ``torch.nn`` layers is rebuilt from its layers' settings and checked to compute
the same outputs. Loading a TorchScript file runs code it carries:
:func:`annealq.data.models.load_model` reads one only with ``trust_torchscript``.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "plain.bin"
    >>> _ = path.write_bytes(b"not a zip")
    >>> is_torchscript(path)
    False
"""

from __future__ import annotations

import inspect
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from annealq.errors import first_line


def read_torchscript(path: Path, example=None):
    """The ordinary module equal to the TorchScript file at ``path`` (checked against the
    file's own outputs on ``example`` when given), in eval mode.

    Raises:
        ValueError: an unreadable file, a model that is not such a ``Sequential``, or one
            the rebuild does not reproduce.
    """
    try:
        with warnings.catch_warnings():  # torch deprecates TorchScript; we still read it
            warnings.simplefilter("ignore", DeprecationWarning)
            script = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise ValueError(f"cannot read TorchScript model {path}: {first_line(exc)}") from None
    model = _eager_from_script(script, path)
    if example is not None:
        _check_same_outputs(model, script, example, path)
    return model.eval()


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files with a ``code/`` folder (torch.save's have none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _eager_from_script(script, path):
    """An ordinary module equal to a scripted ``nn.Sequential`` of standard torch.nn layers."""
    name = script.original_name
    if name == "Sequential":
        return nn.Sequential(
            *(_eager_from_script(child, path) for _, child in script.named_children())
        )
    cls = getattr(nn, name, None)
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)) or name in _CONTAINERS:
        raise ValueError(
            f"TorchScript model {path} contains a {name}, which annealq cannot "
            f"rebuild (TorchScript runs no forward hooks, so only nn.Sequential "
            f"models of standard torch.nn layers are accepted); save the module "
            f"itself with torch.save(model)"
        )
    kwargs = {}
    for parameter in list(inspect.signature(cls.__init__).parameters)[1:]:
        if parameter == "bias":  # a flag in the constructor, a tensor (or None) after it
            kwargs["bias"] = getattr(script, "bias", None) is not None
        elif parameter not in ("device", "dtype") and hasattr(script, parameter):
            kwargs[parameter] = getattr(script, parameter)
    try:
        module = cls(**kwargs)
        module.load_state_dict(script.state_dict())
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"cannot rebuild the {name} of TorchScript model {path}: {first_line(exc)}"
        ) from None
    return module


_CONTAINERS = frozenset(
    {"Module", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Sequential"}
)


def _check_same_outputs(model, script, example, path) -> None:
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    x = torch.as_tensor(np.asarray(example), dtype=dtype)
    with torch.no_grad():
        try:
            expected = script.eval()(x)
        except Exception as exc:
            raise ValueError(
                f"TorchScript model {path} cannot run on inputs of shape "
                f"{tuple(x.shape)}: {first_line(exc)}"
            ) from None
        rebuilt = model.eval()(x)
    if rebuilt.shape != expected.shape or not torch.allclose(
        rebuilt, expected, rtol=1e-5, atol=1e-6
    ):
        raise ValueError(
            f"TorchScript model {path} could not be rebuilt faithfully (its "
            f"layers' settings are not all recorded, as in traced models); save "
            f"the module itself with torch.save(model)"
        )
