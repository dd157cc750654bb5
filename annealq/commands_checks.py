"""The checks :mod:`annealq.commands` makes before any work: the cache argument of
``--cache``/``--no-cache``, the files a run reads (which no output may replace), the
calibration size against the training split, and whether a model fits its dataset.
"""

from __future__ import annotations

import logging

import torch

from annealq.cache import default_cache_path
from annealq.data.datasets import dataset_files
from annealq.report import calibration_warning

log = logging.getLogger("annealq.commands")


def cache_argument(args):
    """The ``cache=`` argument of the API for ``--cache``/``--no-cache``."""
    return False if getattr(args, "no_cache", False) else args.cache


def inputs_of(args, dataset: str | None) -> list:
    """What a run reads, so that no output replaces it: the model, the cache (and its
    journal files) and the dataset's files (``None``: a text corpus, checked by its
    loader)."""
    inputs = [("the --model file", getattr(args, "model", None))]
    cache = cache_argument(args) if hasattr(args, "cache") else False
    if cache is not False and args.method == "qubo":
        cache = cache or default_cache_path()
        inputs += [
            ("the cache file", f"{cache}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")
        ]
    if dataset is not None:
        inputs += [
            ("a dataset file", path) for path in dataset_files(dataset, data_dir=args.data_dir)
        ]
    return inputs


def check_calibration(size: int, data) -> None:
    """An error for more calibration inputs than the training split holds; a warning for
    a very small calibration set (the report records it too)."""
    if size > len(data.x_train):
        raise ValueError(
            f"--calibration {size} is larger than the training split of "
            f"{data.name} ({len(data.x_train)} images); pass at most "
            f"{len(data.x_train)}"
        )
    warning = calibration_warning(size)
    if warning:
        log.warning("%s", warning)


def check_model_fits(model, data, origin) -> None:
    """The model runs on the dataset's inputs and gives one output per class."""
    if not any(isinstance(m, torch.nn.Linear) for m in model.modules()):
        return  # quantize() says there is nothing to quantize
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    x = torch.as_tensor(data.x_test[:2], dtype=dtype)
    try:
        with torch.no_grad():
            out = model.eval()(x)
    except Exception as exc:  # a model's forward raises anything
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(
            f"model ({origin}) cannot run on {data.name}'s inputs of shape "
            f"{tuple(x.shape[1:])}: {first}"
        ) from None
    width = out.shape[1] if isinstance(out, torch.Tensor) and out.ndim == 2 else None
    if width != data.n_classes:
        got = (
            f"{width} outputs"
            if width is not None
            else (f"outputs of shape {tuple(getattr(out, 'shape', ()))}")
        )
        raise ValueError(
            f"model ({origin}) gives {got} per input, but {data.name} has "
            f"{data.n_classes} classes: it was not trained on this dataset"
        )
