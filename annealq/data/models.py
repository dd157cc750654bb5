"""Reference MLPs (trained reproducibly, cached), and reading a user's model file.

A reference model is trained once per dataset and seed and cached in
``$ANNEALQ_MODELS`` (default ``~/.cache/annealq/models``) as a ``state_dict`` plus its
configuration, read back with ``torch.load(..., weights_only=True)``.

A user's model file is either a whole module saved with ``torch.save(model)`` or a
TorchScript file (``torch.jit.save``). The first is read with ``torch.load(...,
weights_only=False)``, which unpickles arbitrary Python objects and so can run arbitrary
code: only load files you trust. TorchScript modules do not run forward hooks, which
annealq needs to find the layers' inputs, so a TorchScript ``nn.Sequential`` of standard
``torch.nn`` layers is rebuilt as an ordinary module (and checked to compute the same
outputs); other TorchScript models are refused with a clear message. A TorchScript file
carries code that runs while it loads, so it is read only with ``trust_torchscript``.

Example:
    >>> model = build_mlp(4, (8,), 3)
    >>> [type(m).__name__ for m in model]
    ['Flatten', 'Linear', 'ReLU', 'Linear']
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from annealq.data.model_file import is_model_file, read_model, torch_load
from annealq.data.torchscript import is_torchscript, read_torchscript
from annealq.files import atomic_write, check_zip

log = logging.getLogger(__name__)

MODELS_ENV = "ANNEALQ_MODELS"
_CACHE_VERSION = 1


@dataclass(frozen=True)
class ReferenceConfig:
    """How a dataset's reference MLP is built and trained (Adam, cross-entropy)."""

    hidden: tuple[int, ...]
    epochs: int
    batch_size: int = 128
    lr: float = 1e-3


# At least one hidden layer of >= 128 units for the 28×28 sets and CIFAR-10; a few epochs,
# so that training stays under a minute on two CPU cores.
REFERENCE_MODELS = {
    "digits": ReferenceConfig((64,), epochs=30, batch_size=64),
    "mnist": ReferenceConfig((128,), epochs=5),
    "fashion-mnist": ReferenceConfig((128,), epochs=5),
    "emnist": ReferenceConfig((128,), epochs=5),
    "cifar10": ReferenceConfig((256,), epochs=5),
}


def build_mlp(in_features: int, hidden: tuple[int, ...], n_classes: int):
    """``Flatten → (Linear → ReLU)* → Linear``."""
    layers: list = [nn.Flatten()]
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def train_mlp(
    x: np.ndarray,
    y: np.ndarray,
    *,
    hidden: tuple[int, ...] = (64,),
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    n_classes=None,
):
    """Train an MLP classifier with Adam on ``(x, y)``; same seed, same model."""
    threads = torch.get_num_threads()
    # One thread: reductions then run in one fixed order, so the same seed gives the same
    # weights bit for bit whatever the machine's load (multi-threaded kernels may not).
    torch.set_num_threads(1)
    try:
        return _train(x, y, hidden, epochs, batch_size, lr, seed, n_classes)
    finally:
        torch.set_num_threads(threads)


def reference_model(dataset, *, seed: int = 0, models_dir=None, retrain: bool = False):
    """The reference MLP of ``dataset`` (a :class:`~annealq.data.datasets.Dataset`), cached.

    Trained with :data:`REFERENCE_MODELS` ``[dataset.name]`` and ``seed`` the first time (or
    when ``retrain``), then read from the cache.

    Returns:
        ``(model, path of the cached file)``.
    """
    config = REFERENCE_MODELS[dataset.name]
    path = _reference_path(dataset, config, seed, models_dir)
    if path.is_file() and not retrain:
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            model = build_mlp(dataset.n_features, config.hidden, dataset.n_classes)
            model.load_state_dict(stored["state_dict"])
            return model.eval(), path
        except Exception as exc:  # a damaged cache file is trained again
            log.warning("retraining: cannot read cached model %s (%s)", path, exc)
    log.info("training the %s reference MLP (%s, seed %d)", dataset.name, config, seed)
    model = train_mlp(
        dataset.x_train,
        dataset.y_train,
        hidden=config.hidden,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        seed=seed,
        n_classes=dataset.n_classes,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "version": _CACHE_VERSION,
        "config": asdict(config),
        "seed": seed,
        "dataset": dataset.name,
        "state_dict": model.state_dict(),
    }
    atomic_write(path, lambda stream: torch.save(payload, stream))
    return model, path


def models_folder(models_dir=None) -> Path:
    """``models_dir``, else ``$ANNEALQ_MODELS``, else ``~/.cache/annealq/models``."""
    if models_dir is not None:
        return Path(models_dir).expanduser()
    if os.environ.get(MODELS_ENV):
        return Path(os.environ[MODELS_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "annealq" / "models"


def load_model(path, *, example=None, trust_pickle: bool = False, trust_torchscript: bool = False):
    """Read a model file: :func:`~annealq.data.model_file.save_model`'s (safetensors and a
    JSON architecture), TorchScript, or — with ``trust_pickle`` — a whole pickled module.

    Args:
        path: the file.
        example: inputs to check a rebuilt TorchScript model against the original on.
        trust_pickle: read a ``torch.save(model)`` file, which unpickles the module's
            classes and can run arbitrary code: only for files from a source you trust.
        trust_torchscript: read a TorchScript file, whose own code runs while it loads
            and is checked: only for files from a source you trust.

    Returns:
        A ``torch.nn.Module`` in eval mode, on the CPU.

    Raises:
        ValueError: a missing, damaged or unreadable file, a pickled module without
            ``trust_pickle``, TorchScript without ``trust_torchscript``, or one that holds
            no usable module.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"model file {path} is a folder, not a file")
    if not path.is_file():
        raise ValueError(f"model file {path} does not exist")
    if is_model_file(path):
        return read_model(path)
    if zipfile.is_zipfile(path):
        check_zip(path, "model file")  # torch reads damaged tensor bytes without a word
    if is_torchscript(path):
        if not trust_torchscript:
            raise ValueError(
                f"model file {path} is TorchScript: loading it runs code the "
                f"file carries. If you trust its source, pass "
                f"--trust-torchscript (trust_torchscript=True); or save the "
                f"model without code with annealq.save_model(model, path)"
            )
        return read_torchscript(path, example)
    model = torch_load(path, trust_pickle)
    if not isinstance(model, torch.nn.Module):
        hint = (
            " (a state_dict does not record the architecture: save the model with "
            "annealq.save_model(model, path))"
            if isinstance(model, dict)
            else ""
        )
        raise ValueError(
            f"model file {path} holds a {type(model).__name__}, not a torch.nn.Module{hint}"
        )
    return model.eval()


def model_fingerprint(model) -> str:
    """The first 16 hex digits of the SHA-256 of a model's parameters and buffers (names
    and bytes, in ``state_dict`` order): two trainings that differ in any bit differ here.

    Example:
        >>> len(model_fingerprint(nn.Linear(3, 2)))
        16
    """
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def data_digest(dataset) -> str:
    """The first 12 hex digits of the SHA-256 of a dataset's training arrays (images and
    labels): a reference model is cached under it, so a folder holding other data of the
    same size never reuses a model trained on different images.

    Example:
        >>> from annealq.data.datasets import load_digits
        >>> len(data_digest(load_digits()))
        12
    """
    digest = hashlib.sha256()
    for array in (dataset.x_train, dataset.y_train):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}:{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()[:12]


def accuracy(model, x: np.ndarray, y: np.ndarray, *, batch_size: int = 4096) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``."""
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(torch.as_tensor(x[start : start + batch_size], dtype=dtype))
            correct += int((logits.argmax(dim=1).numpy() == y[start : start + batch_size]).sum())
    return correct / len(x)


def describe(model) -> str:
    """``MLP 784-128-10``: the in/out sizes of the model's ``nn.Linear`` layers, in order;
    ``CNN conv 3-32-64 linear 4096-10`` with ``nn.Conv2d`` layers (their channels)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if any(isinstance(m, nn.Embedding) for m in model.modules()):  # a token model
        parameters = sum(p.numel() for p in model.parameters())
        return f"{type(model).__name__}, {len(linears)} nn.Linear, {parameters:,} parameters"
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    dense = (
        "-".join(str(n) for n in [linears[0].in_features, *(m.out_features for m in linears)])
        if linears
        else ""
    )
    if convs:
        channels = "-".join(
            str(n) for n in [convs[0].in_channels, *(m.out_channels for m in convs)]
        )
        return f"CNN conv {channels}" + (f" linear {dense}" if dense else "")
    return f"MLP {dense}" if dense else type(model).__name__


def _train(x, y, hidden, epochs, batch_size, lr, seed, n_classes):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = build_mlp(x.shape[1], hidden, n_classes or int(y.max()) + 1)
    inputs, targets = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    # a bar on a terminal only (disable=None): training a reference model takes a while
    for _ in tqdm(
        range(epochs), desc="training the reference MLP", unit="epoch", disable=None, leave=False
    ):
        for batch in torch.randperm(len(inputs), generator=generator).split(batch_size):
            optimizer.zero_grad()
            loss_fn(model(inputs[batch]), targets[batch]).backward()
            optimizer.step()
    return model.eval()


def _reference_path(dataset, config: ReferenceConfig, seed: int, models_dir) -> Path:
    arch = "-".join(str(n) for n in (dataset.n_features, *config.hidden, dataset.n_classes))
    name = (
        f"{dataset.name}-mlp{arch}-e{config.epochs}-b{config.batch_size}-lr{config.lr:g}"
        f"-d{data_digest(dataset)}-seed{seed}-v{_CACHE_VERSION}.pt"
    )
    return models_folder(models_dir) / name
