"""A reference causal language model: a small decoder-only transformer over bytes, trained
reproducibly with a fixed seed on one thread and cached like the MLPs.

Pre-norm blocks (``x + attention(LayerNorm(x))``, then ``x + MLP(LayerNorm(x))``); the
attention has separate ``nn.Linear`` q, k, v and output projections, the MLP is
``Linear → GELU → Linear``; learned position embeddings; the output head is tied to the
byte embedding. Its ``nn.Linear`` layers are the ones annealq quantizes: six per block.

Example:
    >>> model = build_lm(LMConfig(width=16, blocks=1, heads=2, context=8, steps=1))
    >>> model(torch.zeros(2, 8, dtype=torch.long)).shape
    torch.Size([2, 8, 256])
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from annealq.data.models import models_folder
from annealq.files import atomic_write

log = logging.getLogger(__name__)

_CACHE_VERSION = 1


@dataclass(frozen=True)
class LMConfig:
    """A causal LM and how it is trained (AdamW, linear warm-up then cosine decay)."""

    width: int = 128
    blocks: int = 4
    heads: int = 4
    context: int = 256
    vocabulary: int = 256
    steps: int = 800
    batch_size: int = 12
    lr: float = 3e-3
    warmup: int = 40


REFERENCE_LMS = {"pystdlib": LMConfig()}


class Block(nn.Module):
    """A pre-norm transformer block with causal self-attention and a GELU MLP."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.q, self.k, self.v = (nn.Linear(width, width) for _ in range(3))
        self.o = nn.Linear(width, width)
        self.up, self.down = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, x):
        n, t, d = x.shape
        h = self.norm1(x)
        q, k, v = (
            p(h).reshape(n, t, self.heads, d // self.heads).transpose(1, 2)
            for p in (self.q, self.k, self.v)
        )
        attention = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o(attention.transpose(1, 2).reshape(n, t, d))
        return x + self.down(F.gelu(self.up(self.norm2(x))))


class CausalLM(nn.Module):
    """Token ids ``(N, T)`` → next-token logits ``(N, T, vocabulary)``."""

    def __init__(self, config: LMConfig):
        super().__init__()
        self.embed = nn.Embedding(config.vocabulary, config.width)
        self.position = nn.Embedding(config.context, config.width)
        self.blocks = nn.ModuleList(Block(config.width, config.heads) for _ in range(config.blocks))
        self.norm = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, config.vocabulary, bias=False)
        self.head.weight = self.embed.weight  # tied

    def forward(self, tokens):
        x = self.embed(tokens) + self.position(torch.arange(tokens.shape[1], device=tokens.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def build_lm(config: LMConfig) -> CausalLM:
    """The reference LM of ``config`` (untrained, initialised from torch's current seed)."""
    model = CausalLM(config)
    for name, parameter in model.named_parameters():
        if name.endswith("weight") and parameter.ndim == 2:
            nn.init.normal_(parameter, std=0.02)
        elif name.endswith("bias"):
            nn.init.zeros_(parameter)
    return model


def reference_lm(
    dataset,
    *,
    seed: int = 0,
    models_dir=None,
    retrain: bool = False,
    config: LMConfig | None = None,
):
    """The reference LM of ``dataset`` (a :class:`~annealq.data.text.TextDataset`), trained
    the first time (with a progress bar on a terminal) and then read from the cache.

    Returns:
        ``(model, path of the cached file)``.
    """
    config = config or REFERENCE_LMS.get(dataset.name, LMConfig())
    tag = (
        f"lm-w{config.width}-b{config.blocks}-h{config.heads}-c{config.context}"
        f"-s{config.steps}-bs{config.batch_size}-lr{config.lr:g}"
    )
    path = models_folder(models_dir) / (
        f"{dataset.name}-{tag}-n{len(dataset.train)}-seed{seed}-v{_CACHE_VERSION}.pt"
    )
    if path.is_file() and not retrain:
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            model = CausalLM(config)
            model.load_state_dict(stored["state_dict"])
            return model.eval(), path
        except Exception as exc:  # a damaged cache file is trained again
            log.warning("retraining: cannot read cached model %s (%s)", path, exc)
    log.info("training the %s reference LM (%s, seed %d)", dataset.name, config, seed)
    model = train_lm(dataset.train, config, seed=seed)
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


def train_lm(
    data: np.ndarray, config: LMConfig, *, seed: int = 0, threads: int = 1, quiet: bool = False
) -> CausalLM:
    """Train on random windows of the bytes ``data``; same seed, same weights (one thread:
    one fixed reduction order whatever the machine's load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        model = build_lm(config).train()
        tokens = torch.as_tensor(data.astype(np.int64))
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=0.1, betas=(0.9, 0.95)
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: min(
                (step + 1) / config.warmup, 0.5 * (1 + math.cos(math.pi * step / config.steps))
            ),
        )
        offsets = torch.arange(config.context + 1)
        with tqdm(
            range(config.steps),
            desc="training the reference LM",
            unit="step",
            disable=True if quiet else None,
        ) as bar:
            for step in bar:
                starts = torch.randint(
                    len(tokens) - config.context - 1, (config.batch_size, 1), generator=generator
                )
                batch = tokens[starts + offsets]
                logits = model(batch[:, :-1])
                loss = F.cross_entropy(
                    logits.reshape(-1, config.vocabulary), batch[:, 1:].reshape(-1)
                )
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                bar.set_postfix_str(f"loss {loss.item():.3f}")
                if (step + 1) % 100 == 0:  # for logs, where the bar is not shown
                    log.info("step %d/%d: loss %.3f", step + 1, config.steps, loss.item())
        return model.eval()
    finally:
        torch.set_num_threads(before)
