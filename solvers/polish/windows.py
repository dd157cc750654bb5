"""The pieces of window polishing: a neuron's state in integer form, the windows to try,
each window's exact sub-problem, and its binary encoding for an annealer.

A neuron's energy over its entry offsets ``o`` (``q = base + o``, ``0 ≤ o ≤ span``) is
``E(o) = c − 2 Σ e_c o_c p_c + (e∘o)ᵀ G (e∘o)`` (:meth:`annealq.layer.LayerQUBO.integer_form`).
Fixing every entry outside a window ``S``, the window's problem is ``o_Sᵀ H o_S + 2 bᵀ o_S``
over a box — exactly, not an approximation — with ``H = G_SS ∘ e_S e_Sᵀ`` and ``b`` the
window's field from the rest. A window holds whole weights, never part of one's bits, and
leaves the bias out: for fixed weights its best integer is closed-form (one convex
variable), re-chosen after every accepted window.

Example:
    >>> import numpy as np
    >>> from annealq import formulate_layer
    >>> rng = np.random.default_rng(0)
    >>> lq = formulate_layer(rng.normal(size=(1, 6)), rng.normal(size=1),
    ...                      rng.normal(size=(30, 6)), bits=3, window_bits=3)
    >>> state = NeuronState.of(lq, 0, lq.rtn_integers()[0] - lq.base[0])
    >>> window = Window.of(state, np.array([0, 2, 3]), move=1)
    >>> bqm, code = window.bqm()
    >>> o = window.decode(code, {v: 0 for v in bqm.variables})
    >>> bool(np.isclose(bqm.energy({v: 0 for v in bqm.variables}), window.value(o)))
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import dimod
import numpy as np


@dataclass
class NeuronState:
    """One neuron's integer form and current offsets, with ``field = G (e∘o)`` kept up to
    date as windows are accepted."""

    gram: np.ndarray
    span: np.ndarray
    e: np.ndarray
    p: np.ndarray
    constant: float
    o: np.ndarray
    field: np.ndarray
    bias: int | None  # the bias entry's index, or None for a layer without one

    @classmethod
    def of(cls, lq, i: int, offsets) -> NeuronState:
        span, e, p = lq.integer_form(i)
        o = np.asarray(offsets, dtype=np.int64).copy()
        gram = lq.entry_gram
        return cls(
            gram,
            span,
            e,
            p,
            float(lq.offset[i]),
            o,
            gram @ (e * o),
            lq.n_inputs if lq.has_bias and span[-1] > 0 else None,
        )

    def energy(self, o=None) -> float:
        o = self.o if o is None else o
        z = self.e * o
        return float(self.constant - 2.0 * z @ self.p + z @ self.gram @ z)

    def live(self) -> np.ndarray:
        """The weights a window may move (free, with inputs that are not all zero)."""
        ok = (self.span > 0) & (np.diag(self.gram) > 0)
        if self.bias is not None:
            ok[self.bias] = False
        return np.flatnonzero(ok)

    def move(self, S: np.ndarray, new: np.ndarray) -> None:
        delta = new - self.o[S]
        self.o[S] = new
        self.field += self.gram[:, S] @ (self.e[S] * delta)
        self.refit_bias()

    def refit_bias(self) -> None:
        """The bias's best integer for the weights as they are (one convex variable)."""
        c = self.bias
        if c is None:
            return
        h = self.gram[c, c] * self.e[c] ** 2
        g = self.e[c] * (self.field[c] - self.gram[c, c] * self.e[c] * self.o[c] - self.p[c])
        best = int(np.clip(np.rint(-g / h), 0, self.span[c])) if h > 0 else self.o[c]
        if best != self.o[c]:
            delta = best - self.o[c]
            self.o[c] = best
            self.field += self.gram[:, c] * (self.e[c] * delta)

    def tie_order(self, live: np.ndarray) -> np.ndarray:
        """``live`` ordered nearest-to-a-tie first: by the smaller one-step change of the
        energy over the weight's curvature (0: moving it one step costs nothing)."""
        e, G = self.e[live], self.gram[live, live]
        curvature = G * e**2
        gradient = e * (self.field[live] - self.p[live])
        up = np.where(self.o[live] < self.span[live], curvature + 2 * gradient, np.inf)
        down = np.where(self.o[live] > 0, curvature - 2 * gradient, np.inf)
        return live[np.argsort(np.minimum(up, down) / curvature, kind="stable")]


@dataclass(frozen=True)
class Window:
    """A window's exact sub-problem: minimise ``oᵀHo + 2bᵀo`` over ``low ≤ o ≤ high``
    (integers), ``incumbent`` the current offsets of its weights ``S``."""

    S: np.ndarray
    H: np.ndarray
    b: np.ndarray
    low: np.ndarray
    high: np.ndarray
    incumbent: np.ndarray

    @classmethod
    def of(cls, state: NeuronState, S: np.ndarray, *, move: int | None) -> Window:
        """The window of weights ``S``: each within ``move`` steps of the incumbent (at most
        ±1 with ``move=1``) or anywhere on the grid (``move=None``)."""
        e_S, o_S = state.e[S], state.o[S]
        G_SS = state.gram[np.ix_(S, S)]
        H = G_SS * np.outer(e_S, e_S)
        b = e_S * (state.field[S] - G_SS @ (e_S * o_S) - state.p[S])
        if move is None:
            low, high = np.zeros(len(S), np.int64), state.span[S].copy()
        else:
            low, high = np.maximum(o_S - move, 0), np.minimum(o_S + move, state.span[S])
        return cls(S, H, b, low, high, o_S.copy())

    def value(self, o) -> float:
        o = np.asarray(o, dtype=np.float64)
        return float(o @ self.H @ o + 2.0 * self.b @ o)

    def gain(self, o) -> float:
        """The neuron's exact energy change if the window's weights become ``o``."""
        delta = np.asarray(o, dtype=np.float64) - self.incumbent
        return float(delta @ self.H @ delta + 2.0 * delta @ (self.H @ self.incumbent + self.b))

    def bqm(self) -> tuple[dimod.BinaryQuadraticModel, np.ndarray]:
        """The window as a BINARY BQM over ``o = low + C x`` (each weight's range written
        as 1, 2, 4, …, and what is left, so every value in it and none outside is
        reachable), and ``C``. Its energy is :meth:`value` exactly."""
        C = encoding(self.high - self.low)
        Q = C.T @ self.H @ C
        linear = np.diag(Q) + 2.0 * C.T @ (self.H @ self.low + self.b)
        quadratic = np.triu(Q, 1) * 2.0
        bqm = dimod.BinaryQuadraticModel(linear, quadratic, self.value(self.low), "BINARY")
        return bqm, C

    def encode(self, C: np.ndarray, o) -> dict:
        """A 0/1 sample of :meth:`bqm` whose decoding is ``o`` (greedy, largest first)."""
        left = np.asarray(o, dtype=np.int64) - self.low
        x = np.zeros(C.shape[1], dtype=np.int8)
        for j in np.argsort(-C.sum(axis=0), kind="stable"):
            row = int(np.argmax(C[:, j]))
            if C[row, j] <= left[row]:
                x[j], left[row] = 1, left[row] - C[row, j]
        return dict(enumerate(x.tolist()))

    def decode(self, C: np.ndarray, sample) -> np.ndarray:
        x = np.array([sample[j] for j in range(C.shape[1])], dtype=np.int64)
        return self.low + C @ x


def encoding(ranges: np.ndarray) -> np.ndarray:
    """``(len(ranges), m)``: weight ``c``'s binary variables with coefficients 1, 2, 4, …
    and a last one of what is left of ``ranges[c]``."""
    columns = []
    for c, r in enumerate(np.asarray(ranges, dtype=np.int64)):
        power = 1
        while r > 0:
            take = min(power, r)
            column = np.zeros(len(ranges), dtype=np.int64)
            column[c] = take
            columns.append(column)
            r, power = r - take, power * 2
    return np.array(columns, dtype=np.int64).T.reshape(len(ranges), len(columns))


def neighbours(gram: np.ndarray, live: np.ndarray, size: int) -> np.ndarray:
    """For each of ``live``, the ``size`` live weights most correlated with it (itself
    first), by ``|G_ij| / sqrt(G_ii G_jj)``."""
    G = gram[np.ix_(live, live)]
    d = np.sqrt(np.diag(G))
    correlation = np.abs(G) / np.outer(d, d)
    np.fill_diagonal(correlation, np.inf)
    size = min(size, len(live))
    top = np.argsort(-correlation, axis=1, kind="stable")[:, :size]
    return live[top]
