"""A neuron's samples (``{label: 0/1}`` dicts) to and from arrays without a dictionary
look-up per variable: a sample whose keys are its free variables' labels in the layer's
order (as :meth:`~annealq.layer.LayerQUBO.samples` writes them) is read in one pass; any
other falls back to the look-ups (and their errors).

Example:
    >>> import numpy as np
    >>> labels = (("w", 0), ("w", 1), ("b",))
    >>> free_labels(labels, np.array([0, 2]))
    (('w', 0), ('b',))
    >>> ordered_values({("w", 0): 1, ("b",): 0}, free_labels(labels, np.array([0, 2])))
    array([1, 0])
    >>> ordered_values({("b",): 0, ("w", 0): 1}, free_labels(labels, np.array([0, 2]))) is None
    True
"""

from __future__ import annotations

from operator import itemgetter

import numpy as np


def free_labels(labels: tuple, free: np.ndarray) -> tuple:
    """The labels at the indices ``free``, as a tuple."""
    if len(free) == 0:
        return ()
    if len(free) == 1:
        return (labels[int(free[0])],)
    return itemgetter(*free.tolist())(labels)


def ordered_values(sample, wanted: tuple) -> np.ndarray | None:
    """``sample``'s values as an array when its keys are ``wanted``, in that order, and
    every value is a 0/1 number; else ``None`` (look each label up instead)."""
    if not isinstance(sample, dict) or len(sample) != len(wanted) or tuple(sample) != wanted:
        return None
    values = np.array(tuple(sample.values()))
    if values.dtype.kind not in "biuf" or not np.all((values == 0) | (values == 1)):
        return None
    return values


def sample_dict(labels: tuple, state: np.ndarray, free: np.ndarray) -> dict:
    """``{labels[k]: int(state[k])}`` over the free indices ``k``, in their order."""
    wanted, state = free_labels(labels, free), np.asarray(state)
    if state.dtype.kind in "biu":
        return dict(zip(wanted, state[free].astype(np.int64).tolist()))
    return {label: int(state[k]) for label, k in zip(wanted, free)}
