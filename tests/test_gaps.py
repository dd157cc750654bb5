import itertools
import math

import dimod
import numpy as np
import pytest

from annealq import formulate_layer
from benchmarks import gaps


@pytest.fixture
def layer_21():
    """4 neurons of ≤ 21 variables (20 inputs + bias), int3: enumeration still reaches."""
    rng = np.random.default_rng(3)
    W, b, X = rng.normal(size=(4, 20)), rng.normal(size=4), rng.normal(size=(60, 20))
    return formulate_layer(W, b, X, bits=3)


def brute_force_minimum(bqm):
    order = list(bqm.variables)
    states = np.array(list(itertools.product((0, 1), repeat=len(order))), dtype=np.int8)
    return float(np.min(bqm.energies((states, order))))


def test_sub_layer_keeps_each_neurons_qubo_and_energies(small_layer):
    sub = gaps.sub_layer(small_layer, [2, 0])
    assert sub.n_neurons == 2
    for k, i in enumerate([2, 0]):
        assert sub.bqm(k) == small_layer.bqm(i)
        sample = small_layer.rtn_sample(i)
        assert sub.energy(k, sample) == pytest.approx(small_layer.energy(i, sample), rel=1e-12)
    with pytest.raises(IndexError, match="out of range"):
        gaps.sub_layer(small_layer, [3])
    with pytest.raises(ValueError, match="non-empty"):
        gaps.sub_layer(small_layer, [])


def test_ground_states_equal_brute_force_by_enumeration_and_by_branch_and_bound(small_layer):
    expected = [brute_force_minimum(bqm) for bqm in small_layer.bqms()]
    enumerated = gaps.ground_states(small_layer)
    searched = gaps.ground_states(small_layer, max_enumeration=4)  # forces exact-bb
    assert [r.method for r in enumerated] == ["exact"] * 3
    assert [r.method for r in searched] == ["exact-bb"] * 3
    for e, a, b in zip(expected, enumerated, searched):
        assert a.proven and b.proven
        assert a.energy == pytest.approx(e, rel=1e-9)
        assert b.energy == pytest.approx(e, rel=1e-9)


def test_ground_states_of_bare_bqms_and_of_a_wider_layer(layer_21):
    bqms = list(layer_21.bqms())
    by_layer = gaps.ground_states(layer_21, max_enumeration=12)
    by_bqm = gaps.ground_states(bqms[:1], max_enumeration=12, time_limit=5)
    enumerated = gaps.ground_states(bqms[:1])
    assert by_layer[0].method == by_bqm[0].method == "exact-bb"
    assert enumerated[0].method == "exact"
    assert all(r.proven for r in by_layer)
    assert by_layer[0].energy == pytest.approx(enumerated[0].energy, rel=1e-9)
    if by_bqm[0].proven:
        assert by_bqm[0].energy == pytest.approx(enumerated[0].energy, rel=1e-9)


def test_best_found_only_replaces_unproven_references():
    proven = gaps.Reference(5.0, "exact", True, 0.1)
    assert gaps.best_found(proven, [4.0]) is proven  # a proven optimum is never "beaten"
    unproven = gaps.Reference(5.0, "exact-bb", False, 10.0)
    assert gaps.best_found(unproven, [6.0, 4.5]) == gaps.Reference(4.5, "best found", False, 10.0)
    assert gaps.best_found(unproven, [7.0]).energy == 5.0


def test_read_energies_expand_occurrences_and_are_recomputed_from_the_bqm():
    bqm = dimod.BQM({"a": 1.0, "b": -2.0}, {("a", "b"): 3.0}, 2.5, "BINARY")
    sampleset = dimod.SampleSet.from_samples(
        ([[0, 1], [1, 1]], ["a", "b"]), "BINARY", energy=[99.0, 99.0], num_occurrences=[2, 1]
    )
    assert gaps.read_energies(bqm, sampleset).tolist() == [0.5, 0.5, 4.5]
    # column order of the sampler's record does not matter: labels do
    swapped = dimod.SampleSet.from_samples(([[1, 0]], ["b", "a"]), "BINARY", energy=[0.0])
    assert gaps.read_energies(bqm, swapped).tolist() == [0.5]


def test_energy_gap_and_success_count_share_one_tolerance():
    assert gaps.energy_gap(12.0, 10.0) == (2.0, 0.2)
    assert gaps.energy_gap(10.0 + 1e-12, 10.0) == (0.0, 0.0)
    assert gaps.energy_gap(0.0, 0.0) == (0.0, 0.0)
    assert gaps.energy_gap(1.0, 0.0) == (1.0, math.inf)
    assert gaps.success_count([10.0, 10.0 + 1e-12, 10.001, 9.0], 10.0) == 3


def test_success_within_matches_counting_every_subset():
    reads = np.array([0, 1, 0, 0, 1, 0])  # 2 hits among 6 reads
    for k in range(1, 7):
        subsets = list(itertools.combinations(reads, k))
        expected = np.mean([any(subset) for subset in subsets])
        assert gaps.success_within(2, 6, k)[0] == pytest.approx(expected, rel=1e-12)
    assert gaps.success_within(0, 5, [1, 5]).tolist() == [0.0, 0.0]
    assert gaps.success_within(5, 5, [1]).tolist() == [1.0]
    with pytest.raises(ValueError, match="k must be"):
        gaps.success_within(1, 5, 6)
    with pytest.raises(ValueError, match="successes"):
        gaps.success_within(6, 5, 1)


def test_time_to_solution():
    assert gaps.time_to_solution(0.1, 0.0) == math.inf
    assert gaps.time_to_solution(0.1, 0.995) == 0.1
    p = 0.2
    reads = math.log(0.01) / math.log(1 - p)
    assert gaps.time_to_solution(0.1, p) == pytest.approx(0.1 * reads)
    assert 1 - (1 - p) ** reads == pytest.approx(0.99)
    with pytest.raises(ValueError, match="target"):
        gaps.time_to_solution(0.1, 0.5, target=1.0)


def test_qpu_access_estimate_is_programming_plus_reads():
    estimate = gaps.qpu_access_estimate(
        3, 100, annealing_time_us=100.0, readout_and_delay_us=50.0, programming_ms=10.0
    )
    assert estimate == pytest.approx(3 * (0.010 + 100 * 150e-6))
    assert gaps.qpu_access_estimate(0, 100) == 0.0
    with pytest.raises(ValueError):
        gaps.qpu_access_estimate(-1, 100)
