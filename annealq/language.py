"""Evaluating a causal language model as the literature does, and against its float self.

The held-out tokens come as windows ``(W, T)`` (a test split cut into non-overlapping
windows of the context length, :meth:`~annealq.data.text.TextDataset.windows`); every model
is scored on the same windows. Each window predicts its tokens 2..T from the ones before:

* perplexity ``exp(mean NLL)`` and bits per token ``mean NLL / ln 2`` (bits per byte for
  a byte-level model), with a 95 % interval over windows;
* beside the float model: the KL divergence ``KL(float ‖ model)`` of the next-token
  distributions and top-1 agreement (the same most likely next token), averaged over
  positions, each with its 95 % interval over windows, and the interval of the perplexity
  ratio to float from the windows' paired NLL differences (it says whether an increase is
  real).

A model's output is its logits ``(N, T, vocabulary)`` (or a tuple, or an object with
``.logits``, whose first element / attribute they are).

Example:
    >>> import numpy as np, torch
    >>> from annealq.data.transformer import LMConfig, build_lm
    >>> torch.manual_seed(0) and None
    >>> model = build_lm(LMConfig(width=16, blocks=1, heads=2, context=8)).eval()
    >>> windows = np.random.default_rng(0).integers(0, 256, size=(6, 8))
    >>> metrics = language_metrics(model, {"same": model}, windows)
    >>> metrics["same"]["kl"], metrics["same"]["top1"]
    (0.0, 1.0)
    >>> 200 < metrics["float"]["perplexity"] < 320  # about 256: an untrained model
    True
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

Z = 1.959964  # the two-sided 95 % normal quantile


def language_metrics(float_model, models: dict, windows, *, batch_size: int = 32) -> dict:
    """Perplexity, bits per token, KL to ``float_model`` and top-1 agreement of each of
    ``models`` (name → module) on the token ``windows`` ``(W, T)``."""
    windows = torch.as_tensor(np.asarray(windows, dtype=np.int64))
    nll = {name: [] for name in ("float", *models)}
    kl = {name: [] for name in models}
    agree = {name: [] for name in models}
    with torch.no_grad():
        for batch in windows.split(batch_size):
            targets = batch[:, 1:]
            reference = _log_probs(float_model, batch)
            nll["float"].append(_nll(reference, targets))
            for name, model in models.items():
                log_probs = _log_probs(model, batch)
                nll[name].append(_nll(log_probs, targets))
                kl[name].append((reference.exp() * (reference - log_probs)).sum(-1).mean(-1))
                agree[name].append((reference.argmax(-1) == log_probs.argmax(-1)).double().mean(-1))
    per_window = {name: torch.cat(values).double().numpy() for name, values in nll.items()}
    report = {
        "windows": int(windows.shape[0]),
        "context": int(windows.shape[1]),
        "predicted_tokens": int(windows.shape[0] * (windows.shape[1] - 1)),
        "float": _perplexity(per_window["float"]),
    }
    for name in models:
        difference = per_window[name] - per_window["float"]
        mean, half = _interval(difference)
        report[name] = {
            **_perplexity(per_window[name]),
            **_mean("kl", torch.cat(kl[name]).double().numpy()),
            **_mean("top1", torch.cat(agree[name]).double().numpy()),
            "perplexity_ratio": math.exp(mean),
            "perplexity_ratio_interval": [math.exp(mean - half), math.exp(mean + half)],
        }
    return report


def logits_of(output):
    """The logits in a model's output: the tensor, a tuple's first, or ``.logits``."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    return getattr(output, "logits", output)


def _log_probs(model, batch):
    return F.log_softmax(logits_of(model(batch))[:, :-1].double(), dim=-1)


def _nll(log_probs, targets):
    """Each window's mean negative log-likelihood of its targets."""
    return -log_probs.gather(-1, targets[..., None])[..., 0].mean(-1)


def _perplexity(nll: np.ndarray) -> dict:
    mean, half = _interval(nll)
    return {
        "nll": mean,
        "perplexity": math.exp(mean),
        "perplexity_interval": [math.exp(mean - half), math.exp(mean + half)],
        "bits_per_token": mean / math.log(2),
    }


def _mean(name: str, values: np.ndarray) -> dict:
    mean, half = _interval(values)
    return {name: mean, f"{name}_interval": [mean - half, mean + half]}


def _interval(values: np.ndarray) -> tuple[float, float]:
    """The mean and the half-width of its 95 % normal interval over windows."""
    spread = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return float(values.mean()), Z * spread / math.sqrt(len(values))
