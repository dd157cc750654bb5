import numpy as np
import pytest

from annealq import formulate_layer, get_sampler
from annealq.dispatch import solve_layer
from annealq.lns import neighbours, polish


def _layer(seed=0, n=4, f=24, bits=2):
    rng = np.random.default_rng(seed)
    # correlated inputs: pairs of nearly equal columns, the case single flips handle badly
    base = rng.normal(size=(80, f // 2))
    X = np.repeat(base, 2, axis=1) + 0.05 * rng.normal(size=(80, f))
    return formulate_layer(rng.normal(size=(n, f)), rng.normal(size=n), X, bits=bits)


def test_windows_gather_correlated_columns():
    lq = _layer()
    table = neighbours(lq.gram, 2)
    # each input's nearest partner is its twin (2k <-> 2k+1)
    for j in range(lq.n_inputs):
        assert table[j, 0] == j
        assert table[j, 1] == j ^ 1


def test_polish_never_raises_energy_and_reaches_brute_force_optimum_with_whole_windows():
    lq = _layer(f=12)
    start = lq.states(lq.rtn_integers())
    states = polish(lq, range(lq.n_neurons), start, rounds=3, window=13)
    exact = solve_layer(lq, get_sampler("exact"))
    labels = lq.labels()
    for i, state in enumerate(states):
        energy = lq.energy(i, dict(zip(labels, state)))
        assert energy <= lq.energy(i, lq.rtn_sample(i)) + 1e-9
        assert energy == pytest.approx(exact[i].energy, rel=1e-9)  # one window = everything


def test_lns_solver_beats_batch_sa_on_correlated_inputs_and_is_deterministic():
    lq = _layer(seed=3, f=40)
    annealed = solve_layer(lq, get_sampler("batch-sa", seed=1))
    polished = solve_layer(lq, get_sampler("lns", seed=1, rounds=30, window=10))
    again = solve_layer(lq, get_sampler("lns", seed=1, rounds=30, window=10))
    assert [r.sample for r in polished] == [r.sample for r in again]
    for i, (a, p) in enumerate(zip(annealed, polished)):
        assert p.energy <= a.energy + 1e-9
        assert p.energy == pytest.approx(lq.bqm(i).energy(p.sample), rel=1e-9)
    assert sum(p.energy for p in polished) < sum(a.energy for a in annealed)


def test_lns_is_layer_only_with_a_clear_message():
    import dimod

    with pytest.raises(TypeError, match="works on layers"):
        get_sampler("lns").sample(dimod.BQM({"a": 1.0}, {}, 0.0, "BINARY"))
