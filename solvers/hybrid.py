"""``hybrid``: Leap's hybrid BQM solver (``LeapHybridSampler``), for neurons of any size.

Parameters: ``time_limit`` (seconds; the solver raises it to its own size-dependent
minimum, 3 s up to 1,024 variables on the documented solver) and ``solver`` at
construction. The solver's timing (``run_time``, ``qpu_access_time``, ``charge_time``)
and ``problem_id`` come back in each SampleSet's ``info``.

Packing: every problem is billed at least the solver's ``minimum_time_limit`` for its size
(a piecewise-linear curve in the number of variables), so small neurons waste most of what
they pay for. The cloud executor asks :meth:`HybridSampler.plan` for groups of neurons
to send as one BQM with disjoint labels: a neuron joins the group where it saves the most
billed seconds, within the solver's variable and bias limits; answers are split back and
every neuron's energy recomputed exactly from its own BQM.
"""

from __future__ import annotations

import dimod
import numpy as np

from annealq.credentials import auth_message, cloud_options, redact
from annealq.errors import SolverUnavailableError, TokenRejectedError
from annealq.protocol import CloudSampler, PendingProblem
from annealq.registry import SolverSpec
from annealq.results import SolveResult, timing
from solvers.cloud import cancel as _cancel
from solvers.cloud import classify, combine, file_size, leap_unavailable, resolve, sizes, split


class HybridSampler(dimod.Sampler, CloudSampler):
    """A ``LeapHybridSampler`` with default parameters, packing and non-blocking submits.

    Args:
        hybrid: a ``dwave.system.LeapHybridSampler`` (or an object with its interface).
        **defaults: sampling parameters for every call (``time_limit``, …).
    """

    # building a packed BQM and uploading it (~17 MB for 5 MNIST neurons) takes longer than
    # a problem's turn on the solver: several uploads at once keep the solver's slots busy
    # (the cloud client's solver is thread-safe; nothing here is shared between submits)
    concurrent_submits = 4

    def __init__(self, hybrid, **defaults):
        unknown = sorted(set(defaults) - set(hybrid.parameters))
        if unknown:
            raise ValueError(f"unknown hybrid solver parameter(s) {', '.join(unknown)}")
        self._hybrid = hybrid
        self.defaults = defaults

    @property
    def parameters(self) -> dict:
        return dict(self._hybrid.parameters)

    @property
    def properties(self) -> dict:
        return {**self._hybrid.properties, "identity": self.identity}

    @property
    def identity(self) -> str:
        return f"hybrid:{self._hybrid.solver.name}"

    def sample(self, bqm, **parameters) -> dimod.SampleSet:
        return self._hybrid.sample(bqm, **{**self.defaults, **parameters})

    def min_time_limit(self, num_variables: int) -> float:
        """The solver's minimum ``time_limit`` for a problem of this size (seconds)."""
        xx, yy = zip(*self._hybrid.properties["minimum_time_limit"])
        return float(np.interp(num_variables, xx, yy))

    def _time_limit(self, num_variables: int, call) -> float:
        asked = {**self.defaults, **call}.get("time_limit")
        least = self.min_time_limit(num_variables)
        return least if asked is None else max(float(asked), least)

    def plan(self, bqms, calls, *, pack: bool) -> list[list[int]]:
        if not pack or len(bqms) < 2:
            return [[k] for k in range(len(bqms))]
        limits = self._hybrid.properties
        max_vars = limits.get("maximum_number_of_variables", float("inf"))
        max_biases = limits.get("maximum_number_of_biases", float("inf"))
        cost = lambda n: self._time_limit(n, calls[0])  # noqa: E731
        groups: list[list] = []  # [positions, variables, biases]
        counts = [sizes(bqm) for bqm in bqms]  # each BQM read once
        for k in sorted(range(len(bqms)), key=lambda k: -counts[k][0]):
            n, b = counts[k]
            best, saving = None, 0.0
            for group in groups:
                if group[1] + n <= max_vars and group[2] + b <= max_biases:
                    gain = cost(group[1]) + cost(n) - cost(group[1] + n)
                    if gain > saving + 1e-12:
                        best, saving = group, gain
            if best is None:
                groups.append([[k], n, b])
            else:
                best[0].append(k)
                best[1] += n
                best[2] += b
        return [sorted(group[0]) for group in groups]

    def estimate_seconds(self, bqms, calls) -> float:
        return self._time_limit(sum(b.num_variables for b in bqms), calls[0])

    def submit(self, bqms, calls) -> PendingProblem:
        packed, labels = combine(bqms) if len(bqms) > 1 else (bqms[0], [list(bqms[0].variables)])
        call = {
            **self.defaults,
            **calls[0],
            "time_limit": self._time_limit(packed.num_variables, calls[0]),
        }
        return _Pending(
            self._hybrid.sample(packed, **call), bqms, labels, call["time_limit"], file_size(packed)
        )

    def classify(self, exc):
        return classify(exc)


class _Pending(PendingProblem):
    def __init__(self, sampleset, bqms, labels, time_limit, size):
        self.sampleset, self.bqms, self.labels = sampleset, bqms, labels
        self.time_limit, self.size = time_limit, size

    def uploaded_bytes(self) -> int:
        return self.size

    def done(self) -> bool:
        return self.sampleset.done()

    def results(self) -> list:
        resolve(self.sampleset)
        info = self.sampleset.info
        shared = {
            key: info[key]
            for key in ("problem_id", "run_time", "charge_time", "qpu_access_time", "emulation")
            if key in info
        }
        shared["packed_neurons"] = len(self.bqms)
        shared["uploaded_bytes"] = self.size
        seconds = info.get("run_time", 0) / 1e6 / len(self.bqms)
        own = self.sampleset if len(self.bqms) == 1 else None
        return [
            (SolveResult(sample, energy, timing(dict(shared), seconds), seconds), own)
            for sample, energy in split(self.sampleset, self.bqms, self.labels)
        ]

    def cancel(self) -> None:
        _cancel(self.sampleset)

    def billed_seconds(self) -> float:
        charge = self.sampleset.info.get("charge_time")
        return self.time_limit if charge is None else charge / 1e6


def make_sampler(*, solver=None, **defaults):
    from dwave.system import LeapHybridSampler

    try:
        # an explicit solver, so that a DWAVE_API_SOLVER meant for the QPU (it applies to
        # both samplers) does not select a QPU here
        hybrid = LeapHybridSampler(
            solver=solver or LeapHybridSampler.default_solver, **cloud_options()
        )
    except Exception as exc:
        if classify(exc)[0] == "auth":
            raise TokenRejectedError(auth_message("connecting to Leap")) from None
        raise SolverUnavailableError(
            f"could not reach Leap's hybrid solver: {redact(f'{type(exc).__name__}: {exc}')}"
        ) from None
    return HybridSampler(hybrid, **defaults)


SPEC = SolverSpec(make_sampler, leap_unavailable, "Leap hybrid BQM solver (needs a Leap token)")
