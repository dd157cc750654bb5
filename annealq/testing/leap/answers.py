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
import hashlib
import math

import dimod
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
from dwave.samplers import SimulatedAnnealingSampler, SteepestDescentSolver

from annealq.integer_model import NotALayerModel, read_layer_model
from annealq.testing.leap.solvers import EMULATION_LABEL

__all__ = ['problem_seed', 'decode_qp_bqm', 'qpu_answer', 'hybrid_answer',
           'nl_answer', 'qpu_access_time_us']

# budget of spin updates per QPU problem (reads x sweeps x variables): keeps every
# emulated answer in the millisecond range whatever the problem size
_QPU_UPDATE_BUDGET = 2_000_000
# budget of bias visits per connected component of a hybrid problem (reads x sweeps x
# (variables + interactions), at least 16 sweeps): a dense 619-variable neuron gets 16
# sweeps, ~0.1 s, so the emulator's own work stays small beside the service it emulates
_HYBRID_VISIT_BUDGET = 8_000_000
_HYBRID_READS = 2
# coordinate-descent moves per entry of a nonlinear layer model, at most
_NL_DESCENT_STEPS = 10


def problem_seed(*parts) -> int:
    """Derive a 32-bit RNG seed from the problem content.

    Args:
        *parts: ``bytes`` or ``str`` pieces that identify the problem.

    Returns:
        A seed in ``[0, 2**31)``.
    """
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else str(part).encode())
        digest.update(b'\0')
    # dwave-samplers rejects seeds >= 2**31 in practice, so keep 31 bits
    return int.from_bytes(digest.digest()[:4], 'little') & 0x7FFFFFFF


def _doubles(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype='<f8')


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
    lin = _doubles(data['lin'])
    qubits = solver._encoding_qubits
    active = {q for q, bias in zip(qubits, lin) if not math.isnan(bias)}
    linear = {q: float(b) for q, b in zip(qubits, lin) if q in active}
    couplers = [(u, v) for u, v in solver._encoding_couplers
                if u in active and v in active]
    quad = _doubles(data['quad'])
    if len(quad) != len(couplers):
        raise ValueError(f"qp data has {len(quad)} couplings for "
                         f"{len(couplers)} active couplers")
    quadratic = {edge: float(b) for edge, b in zip(couplers, quad)}
    vartype = dimod.SPIN if problem_type == 'ising' else dimod.BINARY
    return dimod.BinaryQuadraticModel(linear, quadratic, 0.0, vartype)


def _anneal(bqm, num_reads: int, seed: int, budget: int) -> dimod.SampleSet:
    n = max(1, bqm.num_variables)
    sweeps = int(max(16, min(1000, budget // (n * num_reads))))
    return SimulatedAnnealingSampler().sample(
        bqm, num_reads=num_reads, num_sweeps=sweeps, seed=seed)


def _beta_range(bqm) -> list[float]:
    """dwave-samplers' default beta range for ``bqm``, computed with numpy (its own loop
    over the couplings costs more than the sweeps of a dense neuron)."""
    h, (rows, cols, J), _ = bqm.to_numpy_vectors(range(bqm.num_variables))
    if bqm.vartype is dimod.BINARY:     # the same problem over spins, as it anneals
        n = len(h)
        h, J = h / 2 + (np.bincount(rows, J, n) + np.bincount(cols, J, n)) / 4, J / 4
    h, J = np.abs(h), np.abs(J)
    field = h + np.bincount(rows, J, len(h)) + np.bincount(cols, J, len(h))
    smallest = np.where(h > 0, h, np.inf)
    nonzero = J > 0
    for ends in (rows, cols):
        np.minimum.at(smallest, ends[nonzero], J[nonzero])
    hot = math.log(2) / (2 * field.max()) if field.max() > 0 else 1.0
    gaps = smallest[np.isfinite(smallest)]
    if not len(gaps):
        return [0.1, 1.0]
    least = gaps.min()
    return [hot, math.log(np.sum(gaps == least) / 0.01) / (2 * least)]


def _anneal_visits(bqm, num_reads: int, seed: int) -> dimod.SampleSet:
    visits = num_reads * (bqm.num_variables + bqm.num_interactions)
    sweeps = int(max(16, min(1000, _HYBRID_VISIT_BUDGET // max(1, visits))))
    return SimulatedAnnealingSampler().sample(
        bqm, num_reads=num_reads, num_sweeps=sweeps, seed=seed,
        beta_range=_beta_range(bqm))


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
    known = ('num_reads', 'annealing_time', 'anneal_schedule', 'initial_state',
             'reinitialize_state', 'programming_thermalization',
             'readout_thermalization', 'reduce_intersample_correlation')
    kwargs = {k: params[k] for k in known if params.get(k) is not None}
    kwargs.setdefault('num_reads', 1)
    return float(solver.estimate_qpu_access_time(num_qubits=max(1, num_qubits), **kwargs))


def _qpu_timing(solver, num_qubits: int, params: dict) -> dict:
    timing_data = solver.properties['problem_timing_data']
    access = qpu_access_time_us(solver, num_qubits, params)
    reads = int(params.get('num_reads') or 1)
    programming = min(access, timing_data['typical_programming_time'])
    sampling = access - programming
    anneal = float(params.get('annealing_time') or timing_data['default_annealing_time'])
    delay = timing_data['qpu_delay_time_per_sample']
    readout = max(0.0, sampling / reads - anneal - delay)
    return {
        'qpu_access_time': access,
        'qpu_programming_time': programming,
        'qpu_sampling_time': sampling,
        'qpu_anneal_time_per_sample': anneal,
        'qpu_readout_time_per_sample': readout,
        'qpu_delay_time_per_sample': delay,
        'qpu_access_overhead_time': 0.0,
        'total_post_processing_time': 0.0,
        'post_processing_overhead_time': 0.0,
        # the only place a QPU answer can carry a label into SampleSet.info
        'emulation': EMULATION_LABEL,
    }


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode('ascii')


def _encode_qp_answer(sampleset, active, num_variables, answer_mode) -> dict:
    """Encode samples over ``active`` qubits in SAPI's ``qp`` answer format."""
    if answer_mode != 'raw':
        sampleset = sampleset.aggregate()
    sampleset = sampleset.change_vartype(dimod.BINARY) if len(active) else sampleset
    if len(active):
        bits = sampleset.record.sample[:, [sampleset.variables.index(q) for q in active]]
    else:
        bits = np.zeros((len(sampleset), 0), dtype=np.uint8)
    order = np.argsort(sampleset.record.energy, kind='stable')
    # each solution is padded to whole bytes, most significant bit first
    packed = np.packbits(bits[order].astype(np.uint8), axis=1)
    answer = {
        'format': 'qp',
        'num_variables': num_variables,
        'active_variables': _b64(np.asarray(active, dtype='<i4')),
        'energies': _b64(np.asarray(sampleset.record.energy[order], dtype='<f8')),
        'solutions': base64.b64encode(packed.tobytes()).decode('ascii'),
    }
    if answer_mode != 'raw':
        answer['num_occurrences'] = _b64(
            np.asarray(sampleset.record.num_occurrences[order], dtype='<i4'))
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
    reads = int(params.get('num_reads') or 1)
    seed = problem_seed(data['lin'], data['quad'], problem_type, sorted(params.items()))
    active = sorted(bqm.variables)
    if active and params.get('initial_state') is not None:
        sampleset = _reverse_anneal(bqm, reads, params['initial_state'], active)
    elif active:
        sampleset = _anneal(bqm, reads, seed, _QPU_UPDATE_BUDGET)
    else:
        sampleset = dimod.SampleSet.from_samples(
            ([[]] * reads, []), bqm.vartype, energy=[0.0] * reads)
    answer = _encode_qp_answer(sampleset, active, solver.properties['num_qubits'],
                               params.get('answer_mode', 'histogram'))
    answer['timing'] = _qpu_timing(solver, len(active), params)
    return answer


def _components(bqm):
    """The BQM's connected components with couplings: each one's labels, and a BQM of its
    own on the integers ``0..n-1`` in that order (offset dropped), so that sampling it
    does not depend on how the variables were labelled; then the labels of the variables
    without couplings and their lowest-energy values."""
    order = list(bqm.variables)
    linear, (rows, cols, values), _ = bqm.to_numpy_vectors(order)
    n = len(order)
    graph = scipy.sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    count, which = scipy.sparse.csgraph.connected_components(graph, directed=False)
    members = np.argsort(which, kind='stable')      # grouped, variable order kept
    bounds = np.searchsorted(which[members], np.arange(count + 1))
    local = np.empty(n, dtype=np.int64)
    local[members] = np.arange(n) - bounds[which[members]]
    edges = np.argsort(which[rows], kind='stable')
    edge_bounds = np.searchsorted(which[rows][edges], np.arange(count + 1))
    alone = []
    for c in range(count):
        own, coupled = members[bounds[c]:bounds[c + 1]], edges[edge_bounds[c]:edge_bounds[c + 1]]
        if not len(coupled):
            alone.extend(own)
            continue
        yield [order[k] for k in own], dimod.BinaryQuadraticModel.from_numpy_vectors(
            linear[own], (local[rows[coupled]], local[cols[coupled]], values[coupled]), 0.0,
            bqm.vartype)
    low = (0, 1) if bqm.vartype is dimod.BINARY else (-1, 1)
    yield [order[k] for k in alone], np.where(linear[alone] < 0, low[1], low[0])


def hybrid_answer(bqm: dimod.BinaryQuadraticModel, time_limit: float,
                  charge_time: float) -> dict:
    """Answer a hybrid BQM problem classically, in the ``bq`` format.

    Args:
        bqm: The uploaded BQM.
        time_limit: Requested run time (s).
        charge_time: Billed time (s), at least the solver's minimum.

    Returns:
        The ``answer`` field of the SAPI problem response.
    """
    if bqm.num_variables:
        # like Leap's hybrid solvers, decompose: each connected component (several
        # neurons packed into one BQM are disjoint) is annealed on its own with the same
        # budget and a seed from its own content (not its labels), so a neuron gets the
        # same answer whether it came alone or packed with others
        *parts, (uncoupled, values) = _components(bqm)
        best = dict(zip(uncoupled, values.tolist()))
        for labels, part in parts:
            linear, (rows, cols, values), _ = part.to_numpy_vectors(range(len(labels)))
            seed = problem_seed(part.vartype.name, linear.tobytes(), rows.tobytes(),
                                cols.tobytes(), values.tobytes())
            found = _anneal_visits(part, _HYBRID_READS, seed).first.sample
            best.update((label, found[k]) for k, label in enumerate(labels))
        sampleset = dimod.SampleSet.from_samples_bqm(best, bqm)
    else:
        sampleset = dimod.SampleSet.from_samples_bqm([{}], bqm)
    # times in microseconds, as Leap's hybrid solvers report them
    info = {
        'run_time': int(round(time_limit * 1e6)),
        'charge_time': int(round(charge_time * 1e6)),
        # no quantum hardware is involved in an emulated answer
        'qpu_access_time': 0,
        'emulation': EMULATION_LABEL,
    }
    sampleset = dimod.SampleSet(sampleset.record, sampleset.variables, info,
                                sampleset.vartype)
    return {'format': 'bq', 'data': sampleset.to_serializable(use_bytes=False)}


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


def nl_answer(model, time_limit: float, charge_time: float,
              url: str) -> tuple[dict, bytes]:
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
        'format': 'binary-ref',
        'auth_method': 'sapi-token',
        'url': url,
        # times in microseconds, as Leap's hybrid solvers report them
        'timing': {'qpu_access_time': 0, 'warnings': [],
                   'charge_time': int(round(charge_time * 1e6)),
                   'run_time': int(round(time_limit * 1e6)),
                   'emulation': f"{EMULATION_LABEL}; {how}"},
        'shape': {},
    }
    return answer, data
