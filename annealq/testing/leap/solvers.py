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

__all__ = ['SolverCatalog', 'apply_filter', 'EMULATION_LABEL']

#: Marker every emulated answer and solver description carries.
EMULATION_LABEL = "annealq LeapEmulator: classical answers, not quantum hardware"

# extra QPU parameters a real Advantage lists and Ocean code commonly passes
_EXTRA_QPU_PARAMETERS = {
    'annealing_time': "Duration of the quantum annealing (us).",
    'answer_mode': "Answer format: 'histogram' or 'raw'.",
    'auto_scale': "Scale h and J into the available ranges.",
    'flux_biases': "Flux biases per working qubit (ignored by the emulator).",
    'programming_thermalization': "Wait after programming (us).",
    'readout_thermalization': "Wait after each read (us).",
    'reduce_intersample_correlation': "Add delay between samples.",
    'warnings': "Warnings to report (accepted, ignored).",
    # reverse annealing, which annealq's warm starts on the QPU use
    'anneal_schedule': "Piecewise-linear anneal schedule [[t, s], ...].",
    'initial_state': "Initial state of a reverse anneal, per active qubit.",
    'reinitialize_state': "Reset to the initial state before each read.",
    'chain_strength': "Accepted for parity with Ocean composites (ignored).",
}


@functools.lru_cache(maxsize=4)
def _pegasus_data(m: int) -> dict:
    # building the P16 graph takes ~1 s, so do it once per process
    data = mocks.qpu_pegasus_solver_data(
        m, name=f"Advantage_emulated_P{m}",
        problem_timing_data=mocks.qpu_problem_timing_data('advantage'),
    )
    data['properties']['parameters'].update(_EXTRA_QPU_PARAMETERS)
    return data


def _qpu_solver_data(m: int) -> dict:
    data = copy.deepcopy(_pegasus_data(m))
    data['description'] = (f"Emulated {data['properties']['num_qubits']}-qubit "
                           f"Pegasus P{m} QPU ({EMULATION_LABEL})")
    data['properties']['emulation'] = EMULATION_LABEL
    # deterministic load: the mocks draw it at random
    data['avg_load'] = 0.0
    return data


def _hybrid_solver_data() -> dict:
    data = mocks.hybrid_bqm_solver_data(avg_load=0.0)
    data['description'] = f"Emulated hybrid BQM solver ({EMULATION_LABEL})"
    data['properties']['emulation'] = EMULATION_LABEL
    return data


def _get_path(data: dict, path: str):
    node = data
    for key in path.split('.'):
        node = node[key]
    return node


def _set_path(target: dict, source: dict, path: str) -> None:
    # copy one dotted field from source into target, creating parents
    keys = path.split('.')
    try:
        value = _get_path(source, path)
    except (KeyError, TypeError):
        return
    node = target
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def _del_path(target: dict, path: str) -> None:
    keys = path.split('.')
    try:
        parent = _get_path(target, '.'.join(keys[:-1])) if len(keys) > 1 else target
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
    tokens = [t.strip() for t in (spec or '').split(',') if t.strip()]
    if tokens and tokens[0] == 'none':
        result, tokens = {}, tokens[1:]
    else:
        result = copy.deepcopy(data)
        if tokens and tokens[0] == 'all':
            tokens = tokens[1:]
    for token in tokens:
        if token.startswith('-'):
            _del_path(result, token[1:])
        else:
            _set_path(result, data, token.lstrip('+'))
    return result


class SolverCatalog:
    """The emulated solvers: one Pegasus QPU and one hybrid BQM solver.

    Args:
        pegasus_m: Pegasus size parameter of the QPU (16 is Advantage-like).
    """

    def __init__(self, pegasus_m: int = 16):
        self.qpu_data = _qpu_solver_data(pegasus_m)
        self.hybrid_data = _hybrid_solver_data()
        # a client-side solver object, used for the client's own qp coder
        # ordering and its published QPU access-time model
        self.qpu_solver = StructuredSolver(None, self.qpu_data)
        self.qpu_name = self.qpu_data['identity']['name']
        self.hybrid_name = self.hybrid_data['identity']['name']

    def all(self) -> list:
        """Return all solver descriptions."""
        return [self.qpu_data, self.hybrid_data]

    def get(self, name: str) -> Optional[dict]:
        """Return the description of the solver called ``name`` or ``None``."""
        for data in self.all():
            if data['identity']['name'] == name:
                return data
        return None

    def kind_of(self, identity) -> Optional[str]:
        """Return ``'qpu'``, ``'hybrid'`` or ``None`` for a submitted identity."""
        name = identity.get('name') if isinstance(identity, dict) else identity
        if name == self.qpu_name:
            return 'qpu'
        if name == self.hybrid_name:
            return 'hybrid'
        return None

    def hybrid_min_time_limit(self, num_variables: int) -> float:
        """Minimum ``time_limit`` (s), interpolated the way ``LeapHybridSampler`` does."""
        xx, yy = zip(*self.hybrid_data['properties']['minimum_time_limit'])
        return float(np.interp([num_variables], xx, yy)[0])
