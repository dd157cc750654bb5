"""The exact QUBO of a dense layer's rounding (DESIGN.md §1).

Every weight ``w_ij`` and bias ``b_i`` rounds down or up on its grid:
``q = ⌊w/s⌋ + u`` with ``u ∈ {0, 1}``. For neuron ``i`` with ``Â = [X̂, 1]``, steps
``d_i = (s_i, …, s_i, s_b,i)``, the all-down dequantized row ``ℓ_i`` and the residual
``r_i = T[:, i] − Â ℓ_i``, the squared output error is

    E_i(u) = ‖r_i − Â diag(d_i) u‖² = c_i + Σ_k h_ik u_k + Σ_{j<k} 2 G_i,jk u_j u_k

with ``G_i = (d_i d_iᵀ) ∘ ÂᵀÂ``, ``h_ik = G_i,kk − 2 d_ik (Âᵀ r_i)_k`` and
``c_i = ‖r_i‖²``. This holds for every ``u``, so a BQM's energy *is* the error. All
neurons share the Gram matrix ``ÂᵀÂ``: a layer costs one Gram product and one product
``Âᵀ R`` for every linear term.

A weight whose two candidates are not both on the grid (clipping) has one admissible
value: it is fixed, folded into the residual, and is not a variable.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> W, b, X = rng.normal(size=(3, 4)), rng.normal(size=3), rng.normal(size=(20, 4))
    >>> lq = formulate_layer(W, b, X, bits=2)
    >>> bqm = lq.bqm(0)
    >>> u = lq.rtn_sample(0)
    >>> w_row, bias = lq.dequantize(0, u)
    >>> error = float(np.sum((X @ W[0] + b[0] - X @ w_row - bias) ** 2))
    >>> bool(np.isclose(bqm.energy(u), error, rtol=1e-9))
    True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from annealq.grid import Grid, bias_grid, weight_grid

if TYPE_CHECKING:
    import dimod

BIAS_LABEL = ("b",)


def weight_label(j: int) -> tuple:
    """The variable label of input ``j``'s weight: ``("w", j)``."""
    return ("w", int(j))


@dataclass(frozen=True, eq=False)
class LayerQUBO:
    """The rounding problem of one dense layer, one independent QUBO per output neuron.

    Columns ``0..f-1`` of the per-neuron arrays are the weights, column ``f`` the bias.

    Attributes:
        weight_grid, bias_grid: the grids the integers live on.
        base: int64 ``(n, f+1)``, the round-down integers (the fixed value where clipped).
        free: bool ``(n, f+1)``, which entries are binary variables.
        scales: float ``(n, f+1)``, the step ``d_ik`` of each entry.
        gram: float ``(f+1, f+1)``, ``ÂᵀÂ`` shared by all neurons.
        linear: float ``(n, f+1)``, ``h_ik`` (0 where not free).
        offset: float ``(n,)``, ``c_i``, the error of the all-down assignment.
        values: float ``(n, f+1)``, the float weights and bias being rounded.
        has_bias: whether the layer has a bias (else column ``f`` is fixed at 0).
    """

    weight_grid: Grid
    bias_grid: Grid
    base: np.ndarray
    free: np.ndarray
    scales: np.ndarray
    gram: np.ndarray
    linear: np.ndarray
    offset: np.ndarray
    values: np.ndarray
    has_bias: bool = True

    @property
    def n_neurons(self) -> int:
        return self.base.shape[0]

    @property
    def n_inputs(self) -> int:
        return self.base.shape[1] - 1

    def labels(self) -> list:
        """Labels of all columns: ``("w", 0) … ("w", f-1), ("b",)``."""
        return [weight_label(j) for j in range(self.n_inputs)] + [BIAS_LABEL]

    def variables(self, i: int) -> list:
        """The labels of neuron ``i``'s binary variables (its free entries)."""
        labels = self.labels()
        return [labels[k] for k in np.flatnonzero(self.free[self._index(i)])]

    def quadratic(self, i: int) -> np.ndarray:
        """``G_i`` restricted to neuron ``i``'s free entries (the couplers are ``2 G_jk``)."""
        i = self._index(i)
        cols = np.flatnonzero(self.free[i])
        d = self.scales[i, cols]
        return self.gram[np.ix_(cols, cols)] * np.outer(d, d)

    def bqm(self, i: int) -> "dimod.BinaryQuadraticModel":
        """Neuron ``i``'s QUBO: BINARY, energy equal to its squared output error."""
        import dimod  # here, not at the top: the shared form needs numpy alone

        i = self._index(i)
        # dimod adds Q[j,k] and Q[k,j]: an upper-triangular matrix is the fast dense path.
        Q = np.triu(2.0 * self.quadratic(i), k=1)
        np.fill_diagonal(Q, self.linear[i, self.free[i]])
        bqm = dimod.BinaryQuadraticModel(Q, dimod.BINARY)
        bqm.offset = float(self.offset[i])
        bqm.relabel_variables(dict(enumerate(self.variables(i))))
        return bqm

    def bqms(self) -> Iterator["dimod.BinaryQuadraticModel"]:
        """Every neuron's BQM, in neuron order."""
        return (self.bqm(i) for i in range(self.n_neurons))

    def assignment(self, i: int, sample: Mapping) -> np.ndarray:
        """Neuron ``i``'s 0/1 vector over all ``f+1`` columns from a sample keyed by label.

        Raises:
            ValueError: a free variable is missing from ``sample`` or is not 0/1.
        """
        i = self._index(i)
        labels = self.labels()
        u = np.zeros(self.n_inputs + 1, dtype=np.int64)
        for k in np.flatnonzero(self.free[i]):
            try:
                value = sample[labels[k]]
            except KeyError:
                raise ValueError(f"sample for neuron {i} has no value for variable "
                                 f"{labels[k]!r}") from None
            if value not in (0, 1):
                raise ValueError(f"variable {labels[k]!r} of neuron {i} must be 0 or 1, "
                                 f"got {value!r}")
            u[k] = value
        return u

    def quantize(self, i: int, sample: Mapping) -> tuple[np.ndarray, int]:
        """The integers ``(q_row (f,), q_bias)`` of neuron ``i`` under ``sample``."""
        q = self.base[self._index(i)] + self.assignment(i, sample)
        return q[:-1], int(q[-1])

    def dequantize(self, i: int, sample: Mapping) -> tuple[np.ndarray, float]:
        """The float values ``(s·q_row (f,), s_b·q_bias)`` of neuron ``i`` under ``sample``."""
        i = self._index(i)
        values = (self.base[i] + self.assignment(i, sample)) * self.scales[i]
        return values[:-1], float(values[-1])

    def energy(self, i: int, sample: Mapping) -> float:
        """Neuron ``i``'s squared output error under ``sample`` (same as ``bqm(i).energy``)."""
        i = self._index(i)
        u = self.assignment(i, sample).astype(np.float64)
        d_u = self.scales[i] * u
        quadratic = d_u @ self.gram @ d_u - np.sum(self.scales[i] ** 2 * np.diag(self.gram) * u)
        return float(self.offset[i] + self.linear[i] @ u + quadratic)

    def rtn_sample(self, i: int) -> dict:
        """The round-to-nearest assignment of neuron ``i``'s variables, keyed by label."""
        i = self._index(i)
        rtn = self.rtn_integers()[i]
        labels = self.labels()
        return {labels[k]: int(rtn[k] - self.base[i, k]) for k in np.flatnonzero(self.free[i])}

    def rtn_integers(self) -> np.ndarray:
        """Round-to-nearest integers of the whole layer, ``(n, f+1)`` (bias last)."""
        q = np.empty_like(self.base)
        q[:, :-1] = self.weight_grid.rtn(self.values[:, :-1])
        q[:, -1] = self.bias_grid.rtn(self.values[:, -1]) if self.has_bias else 0
        return q

    def decode(self, samples) -> tuple[np.ndarray, np.ndarray]:
        """Integer weights ``(n, f)`` and bias ``(n,)`` from one sample per neuron."""
        samples = list(samples)
        if len(samples) != self.n_neurons:
            raise ValueError(f"expected {self.n_neurons} samples (one per neuron), "
                             f"got {len(samples)}")
        q = self.base + np.stack([self.assignment(i, s) for i, s in enumerate(samples)])
        return q[:, :-1], q[:, -1]

    def _index(self, i) -> int:
        if not 0 <= int(i) < self.n_neurons:
            raise IndexError(f"neuron index {i} out of range for a layer of "
                             f"{self.n_neurons} neurons")
        return int(i)


def formulate_layer(weight, bias, inputs, *, bits: int, float_inputs=None,
                    scheme: str = "reference", per_channel: bool = False,
                    bias_step=None, input_step=None) -> LayerQUBO:
    """Build the exact rounding QUBO of a dense layer ``y = W x + b``.

    Args:
        weight: ``(n, f)`` float weights (numpy array or CPU torch tensor).
        bias: ``(n,)`` float bias, or ``None`` for a layer without one.
        inputs: ``X̂ (m, f)``, what the *quantized* network feeds this layer.
        bits: weight bit width, 1..8.
        float_inputs: ``X (m, f)``, what the float network feeds it (defaults to ``inputs``);
            the target is ``X Wᵀ + b``.
        scheme: ``"reference"`` (the paper's, default) or ``"symmetric"``.
        per_channel: one weight step per output row.
        bias_step: the bias step (scalar or per row); default the weight step, or
            ``input_step ×`` weight step when ``input_step`` is given.
        input_step: the step of quantized inputs, when the inputs are quantized.

    Returns:
        A :class:`LayerQUBO`.

    Raises:
        ValueError: shape mismatch, NaN/Inf, an empty calibration set, bits out of range.
    """
    W = _as_matrix(weight, "weight")
    n, f = W.shape
    b = np.zeros(n) if bias is None else _as_vector(bias, "bias", n)
    X_hat = _as_inputs(inputs, "inputs", f)
    X = X_hat if float_inputs is None else _as_inputs(float_inputs, "float_inputs", f)
    if X.shape[0] != X_hat.shape[0]:
        raise ValueError(f"float_inputs has {X.shape[0]} rows but inputs has "
                         f"{X_hat.shape[0]}: they must be the same calibration samples")

    w_grid = weight_grid(W, bits, scheme=scheme, per_channel=per_channel)
    b_grid = bias_grid(w_grid.step, bias_step=bias_step, input_step=input_step)
    values = np.column_stack([W, b])
    base, free = _round_down(values, w_grid, b_grid, has_bias=bias is not None)
    scales = np.column_stack([np.repeat(w_grid.step[:, None], f, axis=1), b_grid.step])

    # One Gram product for the layer and one product for every neuron's linear terms.
    target = X @ W.T + b
    residual = target - X_hat @ (base[:, :-1] * scales[:, :-1]).T - base[:, -1] * scales[:, -1]
    gram = np.empty((f + 1, f + 1))
    gram[:f, :f] = X_hat.T @ X_hat
    gram[:f, f] = gram[f, :f] = X_hat.sum(axis=0)
    gram[f, f] = X_hat.shape[0]
    projection = np.vstack([X_hat.T @ residual, residual.sum(axis=0)])  # Âᵀ R, (f+1, n)
    linear = scales**2 * np.diag(gram) - 2.0 * scales * projection.T
    linear[~free] = 0.0
    offset = np.einsum("mi,mi->i", residual, residual)

    return LayerQUBO(w_grid, b_grid, base, free, scales, gram, linear, offset, values,
                     has_bias=bias is not None)


def _round_down(values, w_grid: Grid, b_grid: Grid, *, has_bias: bool):
    """Round-down integers and the free mask; clipped entries get their one admissible value."""
    floor = np.column_stack([w_grid.floor(values[:, :-1]), b_grid.floor(values[:, -1])])
    q_min = np.array([w_grid.q_min] * (values.shape[1] - 1) + [b_grid.q_min])
    q_max = np.array([w_grid.q_max] * (values.shape[1] - 1) + [b_grid.q_max])
    free = (floor >= q_min) & (floor + 1 <= q_max)
    nearest = np.column_stack([w_grid.rtn(values[:, :-1]), b_grid.rtn(values[:, -1])])
    base = np.where(free, floor, nearest)
    if not has_bias:
        free[:, -1] = False
        base[:, -1] = 0
    return base.astype(np.int64), free


def _to_numpy(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        array = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or Inf values")
    return array


def _as_matrix(x, name: str) -> np.ndarray:
    array = _to_numpy(x, name)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array (n, f), got shape {array.shape}")
    return array


def _as_vector(x, name: str, length: int) -> np.ndarray:
    array = _to_numpy(x, name)
    if array.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},) to match the weight's "
                         f"{length} rows, got {array.shape}")
    return array


def _as_inputs(x, name: str, f: int) -> np.ndarray:
    array = _to_numpy(x, name)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (m, {f}), got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty: the calibration set needs at least one sample")
    if array.shape[1] != f:
        raise ValueError(f"{name} has {array.shape[1]} features but the weight has {f} "
                         f"columns: shapes (m, {f}) expected, got {array.shape}")
    return array
