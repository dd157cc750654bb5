"""A layer's exact rounding problem as one integer model of ``dwave-optimization``.

Every neuron ``i`` of a :class:`~annealq.layer.LayerQUBO` has an integer form
(:meth:`~annealq.layer.LayerQUBO.integer_form`): with integer offsets ``o_i`` from its
window's base (``q_i = base_i + o_i``, ``0 ≤ o_i ≤ span_i``), entry steps ``e_i`` (the
grid's per-tensor, per-channel or group steps; the bias step last) and ``p_i = Âᵀ r_i``,

    E_i(o) = c_i − 2 Σ_c e_ic o_ic p_ic + (e_i∘o_i)ᵀ G (e_i∘o_i),

the squared output error exactly, over the Gram matrix ``G = ÂᵀÂ`` all neurons share. The
model holds ``G`` once as a constant, one integer decision per weight and bias, and the
objective ``Σ_i E_i``: with ``Z = O∘E``, ``sum(Z ∘ (Z G − 2P)) + Σ_i c_i``. No binary
encoding, so the whole grid costs what the paper's down/up window costs: about
``8·(f+1)·(f+1+4n)`` bytes, against one dense BQM per neuron.

Affine grids need nothing more: their offsets live in ``base`` and the residual. A bare BQM
is a one-neuron integer form too (:func:`bqm_form`), so the solver takes single BQMs.

The ``hybrid-nl`` solver (:mod:`solvers.hybrid_nl.sampler`) sends these models to Leap; the
Leap emulator recognises them (:func:`read_layer_model`) to answer them classically.

Example:
    >>> import numpy as np
    >>> from annealq import formulate_layer
    >>> rng = np.random.default_rng(0)
    >>> lq = formulate_layer(rng.normal(size=(3, 5)), rng.normal(size=3),
    ...                      rng.normal(size=(40, 5)), bits=2, window_bits=2)
    >>> form = IntegerForm.of_layer(lq, [0, 1, 2])
    >>> layer = LayerModel.build(form, form.span // 2)
    >>> errors = form.energies(form.span // 2)
    >>> bool(np.isclose(layer.objective(), errors.sum()))
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import dimod
import numpy as np

from annealq.descent import greedy_descent
from annealq.states import dense_qubo

__all__ = [
    "IntegerForm",
    "LayerModel",
    "NotALayerModel",
    "bqm_form",
    "integer_terms",
    "read_layer_model",
]


class NotALayerModel(ValueError):
    """A model that is not one :class:`LayerModel` builds."""


@dataclass(frozen=True)
class IntegerForm:
    """Neurons of a layer in integer form (see the module docs).

    Attributes:
        gram: ``(f+1, f+1)`` ``ÂᵀÂ`` over the entries, shared.
        span: int ``(g, f+1)``, each entry's largest offset (0: fixed).
        steps: ``(g, f+1)`` each entry's grid step.
        projection: ``(g, f+1)`` ``p = Âᵀ r`` at the base integers.
        offset: ``(g,)`` each neuron's error at the base integers.
    """

    gram: np.ndarray
    span: np.ndarray
    steps: np.ndarray
    projection: np.ndarray
    offset: np.ndarray

    @classmethod
    def of_layer(cls, lq, rows) -> IntegerForm:
        """The integer form of neurons ``rows`` of ``lq``, from its shared form."""
        rows = np.asarray(rows, dtype=int)
        return cls(lq.entry_gram, *integer_terms(lq, rows), lq.offset[rows].copy())

    @property
    def neurons(self) -> int:
        return len(self.span)

    def descend(self, o, *, max_steps: int, relative_tolerance: float = 0.0) -> np.ndarray:
        """CDQuant's greedy coordinate descent from offsets ``o``, all neurons at once
        (:func:`annealq.descent.greedy_descent`): the new offsets. A move must lower
        a neuron's error by more than ``relative_tolerance`` times its error at ``o``."""
        o = np.array(o, dtype=np.int64, copy=True)
        tol = relative_tolerance * self.energies(o) if relative_tolerance else np.zeros(len(o))
        z = o * self.steps
        gradient = z @ self.gram - self.projection
        energy = np.einsum("ic,ic->i", z, gradient - self.projection)
        greedy_descent(
            self.gram,
            gradient,
            energy,
            self.steps,
            np.zeros_like(self.span),
            self.span,
            o,
            max_steps=max_steps,
            tol=tol,
        )
        return o

    def energies(self, o) -> np.ndarray:
        """Each neuron's exact energy ``E_i(o_i)`` for offsets ``o`` ``(g, f+1)``."""
        z = np.asarray(o, dtype=np.float64) * self.steps
        return self.offset + np.einsum("ic,ic->i", z, z @ self.gram - 2 * self.projection)


def integer_terms(lq, rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(span, steps, projection)`` ``(g, f+1)`` of neurons ``rows`` of ``lq`` (see
    :class:`IntegerForm`), recovered from its shared form."""
    rows = np.asarray(rows, dtype=int)
    first = np.unique(lq.columns, return_index=True)[1]  # each entry's 1-step variable
    span = np.zeros((len(rows), lq.n_inputs + 1), dtype=np.int64)
    np.add.at(span.T, lq.columns, (lq.free[rows] * lq.weights).T)
    steps = lq.entry_steps[rows]
    diagonal = np.diag(lq.gram)[first]
    with np.errstate(divide="ignore", invalid="ignore"):
        # from h_v = d_v² G_vv − 2 d_v p_c of each entry's 1-step variable
        projection = np.where(
            span > 0, (steps**2 * diagonal - lq.linear[rows][:, first]) / (2 * steps), 0.0
        )
    return span, steps, projection


def bqm_form(bqm: dimod.BinaryQuadraticModel) -> tuple[IntegerForm, list]:
    """A BQM as a one-neuron integer form over its variables (BINARY, unit steps) and the
    variable order. ``u² = u`` moves the diagonal into the linear terms."""
    order, h, Q, offset = dense_qubo(bqm)  # Q symmetric, zero diagonal
    n = len(order)
    return IntegerForm(
        Q, np.ones((1, n), dtype=np.int64), np.ones((1, n)), -h[None, :] / 2.0, np.array([offset])
    ), order


@dataclass
class LayerModel:
    """The integer model of an :class:`IntegerForm`, with its decision symbol."""

    model: object  # dwave.optimization.Model, locked, one state: the warm start
    decision: object  # the integer symbol O (g, f+1)
    objective_symbol: object

    @classmethod
    def build(cls, form: IntegerForm, start) -> LayerModel:
        """The model of ``form`` with ``start`` offsets ``(g, f+1)`` as its state 0."""
        from dwave.optimization import Model
        from dwave.optimization.mathematical import matmul

        model = Model()
        gram = model.constant(form.gram)
        rows, columns = _rank_one(form.steps)
        twice_projection = model.constant(2.0 * form.projection)
        offset = model.constant(float(form.offset.sum()))
        o = model.integer(form.span.shape, lower_bound=0, upper_bound=form.span)
        if rows is None:
            z = o * model.constant(form.steps)
        else:  # steps (n, 1) · (1, f+1), broadcast: n + f + 1 numbers instead of n·(f+1)
            z = o * model.constant(rows) * model.constant(columns)
        objective = (z * (matmul(z, gram) - twice_projection)).sum() + offset
        model.minimize(objective)
        model.lock()
        model.states.resize(1)
        o.set_state(0, np.clip(np.asarray(start), 0, form.span))
        return cls(model, o, objective)

    def objective(self, index: int = 0) -> float:
        """The model's objective in state ``index`` (the layer's error, all neurons)."""
        return float(self.objective_symbol.state(index))

    def offsets(self, index: int = 0) -> np.ndarray:
        """The decision's integer offsets in state ``index``."""
        return np.rint(self.decision.state(index)).astype(np.int64)

    def to_bytes(self) -> bytes:
        """The file the client uploads (the model and its warm-start state)."""
        return self.model.to_file(max_num_states=1).read()


def _rank_one(steps):
    """``(n, 1)`` and ``(1, f+1)`` factors whose product is exactly ``steps`` (a per-tensor
    or per-channel grid with the bias step a fixed multiple of the weight step), else
    ``(None, None)``."""
    rows = steps[:, :1]
    columns = steps[:1, :] / steps[0, 0]
    if np.all(rows > 0) and np.array_equal(rows * columns, steps):
        return rows, columns
    return None, None


def _only(symbols, kind: str):
    found = [s for s in symbols if type(s).__name__ == kind]
    if len(found) != 1:
        raise NotALayerModel(f"expected one {kind} here, found {len(found)}")
    return found[0]


def _other(symbol, known):
    [other] = [s for s in symbol.iter_predecessors() if s.id() != known.id()] or [None]
    if other is not None and type(other).__name__ == "BroadcastTo":  # a broadcast factor
        [other] = list(other.iter_predecessors())
    if other is None or type(other).__name__ != "Constant":
        raise NotALayerModel("a layer model's operands are constants")
    return np.asarray(other, dtype=np.float64)


def read_layer_model(model) -> tuple[IntegerForm, np.ndarray | None, object]:
    """Recognise a model :class:`LayerModel` built: its integer form, the offsets of its
    state 0 (``None`` without states) and its decision symbol (the Leap emulator answers
    such models classically).

    Raises:
        NotALayerModel: the model has another shape.
    """
    decisions = list(model.iter_decisions())
    if (
        len(decisions) != 1
        or type(decisions[0]).__name__ != "IntegerVariable"
        or decisions[0].ndim() != 2
    ):
        raise NotALayerModel("a layer model has one 2-D integer decision")
    o = decisions[0]
    z, steps = o, np.ones(o.shape())
    while True:  # the steps: one constant, or broadcast factors multiplied in turn
        factor = _only(
            [s for s in z.iter_successors() if type(s).__name__ == "Multiply"], "Multiply"
        )
        steps = steps * _other(factor, z)
        z = factor
        if any(type(s).__name__ == "MatrixMultiply" for s in z.iter_successors()):
            break
    product = _only(z.iter_successors(), "MatrixMultiply")
    gram = _other(product, z)
    difference = _only(product.iter_successors(), "Subtract")
    twice_projection = _other(difference, product)
    summed = _only(_only(difference.iter_successors(), "Multiply").iter_successors(), "Sum")
    total = _only(summed.iter_successors(), "Add")
    offset = float(_other(total, summed))
    span = np.rint(np.broadcast_to(o.upper_bound(), o.shape())).astype(np.int64)
    g = span.shape[0]
    # the neurons' constants c_i are not separable in the model: spread the sum evenly
    form = IntegerForm(gram, span, steps, twice_projection / 2.0, np.full(g, offset / g))
    start = None
    if model.states.size():
        if not model.is_locked():
            model.lock()
        if o.has_state(0):
            start = np.rint(o.state(0)).astype(np.int64)
    return form, start, o
