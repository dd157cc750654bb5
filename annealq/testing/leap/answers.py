"""Classical answers for emulated problems.

QPU problems arrive in the client's ``qp`` encoding over the solver's qubits;
they are decoded into a BQM over the active qubits, sampled with simulated
annealing (dwave-samplers) and re-encoded in the ``qp`` answer format.
Hybrid problems are uploaded dimod BQM files; they are sampled the same way
and answered in the ``bq`` format (a serialized :class:`dimod.SampleSet`).
Nonlinear problems are uploaded ``dwave-optimization`` models; the emulator
recognises annealq's layer models (:mod:`annealq.integer_model`) and runs
greedy coordinate descent (CDQuant's, :meth:`IntegerForm.descend`)
on their integers from their initial state; any other model gets its initial
state back. They are answered in the
``binary-ref`` format: a URL from which the client fetches the states file.

Every RNG seed derives from the problem content, so the same problem always
gets the same answer.
"""

from __future__ import annotations

import base64
import math

import dimod
import numpy as np
from dwave.samplers import SteepestDescentSolver

from annealq.integer_model import NotALayerModel, read_layer_model
from annealq.testing.leap.anneal import anneal, anneal_components, problem_seed
from annealq.testing.leap.bqm_file import BQMVectors
from annealq.testing.leap.solvers import EMULATION_LABEL

__all__ = [
    "problem_seed",
    "decode_qp_bqm",
    "qpu_answer",
    "hybrid_answer",
    "nl_answer",
    "qpu_access_time_us",
]

# coordinate-descent moves per entry of a nonlinear layer model, at most
_NL_DESCENT_STEPS = 10


def _doubles(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8")


def decode_qp_bqm(solver, data: dict, problem_type: str) -> dimod.BinaryQuadraticModel:
    """Decode ``qp`` problem data into a BQM over the active qubits.

    The client encodes inactive qubits' linear biases as NaN and only sends
    couplers whose both ends are active, in the solver's coupler order.

    Args:
        solver: A :class:`dwave.cloud.solver.StructuredSolver` for the QPU.
        data: The ``data`` field of the submitted problem.
        problem_type: ``'ising'`` or ``'qubo'``.

    Returns:
        The BQM (SPIN for ising, BINARY for qubo), without the offset: SAPI
        energies exclude it and the client adds it back.
    """
    lin = _doubles(data["lin"])
    qubits = solver._encoding_qubits
    active = {q for q, bias in zip(qubits, lin) if not math.isnan(bias)}
    linear = {q: float(b) for q, b in zip(qubits, lin) if q in active}
    couplers = [(u, v) for u, v in solver._encoding_couplers if u in active and v in active]
    quad = _doubles(data["quad"])
    if len(quad) != len(couplers):
        raise ValueError(f"qp data has {len(quad)} couplings for {len(couplers)} active couplers")
    quadratic = {edge: float(b) for edge, b in zip(couplers, quad)}
    vartype = dimod.SPIN if problem_type == "ising" else dimod.BINARY
    return dimod.BinaryQuadraticModel(linear, quadratic, 0.0, vartype)


def _reverse_anneal(bqm, num_reads: int, initial_state, active) -> dimod.SampleSet:
    # a reverse anneal stays near its start: emulated as a descent from it (SAPI sends the
    # state per qubit of the chip, 3 for qubits the problem does not use)
    start = np.array([[initial_state[q] for q in active]] * num_reads, dtype=np.int8)
    return SteepestDescentSolver().sample(bqm, initial_states=(start, active))


def qpu_access_time_us(solver, num_qubits: int, params: dict) -> float:
    """QPU access time (us), from the client's own published timing model.

    Uses :meth:`StructuredSolver.estimate_qpu_access_time` with the solver's
    ``problem_timing_data``: programming time plus, per read, anneal, readout
    and inter-sample delay.
    """
    known = (
        "num_reads",
        "annealing_time",
        "anneal_schedule",
        "initial_state",
        "reinitialize_state",
        "programming_thermalization",
        "readout_thermalization",
        "reduce_intersample_correlation",
    )
    kwargs = {k: params[k] for k in known if params.get(k) is not None}
    kwargs.setdefault("num_reads", 1)
    return float(solver.estimate_qpu_access_time(num_qubits=max(1, num_qubits), **kwargs))


def _qpu_timing(solver, num_qubits: int, params: dict) -> dict:
    timing_data = solver.properties["problem_timing_data"]
    access = qpu_access_time_us(solver, num_qubits, params)
    reads = int(params.get("num_reads") or 1)
    programming = min(access, timing_data["typical_programming_time"])
    sampling = access - programming
    anneal = float(params.get("annealing_time") or timing_data["default_annealing_time"])
    delay = timing_data["qpu_delay_time_per_sample"]
    readout = max(0.0, sampling / reads - anneal - delay)
    return {
        "qpu_access_time": access,
        "qpu_programming_time": programming,
        "qpu_sampling_time": sampling,
        "qpu_anneal_time_per_sample": anneal,
        "qpu_readout_time_per_sample": readout,
        "qpu_delay_time_per_sample": delay,
        "qpu_access_overhead_time": 0.0,
        "total_post_processing_time": 0.0,
        "post_processing_overhead_time": 0.0,
        # the only place a QPU answer can carry a label into SampleSet.info
        "emulation": EMULATION_LABEL,
    }


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _encode_qp_answer(sampleset, active, num_variables, answer_mode) -> dict:
    """Encode samples over ``active`` qubits in SAPI's ``qp`` answer format."""
    if answer_mode != "raw":
        sampleset = sampleset.aggregate()
    sampleset = sampleset.change_vartype(dimod.BINARY) if len(active) else sampleset
    if len(active):
        bits = sampleset.record.sample[:, [sampleset.variables.index(q) for q in active]]
    else:
        bits = np.zeros((len(sampleset), 0), dtype=np.uint8)
    order = np.argsort(sampleset.record.energy, kind="stable")
    # each solution is padded to whole bytes, most significant bit first
    packed = np.packbits(bits[order].astype(np.uint8), axis=1)
    answer = {
        "format": "qp",
        "num_variables": num_variables,
        "active_variables": _b64(np.asarray(active, dtype="<i4")),
        "energies": _b64(np.asarray(sampleset.record.energy[order], dtype="<f8")),
        "solutions": base64.b64encode(packed.tobytes()).decode("ascii"),
    }
    if answer_mode != "raw":
        answer["num_occurrences"] = _b64(
            np.asarray(sampleset.record.num_occurrences[order], dtype="<i4")
        )
    return answer


def qpu_answer(solver, data: dict, problem_type: str, params: dict) -> dict:
    """Answer a QPU problem classically.

    Args:
        solver: Client-side :class:`StructuredSolver` of the emulated QPU.
        data: ``qp``-encoded problem data.
        problem_type: ``'ising'`` or ``'qubo'``.
        params: Submitted sampling parameters.

    Returns:
        The ``answer`` field of the SAPI problem response.
    """
    bqm = decode_qp_bqm(solver, data, problem_type)
    reads = int(params.get("num_reads") or 1)
    seed = problem_seed(data["lin"], data["quad"], problem_type, sorted(params.items()))
    active = sorted(bqm.variables)
    if active and params.get("initial_state") is not None:
        sampleset = _reverse_anneal(bqm, reads, params["initial_state"], active)
    elif active:
        sampleset = anneal(bqm, reads, seed)
    else:
        sampleset = dimod.SampleSet.from_samples(
            ([[]] * reads, []), bqm.vartype, energy=[0.0] * reads
        )
    answer = _encode_qp_answer(
        sampleset, active, solver.properties["num_qubits"], params.get("answer_mode", "histogram")
    )
    answer["timing"] = _qpu_timing(solver, len(active), params)
    return answer


def hybrid_answer(bqm: BQMVectors, time_limit: float, charge_time: float) -> dict:
    """Answer a hybrid BQM problem classically, in the ``bq`` format.

    Args:
        bqm: The uploaded BQM, as vectors.
        time_limit: Requested run time (s).
        charge_time: Billed time (s), at least the solver's minimum.

    Returns:
        The ``answer`` field of the SAPI problem response.
    """
    # like Leap's hybrid solvers, decompose: several neurons packed into one BQM are
    # disjoint components, each annealed on its own
    best = anneal_components(bqm) if bqm.num_variables else {}
    values = [best[v] for v in bqm.labels]
    sampleset = dimod.SampleSet.from_samples(
        ([values], bqm.labels), bqm.vartype, energy=[bqm.energy(values)]
    )
    # times in microseconds, as Leap's hybrid solvers report them
    info = {
        "run_time": int(round(time_limit * 1e6)),
        "charge_time": int(round(charge_time * 1e6)),
        # no quantum hardware is involved in an emulated answer
        "qpu_access_time": 0,
        "emulation": EMULATION_LABEL,
    }
    sampleset = dimod.SampleSet(sampleset.record, sampleset.variables, info, sampleset.vartype)
    return {"format": "bq", "data": sampleset.to_serializable(use_bytes=False)}


def _search_layer(model) -> str:
    """Improve a recognised layer model's state 0 in place; return what was done."""
    try:
        form, start, decision = read_layer_model(model)
    except NotALayerModel:
        return "not an annealq layer model: its initial state is returned"
    offsets = np.zeros_like(form.span) if start is None else start
    # CDQuant's greedy coordinate descent on the model's integers (deterministic)
    offsets = form.descend(offsets, max_steps=_NL_DESCENT_STEPS * form.span.shape[1])
    if not model.states.size():
        model.states.resize(1)
    decision.set_state(0, offsets)
    return "greedy coordinate descent (CDQuant) from the initial state"


def nl_answer(model, time_limit: float, charge_time: float, url: str) -> tuple[dict, bytes]:
    """Answer a nonlinear problem classically, in the ``binary-ref`` format.

    Args:
        model: The uploaded :class:`dwave.optimization.Model`.
        time_limit: Run time (s).
        charge_time: Billed time (s).
        url: Where the client fetches the states file.

    Returns:
        The ``answer`` field of the SAPI problem response, and the states file.
    """
    how = _search_layer(model)
    if not model.is_locked():
        model.lock()
    if not model.states.size():
        model.states.resize(1)
    data = model.states.to_file().read()
    answer = {
        "format": "binary-ref",
        "auth_method": "sapi-token",
        "url": url,
        # times in microseconds, as Leap's hybrid solvers report them
        "timing": {
            "qpu_access_time": 0,
            "warnings": [],
            "charge_time": int(round(charge_time * 1e6)),
            "run_time": int(round(time_limit * 1e6)),
            "emulation": f"{EMULATION_LABEL}; {how}",
        },
        "shape": {},
    }
    return answer, data
