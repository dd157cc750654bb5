"""AdaRound (Nagel et al. 2020) on the QUBO's objective: a continuous relaxation of each
weight's down/up choice, optimised by gradient descent on the layer's Gram form with a
regulariser that pushes every choice to 0 or 1.
"""

from __future__ import annotations

import numbers

import numpy as np

from annealq.baselines.common import _float_input_terms
from annealq.formulation import LayerQUBO, formulate_layer

# AdaRound's rectified sigmoid stretches sigmoid(V) to (γ, ζ) and clips it to [0, 1], so that
# h(V) reaches exactly 0 and 1 with a non-vanishing gradient near them (Nagel et al. 2020).
ZETA, GAMMA = 1.1, -0.1


def adaround_layer(
    weight,
    bias,
    inputs,
    *,
    bits: int,
    float_inputs=None,
    iterations: int = 3000,
    reg_weight: float = 0.01,
    beta=(20.0, 2.0),
    warmup: float = 0.2,
    lr: float = 0.05,
    seed: int = 0,
    **scheme_options,
) -> tuple[np.ndarray, np.ndarray]:
    """AdaRound (Nagel et al. 2020) on the QUBO's objective, grid and calibration set.

    What it does, exactly:

    * **Variables.** Each entry the QUBO leaves free (both ``⌊v/s⌋`` and ``⌊v/s⌋ + 1`` on
      the grid; the bias included, on its own grid) gets a real ``V``; its relaxed value is
      ``s (⌊v/s⌋ + h(V))`` with the rectified sigmoid
      ``h(V) = clip(sigmoid(V)(ζ − γ) + γ, 0, 1)``, ``ζ = 1.1``, ``γ = −0.1``, started so
      that ``h(V)`` equals the fractional part ``v/s − ⌊v/s⌋``. Entries the QUBO fixes
      (clipping) keep their one admissible value. The rounding is down/up from the float
      weights, the QUBO's search space, also when ``X`` differs from ``X̂``.
    * **Loss.** ``E / m + reg_weight · Σ (1 − |2h − 1|^β)`` over the free entries: ``E`` the
      layer's squared output error on the calibration set, in the Gram form of the
      module docstring (``m`` samples; one ``(n, f+1) × (f+1, f+1)`` product per step).
      For the first ``warmup`` fraction of the iterations the regulariser is off; then
      ``β`` decays linearly from ``beta[0]`` to ``beta[1]`` (the paper's schedule, as in
      its reference implementations).
    * **Optimisation.** Full-batch Adam (learning rate ``lr``) on ``V`` for ``iterations``
      steps, float32 torch on CPU, the gradient written out analytically
      (``∂E/∂δ = 2(Gδ − p)``), which is exact and needs one matrix product per step.
    * **Result.** Hard rounding ``⌊v/s⌋ + [h(V) ≥ 0.5]``: always on the grid.

    Nothing here is random (full batch, deterministic start), so ``seed`` — accepted for a
    signature uniform with the other methods — does not change the result.

    Args:
        weight, bias, inputs, bits, float_inputs, **scheme_options: as in
            :func:`gptq_layer`.
        iterations: Adam steps (>= 1).
        reg_weight: the weight ``λ`` of the rounding regulariser (>= 0).
        beta: ``(start, end)`` of the annealed exponent ``β``.
        warmup: the fraction of the iterations without the regulariser, in ``[0, 1)``.
        lr: Adam's learning rate on ``V``.
        seed: unused by the computation (see above).

    Returns:
        ``(int_weight (n, f) int64, int_bias (n,) int64)``, as :func:`gptq_layer`.

    Raises:
        ValueError: a bad hyper-parameter, or anything ``formulate_layer`` rejects.

    Example:
        >>> import numpy as np
        >>> W, X = np.array([[0.3, -0.8, 0.5]]), np.random.default_rng(1).random((20, 3))
        >>> q, q_b = adaround_layer(W, np.array([0.1]), X, bits=2, iterations=50)
        >>> q.shape, q_b.shape
        ((1, 3), (1,))
    """
    import torch

    _validate_adaround(iterations, reg_weight, beta, warmup, lr, seed)
    lq = formulate_layer(
        weight, bias, inputs, bits=bits, float_inputs=float_inputs, **scheme_options
    )
    p = np.zeros_like(lq.values)
    if float_inputs is not None:
        p, _ = _float_input_terms(lq, inputs, float_inputs)
    threads = torch.get_num_threads()
    # One thread: on a busy 2-core machine two threads ran this loop 3–10× slower (each
    # step is a few small kernels that synchronise), and one fixed reduction order keeps
    # the result bit for bit the same from run to run.
    torch.set_num_threads(1)
    try:
        up = _adaround_up(
            lq, p, iterations=iterations, reg_weight=reg_weight, beta=beta, warmup=warmup, lr=lr
        )
    finally:
        torch.set_num_threads(threads)
    Q = lq.base + (lq.free & up)
    return Q[:, :-1], Q[:, -1].copy()


def _adaround_up(lq: LayerQUBO, p, *, iterations, reg_weight, beta, warmup, lr) -> np.ndarray:
    """AdaRound's optimisation: bool ``(n, f+1)``, which entries round up (free ones only)."""
    import torch

    m = lq.gram[-1, -1]  # Â's all-ones column: its squared norm is the number of samples
    free = torch.from_numpy(lq.free)
    scales = torch.from_numpy(lq.entry_steps).float()
    G = torch.from_numpy(lq.gram).float()
    p = torch.from_numpy(p).float()
    floor = torch.from_numpy(np.floor(lq.values / lq.entry_steps))
    fraction = (torch.from_numpy(lq.values / lq.entry_steps) - floor).float()
    # δ at h = 0: the all-down rounding error (the fixed value's error where not free).
    delta_down = torch.from_numpy(lq.base * lq.entry_steps - lq.values).float()

    V = (-torch.log((ZETA - GAMMA) / (fraction - GAMMA) - 1.0)).requires_grad_()
    optimizer = torch.optim.Adam([V], lr=lr)
    start_reg = int(warmup * iterations)
    for t in range(iterations):
        sig = torch.sigmoid(V.detach())
        stretched = sig * (ZETA - GAMMA) + GAMMA
        h = stretched.clamp(0.0, 1.0)
        delta = delta_down + torch.where(free, scales * h, 0.0)
        grad_h = (2.0 / m) * (delta @ G - p) * scales
        if t >= start_reg:
            b = _beta(t, start_reg, iterations, beta)
            centred = 2.0 * h - 1.0
            grad_h -= reg_weight * b * 2.0 * centred.abs().pow(b - 1.0) * centred.sign()
        inside = (stretched > 0.0) & (stretched < 1.0) & free
        V.grad = torch.where(inside, grad_h * sig * (1.0 - sig) * (ZETA - GAMMA), 0.0)
        optimizer.step()
    with torch.no_grad():
        h = (torch.sigmoid(V) * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)
    return (h >= 0.5).numpy()


def _beta(t: int, start: int, iterations: int, beta) -> float:
    """β at step ``t``: linear from ``beta[0]`` (at ``start``) to ``beta[1]`` (at the end)."""
    progress = (t - start) / max(iterations - start, 1)
    return float(beta[1] + (beta[0] - beta[1]) * (1.0 - progress))


def _validate_adaround(iterations, reg_weight, beta, warmup, lr, seed) -> None:
    if (
        isinstance(iterations, bool)
        or not isinstance(iterations, numbers.Integral)
        or iterations < 1
    ):
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    if not isinstance(reg_weight, numbers.Real) or not np.isfinite(reg_weight) or reg_weight < 0:
        raise ValueError(f"reg_weight must be a finite number >= 0, got {reg_weight!r}")
    try:
        start, end = (float(x) for x in beta)
    except (TypeError, ValueError):
        raise ValueError(f"beta must be a pair (start, end) of numbers, got {beta!r}") from None
    if not (np.isfinite(start) and np.isfinite(end) and start >= end >= 1):
        raise ValueError(f"beta must decay: start >= end >= 1, got {beta!r}")
    if not isinstance(warmup, numbers.Real) or not 0 <= warmup < 1:
        raise ValueError(f"warmup must be a fraction in [0, 1), got {warmup!r}")
    if not isinstance(lr, numbers.Real) or not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")
