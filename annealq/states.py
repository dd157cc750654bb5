"""Conversions between BQMs, dense arrays and warm starts, written once for every solver.

Example:
    >>> import dimod
    >>> bqm = dimod.BQM({"a": 1.0, "b": -2.0}, {("a", "b"): 3.0}, 0.5, "BINARY")
    >>> order, h, Q, offset = dense_qubo(bqm)
    >>> h.tolist(), Q.tolist(), offset
    ([1.0, -2.0], [[0.0, 1.5], [1.5, 0.0]], 0.5)
    >>> start_state({"b": 1, "a": 0}, order, bqm.vartype).tolist()
    [0, 1]
"""

from __future__ import annotations

from collections.abc import Mapping

import dimod
import numpy as np


def dense_qubo(bqm: dimod.BinaryQuadraticModel):
    """The BINARY form of ``bqm`` as dense arrays: ``(order, h, Q, offset)`` with
    ``E(u) = offset + h·u + uᵀQu``, ``Q`` symmetric with a zero diagonal (half of each
    coupler on either side), variables in ``order`` (the BQM's own)."""
    binary = bqm.binary
    order = list(binary.variables)
    h, (row, col, data), offset = binary.to_numpy_vectors(variable_order=order)
    Q = np.zeros((len(order), len(order)))
    np.add.at(Q, (row, col), data / 2.0)
    return order, np.asarray(h, dtype=np.float64), Q + Q.T, float(offset)


def start_state(initial_states, order, vartype) -> np.ndarray | None:
    """The first of ``initial_states`` (anything ``dimod.as_samples`` reads) as a 0/1
    int8 vector over ``order``; ``None`` when there is no state.

    Raises:
        ValueError: the state has no value for one of ``order``'s variables.
    """
    if initial_states is None:
        return None
    samples, labels = dimod.as_samples(initial_states)
    if len(samples) == 0:
        return None
    position = {v: k for k, v in enumerate(labels)}
    try:
        state = samples[0, [position[v] for v in order]]
    except KeyError as exc:
        raise ValueError(f"initial state has no value for variable {exc.args[0]!r}") from None
    return ((state > 0) if vartype is dimod.SPIN else state).astype(np.int8)


def as_vartype(u: np.ndarray, vartype) -> np.ndarray:
    """0/1 states ``u`` in ``vartype`` (spins for SPIN)."""
    return 2 * u.astype(np.int8) - 1 if vartype is dimod.SPIN else u


def initial_sampleset(bqm: dimod.BinaryQuadraticModel, start: Mapping) -> dimod.SampleSet:
    """A one-row SampleSet of the warm start ``start`` ``{label: value}`` over ``bqm``'s
    variables, the ``initial_states`` form dimod samplers take."""
    order = list(bqm.variables)
    states = np.array([[int(start[v]) for v in order]], dtype=np.int8)
    return dimod.SampleSet.from_samples((states, order), bqm.vartype, bqm.energies((states, order)))
