"""A float model as a file that loads without unpickling: its parameters as safetensors, its
architecture as a plain JSON description (:mod:`annealq.architecture`) and a checksum of
the tensors, for ``nn.Sequential``s of standard ``torch.nn`` layers.

``annealq quantize --model FILE`` reads these files (and TorchScript) as they are; a whole
module pickled with ``torch.save(model)`` only with ``--trust-pickle``, since unpickling can
run any code the file's author chose.

Example:
    >>> import pathlib, tempfile, torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.safetensors"
    >>> save_model(model, path)
    >>> again = read_model(path)
    >>> bool(torch.equal(again[1].weight, model[1].weight))
    True
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import torch

from annealq.architecture import build_bounded, describe
from annealq.errors import first_line
from annealq.files import atomic_write
from annealq.integrity import tensor_digest

FORMAT = "annealq-model"
VERSION = 1


def save_model(model, path) -> None:
    """Write ``model`` (an ``nn.Sequential`` of standard layers) to ``path`` atomically.

    Raises:
        ValueError: the model is not such a ``Sequential`` (save it as TorchScript instead).
    """
    from safetensors.torch import save

    architecture = describe(model)
    if architecture is None:
        raise ValueError(
            f"{type(model).__name__} is not an nn.Sequential of standard torch.nn "
            f"layers: save it as TorchScript (torch.jit.save) instead"
        )
    state = {
        name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()
    }
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": architecture,
        "sha256": tensor_digest(state),
    }
    data = save(state, metadata={"annealq_model": json.dumps(meta)})
    atomic_write(Path(path), lambda stream: stream.write(data))


def is_model_file(path) -> bool:
    """Whether ``path`` looks like a safetensors file (a length, then a JSON header)."""
    with open(path, "rb") as stream:
        head = stream.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def read_model(path):
    """The module a :func:`save_model` file holds, in eval mode.

    Raises:
        ValueError: a damaged file, or one that is not such a model file (named).
    """
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as archive:
            meta = json.loads((archive.metadata() or {})["annealq_model"])
            state = {name: archive.get_tensor(name) for name in archive.keys()}
    except Exception as exc:  # safetensors' errors, a missing key, bad JSON
        reason = first_line(exc)
        raise ValueError(
            f"cannot read model file {path}: damaged, or not a model saved by "
            f"annealq.save_model ({reason})"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"model file {path} is not a model saved by annealq.save_model")
    if meta.get("sha256") != tensor_digest(state):
        raise ValueError(f"model file {path} is damaged: its tensors do not match their checksum")
    try:
        numbers = sum(tensor.numel() for tensor in state.values())
        model = build_bounded(meta["architecture"], numbers, exact=True)
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"model file {path}: its architecture and tensors disagree ({first_line(exc)})"
        ) from None
    return model.eval()


def torch_load(path: Path, trust_pickle: bool):
    """A ``torch.save`` file's object: tensors and containers of them without unpickling
    any class; anything else only when trusted."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pickled = zipfile.is_zipfile(path)  # torch.save's archive holding pickled classes
        if not trust_pickle:
            if pickled:
                raise ValueError(
                    f"model file {path} is a pickled module (torch.save(model)): reading it "
                    f"can run arbitrary code. If you trust its source, pass --trust-pickle "
                    f"(trust_pickle=True); or save the model without pickle with "
                    f"annealq.save_model(model, path)"
                ) from None
            raise ValueError(
                f"cannot read model file {path}: not a torch.save or TorchScript "
                f"file (a module pickled in torch's legacy format needs "
                f"--trust-pickle)"
            ) from None
    except Exception as exc:
        raise ValueError(
            f"cannot read model file {path}: not a torch.save or TorchScript "
            f"file ({first_line(exc)})"
        ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # unpickling raises anything; the user needs one line
        raise ValueError(
            f"cannot read model file {path}: not a torch.save or TorchScript "
            f"file ({first_line(exc)})"
        ) from None
    try:
        model = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # unpickling raises anything; the user needs one line
        raise ValueError(
            f"cannot read model file {path}: not a torch.save or TorchScript "
            f"file ({first_line(exc)})"
        ) from None
    if not isinstance(model, torch.nn.Module):
        hint = (
            " (a state_dict does not record the architecture: save the whole module "
            "with torch.save(model))"
            if isinstance(model, dict)
            else ""
        )
        raise ValueError(
            f"model file {path} holds a {type(model).__name__}, not a torch.nn.Module{hint}"
        )
    return model.eval()
