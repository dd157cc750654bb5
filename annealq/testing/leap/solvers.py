"""Solver descriptions served by the Leap emulator.

The descriptions come from dwave-cloud-client's own mock data
(:mod:`dwave.cloud.testing.mocks`), so they have exactly the shape the client
parses. A few fields are added where the real samplers need them: QPU
sampling parameters (``DWaveSampler`` refuses parameters a solver doesn't
list) and ``problem_timing_data`` (the client's QPU access-time model).
"""

from __future__ import annotations

import copy
import functools
from typing import Optional

import numpy as np
from dwave.cloud.solver import StructuredSolver
from dwave.cloud.testing import mocks

__all__ = ["SolverCatalog", "apply_filter", "EMULATION_LABEL"]

#: Marker every emulated answer and solver description carries.
EMULATION_LABEL = "annealq LeapEmulator: classical answers, not quantum hardware"

# extra QPU parameters a real Advantage lists and Ocean code commonly passes
_EXTRA_QPU_PARAMETERS = {
    "annealing_time": "Duration of the quantum annealing (us).",
    "answer_mode": "Answer format: 'histogram' or 'raw'.",
    "auto_scale": "Scale h and J into the available ranges.",
    "flux_biases": "Flux biases per working qubit (ignored by the emulator).",
    "programming_thermalization": "Wait after programming (us).",
    "readout_thermalization": "Wait after each read (us).",
    "reduce_intersample_correlation": "Add delay between samples.",
    "warnings": "Warnings to report (accepted, ignored).",
    # reverse annealing, which annealq's warm starts on the QPU use
    "anneal_schedule": "Piecewise-linear anneal schedule [[t, s], ...].",
    "initial_state": "Initial state of a reverse anneal, per active qubit.",
    "reinitialize_state": "Reset to the initial state before each read.",
    "chain_strength": "Accepted for parity with Ocean composites (ignored).",
}


@functools.lru_cache(maxsize=4)
def _pegasus_data(m: int) -> dict:
    # building the P16 graph takes ~1 s, so do it once per process
    data = mocks.qpu_pegasus_solver_data(
        m,
        name=f"Advantage_emulated_P{m}",
        problem_timing_data=mocks.qpu_problem_timing_data("advantage"),
    )
    data["properties"]["parameters"].update(_EXTRA_QPU_PARAMETERS)
    return data


def _qpu_solver_data(m: int) -> dict:
    data = copy.deepcopy(_pegasus_data(m))
    data["description"] = (
        f"Emulated {data['properties']['num_qubits']}-qubit Pegasus P{m} QPU ({EMULATION_LABEL})"
    )
    data["properties"]["emulation"] = EMULATION_LABEL
    # deterministic load: the mocks draw it at random
    data["avg_load"] = 0.0
    return data


def _hybrid_solver_data() -> dict:
    data = mocks.hybrid_bqm_solver_data(avg_load=0.0)
    data["description"] = f"Emulated hybrid BQM solver ({EMULATION_LABEL})"
    data["properties"]["emulation"] = EMULATION_LABEL
    return data


# The mock's limits (1 MiB of state) are placeholders: a 784-input layer's Gram matrix
# alone is 4.9 MB. The emulator publishes room for a 3072-256 layer's integer model in one
# problem; the size multipliers and time constant are the mock's.
NL_LIMITS = {
    "maximum_state_size": 2**28,
    "maximum_decision_state_size": 2**24,
    "maximum_number_of_nodes": 2**16,
}


def _nl_solver_data(limits: Optional[dict]) -> dict:
    data = mocks.hybrid_nl_solver_data(**{**NL_LIMITS, **(limits or {})}, avg_load=0.0)
    data["description"] = f"Emulated hybrid nonlinear solver ({EMULATION_LABEL})"
    data["properties"]["emulation"] = EMULATION_LABEL
    return data


def _get_path(data: dict, path: str):
    node = data
    for key in path.split("."):
        node = node[key]
    return node


def _set_path(target: dict, source: dict, path: str) -> None:
    # copy one dotted field from source into target, creating parents
    keys = path.split(".")
    try:
        value = _get_path(source, path)
    except (KeyError, TypeError):
        return
    node = target
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def _del_path(target: dict, path: str) -> None:
    keys = path.split(".")
    try:
        parent = _get_path(target, ".".join(keys[:-1])) if len(keys) > 1 else target
        del parent[keys[-1]]
    except (KeyError, TypeError):
        pass


def apply_filter(data: dict, spec: Optional[str]) -> dict:
    """Apply a SAPI solver-field ``filter`` to one solver description.

    The client sends e.g. ``all,-status,-avg_load`` (everything but the
    dynamic fields) and ``none,+identity,+status,+avg_load`` (only them).

    Args:
        data: Full solver description.
        spec: Comma-separated filter; ``None`` or empty means ``all``.

    Returns:
        The filtered description (a new dict).
    """
    tokens = [t.strip() for t in (spec or "").split(",") if t.strip()]
    if tokens and tokens[0] == "none":
        result, tokens = {}, tokens[1:]
    else:
        result = copy.deepcopy(data)
        if tokens and tokens[0] == "all":
            tokens = tokens[1:]
    for token in tokens:
        if token.startswith("-"):
            _del_path(result, token[1:])
        else:
            _set_path(result, data, token.lstrip("+"))
    return result


class SolverCatalog:
    """The emulated solvers: one Pegasus QPU, one hybrid BQM solver and one hybrid
    nonlinear solver.

    Args:
        pegasus_m: Pegasus size parameter of the QPU (16 is Advantage-like).
        nl_limits: Overrides of the nonlinear solver's limits (:data:`NL_LIMITS`).
    """

    def __init__(self, pegasus_m: int = 16, nl_limits: Optional[dict] = None):
        self.qpu_data = _qpu_solver_data(pegasus_m)
        self.hybrid_data = _hybrid_solver_data()
        self.nl_data = _nl_solver_data(dict(nl_limits or {}))
        self.nl_name = self.nl_data["identity"]["name"]
        # a client-side solver object, used for the client's own qp coder
        # ordering and its published QPU access-time model
        self.qpu_solver = StructuredSolver(None, self.qpu_data)
        self.qpu_name = self.qpu_data["identity"]["name"]
        self.hybrid_name = self.hybrid_data["identity"]["name"]

    def all(self) -> list:
        """Return all solver descriptions."""
        return [self.qpu_data, self.hybrid_data, self.nl_data]

    def get(self, name: str) -> Optional[dict]:
        """Return the description of the solver called ``name`` or ``None``."""
        for data in self.all():
            if data["identity"]["name"] == name:
                return data
        return None

    def kind_of(self, identity) -> Optional[str]:
        """Return ``'qpu'``, ``'hybrid'``, ``'nl'`` or ``None`` for a submitted identity."""
        name = identity.get("name") if isinstance(identity, dict) else identity
        return {self.qpu_name: "qpu", self.hybrid_name: "hybrid", self.nl_name: "nl"}.get(name)

    def nl_min_time_limit(self, model) -> float:
        """Minimum ``time_limit`` (s) of a nonlinear model, by the rule
        ``LeapHybridNLSampler.estimated_min_time_limit`` applies to these properties."""
        props = self.nl_data["properties"]
        nodes, state = model.num_nodes(), model.state_size()
        return max(
            props.get("num_nodes_multiplier", 8.306792043756981e-05) * nodes
            + props.get("state_size_multiplier", 2.8379674360396316e-10) * state
            + props.get("num_nodes_state_size_multiplier", 2.1097317822863966e-12) * nodes * state
            + props.get("offset", 0.012671678446550175),
            props.get("min_time_limit", 5),
        )

    def hybrid_min_time_limit(self, num_variables: int) -> float:
        """Minimum ``time_limit`` (s), interpolated the way ``LeapHybridSampler`` does."""
        xx, yy = zip(*self.hybrid_data["properties"]["minimum_time_limit"])
        return float(np.interp([num_variables], xx, yy)[0])
