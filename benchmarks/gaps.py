"""Energy gaps of solvers on neurons' QUBOs: reference energies, reads, success probability.

``notebooks/qpu_vs_sa_energy_gaps.ipynb`` is built on these helpers. A solver's *energy
gap* on a neuron is ``E − E_ref`` (absolute) and ``(E − E_ref) / E_ref`` (relative; every
energy is a squared output error, so ``E_ref ≥ 0``). ``E_ref`` is the ground state proven
by exact enumeration or exact search where they reach, otherwise the best energy any
solver found; a :class:`Reference` records which.

Example:
    >>> import dimod
    >>> bqm = dimod.BQM({"a": 1.0, "b": -2.0}, {("a", "b"): 3.0}, 2.5, "BINARY")
    >>> [ref] = ground_states([bqm])
    >>> ref.energy, ref.method, ref.proven
    (0.5, 'exact', True)
    >>> reads = read_energies(bqm, dimod.SampleSet.from_samples_bqm(
    ...     [{"a": 0, "b": 1}, {"a": 1, "b": 1}], bqm))
    >>> reads.tolist(), success_count(reads, ref.energy), energy_gap(4.5, ref.energy)
    ([0.5, 4.5], 1, (4.0, 8.0))
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from annealq.dispatch import solve_layer
from annealq.layer import LayerQUBO
from annealq.registry import get_sampler

# Assumed cost of one QPU read beyond the anneal itself (readout ≈ 40–150 µs plus the
# inter-read delay ≈ 20 µs on Advantage systems; the larger end, to stay on the safe
# side), and of programming the QPU once per submitted problem.
READOUT_AND_DELAY_US = 150.0
PROGRAMMING_MS = 15.0
SUCCESS_RTOL = 1e-9


@dataclass(frozen=True)
class Reference:
    """A neuron's reference energy for gaps.

    Attributes:
        energy: the ground-state energy, or the best energy known.
        method: ``"exact"`` (enumeration), ``"exact-bb"`` (branch and bound) or
            ``"best found"``.
        proven: whether ``energy`` is proven to be the minimum.
        seconds: time spent proving it (0 for ``"best found"``).
    """

    energy: float
    method: str
    proven: bool
    seconds: float = 0.0


def sub_layer(lq: LayerQUBO, neurons) -> LayerQUBO:
    """``lq`` restricted to ``neurons``: :meth:`annealq.layer.LayerQUBO.select`."""
    return lq.select(neurons)


def ground_states(
    problems, *, max_enumeration: int = 24, time_limit: float = 10.0
) -> list[Reference]:
    """Prove each neuron's ground state: enumeration (``exact``) up to ``max_enumeration``
    variables, branch and bound (``exact-bb``) above.

    Args:
        problems: a :class:`LayerQUBO` (then ``exact-bb`` searches the layer's positive
            semi-definite Gram form, its fastest path) or a list of BQMs.
        max_enumeration: the largest neuron solved by enumeration.
        time_limit: seconds of ``exact-bb`` per neuron; a neuron not proven by then gets
            ``proven=False`` and the best energy found.

    Returns:
        One :class:`Reference` per neuron, energies recomputed from each neuron's BQM.
    """
    layer = isinstance(problems, LayerQUBO)
    bqms = list(problems.bqms()) if layer else list(problems)
    references: list[Reference | None] = [None] * len(bqms)
    large = [i for i, bqm in enumerate(bqms) if bqm.num_variables > max_enumeration]
    exact = get_sampler("exact", max_variables=max_enumeration)
    for i, bqm in enumerate(bqms):
        if bqm.num_variables <= max_enumeration:
            begin = time.perf_counter()
            best = exact.sample(bqm).first.sample
            references[i] = Reference(
                float(bqm.energy(best)), "exact", True, time.perf_counter() - begin
            )
    if large:
        search = get_sampler("exact-bb", time_limit=time_limit)
        if layer:
            results = solve_layer(sub_layer(problems, large), search)
            found = [(r.sample, r.info["proven_optimal"], r.wall_seconds) for r in results]
        else:
            found = []
            for i in large:
                begin = time.perf_counter()
                sampleset = search.sample(bqms[i])
                found.append(
                    (
                        sampleset.first.sample,
                        sampleset.info["proven_optimal"],
                        time.perf_counter() - begin,
                    )
                )
        for i, (sample, proven, seconds) in zip(large, found):
            references[i] = Reference(
                float(bqms[i].energy(sample)), "exact-bb", bool(proven), float(seconds)
            )
    return references


def best_found(reference: Reference, energies) -> Reference:
    """``reference`` if proven, else the lowest of it and ``energies`` as ``"best found"``."""
    if reference.proven:
        return reference
    return Reference(
        float(min(reference.energy, np.min(energies))), "best found", False, reference.seconds
    )


def read_energies(bqm, sampleset) -> np.ndarray:
    """The energy of every read in ``sampleset`` (``num_occurrences`` expanded, in the
    sampler's order), recomputed from ``bqm`` so that every solver is scored alike."""
    energies = np.asarray(bqm.energies(sampleset), dtype=np.float64)
    names = sampleset.record.dtype.names
    counts = sampleset.record.num_occurrences if "num_occurrences" in names else None
    return energies if counts is None else np.repeat(energies, counts)


def energy_gap(energy, reference: float, *, rtol: float = SUCCESS_RTOL) -> tuple[float, float]:
    """``(E − E_ref, (E − E_ref) / E_ref)``. A gap within ``rtol`` of the reference's
    magnitude (floating-point noise, as in :func:`success_count`) is 0; the relative gap
    is ``inf`` when ``E_ref = 0 < E``."""
    absolute = float(energy) - float(reference)
    if abs(absolute) <= rtol * max(abs(float(reference)), 1.0):
        absolute = 0.0
    if reference > 0:
        return absolute, absolute / float(reference)
    return absolute, 0.0 if absolute <= 0 else math.inf


def success_count(energies, reference: float, *, rtol: float = SUCCESS_RTOL) -> int:
    """How many of ``energies`` reach ``reference`` (within ``rtol`` of its magnitude)."""
    tolerance = rtol * max(abs(float(reference)), 1.0)
    return int(np.sum(np.asarray(energies) <= reference + tolerance))


def success_within(successes: int, reads: int, k) -> np.ndarray:
    """The probability that ``k`` reads drawn from ``reads`` (of which ``successes`` hit the
    ground state) contain a hit: ``1 − C(reads − successes, k) / C(reads, k)``, the
    unbiased estimate of ``1 − (1 − p)^k`` for ``k ≤ reads``.

    Example:
        >>> success_within(1, 4, [1, 2, 4]).tolist()
        [0.25, 0.5, 1.0]
    """
    if not 0 <= successes <= reads or reads < 1:
        raise ValueError(
            f"need 0 <= successes <= reads and reads >= 1, got {successes} "
            f"successes of {reads} reads"
        )
    k = np.atleast_1d(np.asarray(k, dtype=int))
    if np.any((k < 1) | (k > reads)):
        raise ValueError(f"k must be from 1 to {reads} (the reads taken), got {k.tolist()}")
    misses = reads - successes
    out = np.empty(len(k))
    for n, draws in enumerate(k):
        j = np.arange(draws)
        all_miss = 0.0 if draws > misses else float(np.prod((misses - j) / (reads - j)))
        out[n] = 1.0 - all_miss
    return out


def time_to_solution(seconds_per_read: float, p: float, target: float = 0.99) -> float:
    """Time to reach the ground state with probability ``target``:
    ``t_read · ln(1 − target) / ln(1 − p)`` reads' worth (at least one read); ``inf`` when
    ``p = 0``.

    Example:
        >>> round(time_to_solution(1.0, 0.5), 3), time_to_solution(2.0, 1.0)
        (6.644, 2.0)
    """
    if not 0 < target < 1:
        raise ValueError(f"target must be between 0 and 1, got {target!r}")
    if p <= 0:
        return math.inf
    if p >= target:
        return float(seconds_per_read)
    return float(seconds_per_read) * math.log(1 - target) / math.log(1 - p)


def qpu_access_estimate(
    problems: int,
    reads: int,
    *,
    annealing_time_us: float = 20.0,
    readout_and_delay_us: float = READOUT_AND_DELAY_US,
    programming_ms: float = PROGRAMMING_MS,
) -> float:
    """Estimated QPU access time, in seconds, of ``problems`` submissions of ``reads``
    reads each: ``problems × (programming + reads × (anneal + readout and delay))``.

    Example:
        >>> round(qpu_access_estimate(10, 100), 3)
        0.32
    """
    if problems < 0 or reads < 0:
        raise ValueError(f"problems and reads must be >= 0, got {problems}, {reads}")
    per_read_s = (annealing_time_us + readout_and_delay_us) * 1e-6
    return problems * (programming_ms * 1e-3 + reads * per_read_s)
