"""A layer's neurons in the integer form ``kbest`` searches (:mod:`solvers.kbest.sampler`):
entry offsets from the window bases, the float values above them that GPTQ's damping is
centred on, and the searches run on it — the K-best beam at one damping in a column order,
the same beam on each neuron's lattice-reduced basis, and CDQuant's descent.
"""

from __future__ import annotations

import numpy as np

from annealq.damped import damped_hessian
from annealq.integer_model import IntegerForm
from solvers.kbest.reduced import reduced_beam
from solvers.kbest.search import beam_search, vblast_order

DESCENT_SWEEPS = 10  # CD's own: at most 10 moves per entry
DESCENT_TOLERANCE = 1e-12  # CD's own: a move must gain this fraction of the error


class KBestForm:
    """Neurons ``rows`` of a layer over integer entry offsets ``o`` (``q = base + o``,
    ``0 ≤ o ≤ span``): :class:`~annealq.integer_model.IntegerForm`, with the window bases
    and each entry's float value above its base, which GPTQ's damping is centred on."""

    def __init__(self, lq, rows):
        self.lq, self.rows = lq, rows
        self.form = IntegerForm.of_layer(lq, rows)
        self.span, self.e, self.p = self.form.span, self.form.steps, self.form.projection
        self.G = self.form.gram
        self.base = lq.base[rows]
        weights = lq.weight_grid.select(rows).dequantize(self.base[:, :-1])
        bias = (
            lq.bias_grid.select(rows).dequantize(self.base[:, -1])
            if lq.has_bias
            else np.zeros(len(rows))
        )
        self.drift = lq.values[rows] - np.column_stack([weights, bias])  # float − base value

    def start_integers(self, initial_states) -> np.ndarray:
        """The start's integers: ``initial_states`` (one sample per neuron), else the window
        base (every offset 0; the searches beat it)."""
        if initial_states is None:
            return self.base.copy()
        return np.stack(
            [
                self.lq.integers(i, self.lq.assignment(i, s))
                for i, s in zip(self.rows, initial_states)
            ]
        )

    def offsets(self, q) -> np.ndarray:
        return np.asarray(q, dtype=np.int64) - self.base

    def energies(self, o) -> np.ndarray:
        return self.form.energies(o)

    def descend(self, o) -> np.ndarray:
        """CDQuant's greedy descent from the offsets ``o`` (CD's sweeps and tolerance)."""
        return self.form.descend(
            o, max_steps=DESCENT_SWEEPS * o.shape[1], relative_tolerance=DESCENT_TOLERANCE
        )

    def reduced_search(self, o, width: int) -> np.ndarray:
        """Each neuron's K-best on its lattice-reduced basis
        (:func:`~solvers.kbest.reduced.reduced_beam`) over its live entries (a step to take,
        an input that is not always 0), the others kept from ``o``; a neuron none of whose
        final paths lies in its box keeps ``o``'s row."""
        found = o.copy()
        live_input = np.diag(self.G) > 0
        for r in range(len(self.span)):
            live = np.flatnonzero((self.span[r] > 0) & live_input)
            e = self.e[r, live]
            path = reduced_beam(
                self.G[np.ix_(live, live)] * np.outer(e, e),
                -e * self.p[r, live],
                self.span[r, live],
                width=width,
            )
            if path is not None:
                found[r, live] = path
        return found

    def search(self, damp: float, width: int, order: str) -> np.ndarray:
        """One K-best run at ``damp``: GPTQ's damped Hessian and targets, columns in
        ``order``."""
        import scipy.linalg  # lazily: it costs ~0.4 s to import

        k = self.G.shape[0]
        diagonal, factor, H_inv = damped_hessian(self.G, damp)  # tuned GPTQ's, when kept
        if factor is None:
            raise np.linalg.LinAlgError(f"the damped Hessian is not positive definite ({damp})")
        # the damped least-squares target, centred on the float weights (GPTQ's): the float
        # weights themselves when the layer sees float inputs (then p = G·drift)
        Z = self.drift + scipy.linalg.cho_solve(factor, (self.p - self.drift @ self.G).T).T
        perm = (
            vblast_order(H_inv)
            if order == "vblast"
            else np.argsort(-diagonal, kind="stable")
            if order == "act"
            else np.arange(k)
        )
        U = np.linalg.cholesky(H_inv[np.ix_(perm, perm)]).T
        o = np.empty_like(self.span)
        o[:, perm], _ = beam_search(
            U,
            Z[:, perm],
            self.e[:, perm],
            np.zeros_like(self.span[:, perm]),
            self.span[:, perm],
            width=width,
        )
        return o
