"""``hybrid``: Leap's hybrid BQM solver (``LeapHybridSampler``), for neurons of any size.

Parameters: ``time_limit`` (seconds; the solver raises it to its own size-dependent
minimum, 3 s up to 1,024 variables on the documented solver) and ``solver`` at
construction. The solver's timing (``run_time``, ``qpu_access_time``, ``charge_time``)
and ``problem_id`` come back in each SampleSet's ``info``.
"""

from __future__ import annotations

from annealq.composites import DefaultsComposite
from annealq.credentials import cloud_options, redact
from annealq.errors import SolverUnavailableError
from annealq.registry import SolverSpec
from solvers.qpu import _qpu_unavailable


def make_sampler(*, solver=None, **defaults):
    from dwave.system import LeapHybridSampler

    try:
        # an explicit solver, so that a DWAVE_API_SOLVER meant for the QPU (it applies to
        # both samplers) does not select a QPU here
        hybrid = LeapHybridSampler(solver=solver or LeapHybridSampler.default_solver,
                                   **cloud_options())
    except Exception as exc:
        raise SolverUnavailableError(
            f"could not reach Leap's hybrid solver: {redact(f'{type(exc).__name__}: {exc}')}"
        ) from None
    return DefaultsComposite(hybrid, **defaults)


SPEC = SolverSpec(make_sampler, _qpu_unavailable,
                  "Leap hybrid BQM solver (needs a Leap token)")
