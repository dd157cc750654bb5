"""The labels of a layer's binary variables (:class:`~annealq.layer.LayerQUBO`):
``("w", j)`` and ``("b",)`` with one variable per entry; ``("w", j, t)`` and ``("b", t)``
(bit ``t`` of the entry's window) with wider windows; and a neuron's sample keyed by label
to and from its 0/1 vector over all the layer's variables.

Example:
    >>> variable_labels([0, 0, 1], [1, 2, 1], 1, window_bits=2, bias_window_bits=1)
    (('w', 0, 0), ('w', 0, 1), ('b',))
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from annealq.samples import free_labels, ordered_values, sample_dict

BIAS_LABEL = ("b",)


def weight_label(j: int) -> tuple:
    """The variable label of input ``j``'s weight: ``("w", j)``."""
    return ("w", int(j))


def variable_labels(columns, weights, f: int, window_bits: int, bias_window_bits: int) -> tuple:
    """The label of each variable, from the entry it moves (``columns``: ``0..f-1`` weights,
    ``f`` the bias) and the steps it moves it by (``weights``, ``2^t``)."""
    labels = []
    for column, weight in zip(columns, weights):
        bit = int(weight).bit_length() - 1
        if column < f:
            labels.append(weight_label(column) + ((bit,) if window_bits > 1 else ()))
        else:
            labels.append(BIAS_LABEL + ((bit,) if bias_window_bits > 1 else ()))
    return tuple(labels)


def state_of(labels, free, sample: Mapping, neuron: int) -> np.ndarray:
    """The 0/1 vector over all variables of a sample keyed by label: its values on the
    variables ``free`` marks, 0 elsewhere.

    Raises:
        ValueError: a variable is missing from ``sample`` or is not 0/1 (naming ``neuron``).
    """
    u = np.zeros(len(labels), dtype=np.int64)
    free = np.flatnonzero(free)
    values = ordered_values(sample, free_labels(labels, free))
    if values is not None:  # keys in the layer's order: no look-ups
        u[free] = values
        return u
    for k in free:
        try:
            value = sample[labels[k]]
        except KeyError:
            raise ValueError(
                f"sample for neuron {neuron} has no value for variable {labels[k]!r}"
            ) from None
        if value not in (0, 1):
            raise ValueError(
                f"variable {labels[k]!r} of neuron {neuron} must be 0 or 1, got {value!r}"
            )
        u[k] = value
    return u


def sample_of(labels, free, state) -> dict:
    """The sample ``{label: 0/1}`` of the variables ``free`` marks, from a 0/1 vector over
    all variables (the inverse of :func:`state_of`)."""
    return sample_dict(labels, state, np.flatnonzero(free))
