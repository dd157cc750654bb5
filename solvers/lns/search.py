"""Exact large-neighbourhood search: polish a neuron's solution by solving windows of
strongly correlated variables **exactly** with the sphere decoder.

Single-flip moves (simulated annealing, descent) stall on this QUBO because its variables
come in correlated groups — neighbouring pixels carry nearly the same information, so
weight moves between them in pairs or more. A window is a random variable plus its
``window − 1`` most correlated partners (correlation of the calibration inputs, the same
for every neuron of a layer); everything outside the window stays fixed, and the window's
``2^window`` assignments are searched exactly. A round never raises the energy.

Example:
    >>> import numpy as np
    >>> from annealq import formulate_layer
    >>> rng = np.random.default_rng(0)
    >>> lq = formulate_layer(rng.normal(size=(2, 30)), rng.normal(size=2),
    ...                      rng.normal(size=(60, 30)), bits=2)
    >>> start = lq.states(lq.rtn_integers())
    >>> states = polish(lq, [0, 1], start, rounds=20, window=12)
    >>> all(lq.energy(i, dict(zip(lq.labels(), s))) <= lq.energy(i, lq.rtn_sample(i))
    ...     for i, s in enumerate(states))
    True
"""

from __future__ import annotations

import time

import numpy as np

from solvers.exact_bb.box import solve_box
from solvers.exact_bb.sphere import solve_dense

DEFAULT_ROUNDS = 100
DEFAULT_WINDOW = 32
DEFAULT_WINDOW_TIME = 0.05


def neighbours(gram: np.ndarray, window: int) -> np.ndarray:
    """For every column of ``ÂᵀÂ``, the ``window`` columns most correlated with it (itself
    first). Scaling by steps cancels in a correlation, so one table serves the layer."""
    diagonal = np.sqrt(np.clip(np.diag(gram), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = np.abs(gram) / np.outer(diagonal, diagonal)
    correlation = np.nan_to_num(correlation, nan=0.0, posinf=0.0)
    np.fill_diagonal(correlation, np.inf)
    window = min(window, len(gram))
    top = np.argpartition(-correlation, window - 1, axis=1)[:, :window]
    order = np.argsort(-np.take_along_axis(correlation, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


def polish(
    lq,
    neurons,
    states,
    *,
    rounds: int = DEFAULT_ROUNDS,
    window: int | None = None,
    seed: int = 0,
    time_limit: float | None = None,
    window_time: float = DEFAULT_WINDOW_TIME,
) -> np.ndarray:
    """Run ``rounds`` exact window solves on each of ``neurons`` from ``states``.

    Args:
        lq: the layer's :class:`~annealq.formulation.LayerQUBO`.
        neurons: the neurons, one per row of ``states``.
        states: ``(len(neurons), f+1)`` 0/1 starting states (non-free entries 0).
        rounds: windows per neuron.
        window: variables per window (``2^window`` assignments searched exactly; the
            search is fast up to ~40 on real layers). Default: 32 divided by the layer's
            ``window_bits``, so a window covers about 32 weights' worth of choices.
        seed: picks the windows' seed variables; neuron ``i`` draws from its own stream
            ``(seed, i)``, so its result does not depend on the other neurons of the call.
        time_limit: seconds for the whole call, shared out equally among the neurons still
            to search; a neuron's rounds stop when its share is spent.
        window_time: seconds for one window's search; a window not finished by then
            keeps the best assignment found (never worse than before).

    Returns:
        The polished states, same shape; each neuron's energy is ≤ its start's.
    """
    if window is None:  # about the same number of entries per window, whatever their bits
        window = max(2, DEFAULT_WINDOW // lq.window_bits)
    if rounds < 0 or window < 1:
        raise ValueError(f"rounds must be >= 0 and window >= 1, got {rounds}, {window}")
    table = neighbours(lq.gram, window)
    deadline = None if time_limit is None else time.perf_counter() + time_limit
    out = np.array(states, dtype=np.int8, copy=True)
    for row, i in enumerate(neurons):
        rng = np.random.default_rng((seed, int(i)))
        out[row] = _polish_neuron(
            lq,
            int(i),
            out[row],
            table,
            rounds,
            rng,
            _share(deadline, len(neurons) - row),
            window_time,
        )
    return out


def _share(deadline, neurons_left: int):
    """This neuron's deadline: an equal share of the time left, so that a time limit
    leaves no neuron of the call unsearched (a neuron that finishes early leaves its
    time to the rest)."""
    if deadline is None:
        return None
    now = time.perf_counter()
    return now + max(deadline - now, 0.0) / neurons_left


def _polish_neuron(lq, i, state, table, rounds, rng, deadline, window_time):
    free = lq.free[i]
    live = np.flatnonzero(free & (np.diag(lq.gram) > 0))
    if len(live) == 0:
        return state
    d = lq.scales[i]
    u = state.astype(np.float64)
    field = d * (lq.gram @ (d * u))  # Q u, kept up to date
    for _ in range(rounds):
        if deadline is not None and time.perf_counter() > deadline:
            break
        S = table[rng.choice(live)]
        S = S[free[S]]
        Q_SS = lq.gram[np.ix_(S, S)] * np.outer(d[S], d[S])
        # the window's linear terms given everything outside it: h_S + 2 Q_{S,rest} u_rest
        h_S = lq.linear[i, S] + 2.0 * (field[S] - Q_SS @ u[S])
        result = solve_dense(h_S, Q_SS, 0.0, incumbent=u[S], time_limit=window_time)
        change = result.u - u[S]
        if np.any(change):
            u[S] = result.u
            field += d * (lq.gram[:, S] @ (d[S] * change))
    return u.astype(np.int8)


DEFAULT_ENTRY_WINDOW = 24
DEFAULT_INTEGER_ROUNDS = 1000
DEFAULT_MAX_NODES = 100_000


def polish_integers(
    lq,
    neurons,
    states,
    *,
    rounds: int = DEFAULT_INTEGER_ROUNDS,
    window: int = DEFAULT_ENTRY_WINDOW,
    seed: int = 0,
    time_limit: float | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> np.ndarray:
    """Like :func:`polish`, but each window is ``window`` *entries* (weights or the bias)
    searched over their whole integer windows ``[base, base + span]`` by the box sphere
    decoder (:func:`solvers.exact_bb.box.solve_box`). With several bits per weight this is the
    stronger search: the bounds come from the inputs' Gram matrix, not from the
    (collinear) bits of one weight, and a weight moves by any number of steps in one go.

    Windows are seeded by each live entry in turn (a fresh random order every pass), and a
    neuron stops early once a whole pass changes nothing: every window is then at its
    exact optimum given the rest. A window's result is kept only if its exact energy
    change is negative, so a neuron's energy never rises.
    """
    if rounds < 0 or window < 1:
        raise ValueError(f"rounds must be >= 0 and window >= 1, got {rounds}, {window}")
    gram = lq.entry_gram
    table = neighbours(gram, window)
    deadline = None if time_limit is None else time.perf_counter() + time_limit
    out = np.array(states, dtype=np.int8, copy=True)
    for row, i in enumerate(neurons):
        i = int(i)
        offsets = lq.integers(i, out[row]) - lq.base[i]
        offsets = polish_offsets(
            *lq.integer_form(i),
            gram,
            offsets,
            table=table,
            rounds=rounds,
            rng=np.random.default_rng((seed, i)),
            deadline=_share(deadline, len(neurons) - row),
            max_nodes=max_nodes,
        )
        out[row] = lq.states((lq.base[i] + offsets)[None, :], [i])[0]
    return out


def polish_offsets(
    span,
    e,
    projection,
    gram,
    o,
    *,
    table,
    rounds: int,
    rng,
    deadline: float | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> np.ndarray:
    """One neuron's window search in its integer form (:meth:`LayerQUBO.integer_form`):
    minimise ``−2 Σ_c e_c o_c p_c + (e∘o)ᵀ G (e∘o)`` over ``0 ≤ o ≤ span`` from ``o``.

    ``table`` is :func:`neighbours` of ``gram``; ``deadline`` a ``perf_counter`` time.
    Also what the Leap emulator runs on a layer's integer model (its nonlinear solver).
    """
    live = np.flatnonzero((span > 0) & (np.diag(gram) > 0))
    if len(live) == 0:
        return o
    o = np.asarray(o, dtype=np.int64).copy()
    field = gram @ (e * o)  # G z with z = e ∘ o, kept up to date
    seeds = np.concatenate([rng.permutation(live) for _ in range(-(-rounds // len(live)))])[:rounds]
    unchanged = 0
    for seed in seeds:
        if unchanged >= len(live) or (deadline is not None and time.perf_counter() > deadline):
            break
        unchanged += 1
        S = table[seed]
        S = S[(span[S] > 0) & (np.diag(gram)[S] > 0)]
        e_S = e[S]
        G_SS = gram[np.ix_(S, S)]
        H = G_SS * np.outer(e_S, e_S)
        b = e_S * (field[S] - G_SS @ (e_S * o[S]) - projection[S])
        new = solve_box(
            H, b, np.zeros(len(S), np.int64), span[S], incumbent=o[S], max_nodes=max_nodes
        ).o
        delta = new - o[S]
        if np.any(delta) and delta @ H @ delta + 2 * delta @ (H @ o[S] + b) < 0:
            unchanged = 0
            o[S] = new
            field += gram[:, S] @ (e_S * delta)
    return o
