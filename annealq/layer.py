"""The rounding problem of one dense layer as data: :class:`LayerQUBO`, one independent
QUBO per output neuron over a Gram matrix all neurons share (docs/design.md §1).

:func:`annealq.formulation.formulate_layer` builds it; solvers read its shared form or its
per-neuron BQMs; :meth:`LayerQUBO.decode` turns their samples into integers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cached_property

import dimod
import numpy as np

from annealq.grid import Grid
from annealq.integer_model import integer_terms
from annealq.labels import (  # noqa: F401 (BIAS_LABEL, weight_label: re-exported)
    BIAS_LABEL,
    sample_of,
    state_of,
    variable_labels,
    weight_label,
)


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
        return np.column_stack([self.weight_grid.column_steps(self.n_inputs), self.bias_grid.step])

    def labels(self) -> list:
        """Labels of all variables: ``("w", j)`` and ``("b",)`` with one variable per
        entry; ``("w", j, t)`` and ``("b", t)`` (bit ``t``) with wider windows."""
        return list(self._labels)

    @cached_property
    def _labels(self) -> tuple:  # built once: a layer has tens of thousands of variables
        return variable_labels(
            self.columns, self.weights, self.n_inputs, self.window_bits, self.bias_window_bits
        )

    def variables(self, i: int) -> list:
        """The labels of neuron ``i``'s binary variables."""
        labels = self._labels
        return [labels[k] for k in np.flatnonzero(self.free[self._index(i)])]

    def quadratic(self, i: int) -> np.ndarray:
        """``G_i`` restricted to neuron ``i``'s variables (the couplers are ``2 G_jk``)."""
        i = self._index(i)
        cols = np.flatnonzero(self.free[i])
        d = self.scales[i, cols]
        return self.gram[np.ix_(cols, cols)] * np.outer(d, d)

    def bqm(self, i: int) -> dimod.BinaryQuadraticModel:
        """Neuron ``i``'s QUBO: BINARY, energy equal to its squared output error."""
        i = self._index(i)
        # dimod adds Q[j,k] and Q[k,j]: an upper-triangular matrix is the fast dense path.
        Q = np.triu(2.0 * self.quadratic(i), k=1)
        np.fill_diagonal(Q, self.linear[i, self.free[i]])
        bqm = dimod.BinaryQuadraticModel(Q, dimod.BINARY)
        bqm.offset = float(self.offset[i])
        bqm.relabel_variables(dict(enumerate(self.variables(i))))
        return bqm

    def bqms(self) -> Iterator[dimod.BinaryQuadraticModel]:
        """Every neuron's BQM, in neuron order."""
        return (self.bqm(i) for i in range(self.n_neurons))

    def assignment(self, i: int, sample: Mapping) -> np.ndarray:
        """Neuron ``i``'s 0/1 vector over all ``V`` variables from a sample keyed by label.

        Raises:
            ValueError: a variable is missing from ``sample`` or is not 0/1.
        """
        i = self._index(i)
        return state_of(self._labels, self.free[i], sample, i)

    def integers(self, i: int, u: np.ndarray) -> np.ndarray:
        """Neuron ``i``'s integers ``(f+1,)`` (bias last) for a 0/1 vector over variables."""
        i = self._index(i)
        moves = np.bincount(
            self.columns,
            weights=np.asarray(u) * self.weights * self.free[i],
            minlength=self.n_inputs + 1,
        )
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
            raise ValueError(
                f"integer {int(np.asarray(q)[tuple(bad)])} of neuron "
                f"{int(rows[bad[0]])}, entry {int(bad[1])} is outside its window "
                f"[{int(self.base[rows[bad[0]], bad[1]])}, "
                f"{int(self.base[rows[bad[0]], bad[1]] + free_span[tuple(bad)])}]"
            )
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
        weights = self.weight_grid.select([i]).dequantize(q[None, :-1])[0]
        return weights, float(self.bias_grid.step[i] * q[-1])

    def energy(self, i: int, sample: Mapping) -> float:
        """Neuron ``i``'s squared output error under ``sample`` (same as ``bqm(i).energy``)."""
        i = self._index(i)
        u = self.assignment(i, sample).astype(np.float64)
        d_u = self.scales[i] * u
        quadratic = d_u @ self.gram @ d_u - np.sum(self.scales[i] ** 2 * np.diag(self.gram) * u)
        return float(self.offset[i] + self.linear[i] @ u + quadratic)

    def energies(self, states: np.ndarray, neurons=None) -> np.ndarray:
        """:meth:`energy` of many neurons at once, one matrix product: row ``r`` of
        ``states`` (0/1 over all ``V`` variables) for neuron ``neurons[r]`` (default all)."""
        rows = np.arange(self.n_neurons) if neurons is None else np.asarray(neurons, dtype=int)
        u = np.asarray(states, dtype=np.float64) * self.free[rows]
        d_u = self.scales[rows] * u
        quadratic = np.einsum("iv,iv->i", d_u @ self.gram, d_u) - (
            self.scales[rows] ** 2 * np.diag(self.gram) * u
        ).sum(axis=1)
        return self.offset[rows] + np.einsum("iv,iv->i", self.linear[rows], u) + quadratic

    def rtn_sample(self, i: int) -> dict:
        """The round-to-nearest assignment of neuron ``i``'s variables, keyed by label."""
        i = self._index(i)
        return self.sample(i, self.states(self.rtn_integers()[[i]], [i])[0])

    def sample(self, i: int, state: np.ndarray) -> dict:
        """Neuron ``i``'s sample ``{label: 0/1}`` from a 0/1 vector over all ``V`` variables
        (the inverse of :meth:`assignment`)."""
        i = self._index(i)
        return sample_of(self._labels, self.free[i], state)

    def samples(self, states: np.ndarray, neurons=None) -> list[dict]:
        """One sample per row of ``states`` ``(len(neurons), V)`` (``neurons`` default all)."""
        rows = range(self.n_neurons) if neurons is None else neurons
        return [sample_of(self._labels, self.free[i], state) for i, state in zip(rows, states)]

    def select(self, neurons) -> LayerQUBO:
        """This layer restricted to ``neurons`` (in that order): the same Gram matrix, grids
        (steps and offsets of those rows) and energies.

        Example:
            >>> import numpy as np
            >>> from annealq import formulate_layer
            >>> rng = np.random.default_rng(0)
            >>> lq = formulate_layer(rng.normal(size=(4, 3)), None, rng.normal(size=(9, 3)),
            ...                      bits=2)
            >>> sub = lq.select([2, 0])
            >>> sub.n_neurons, sub.bqm(0) == lq.bqm(2)
            (2, True)
        """
        rows = np.asarray(neurons, dtype=int)
        if rows.ndim != 1 or len(rows) == 0:
            raise ValueError(f"neurons must be a non-empty list of indices, got {neurons!r}")
        if np.any((rows < 0) | (rows >= self.n_neurons)):
            raise IndexError(
                f"neuron indices {rows.tolist()} out of range for a layer of "
                f"{self.n_neurons} neurons"
            )
        return replace(
            self,
            base=self.base[rows],
            free=self.free[rows],
            scales=self.scales[rows],
            linear=self.linear[rows],
            offset=self.offset[rows],
            values=self.values[rows],
            weight_grid=self.weight_grid.select(rows),
            bias_grid=self.bias_grid.select(rows),
        )

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
        span, e, p = integer_terms(self, [self._index(i)])
        return span[0], e[0], p[0]

    def decode(self, samples) -> tuple[np.ndarray, np.ndarray]:
        """Integer weights ``(n, f)`` and bias ``(n,)`` from one sample per neuron."""
        samples = list(samples)
        if len(samples) != self.n_neurons:
            raise ValueError(
                f"expected {self.n_neurons} samples (one per neuron), got {len(samples)}"
            )
        q = np.stack([self.integers(i, self.assignment(i, s)) for i, s in enumerate(samples)])
        return q[:, :-1], q[:, -1]

    def _index(self, i) -> int:
        if not 0 <= int(i) < self.n_neurons:
            raise IndexError(
                f"neuron index {i} out of range for a layer of {self.n_neurons} neurons"
            )
        return int(i)
