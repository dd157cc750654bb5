"""Reference MLPs, trained reproducibly with a fixed seed."""

from __future__ import annotations

import numpy as np


def build_mlp(in_features: int, hidden: tuple[int, ...], n_classes: int):
    """``Flatten → (Linear → ReLU)* → Linear``."""
    from torch import nn

    layers: list = [nn.Flatten()]
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def train_mlp(x: np.ndarray, y: np.ndarray, *, hidden: tuple[int, ...] = (64,), epochs: int = 30,
              batch_size: int = 64, lr: float = 1e-3, seed: int = 0):
    """Train an MLP classifier with Adam on ``(x, y)``; same seed, same model."""
    import torch

    threads = torch.get_num_threads()
    # One thread: reductions then run in one fixed order, so the same seed gives the same
    # weights bit for bit whatever the machine's load (multi-threaded kernels may not).
    torch.set_num_threads(1)
    try:
        return _train(x, y, hidden, epochs, batch_size, lr, seed)
    finally:
        torch.set_num_threads(threads)


def _train(x, y, hidden, epochs, batch_size, lr, seed):
    import torch

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = build_mlp(x.shape[1], hidden, int(y.max()) + 1)
    inputs, targets = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(inputs), generator=generator).split(batch_size):
            optimizer.zero_grad()
            loss_fn(model(inputs[batch]), targets[batch]).backward()
            optimizer.step()
    return model.eval()


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``."""
    import torch

    with torch.no_grad():
        logits = model(torch.as_tensor(x, dtype=torch.float32))
    return float((logits.argmax(dim=1).numpy() == y).mean())
