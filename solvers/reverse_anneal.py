"""A warm start on the QPU (:mod:`solvers.qpu`): the parameters of a reverse anneal from
the first of ``initial_states``, the state as spins (the clique sampler embeds the Ising
form) and a schedule that leaves s = 1, turns at ``REVERSE_SCHEDULE``'s point, pauses and
returns.

Example:
    >>> import dimod
    >>> bqm = dimod.BQM({"a": 1.0, "b": -1.0}, {("a", "b"): 0.5}, 0.0, "BINARY")
    >>> reverse_anneal_parameters(bqm, [{"a": 1, "b": 0}], {})["initial_state"]
    {'a': 1, 'b': -1}
"""

from __future__ import annotations

import dimod

# s = 1 → 0.45 in 5 µs, 10 µs pause, back to 1 in 5 µs: D-Wave's reverse-annealing
# examples turn between s ≈ 0.4 and 0.6; lower explores further from the warm start.
REVERSE_SCHEDULE = ((0.0, 1.0), (5.0, 0.45), (15.0, 0.45), (20.0, 1.0))


def first_state(bqm, initial_states) -> dict | None:
    """The first warm-start sample as ``{label: value}``, or ``None``."""
    if initial_states is None:
        return None
    array, labels = dimod.as_samples(initial_states, labels_type=dimod.variables.Variables)
    return dict(zip(labels, array[0].tolist()))


def reverse_anneal_parameters(bqm, initial_states, parameters: dict) -> dict:
    """The QPU parameters of a reverse anneal from the first of ``initial_states``."""
    if "annealing_time" in parameters:
        raise ValueError(
            "a warm start runs a reverse anneal, which takes anneal_schedule, "
            "not annealing_time; drop annealing_time or give an anneal_schedule"
        )
    samples = dimod.as_samples(initial_states, labels_type=dimod.variables.Variables)
    array, labels = samples
    if len(array) == 0:
        raise ValueError("initial_states is empty")
    first = dict(zip(labels, array[0].tolist()))
    missing = [v for v in bqm.variables if v not in first]
    if missing:
        raise ValueError(
            f"the warm start has no value for {len(missing)} variable(s) of the "
            f"BQM, e.g. {missing[0]!r}"
        )
    # DWaveCliqueSampler embeds the Ising form: initial states are spins there
    spin = {
        v: (2 * int(first[v]) - 1) if bqm.vartype is dimod.BINARY else int(first[v])
        for v in bqm.variables
    }
    schedule = parameters.get("anneal_schedule", REVERSE_SCHEDULE)
    if schedule[0][1] != 1.0 or schedule[-1][1] != 1.0:
        raise ValueError(
            f"a reverse anneal's schedule must start and end at s = 1, got "
            f"{[list(p) for p in schedule]}"
        )
    return {
        **parameters,
        "initial_state": spin,
        "anneal_schedule": [list(point) for point in schedule],
        "reinitialize_state": parameters.get("reinitialize_state", True),
    }
