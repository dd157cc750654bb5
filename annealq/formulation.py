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

    *Entries* are the ``f`` weights and the bias of a row (columns ``0..f-1`` and ``f`` of
    ``base`` and ``values``). *Variables* are the binary digits that move entries on their
    grid: one per entry (down/up, the paper's QUBO, ``window_bits=1``), or ``k`` per
    weight and ``k_b`` per bias with wider windows, ``q = base + Σ_t 2^t u_t``. With one
    variable per entry the variable and entry axes coincide.

    Attributes:
        weight_grid, bias_grid: the grids the integers live on.
        base: int64 ``(n, f+1)``, each entry's lowest admissible integer in its window (the
            round-down integer, or the fixed value where clipping leaves one).
        columns: int ``(V,)``, the entry each variable moves (the same for every neuron).
        weights: int ``(V,)``, how many grid steps the variable moves its entry (``2^t``).
        free: bool ``(n, V)``, which variables exist for each neuron.
        scales: float ``(n, V)``, each variable's step ``d_iv`` (entry step × ``2^t``).
        gram: float ``(V, V)``, ``ÂᵀÂ`` over the variables' columns, shared by all neurons.
        linear: float ``(n, V)``, ``h_iv`` (0 where not free).
        offset: float ``(n,)``, ``c_i``, the error of the all-zero assignment.
        values: float ``(n, f+1)``, the float weights and bias being rounded.
        has_bias: whether the layer has a bias (else the bias is fixed at 0).
        window_bits, bias_window_bits: variables per weight and per bias.
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
    columns: np.ndarray | None = None
    weights: np.ndarray | None = None
    window_bits: int = 1
    bias_window_bits: int = 1

    def __post_init__(self):
        if self.columns is None:  # one variable per entry
            object.__setattr__(self, "columns", np.arange(self.base.shape[1]))
            object.__setattr__(self, "weights", np.ones(self.base.shape[1], dtype=np.int64))

    @property
    def n_neurons(self) -> int:
        return self.base.shape[0]

    @property
    def n_inputs(self) -> int:
        return self.base.shape[1] - 1

    @property
    def entry_steps(self) -> np.ndarray:
        """``(n, f+1)``: each entry's grid step (weights, then bias)."""
        return np.column_stack([np.repeat(self.weight_grid.step[:, None], self.n_inputs, axis=1),
                                self.bias_grid.step])

    def labels(self) -> list:
        """Labels of all variables: ``("w", j)`` and ``("b",)`` with one variable per
        entry; ``("w", j, t)`` and ``("b", t)`` (bit ``t``) with wider windows."""
        f = self.n_inputs
        labels = []
        for column, weight in zip(self.columns, self.weights):
            bit = int(weight).bit_length() - 1
            if column < f:
                labels.append(weight_label(column) + ((bit,) if self.window_bits > 1 else ()))
            else:
                labels.append(BIAS_LABEL + ((bit,) if self.bias_window_bits > 1 else ()))
        return labels

    def variables(self, i: int) -> list:
        """The labels of neuron ``i``'s binary variables."""
        labels = self.labels()
        return [labels[k] for k in np.flatnonzero(self.free[self._index(i)])]

    def quadratic(self, i: int) -> np.ndarray:
        """``G_i`` restricted to neuron ``i``'s variables (the couplers are ``2 G_jk``)."""
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
        """Neuron ``i``'s 0/1 vector over all ``V`` variables from a sample keyed by label.

        Raises:
            ValueError: a variable is missing from ``sample`` or is not 0/1.
        """
        i = self._index(i)
        labels = self.labels()
        u = np.zeros(len(self.columns), dtype=np.int64)
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

    def integers(self, i: int, u: np.ndarray) -> np.ndarray:
        """Neuron ``i``'s integers ``(f+1,)`` (bias last) for a 0/1 vector over variables."""
        i = self._index(i)
        moves = np.bincount(self.columns, weights=np.asarray(u) * self.weights * self.free[i],
                            minlength=self.n_inputs + 1)
        return self.base[i] + moves.astype(np.int64)

    def states(self, q: np.ndarray, neurons=None) -> np.ndarray:
        """The 0/1 variables ``(len(neurons), V)`` that give integers ``q`` (rows match
        ``neurons``, default all; bias last).

        Raises:
            ValueError: an integer lies outside its window (not representable).
        """
        rows = np.arange(self.n_neurons) if neurons is None else np.asarray(neurons, dtype=int)
        offset = np.asarray(q, dtype=np.int64) - self.base[rows]
        free_span = np.zeros_like(offset)  # how far each entry's variables can move it
        np.add.at(free_span.T, self.columns, (self.free[rows] * self.weights).T)
        if np.any(offset < 0) or np.any(offset > free_span):
            bad = np.argwhere((offset < 0) | (offset > free_span))[0]
            raise ValueError(f"integer {int(np.asarray(q)[tuple(bad)])} of neuron "
                             f"{int(rows[bad[0]])}, entry {int(bad[1])} is outside its window "
                             f"[{int(self.base[rows[bad[0]], bad[1]])}, "
                             f"{int(self.base[rows[bad[0]], bad[1]] + free_span[tuple(bad)])}]")
        bits = (offset[:, self.columns] // self.weights) % 2
        return (bits * self.free[rows]).astype(np.int8)

    def quantize(self, i: int, sample: Mapping) -> tuple[np.ndarray, int]:
        """The integers ``(q_row (f,), q_bias)`` of neuron ``i`` under ``sample``."""
        q = self.integers(i, self.assignment(i, sample))
        return q[:-1], int(q[-1])

    def dequantize(self, i: int, sample: Mapping) -> tuple[np.ndarray, float]:
        """The float values ``(s·q_row (f,), s_b·q_bias)`` of neuron ``i`` under ``sample``."""
        i = self._index(i)
        q = self.integers(i, self.assignment(i, sample))
        grid = self.weight_grid
        weights = q[:-1] * grid.step[i] + (0.0 if grid.offset is None else grid.offset[i])
        return weights, float(self.bias_grid.step[i] * q[-1])

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
        state = self.states(self.rtn_integers()[[i]], [i])[0]
        labels = self.labels()
        return {labels[k]: int(state[k]) for k in np.flatnonzero(self.free[i])}

    def rtn_integers(self) -> np.ndarray:
        """Round-to-nearest integers of the whole layer, ``(n, f+1)`` (bias last)."""
        q = np.empty_like(self.base)
        q[:, :-1] = self.weight_grid.rtn(self.values[:, :-1])
        q[:, -1] = self.bias_grid.rtn(self.values[:, -1]) if self.has_bias else 0
        return q

    @property
    def entry_gram(self) -> np.ndarray:
        """``ÂᵀÂ`` over the entries ``(f+1, f+1)`` (the Gram of each entry's first variable)."""
        first = np.unique(self.columns, return_index=True)[1]
        return self.gram[np.ix_(first, first)]

    def integer_form(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Neuron ``i``'s energy over integer *entry offsets* ``o`` (``q = base + o``):
        ``E = offset_i − 2 Σ_c e_c o_c p_c + (e∘o)ᵀ G (e∘o)`` with ``G`` the
        :attr:`entry_gram`, for ``0 ≤ o_c ≤ span_c``.

        Returns:
            ``(span, e, p)``: each entry's largest offset (0 where fixed), its grid step,
            and ``p = Âᵀ r`` with ``r`` the output residual at ``base``.
        """
        i = self._index(i)
        first = np.unique(self.columns, return_index=True)[1]  # the 1-step variables
        span = np.bincount(self.columns, weights=self.weights * self.free[i],
                           minlength=self.n_inputs + 1).astype(np.int64)
        e = self.entry_steps[i]
        # recovered from h_v = d_v² G_vv − 2 d_v p_c of each entry's 1-step variable
        p = np.where(span > 0, (e**2 * np.diag(self.gram)[first] - self.linear[i, first])
                     / (2 * e), 0.0)
        return span, e, p

    def decode(self, samples) -> tuple[np.ndarray, np.ndarray]:
        """Integer weights ``(n, f)`` and bias ``(n,)`` from one sample per neuron."""
        samples = list(samples)
        if len(samples) != self.n_neurons:
            raise ValueError(f"expected {self.n_neurons} samples (one per neuron), "
                             f"got {len(samples)}")
        q = np.stack([self.integers(i, self.assignment(i, s)) for i, s in enumerate(samples)])
        return q[:, :-1], q[:, -1]

    def _index(self, i) -> int:
        if not 0 <= int(i) < self.n_neurons:
            raise IndexError(f"neuron index {i} out of range for a layer of "
                             f"{self.n_neurons} neurons")
        return int(i)


def formulate_layer(weight, bias, inputs, *, bits: int, float_inputs=None,
                    scheme: str = "reference", per_channel: bool = False,
                    bias_step=None, input_step=None, window_bits: int = 1,
                    bias_window_bits: int | None = None, center=None) -> LayerQUBO:
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
        window_bits: binary variables per weight. 1 (default) is the paper's down/up QUBO;
            ``k > 1`` lets each weight take ``2^k`` consecutive grid values
            ``[base, base + 2^k − 1]`` placed inside the grid (``k`` is capped at ``bits``:
            with ``k = bits`` the window is the whole grid), around ``⌊w/s⌋`` (or around
            ``center``). Every assignment is an admissible integer and the energy stays
            exactly the squared output error.
        bias_window_bits: binary variables of the bias window (default: 1 with
            ``window_bits=1``, else ``window_bits + 2``) on its int32 grid.
        center: optional integers ``(n, f+1)`` (weights, then bias) to centre the windows
            on, e.g. GPTQ's solution, so that it is representable (a warm start).

    Returns:
        A :class:`LayerQUBO`.

    Raises:
        ValueError: shape mismatch, NaN/Inf, an empty calibration set, bits or window
            bits out of range.
    """
    W = _as_matrix(weight, "weight")
    n, f = W.shape
    b = np.zeros(n) if bias is None else _as_vector(bias, "bias", n)
    X_hat = _as_inputs(inputs, "inputs", f)
    X = X_hat if float_inputs is None else _as_inputs(float_inputs, "float_inputs", f)
    if X.shape[0] != X_hat.shape[0]:
        raise ValueError(f"float_inputs has {X.shape[0]} rows but inputs has "
                         f"{X_hat.shape[0]}: they must be the same calibration samples")
    k_w, k_b = _window_sizes(window_bits, bias_window_bits, bits)

    w_grid = weight_grid(W, bits, scheme=scheme, per_channel=per_channel)
    b_grid = bias_grid(w_grid.step, bias_step=bias_step, input_step=input_step)
    values = np.column_stack([W, b])
    if k_w == 1 and k_b == 1 and center is None:
        base, free = _round_down(values, w_grid, b_grid, has_bias=bias is not None)
        columns, weights = np.arange(f + 1), np.ones(f + 1, dtype=np.int64)
    else:
        base = _window_base(values, w_grid, b_grid, k_w, k_b, center)
        columns = np.concatenate([np.repeat(np.arange(f), k_w), np.full(k_b, f)])
        weights = np.concatenate([np.tile(2 ** np.arange(k_w), f), 2 ** np.arange(k_b)])
        free = np.ones((n, len(columns)), dtype=bool)
        if bias is None:
            base[:, -1] = 0
            free[:, columns == f] = False
    entry_step = np.column_stack([np.repeat(w_grid.step[:, None], f, axis=1), b_grid.step])
    scales = entry_step[:, columns] * weights

    # One Gram product for the layer and one product for every neuron's linear terms.
    target = X @ W.T + b
    residual = target - X_hat @ w_grid.dequantize(base[:, :-1]).T - b_grid.dequantize(base[:, -1])
    entry_gram = np.empty((f + 1, f + 1))
    entry_gram[:f, :f] = X_hat.T @ X_hat
    entry_gram[:f, f] = entry_gram[f, :f] = X_hat.sum(axis=0)
    entry_gram[f, f] = X_hat.shape[0]
    projection = np.vstack([X_hat.T @ residual, residual.sum(axis=0)])  # Âᵀ R, (f+1, n)
    gram = entry_gram if len(columns) == f + 1 and np.array_equal(columns, np.arange(f + 1)) \
        else entry_gram[np.ix_(columns, columns)]
    linear = scales**2 * np.diag(gram) - 2.0 * scales * projection[columns].T
    linear[~free] = 0.0
    offset = np.einsum("mi,mi->i", residual, residual)

    return LayerQUBO(w_grid, b_grid, base, free, scales, gram, linear, offset, values,
                     has_bias=bias is not None, columns=columns, weights=weights,
                     window_bits=k_w, bias_window_bits=k_b)


def _window_sizes(window_bits, bias_window_bits, bits) -> tuple[int, int]:
    for name, value in (("window_bits", window_bits), ("bias_window_bits", bias_window_bits)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 1 <= value <= 16):
            raise ValueError(f"{name} must be an integer from 1 to 16, got {value!r}")
    k_w = min(window_bits, bits)  # a window wider than the grid would leave it
    if bias_window_bits is None:
        bias_window_bits = 1 if window_bits == 1 else window_bits + 2
    return k_w, bias_window_bits


def _window_base(values, w_grid: Grid, b_grid: Grid, k_w: int, k_b: int, center):
    """Each entry's window start: ``2^(k-1) − 1`` below its centre (``⌊w/s⌋`` or the given
    integer), moved inside the grid so the whole window is admissible."""
    floor = np.column_stack([w_grid.floor(values[:, :-1]), b_grid.floor(values[:, -1])])
    centre = floor if center is None else np.asarray(center, dtype=np.int64)
    if centre.shape != floor.shape:
        raise ValueError(f"center must have shape {floor.shape} (weights, then bias), "
                         f"got {centre.shape}")
    below = np.array([2 ** (k_w - 1) - 1] * (values.shape[1] - 1) + [2 ** (k_b - 1) - 1])
    width = np.array([2**k_w - 1] * (values.shape[1] - 1) + [2**k_b - 1])
    low = np.array([w_grid.q_min] * (values.shape[1] - 1) + [b_grid.q_min])
    high = np.array([w_grid.q_max] * (values.shape[1] - 1) + [b_grid.q_max]) - width
    return np.clip(centre - below, low, high).astype(np.int64)


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
