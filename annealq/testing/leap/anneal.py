"""The emulator's stand-in for a solver's search: simulated annealing (dwave-samplers),
within budgets that keep the emulator's own work small beside the service times it
emulates.

A hybrid problem is annealed component by component, each on the integers ``0..n-1`` with
a seed from its content (not its labels), so a neuron gets the same answer whether it came
alone or packed with others into one BQM.
"""

from __future__ import annotations

import hashlib
import math

import dimod
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
from dwave.samplers import SimulatedAnnealingSampler

from annealq.testing.leap.bqm_file import BQMVectors

__all__ = ["problem_seed", "anneal", "anneal_components", "components", "beta_range"]

# budget of spin updates per QPU problem (reads x sweeps x variables): keeps every
# emulated answer in the millisecond range whatever the problem size
_QPU_UPDATE_BUDGET = 2_000_000
# budget of bias visits per connected component of a hybrid problem (reads x sweeps x
# (variables + interactions), at least 16 sweeps): a dense 619-variable neuron gets 16
# sweeps, ~0.1 s, so the emulator's own work stays small beside the service it emulates
_HYBRID_VISIT_BUDGET = 8_000_000
_HYBRID_READS = 2


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
        digest.update(b"\0")
    # dwave-samplers rejects seeds >= 2**31 in practice, so keep 31 bits
    return int.from_bytes(digest.digest()[:4], "little") & 0x7FFFFFFF


def anneal(bqm, num_reads: int, seed: int) -> dimod.SampleSet:
    """Simulated annealing within ``_QPU_UPDATE_BUDGET`` spin updates (a QPU problem's
    stand-in)."""
    n = max(1, bqm.num_variables)
    sweeps = int(max(16, min(1000, _QPU_UPDATE_BUDGET // (n * num_reads))))
    return SimulatedAnnealingSampler().sample(
        bqm, num_reads=num_reads, num_sweeps=sweeps, seed=seed
    )


def beta_range(bqm) -> list[float]:
    """dwave-samplers' default beta range for ``bqm``, computed with numpy (its own loop
    over the couplings costs more than the sweeps of a dense neuron)."""
    h, (rows, cols, J), _ = bqm.to_numpy_vectors(range(bqm.num_variables))
    if bqm.vartype is dimod.BINARY:  # the same problem over spins, as it anneals
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
        bqm, num_reads=num_reads, num_sweeps=sweeps, seed=seed, beta_range=beta_range(bqm)
    )


def anneal_components(bqm: BQMVectors) -> dict:
    """The lowest-energy sample found for ``bqm``, component by component.

    Each connected component is annealed on its own with the same budget (at most
    ``_HYBRID_VISIT_BUDGET`` bias visits) and a seed from its own content; a variable
    without couplings gets its lowest-energy value directly.
    """
    *parts, (uncoupled, values) = components(bqm)
    best = dict(zip(uncoupled, values.tolist()))
    for labels, part in parts:
        linear, (rows, cols, values), _ = part.to_numpy_vectors(range(len(labels)))
        seed = problem_seed(
            part.vartype.name, linear.tobytes(), rows.tobytes(), cols.tobytes(), values.tobytes()
        )
        found = _anneal_visits(part, _HYBRID_READS, seed).first.sample
        best.update((label, found[k]) for k, label in enumerate(labels))
    return best


def components(bqm: BQMVectors):
    """The BQM's connected components with couplings: each one's labels, and a BQM of its
    own on the integers ``0..n-1`` in that order (offset dropped), so that sampling it
    does not depend on how the variables were labelled; then the labels of the variables
    without couplings and their lowest-energy values."""
    order, linear = bqm.labels, bqm.linear
    rows, cols, values = bqm.rows, bqm.cols, bqm.values
    n = len(order)
    graph = scipy.sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    count, which = scipy.sparse.csgraph.connected_components(graph, directed=False)
    members = np.argsort(which, kind="stable")  # grouped, variable order kept
    bounds = np.searchsorted(which[members], np.arange(count + 1))
    local = np.empty(n, dtype=np.int64)
    local[members] = np.arange(n) - bounds[which[members]]
    edges = np.argsort(which[rows], kind="stable")
    edge_bounds = np.searchsorted(which[rows][edges], np.arange(count + 1))
    alone = []
    for c in range(count):
        own, coupled = (
            members[bounds[c] : bounds[c + 1]],
            edges[edge_bounds[c] : edge_bounds[c + 1]],
        )
        if not len(coupled):
            alone.extend(own)
            continue
        yield (
            [order[k] for k in own],
            dimod.BinaryQuadraticModel.from_numpy_vectors(
                linear[own],
                (local[rows[coupled]], local[cols[coupled]], values[coupled]),
                0.0,
                bqm.vartype,
            ),
        )
    low = (0, 1) if bqm.vartype is dimod.BINARY else (-1, 1)
    yield [order[k] for k in alone], np.where(linear[alone] < 0, low[1], low[0])
