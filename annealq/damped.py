"""GPTQ's damped Hessian of a layer's Gram matrix, factorised once per process.

``H = G + damp · mean(diag G) · I`` (a dead input's zero diagonal set to 1 first), its
Cholesky factor and its inverse: tuned GPTQ factorises it at each damping of its grid,
and ``kbest``, started from tuned GPTQ, again at two of the same dampings of the same
layer's Gram. :func:`damped_hessian` keeps the last few, keyed by the Gram's bytes and the
damping, so the second caller gets the first's arrays: the same factorisation, to the bit,
without computing it again.

Example:
    >>> import numpy as np
    >>> G = np.array([[4.0, 1.0], [1.0, 0.0]])
    >>> diagonal, factor, H_inv = damped_hessian(G, 0.01)
    >>> diagonal.tolist()                    # the dead input's 1, then 1% of their mean
    [4.025, 1.025]
    >>> damped_hessian(G, 0.01)[2] is H_inv  # kept: not factorised again
    True
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

KEPT = 3  # a tuning grid's dampings (tuned GPTQ's three)
_kept: OrderedDict = OrderedDict()
_lock = threading.Lock()


def damped_hessian(G: np.ndarray, damp: float) -> tuple:
    """``(diag H, cho_factor(H) or None, H⁻¹ or None)`` for the damped ``H`` of ``G``
    (``None`` twice where ``H`` is not positive definite). The arrays are shared with
    later calls on an equal ``G`` and ``damp``: read-only.
    """
    import scipy.linalg  # lazily: it costs ~0.4 s to import

    G = np.ascontiguousarray(G, dtype=np.float64)
    key = (G.shape, hashlib.blake2b(G.data, digest_size=16).digest(), float(damp))
    with _lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    k = len(G)
    H = G.copy()
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    H[np.diag_indices(k)] += damp * np.mean(np.diag(H))
    try:
        factor = scipy.linalg.cho_factor(H)
    except np.linalg.LinAlgError:
        found = (np.diag(H).copy(), None, None)
    else:
        found = (np.diag(H).copy(), factor, scipy.linalg.cho_solve(factor, np.eye(k)))
        found[1][0].flags.writeable = found[2].flags.writeable = False
    found[0].flags.writeable = False
    with _lock:
        _kept[key] = found
        while len(_kept) > KEPT:
            _kept.popitem(last=False)
    return found


def forget() -> None:
    """Drop every kept factorisation (a benchmark times each run from nothing)."""
    with _lock:
        _kept.clear()
