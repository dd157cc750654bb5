"""``qpu`` and ``qpu-mock``: a D-Wave QPU through a clique embedding.

Every neuron's QUBO is dense, so it goes through ``DWaveCliqueSampler`` (minorminer's
busclique cache) rather than a heuristic embedding. A BQM larger than the QPU's largest
clique is refused with its size, the limit and a pointer to ``hybrid``.

``qpu-mock`` runs the *same code path* on ``dwave.system.testing.MockDWaveSampler`` (a
real Pegasus or Zephyr graph with classical steepest descent inside, no network): its
results are a classical emulation of the QPU, and their info says so
(``info["emulation"]``), never QPU results.

Parameters: ``num_reads``, ``annealing_time``, ``chain_strength`` and the QPU's other
sampling parameters; ``solver`` (a solver name or feature filter) at construction.

Warm starts (``initial_states``, e.g. GPTQ's solution through the pipeline's
``start="gptq"``) run a **reverse anneal**: the state is spread over its chains as the
QPU's ``initial_state`` (spin values, as the clique sampler embeds the Ising form), the
anneal goes from s = 1 back to ``REVERSE_SCHEDULE``'s turning point, pauses and returns,
with ``reinitialize_state`` so every read restarts from the warm start. Give
``anneal_schedule`` to choose another schedule (it must start and end at s = 1). In the
mock, the classical substitute (steepest descent) starts from that state instead.
Reported in each SampleSet's ``info``: ``chain_break_fraction`` (mean over reads),
``chain_length`` (max and mean), ``qpu_access_time`` (µs) and ``problem_id``.

Through the cloud executor, several neurons share one anneal on disjoint clique embeddings
(:mod:`solvers.qpu_pack`; ``pack=False`` / ``--no-pack`` sends one neuron per anneal).
"""

from __future__ import annotations

import time

import dimod
import numpy as np

from annealq.credentials import auth_message, cloud_options, redact
from annealq.errors import ProblemTooLargeError, SolverUnavailableError, TokenRejectedError
from annealq.protocol import CloudSampler, PendingProblem
from annealq.registry import SolverSpec
from annealq.results import best_result
from solvers import missing_package, qpu_pack
from solvers.cloud import cancel, classify, leap_unavailable, qp_size
from solvers.qpu_pack import CliqueTiles, embedding_report, plan_tiles, submit_packed
from solvers.reverse_anneal import (  # noqa: F401 (REVERSE_SCHEDULE: re-exported)
    REVERSE_SCHEDULE,
    first_state,
    reverse_anneal_parameters,
)

EMULATION_NOTE = "classical emulation of the QPU (dwave.system.testing.MockDWaveSampler)"
QPU_SOLVER = {"qpu": True, "order_by": "-num_active_qubits"}
MOCK_TOPOLOGIES = {"pegasus": [16], "zephyr": [12, 4]}


class CliqueQPUSampler(dimod.Sampler, CloudSampler):
    """Clique-embeds each BQM on a QPU (or a mock of one) and reports embedding statistics.

    Args:
        qpu: a ``DWaveSampler`` or ``MockDWaveSampler``.
        emulation: whether ``qpu`` is a classical mock (labels every result).
        **defaults: default sampling parameters (``num_reads``, ``annealing_time``, …).
    """

    def __init__(self, qpu, *, emulation: bool, **defaults):
        from dwave.system import DWaveCliqueSampler

        class _CliqueOnChild(DWaveCliqueSampler):
            # DWaveCliqueSampler builds its own DWaveSampler; this one takes the child given.
            def __init__(self, child):
                self.child = child

        self._clique = _CliqueOnChild(qpu)
        self._tiles = None
        self.emulation = emulation
        unknown = sorted(set(defaults) - set(self.parameters))
        if unknown:
            raise ValueError(f"unknown QPU parameter(s) {', '.join(unknown)}")
        self.defaults = defaults

    @property
    def parameters(self):
        return {**self._clique.parameters, "chain_strength": [], "initial_states": []}

    @property
    def properties(self):
        return {
            "largest_clique_size": self.largest_clique_size,
            "emulation": self.emulation,
            "chip_id": self._clique.child.properties.get("chip_id"),
            "topology": self._clique.child.properties.get("topology"),
            "identity": self.identity,
        }

    @property
    def identity(self) -> str:
        properties = self._clique.child.properties
        topology = properties.get("topology", {})
        shape = "x".join(map(str, topology.get("shape", [])))
        chip = properties.get("chip_id") or getattr(
            getattr(self._clique.child, "solver", None), "name", None
        )
        return f"{chip}:{topology.get('type')}{shape}"

    @property
    def largest_clique_size(self) -> int:
        return qpu_pack.busclique_retry(lambda: self._clique.largest_clique_size)

    def sample(self, bqm, initial_states=None, **parameters):
        """Sample ``bqm`` through the clique embedding; with ``initial_states`` (the first
        sample is used) a reverse anneal from it."""
        if bqm.num_variables == 0:  # nothing to embed: the one empty sample
            return dimod.SampleSet.from_samples_bqm(
                (np.zeros((1, 0), dtype=np.int8), []),
                bqm,
                info={"emulation": self.emulation, "skipped": "no variables"},
            )
        sampleset, reverse = self._submit(bqm, initial_states, parameters)
        return self._finish(sampleset, reverse)

    def plan(self, bqms, calls, *, pack: bool) -> list[list[int]]:
        if not pack or len(bqms) < 2:
            return [[k] for k in range(len(bqms))]
        if self._tiles is None:
            self._tiles = CliqueTiles(self._clique.child.to_networkx_graph())
        return plan_tiles(self._tiles, bqms, self.largest_clique_size)

    def estimate_seconds(self, bqms, calls) -> float:
        solver = None if self.emulation else self._clique.child.solver
        if solver is None:  # a mock QPU bills nothing
            return 0.0
        parameters = {
            k: v
            for k, v in {**self.defaults, **calls[0]}.items()
            if k
            in (
                "num_reads",
                "annealing_time",
                "anneal_schedule",
                "readout_thermalization",
                "programming_thermalization",
            )
        }
        qubits = sum(b.num_variables for b in bqms) * max(2, self.largest_clique_size // 16)
        return float(solver.estimate_qpu_access_time(num_qubits=qubits, **parameters)) / 1e6

    def submit(self, bqms, calls) -> PendingProblem:
        starts = [call.get("initial_states") for call in calls]
        parameters = {
            k: v for k, v in {**self.defaults, **calls[0]}.items() if k != "initial_states"
        }
        if len(bqms) == 1:
            pending = _Pending(self, bqms[0], *self._submit(bqms[0], starts[0], parameters))
            pending.size = self._qp_bytes(bqms)
            return pending
        if any(b.num_variables > self.largest_clique_size for b in bqms):
            self._check_size(max(bqms, key=lambda b: b.num_variables))
        if any(start is not None for start in starts):
            parameters = reverse_anneal_parameters(bqms[0], starts[0], parameters)
            parameters.pop("initial_state")
            starts = [first_state(bqm, start) for bqm, start in zip(bqms, starts)]
        else:
            starts = None
        parameters.pop("chain_strength", None)  # each neuron's chains get their own
        pending = submit_packed(
            self._clique.child, self._tiles, bqms, parameters, starts, self.emulation
        )
        pending.size = self._qp_bytes(bqms)
        return pending

    def _qp_bytes(self, bqms) -> int:
        """The problem's ``qp`` payload, at least (a mock QPU uploads nothing)."""
        if self.emulation:
            return 0
        qubits = len(self._clique.child.properties["qubits"])
        return qp_size(qubits, sum(b.num_interactions for b in bqms))

    def classify(self, exc):
        return classify(exc)

    def _check_size(self, bqm) -> None:
        limit = self.largest_clique_size
        if bqm.num_variables > limit:
            raise ProblemTooLargeError(
                f"a BQM of {bqm.num_variables} variables does not fit this QPU's largest "
                f"clique embedding ({limit} variables); use the 'hybrid' solver (or a local "
                f"one such as 'neal') for neurons of this size"
            )

    def _submit(self, bqm, initial_states, parameters):
        """The clique sampler's (unresolved) sample set and the reverse anneal's settings."""
        self._check_size(bqm)
        parameters = {**self.defaults, **parameters}
        reverse = None
        if initial_states is not None:
            parameters = reverse_anneal_parameters(bqm, initial_states, parameters)
            reverse = {
                "anneal_schedule": [list(p) for p in parameters["anneal_schedule"]],
                "reinitialize_state": parameters["reinitialize_state"],
            }
        sampleset = qpu_pack.busclique_retry(
            self._clique.sample, bqm, return_embedding=True, **parameters
        )
        return sampleset, reverse

    def _finish(self, sampleset, reverse):
        sampleset.resolve()
        sampleset.info.update(embedding_report(sampleset, self.emulation, EMULATION_NOTE))
        if reverse is not None:
            sampleset.info["reverse_anneal"] = reverse
        return sampleset


class _Pending(PendingProblem):
    """One neuron on its own clique embedding."""

    def __init__(self, sampler, bqm, sampleset, reverse):
        self.sampler, self.bqm, self.sampleset, self.reverse = sampler, bqm, sampleset, reverse
        self.began = time.perf_counter()
        self.size = 0

    def done(self) -> bool:
        return self.sampleset.done()

    def results(self) -> list:
        sampleset = self.sampler._finish(self.sampleset, self.reverse)
        return [(best_result(self.bqm, sampleset, time.perf_counter() - self.began), sampleset)]

    def billed_seconds(self) -> float:
        return self.sampleset.info.get("timing", {}).get("qpu_access_time", 0.0) / 1e6

    def uploaded_bytes(self) -> int:
        return self.size

    def cancel(self) -> None:
        cancel(self.sampleset)


def make_qpu(*, solver=None, **defaults) -> CliqueQPUSampler:
    """The real QPU, reached with the configured Leap token."""
    from dwave.system import DWaveSampler

    try:
        # explicit, so that a DWAVE_API_SOLVER meant for the hybrid solver (it applies to
        # both samplers) does not select a hybrid solver here
        qpu = DWaveSampler(solver=solver or QPU_SOLVER, **cloud_options())
    except Exception as exc:  # network, auth and solver-selection errors from the client
        if classify(exc)[0] == "auth":
            raise TokenRejectedError(auth_message("connecting to Leap")) from None
        raise SolverUnavailableError(
            f"could not reach a D-Wave QPU: {redact(f'{type(exc).__name__}: {exc}')}"
        ) from None
    return CliqueQPUSampler(qpu, emulation=False, **defaults)


def make_mock_qpu(*, topology: str = "pegasus", **defaults) -> CliqueQPUSampler:
    """The clique-embedding path on a mock QPU graph: a classical emulation, no network."""
    from dwave.system.testing import MockDWaveSampler

    if topology not in MOCK_TOPOLOGIES:
        raise ValueError(
            f"unknown mock topology {topology!r}; choose one of {sorted(MOCK_TOPOLOGIES)}"
        )

    class _WarmStartMock(MockDWaveSampler):
        # the classical substitute (steepest descent) starts from ``initial_state`` when a
        # reverse anneal is asked for, rather than from random states
        @dimod.bqm_structured
        def sample(self, bqm, **kwargs):
            state = kwargs.get("initial_state")
            saved = self.substitute_kwargs
            if state is not None:
                order = list(bqm.variables)
                self.substitute_kwargs = {
                    **saved,
                    "initial_states_generator": "tile",
                    "initial_states": (np.array([[state[v] for v in order]]), order),
                }
            try:
                return super().sample(bqm, **kwargs)
            finally:
                self.substitute_kwargs = saved

    qpu = _WarmStartMock(
        topology_type=topology, topology_shape=MOCK_TOPOLOGIES[topology], parameter_warnings=False
    )
    return CliqueQPUSampler(qpu, emulation=True, **defaults)


SPEC = SolverSpec(make_qpu, leap_unavailable, "D-Wave QPU, clique embedding (needs a Leap token)")
MOCK_SPEC = SolverSpec(
    make_mock_qpu,
    lambda: missing_package("dwave.system", "dwave-system"),
    f"offline QPU path: {EMULATION_NOTE}; its steepest descent on a "
    "chained embedding is no measure of a QPU, so it starts from RTN and "
    "a neuron it makes worse keeps RTN's rounding",
    emulation=True,
    default_start="rtn",
)
