"""Classical baselines on the QUBO's own objective: GPTQ and AdaRound, and the exact error.

Every method here minimises what the QUBO minimises (DESIGN.md §1): for a layer with float
weights ``W (n, f)``, bias ``b``, float inputs ``X`` and quantized-network inputs ``X̂``,

    E(Q, q_b) = ‖X Wᵀ + 1 bᵀ − X̂ (s∘Q)ᵀ − 1 (s_b∘q_b)ᵀ‖²_F

over integer weights on the weight grid and integer biases on the int32 bias grid, the very
grids :func:`~annealq.formulation.formulate_layer` builds (each function calls it with the
same ``bits`` and ``**scheme_options``). With ``Â = [X̂, 1]``, ``G = ÂᵀÂ`` (``lq.gram``), the
float row ``v_i = [w_i, b_i]`` (``lq.values``) and ``δ_i = d_i∘q_i − v_i`` its rounding
error, the error of neuron ``i`` is

    E_i = c_i − 2 δ_i·p_i + δ_iᵀ G δ_i,    p_i = Âᵀ (X − X̂) w_i,   c_i = ‖(X − X̂) w_i‖²

(the bias cancels from ``T − Â v``). When ``X = X̂``, ``p`` and ``c`` vanish and the error is
the quadratic form ``δᵀGδ`` alone. The methods use this Gram form, O(n f²) per evaluation;
:func:`layer_error` evaluates the direct formula, O(m f n), for reports and for checks.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> W, b, X = rng.normal(size=(4, 6)), rng.normal(size=4), rng.normal(size=(50, 6))
    >>> q, q_b = gptq_layer(W, b, X, bits=3)
    >>> lq = formulate_layer(W, b, X, bits=3)
    >>> rtn = lq.rtn_integers()
    >>> gptq = layer_error(lq, q, q_b, inputs=X).sum()
    >>> bool(gptq <= layer_error(lq, rtn[:, :-1], rtn[:, -1], inputs=X).sum())
    True
"""

from __future__ import annotations

import numbers

import numpy as np

from annealq.formulation import LayerQUBO, formulate_layer

# AdaRound's rectified sigmoid stretches sigmoid(V) to (γ, ζ) and clips it to [0, 1], so that
# h(V) reaches exactly 0 and 1 with a non-vanishing gradient near them (Nagel et al. 2020).
ZETA, GAMMA = 1.1, -0.1


def layer_error(lq: LayerQUBO, int_weight, int_bias=None, *, inputs,
                float_inputs=None) -> np.ndarray:
    """The exact squared output error of each neuron under integer weights and bias.

    Direct formula: ``‖X w_i + b_i − X̂ (s_i q_i) − s_b,i q_b,i‖²`` per neuron, with the float
    weights and bias ``lq.values`` and the steps ``lq.entry_steps`` of the layer's formulation.

    Args:
        lq: the layer's formulation (its float values, steps and grids).
        int_weight: ``(n, f)`` integers on ``lq.weight_grid``.
        int_bias: ``(n,)`` integers on ``lq.bias_grid`` (``None`` for a layer without bias).
        inputs: ``X̂ (m, f)``, the inputs ``lq`` was built from.
        float_inputs: ``X (m, f)``, the float network's inputs (defaults to ``inputs``).

    Returns:
        float64 ``(n,)``: neuron ``i``'s squared error summed over the calibration set;
        ``.sum()`` is the layer's error (the report's ``energy``).

    Raises:
        ValueError: shapes that do not match ``lq``, or inputs other than those of ``lq``.
    """
    f = lq.n_inputs
    Q, q_b = _validate_integers(lq, int_weight, int_bias)
    X_hat = _validate_inputs(lq, inputs, "inputs")
    X = X_hat if float_inputs is None else _validate_inputs(lq, float_inputs, "float_inputs",
                                                            check_gram=False)
    W, b = lq.values[:, :f], lq.values[:, f]
    target = X @ W.T + b
    output = X_hat @ (Q * lq.entry_steps[:, :f]).T + q_b * lq.entry_steps[:, f]
    return np.einsum("mi,mi->i", target - output, target - output)


def gptq_layer(weight, bias, inputs, *, bits: int, float_inputs=None, act_order: bool = True,
               damp: float = 0.01, block_size: int = 128,
               **scheme_options) -> tuple[np.ndarray, np.ndarray]:
    """GPTQ (Frantar et al. 2022) on the QUBO's objective, grid and calibration set.

    What it does, exactly:

    1. **Hessian.** ``H = ÂᵀÂ`` with ``Â = [X̂, 1]``: the bias is one more column, quantized on
       its own grid (step ``s_b``, int32 range); a layer without bias uses ``X̂ᵀX̂``. Dead
       inputs (a zero diagonal, an all-zero column of ``X̂``) get ``H_kk = 1``; then
       ``damp · mean(diag H)`` is added to the diagonal, as in the reference code.
    2. **Target.** With ``X = X̂`` the rows ``[w_i, b_i]`` themselves. With separate float
       inputs the float weights no longer minimise the error; the target is the damped
       least-squares re-fit to ``X̂``, ``ṽ_i = v_i + H⁻¹ Âᵀ(X − X̂) w_i`` (``H`` damped: a
       ridge regression centred on the float weights). A dead input keeps its float
       weight: it does not change the error, so it is simply rounded to nearest.
    3. **Order.** With ``act_order`` the columns of ``Â`` go in order of decreasing
       ``H_kk`` (a stable sort; damping shifts every diagonal alike), the bias column
       included: its diagonal is ``m``, so with inputs in ``[0, 1]`` it comes first.
       Without, the order of ``Â``: inputs, then the bias. (On a trained MNIST layer,
       putting the bias last instead gave a 12–16 % higher error at int2–int4.)
    4. **Quantization.** The upper Cholesky factor ``U`` of ``H⁻¹`` (permuted); column by
       column, all ``n`` rows at once, ``q = clip(rint(z / s), q_min, q_max)`` and the
       error ``(z − s q) / U_jj`` is fed into the later columns of the block through
       ``U_j,·``; after each block of ``block_size`` columns one matrix product updates
       the rest (the paper's lazy batch updates). Per-row steps (``per_channel=True``)
       just make ``s`` a column vector. float64 numpy throughout.

    The error is then evaluated exactly (:func:`layer_error`); GPTQ is a greedy method,
    not an optimum: its error is usually well below round-to-nearest's, never guaranteed.

    Args:
        weight: ``(n, f)`` float weights (numpy array or CPU torch tensor).
        bias: ``(n,)`` float bias or ``None``.
        inputs: ``X̂ (m, f)``, what the quantized network feeds this layer.
        bits: weight bit width, 1..8.
        float_inputs: ``X (m, f)``, what the float network feeds it (defaults to ``inputs``).
        act_order: quantize the weight columns in order of decreasing Hessian diagonal.
        damp: the relative diagonal damping (``>= 0``; 0 only for a non-singular ``H``).
        block_size: the columns per lazy batch update (the result does not depend on it,
            up to rounding of floating-point ties).
        **scheme_options: ``scheme``, ``per_channel``, ``bias_step``, ``input_step`` as in
            :func:`~annealq.formulation.formulate_layer`.

    Returns:
        ``(int_weight (n, f) int64, int_bias (n,) int64)``, on the grids of
        ``formulate_layer(weight, bias, inputs, bits=bits, **scheme_options)``; the bias
        is all zeros for a layer without one.

    Raises:
        ValueError: a bad ``damp`` or ``block_size``, a Hessian that is not positive
            definite after damping, or anything ``formulate_layer`` rejects.

    Example:
        >>> import numpy as np
        >>> W, X = np.array([[0.3, -0.8, 0.5]]), np.random.default_rng(1).random((20, 3))
        >>> q, q_b = gptq_layer(W, None, X, bits=2)
        >>> q.shape, q_b.tolist()
        ((1, 3), [0])
    """
    import scipy.linalg  # lazily: it costs ~0.4 s to import

    _validate_gptq(act_order, damp, block_size)
    lq = formulate_layer(weight, bias, inputs, bits=bits, float_inputs=float_inputs,
                         **scheme_options)
    k = lq.n_inputs + 1 if lq.has_bias else lq.n_inputs
    H = lq.gram[:k, :k].copy()
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    H[np.diag_indices(k)] += damp * np.mean(np.diag(H))
    perm = np.argsort(-np.diag(H), kind="stable") if act_order else np.arange(k)
    try:
        factor = scipy.linalg.cho_factor(H)
        H_inv = scipy.linalg.cho_solve(factor, np.eye(k))
        U = np.linalg.cholesky(H_inv[np.ix_(perm, perm)]).T  # H⁻¹ = UᵀU, U upper
    except np.linalg.LinAlgError:
        raise ValueError(f"the Hessian ÂᵀÂ is not positive definite with damp={damp}; "
                         f"use a larger damp") from None

    target = lq.values[:, :k].copy()
    if float_inputs is not None:
        p, _ = _float_input_terms(lq, inputs, float_inputs)
        target += scipy.linalg.cho_solve(factor, p[:, :k].T).T

    lo, hi = _bounds(lq)
    Q = np.empty((lq.n_neurons, k), dtype=np.int64)
    Q[:, perm] = _gptq_columns(target[:, perm], lq.entry_steps[:, perm], lo[perm], hi[perm], U,
                               block_size)
    int_bias = Q[:, lq.n_inputs] if lq.has_bias else np.zeros(lq.n_neurons, dtype=np.int64)
    return Q[:, :lq.n_inputs], int_bias


def adaround_layer(weight, bias, inputs, *, bits: int, float_inputs=None,
                   iterations: int = 3000, reg_weight: float = 0.01, beta=(20.0, 2.0),
                   warmup: float = 0.2, lr: float = 0.05, seed: int = 0,
                   **scheme_options) -> tuple[np.ndarray, np.ndarray]:
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

    Time: with the defaults, the 784→128 first layer of a trained MNIST MLP with 1,000
    calibration images took 11–16 s per call (int2–int4, per tensor or per channel;
    12.8 s at int2 per tensor) on this project's 2-core machine, measured with
    ``time.perf_counter`` around the call (formulation included) while other jobs kept
    the load average at 3–4; about 2.5 ms per iteration when the machine is idle.

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
    lq = formulate_layer(weight, bias, inputs, bits=bits, float_inputs=float_inputs,
                         **scheme_options)
    p = np.zeros_like(lq.values)
    if float_inputs is not None:
        p, _ = _float_input_terms(lq, inputs, float_inputs)
    threads = torch.get_num_threads()
    # One thread: on a busy 2-core machine two threads ran this loop 3–10× slower (each
    # step is a few small kernels that synchronise), and one fixed reduction order keeps
    # the result bit for bit the same from run to run.
    torch.set_num_threads(1)
    try:
        up = _adaround_up(lq, p, iterations=iterations, reg_weight=reg_weight, beta=beta,
                          warmup=warmup, lr=lr)
    finally:
        torch.set_num_threads(threads)
    Q = lq.base + (lq.free & up)
    return Q[:, :-1], Q[:, -1].copy()


def _gptq_columns(Z, S, lo, hi, U, block_size: int) -> np.ndarray:
    """GPTQ's loop on already-permuted columns: integers ``(n, k)``; ``Z`` is overwritten."""
    n, k = Z.shape
    Q = np.empty((n, k), dtype=np.int64)
    for i1 in range(0, k, block_size):
        i2 = min(i1 + block_size, k)
        Z1, U1 = Z[:, i1:i2], U[i1:i2, i1:i2]  # Z1 is a view: updates land in Z
        errors = np.empty((n, i2 - i1))
        for j in range(i2 - i1):
            col = i1 + j
            q = np.clip(np.rint(Z1[:, j] / S[:, col]), lo[col], hi[col])
            Q[:, col] = q
            errors[:, j] = (Z1[:, j] - q * S[:, col]) / U1[j, j]
            Z1[:, j + 1:] -= np.outer(errors[:, j], U1[j, j + 1:])
        Z[:, i2:] -= errors @ U[i1:i2, i2:]
    return Q


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


def _float_input_terms(lq: LayerQUBO, inputs, float_inputs) -> tuple[np.ndarray, np.ndarray]:
    """``p (n, f+1)`` and ``c (n,)`` of the module docstring: what ``X ≠ X̂`` adds."""
    X_hat = _validate_inputs(lq, inputs, "inputs")
    X = _validate_inputs(lq, float_inputs, "float_inputs", check_gram=False)
    D = (X - X_hat) @ lq.values[:, :-1].T  # (m, n): T − Â v, the bias cancels
    p = np.column_stack([(X_hat.T @ D).T, D.sum(axis=0)])
    return p, np.einsum("mi,mi->i", D, D)


def _gram_error(lq: LayerQUBO, int_weight, int_bias, p=None, c=None) -> np.ndarray:
    """Per-neuron error in the Gram form ``c − 2 δ·p + δᵀGδ`` (``p, c`` zero when X = X̂)."""
    Q, q_b = _validate_integers(lq, int_weight, int_bias)
    delta = np.column_stack([Q, q_b]) * lq.entry_steps - lq.values
    error = np.einsum("ik,ik->i", delta @ lq.gram, delta)
    if p is not None:
        error += c - 2.0 * np.einsum("ik,ik->i", delta, p)
    return error


def _bounds(lq: LayerQUBO) -> tuple[np.ndarray, np.ndarray]:
    """Per-column integer bounds ``(f+1,)``: the weight grid's, then the bias grid's."""
    f = lq.n_inputs
    lo = np.array([lq.weight_grid.q_min] * f + [lq.bias_grid.q_min], dtype=np.int64)
    hi = np.array([lq.weight_grid.q_max] * f + [lq.bias_grid.q_max], dtype=np.int64)
    return lo, hi


def _validate_integers(lq: LayerQUBO, int_weight, int_bias):
    n, f = lq.n_neurons, lq.n_inputs
    Q = np.asarray(int_weight)
    if Q.shape != (n, f):
        raise ValueError(f"int_weight must have shape ({n}, {f}) like the layer, "
                         f"got {Q.shape}")
    q_b = np.zeros(n) if int_bias is None else np.asarray(int_bias)
    if q_b.shape != (n,):
        raise ValueError(f"int_bias must have shape ({n},) like the layer, got {q_b.shape}")
    return Q.astype(np.float64), q_b.astype(np.float64)


def _validate_inputs(lq: LayerQUBO, x, name: str, *, check_gram: bool = True) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    array = np.asarray(x, dtype=np.float64)
    m, f = int(round(lq.gram[-1, -1])), lq.n_inputs
    if array.shape != (m, f):
        raise ValueError(f"{name} must have shape ({m}, {f}) like the layer's calibration "
                         f"set, got {array.shape}")
    # Â's all-ones column makes Âᵀ1 = the column sums of X̂: a cheap fingerprint of X̂.
    if check_gram and not np.allclose(array.sum(axis=0), lq.gram[-1, :f], rtol=1e-9,
                                      atol=1e-9 * max(1.0, np.abs(array).max())):
        raise ValueError(f"{name} are not the inputs the layer's formulation was built from")
    return array


def _validate_gptq(act_order, damp, block_size) -> None:
    if not isinstance(act_order, (bool, np.bool_)):
        raise TypeError(f"act_order must be a bool, got {act_order!r}")
    if not isinstance(damp, numbers.Real) or not np.isfinite(damp) or damp < 0:
        raise ValueError(f"damp must be a finite number >= 0, got {damp!r}")
    if isinstance(block_size, bool) or not isinstance(block_size, numbers.Integral) \
            or block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")


def _validate_adaround(iterations, reg_weight, beta, warmup, lr, seed) -> None:
    if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral) \
            or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    if not isinstance(reg_weight, numbers.Real) or not np.isfinite(reg_weight) \
            or reg_weight < 0:
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
