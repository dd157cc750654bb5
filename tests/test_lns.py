import numpy as np
import pytest

from annealq import formulate_layer, get_sampler
from annealq.dispatch import solve_layer
from solvers.lns.search import neighbours, polish


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


def test_lns_solves_a_bare_bqm_to_its_ground_state():
    import dimod

    bqm = dimod.generators.gnp_random_bqm(14, 0.6, "SPIN", random_state=3)
    best = dimod.ExactSolver().sample(bqm).first.energy
    sampleset = get_sampler("lns", seed=2).sample(bqm)
    assert sampleset.first.energy == pytest.approx(best, abs=1e-9)
    assert sampleset.first.energy == pytest.approx(bqm.energy(sampleset.first.sample))


def _window_layer(seed=0, n=3, f=6, bits=3):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(60, f // 2))
    X = np.repeat(base, 2, axis=1) + 0.05 * rng.normal(size=(60, f))
    return formulate_layer(
        rng.normal(size=(n, f)), rng.normal(size=n), X, bits=bits, window_bits=2, bias_window_bits=3
    )


def test_integer_windows_reach_the_brute_force_optimum_of_the_window_formulation():
    from solvers.lns.search import polish_integers

    lq = _window_layer()  # 6 weights × 2 bits + 3 bias bits = 15 variables
    start = lq.states(lq.base)
    states = polish_integers(lq, range(lq.n_neurons), start, rounds=4, window=7)
    exact = solve_layer(lq, get_sampler("exact"))
    labels = lq.labels()
    for i, state in enumerate(states):
        energy = lq.energy(i, dict(zip(labels, state)))
        assert energy <= lq.energy(i, dict(zip(labels, start[i]))) + 1e-9
        assert energy == pytest.approx(exact[i].energy, rel=1e-9)


def test_integer_windows_never_raise_the_energy_and_stop_when_converged():
    from solvers.lns.search import polish_integers

    lq = _window_layer(seed=2, n=4, f=30)
    start = lq.states(lq.base)
    labels = lq.labels()
    few = polish_integers(lq, range(4), start, rounds=5, window=4)
    many = polish_integers(lq, range(4), start, rounds=100_000, window=4)  # stops early
    for i in range(4):
        e_start, e_few, e_many = (lq.energy(i, dict(zip(labels, s[i]))) for s in (start, few, many))
        assert e_many <= e_few + 1e-9 and e_few <= e_start + 1e-9


def test_lns_picks_integer_search_for_window_layers_and_checks_its_options(monkeypatch):
    import solvers.lns.sampler as lns_sampler

    used = []
    for name in ("polish", "polish_integers"):
        original = getattr(lns_sampler, name)
        monkeypatch.setattr(
            lns_sampler, name, lambda *a, _o=original, _n=name, **k: used.append(_n) or _o(*a, **k)
        )
    lq = _window_layer(seed=4, n=3, f=20)
    starts = [dict(zip(lq.labels(), s)) for s in lq.states(lq.base)]
    auto = solve_layer(lq, get_sampler("lns", rounds=50), initial_states=starts)
    solve_layer(lq, get_sampler("lns", rounds=50, search="bits"), initial_states=starts)
    solve_layer(_layer(f=10), get_sampler("lns", rounds=5))  # the paper's down/up QUBO
    assert used == ["polish_integers", "polish", "polish"]
    for i, r in enumerate(auto):
        assert r.energy <= lq.energy(i, starts[i]) + 1e-9
    with pytest.raises(ValueError, match="search must be one of"):
        get_sampler("lns", search="quantum")


def test_lns_skips_annealing_for_integer_windows_from_a_warm_start(monkeypatch):
    from solvers.batch_sa.sampler import BatchSASampler

    calls = []
    original = BatchSASampler.sample_layer
    monkeypatch.setattr(
        BatchSASampler,
        "sample_layer",
        lambda self, *a, **k: calls.append(1) or original(self, *a, **k),
    )
    lq = _window_layer(seed=5, n=2, f=12)
    starts = [dict(zip(lq.labels(), s)) for s in lq.states(lq.base)]
    warm = solve_layer(lq, get_sampler("lns"), initial_states=starts)
    assert calls == []  # integer windows from a warm start: no annealing stage
    cold = solve_layer(lq, get_sampler("lns", anneal=False))  # from RTN, in its windows
    solve_layer(lq, get_sampler("lns", anneal=True), initial_states=starts)
    assert calls == [1]
    for i in range(lq.n_neurons):
        assert warm[i].energy <= lq.energy(i, starts[i]) + 1e-9
        assert cold[i].energy == pytest.approx(lq.energy(i, cold[i].sample))


def test_layer_time_limit_shares_the_time_and_keeps_every_neuron_no_worse():
    import time

    from annealq import formulate_layer
    from solvers.lns.sampler import LNSSolver

    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 120)) @ rng.normal(size=(120, 120))
    lq = formulate_layer(rng.normal(size=(6, 120)), rng.normal(size=6), X, bits=4, window_bits=4)
    began = time.perf_counter()
    results = LNSSolver(seed=0).sample_layer(lq, layer_time_limit=0.2)
    assert time.perf_counter() - began < 5
    full = LNSSolver(seed=0).sample_layer(lq)
    # the same random streams, stopped early: each neuron at an earlier point of its search
    assert all(r.energy >= f.energy - 1e-9 * abs(f.energy) for r, f in zip(results, full))
    assert results[0].info["options"]["layer_time_limit"] == 0.2
