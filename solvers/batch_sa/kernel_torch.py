"""The torch kernel of ``batch-sa``, for a CUDA GPU (it also runs on a CPU, slowly).

The same algorithm as the numba kernel — greedy descent, Metropolis sweeps over the
variables in order with incremental fields, greedy descent — vectorised over problems:
each step proposes flipping variable ``k`` in every problem at once; problems that reject
add a zero update, so no step needs the host. Random numbers come from a seeded
``torch.Generator`` on the device, so streams differ from the CPU kernel's.
"""

from __future__ import annotations

import logging

import numpy as np

from solvers.batch_sa.form import keep_better, schedule, temperature_scale

log = logging.getLogger(__name__)


def run(form, starts: np.ndarray, who: np.ndarray, options, streams=None) -> np.ndarray:
    # one generator for the batch: unlike the CPU kernel, results depend on which neurons
    # share the call (``streams`` is not used)
    import torch

    device = torch.device(options.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {options.device!r} requested but torch sees no CUDA GPU")
    as_tensor = lambda a, dtype=torch.float64: torch.as_tensor(
        np.asarray(a), dtype=dtype, device=device
    )
    who_t = as_tensor(who, torch.long)
    H = as_tensor(form.H)
    d, h, qd = (
        as_tensor(form.scales)[who_t],
        as_tensor(form.linear)[who_t],
        as_tensor(form.qdiag)[who_t],
    )
    free = as_tensor(form.free, torch.bool)[who_t]
    U = as_tensor(starts[who])
    G = d * ((d * U) @ H)
    _descend(H, d, h, free, qd, U, G)
    temperatures = schedule(options)
    if len(temperatures):
        start = U.to(torch.int8).cpu().numpy()
        scale = temperature_scale(form, start, who, G.cpu().numpy())
        generator = torch.Generator(device=device).manual_seed(int(options.seed))
        inverse_scale = as_tensor(1.0 / scale)
        sweep = _graphed_sweep(H, d, h, free, qd, U, G) if device.type == "cuda" else None
        for t in temperatures:
            threshold = torch.log(
                torch.rand((H.shape[0], len(U)), generator=generator, device=device, dtype=U.dtype)
            )
            if sweep is not None:
                sweep(inverse_scale / t, threshold)
            else:
                _sweep(H, d, h, free, qd, U, G, inverse_scale / t, threshold)
        _descend(H, d, h, free, qd, U, G)
        return keep_better(form, who, start, U.to(torch.int8).cpu().numpy())
    return U.to(torch.int8).cpu().numpy()


def _delta(h, qd, U, G):
    return (1 - 2 * U) * (h + 2 * (G - qd * U))


def _flip(H, d, U, G, rows, k):
    import torch

    sign = 1 - 2 * U[rows, k]
    U[rows, k] += sign
    if torch.is_tensor(k) and k.ndim:
        G[rows] += d[rows] * H[k] * (d[rows, k] * sign)[:, None]
    else:
        G[rows] += d[rows] * H[k][None, :] * (d[rows, k] * sign)[:, None]


def _sweep(H, d, h, free, qd, U, G, beta, threshold):
    """One sweep. No step waits on the host: every problem's fields get a (masked)
    update at every step, which a GPU does in one pass, so kernels queue back to back.
    ``threshold[k]`` holds log-uniform draws: a move is accepted when −βΔE exceeds it."""
    for k in range(H.shape[0]):
        delta = _delta(h[:, k], qd[:, k], U[:, k], G[:, k])
        accept = free[:, k] & (-(beta * delta) > threshold[k])
        step = accept * (1 - 2 * U[:, k])  # +1, -1 or 0 per problem
        U[:, k] += step
        G.addcmul_(d, H[k][None, :] * (d[:, k] * step)[:, None])


def _graphed_sweep(H, d, h, free, qd, U, G):
    """The sweep captured once as a CUDA graph and replayed: thousands of small kernels
    per sweep then cost one launch. Falls back to plain launches if capture fails."""
    import torch

    beta = torch.zeros(len(U), dtype=U.dtype, device=U.device)
    threshold = torch.full((H.shape[0], len(U)), float("inf"), dtype=U.dtype, device=U.device)
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up: an infinite threshold accepts nothing
            _sweep(H, d, h, free, qd, U, G, beta, threshold)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            _sweep(H, d, h, free, qd, U, G, beta, threshold)
    except RuntimeError as exc:
        log.warning("CUDA graph capture failed (%s); sweeping without it", exc)
        return None

    def replay(new_beta, new_threshold):
        beta.copy_(new_beta)
        threshold.copy_(new_threshold)
        graph.replay()

    return replay


def _descend(H, d, h, free, qd, U, G):
    import torch

    active = torch.arange(len(U), device=U.device)
    while len(active):
        delta = _delta(h[active], qd[active], U[active], G[active])
        delta[~free[active]] = float("inf")
        best, k = delta.min(dim=1)
        improving = best < -1e-12 * (h[active, k].abs() + 1)
        active, k = active[improving], k[improving]
        if len(active):
            _flip(H, d, U, G, active, k)
