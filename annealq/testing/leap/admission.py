"""What the emulator checks when a problem is submitted, per solver kind: the uploaded data
decodes, the problem is within the solver's limits; and the service and billed seconds
each problem is given.
"""

from __future__ import annotations

import io

from annealq.testing.leap import answers
from annealq.testing.leap.bqm_file import read_bqm_vectors
from annealq.testing.leap.records import Problem

__all__ = ["SubmitError", "prepare_hybrid", "prepare_nl", "prepare_qpu"]


class SubmitError(Exception):
    """A submitted problem refused, with the HTTP status code Leap answers."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def _uploaded(problem: Problem, uploads) -> bytes:
    raw = uploads.data(str(problem.data.get("data")))
    if raw is None:
        raise SubmitError(400, "problem data reference is not a completed upload")
    return raw


def prepare_nl(problem: Problem, catalog, uploads) -> None:
    """Check a nonlinear model's upload against the solver's limits; set its times."""
    if problem.type != "nl" or problem.data.get("format") != "ref":
        raise SubmitError(400, "nonlinear problems must be nl in 'ref' format")
    raw = _uploaded(problem, uploads)
    try:
        from dwave.optimization import Model

        model = Model.from_file(io.BytesIO(raw))
    except Exception as exc:  # any decoding failure is the client's fault
        raise SubmitError(400, f"uploaded data is not a nonlinear model: {exc}") from None
    props = catalog.nl_data["properties"]
    for size, limit in (
        (model.num_nodes(), "maximum_number_of_nodes"),
        (model.state_size(), "maximum_state_size"),
        (model.decision_state_size(), "maximum_decision_state_size"),
    ):
        if size > props[limit]:
            raise SubmitError(400, f"model is over the solver's {limit} ({size} > {props[limit]})")
    minimum = catalog.nl_min_time_limit(model)
    time_limit = float(problem.params.get("time_limit") or minimum)
    if time_limit > props["maximum_time_limit_hrs"] * 3600:
        raise SubmitError(400, "time_limit is over the solver's maximum_time_limit_hrs")
    problem.model = model
    # like Leap's: a time limit under the estimated minimum still runs (and is billed)
    # for the minimum
    problem.service_s = problem.billed_s = max(time_limit, minimum)


def prepare_qpu(problem: Problem, catalog, uploads) -> None:
    """Decode a QPU problem's ``qp`` data; set its access time."""
    if problem.type not in ("ising", "qubo") or problem.data.get("format") != "qp":
        raise SubmitError(400, "QPU problems must be ising/qubo in 'qp' format")
    try:
        bqm = answers.decode_qp_bqm(catalog.qpu_solver, problem.data, problem.type)
    except (KeyError, ValueError, TypeError) as exc:
        raise SubmitError(400, f"malformed qp problem data: {exc}") from None
    access_us = answers.qpu_access_time_us(catalog.qpu_solver, bqm.num_variables, problem.params)
    problem.service_s = problem.billed_s = access_us * 1e-6


def prepare_hybrid(problem: Problem, catalog, uploads) -> None:
    """Check a hybrid BQM's upload against the solver's limits; set its times."""
    if problem.type != "bqm" or problem.data.get("format") != "ref":
        raise SubmitError(400, "hybrid problems must be bqm in 'ref' format")
    raw = _uploaded(problem, uploads)
    try:
        bqm = read_bqm_vectors(raw)
    except Exception as exc:  # any decoding failure is the client's fault
        raise SubmitError(400, f"uploaded data is not a BQM file: {exc}") from None
    props = catalog.hybrid_data["properties"]
    if bqm.num_variables > props["maximum_number_of_variables"]:
        raise SubmitError(400, "too many variables for the hybrid solver")
    minimum = catalog.hybrid_min_time_limit(bqm.num_variables)
    time_limit = float(problem.params.get("time_limit") or minimum)
    problem.bqm = bqm
    problem.service_s = time_limit
    problem.billed_s = max(time_limit, minimum)
