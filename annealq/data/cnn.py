"""Reference CNNs: a tiny one for the 8×8 digits (tests in seconds) and a small VGG-style
one for CIFAR-10, trained reproducibly with a fixed seed and cached like the MLPs.

The datasets hold images flattened to ``(N, features)`` (CIFAR-10 in height, width,
channel order), so every CNN starts with :class:`Images`, which turns those rows back
into ``(N, C, H, W)`` tensors; the rest is standard ``torch.nn``: ``Conv2d → BatchNorm2d →
ReLU`` blocks with max pooling, then ``Flatten → Linear``. annealq folds each BatchNorm
into its conv before quantizing (:mod:`annealq.fold`).

Example:
    >>> model = build_cnn("digits")
    >>> [type(m).__name__ for m in model][:4]
    ['Images', 'Conv2d', 'BatchNorm2d', 'ReLU']
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from annealq.data.models import data_digest, models_folder
from annealq.files import atomic_write

log = logging.getLogger(__name__)

_CACHE_VERSION = 1


class Images(nn.Module):
    """Rows of ``H·W·C`` values (``channels_last``) or ``C·H·W`` values → ``(N, C, H, W)``."""

    def __init__(self, channels: int, height: int, width: int, channels_last: bool = False):
        super().__init__()
        self.channels, self.height, self.width = channels, height, width
        self.channels_last = channels_last

    def forward(self, x):
        if self.channels_last:
            x = x.reshape(len(x), self.height, self.width, self.channels)
            return x.permute(0, 3, 1, 2)
        return x.reshape(len(x), self.channels, self.height, self.width)

    def extra_repr(self) -> str:
        order = "HWC" if self.channels_last else "CHW"
        return f"{self.channels}x{self.height}x{self.width}, rows in {order} order"


@dataclass(frozen=True)
class CNNConfig:
    """A CNN and how it is trained (Adam, cross-entropy, a step decay of the learning rate).

    Attributes:
        shape: ``(channels, height, width)`` of one image, ``channels_last`` rows.
        blocks: per block the output channels; a block is ``Conv2d(3×3, padding 1) →
            BatchNorm2d → ReLU``, followed by a 2×2 max pool where ``pool`` says so.
        pool: per block, whether a max pool follows it.
        epochs, batch_size, lr: training.
        flip: random horizontal flips while training (CIFAR-10).
    """

    shape: tuple[int, int, int]
    channels_last: bool
    blocks: tuple[int, ...]
    pool: tuple[bool, ...]
    epochs: int
    batch_size: int = 128
    lr: float = 1e-3
    flip: bool = False


REFERENCE_CNNS = {
    "digits": CNNConfig((1, 8, 8), False, (8, 16), (False, True), epochs=8, batch_size=64),
    "cifar10": CNNConfig(
        (3, 32, 32), True, (32, 64, 128), (True, True, True), epochs=10, flip=True
    ),
}


def build_cnn(dataset_name: str, n_classes: int = 10, config: CNNConfig | None = None):
    """The reference CNN of ``dataset_name`` (untrained)."""
    config = config or REFERENCE_CNNS[dataset_name]
    channels, height, width = config.shape
    layers: list = [Images(channels, height, width, config.channels_last)]
    for out, pool in zip(config.blocks, config.pool):
        layers += [
            nn.Conv2d(channels, out, 3, padding=1, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU(),
        ]
        if pool:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        channels = out
    layers += [nn.Flatten(), nn.Linear(channels * height * width, n_classes)]
    return nn.Sequential(*layers)


def reference_cnn(dataset, *, seed: int = 0, models_dir=None, retrain: bool = False):
    """The reference CNN of ``dataset`` (``digits`` or ``cifar10``), trained once and cached.

    Returns:
        ``(model, path of the cached file)``.

    Raises:
        ValueError: a dataset without a reference CNN.
    """
    if dataset.name not in REFERENCE_CNNS:
        raise ValueError(
            f"no reference CNN for dataset {dataset.name!r}; CNNs exist for "
            f"{', '.join(REFERENCE_CNNS)}"
        )
    config = REFERENCE_CNNS[dataset.name]
    path = models_folder(models_dir) / (
        f"{dataset.name}-{config_tag(config)}"
        f"-d{data_digest(dataset)}-seed{seed}"
        f"-v{_CACHE_VERSION}.pt"
    )
    if path.is_file() and not retrain:
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            model = build_cnn(dataset.name, dataset.n_classes, config)
            model.load_state_dict(stored["state_dict"])
            return model.eval(), path
        except Exception as exc:  # a damaged cache file is trained again
            log.warning("retraining: cannot read cached model %s (%s)", path, exc)
    log.info("training the %s reference CNN (%s, seed %d)", dataset.name, config, seed)
    model = train_cnn(dataset, seed=seed, config=config)
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


def train_cnn(dataset, *, seed: int = 0, config: CNNConfig | None = None, threads: int = 1):
    """Train the reference CNN of ``dataset`` with ``seed``; same seed, same weights.

    Training runs on ``threads`` threads (1 by default: one fixed reduction order, so the
    weights do not depend on the machine's load).
    """
    config = config or REFERENCE_CNNS[dataset.name]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        model = build_cnn(dataset.name, dataset.n_classes, config)
        inputs = Images(*config.shape, config.channels_last)(
            torch.as_tensor(dataset.x_train, dtype=torch.float32)
        ).contiguous()
        targets = torch.as_tensor(dataset.y_train)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        # the learning rate drops tenfold for the last quarter of the epochs
        schedule = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, [max(1, (3 * config.epochs) // 4)], gamma=0.1
        )
        loss_fn = nn.CrossEntropyLoss()
        body = model[1:]  # the batches are already images
        for epoch in tqdm(
            range(config.epochs),
            desc="training the reference CNN",
            unit="epoch",
            disable=None,
            leave=False,
        ):
            model.train()
            for batch in torch.randperm(len(inputs), generator=generator).split(config.batch_size):
                x = inputs[batch]
                if config.flip:
                    flip = torch.rand(len(x), generator=generator) < 0.5
                    x = torch.where(flip[:, None, None, None], x.flip(3), x)
                optimizer.zero_grad()
                loss_fn(body(x), targets[batch]).backward()
                optimizer.step()
            schedule.step()
            log.info("%s CNN epoch %d/%d done", dataset.name, epoch + 1, config.epochs)
        return model.eval()
    finally:
        torch.set_num_threads(before)


def config_tag(config: CNNConfig) -> str:
    """A file-name tag of a CNN's architecture and training."""
    blocks = "-".join(f"{c}{'p' if p else ''}" for c, p in zip(config.blocks, config.pool))
    return (
        f"cnn{blocks}-e{config.epochs}-b{config.batch_size}-lr{config.lr:g}"
        f"{'-flip' if config.flip else ''}"
    )
