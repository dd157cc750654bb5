import itertools

import dimod
import numpy as np
import pytest

from annealq import formulate_layer, get_sampler
from annealq.dispatch import solve_layer
from solvers.batch_sa.anneal import anneal
from solvers.batch_sa.form import BatchSAOptions, LayerForm


def _layer(seed=0, n=6, f=10, m=40, bits=2, per_channel=False):
    rng = np.random.default_rng(seed)
    W, b, X = rng.normal(size=(n, f)), rng.normal(size=n), rng.normal(size=(m, f))
    return formulate_layer(
        W,
        b,
        X,
        bits=bits,
        per_channel=per_channel,
        float_inputs=X + 0.05 * rng.normal(size=X.shape),
    )


def _brute_force(lq, i):
    labels = lq.variables(i)
    return min(
        lq.energy(i, dict(zip(labels, u))) for u in itertools.product((0, 1), repeat=len(labels))
    )


@pytest.mark.parametrize("per_channel", [False, True])
def test_layer_results_are_valid_local_minima_with_exact_energies(per_channel):
    lq = _layer(per_channel=per_channel)
    results = solve_layer(lq, get_sampler("batch-sa", seed=3))
    for i, result in enumerate(results):
        assert set(result.sample) == set(lq.variables(i))
        assert result.energy == pytest.approx(lq.bqm(i).energy(result.sample), rel=1e-9)
        # a local minimum: no single flip lowers the energy
        for v in result.sample:
            flipped = {**result.sample, v: 1 - result.sample[v]}
            assert lq.energy(i, flipped) >= result.energy - 1e-9


def test_agrees_with_exhaustive_search_on_small_problems():
    lq = _layer(seed=1, f=9)
    results = solve_layer(lq, get_sampler("batch-sa", seed=0))
    for i, result in enumerate(results):
        assert result.energy == pytest.approx(_brute_force(lq, i), rel=1e-9)


def test_never_worse_than_the_warm_start_and_rtn_by_default():
    lq = _layer(seed=2, f=30, bits=3)
    default = solve_layer(lq, get_sampler("batch-sa", seed=0, num_sweeps=8))
    for i, result in enumerate(default):
        assert result.energy <= lq.energy(i, lq.rtn_sample(i)) + 1e-9
    starts = [{v: 1 for v in lq.variables(i)} for i in range(lq.n_neurons)]
    warm = solve_layer(lq, get_sampler("batch-sa", seed=0, num_sweeps=0), initial_states=starts)
    for i, result in enumerate(warm):  # zero sweeps: a pure descent from the start
        assert result.energy <= lq.energy(i, starts[i]) + 1e-9


def test_deterministic_for_a_seed_and_seed_matters():
    lq = _layer(seed=4, f=40)
    run = lambda seed: [
        r.sample for r in solve_layer(lq, get_sampler("batch-sa", seed=seed, num_reads=1))
    ]
    assert run(7) == run(7)
    states_a, energies_a = anneal(
        LayerForm.from_layer(lq), np.zeros((6, 41)), BatchSAOptions(seed=5)
    )
    states_b, energies_b = anneal(
        LayerForm.from_layer(lq), np.zeros((6, 41)), BatchSAOptions(seed=5)
    )
    np.testing.assert_array_equal(states_a, states_b)


def test_plain_bqm_path_through_the_registry():
    bqm = dimod.generators.gnp_random_bqm(12, 0.5, "BINARY", random_state=3)
    best = min(dimod.ExactSolver().sample(bqm).record.energy)
    assert get_sampler("batch-sa", seed=1).sample(bqm).first.energy == pytest.approx(best)
    spin = dimod.generators.gnp_random_bqm(10, 0.5, "SPIN", random_state=4)
    result = get_sampler("batch-sa", seed=1).sample(spin).first
    assert set(result.sample.values()) <= {-1, 1}
    assert result.energy == pytest.approx(min(dimod.ExactSolver().sample(spin).record.energy))


def test_torch_kernel_runs_the_same_algorithm():
    pytest.importorskip("torch")
    from solvers.batch_sa import kernel_torch as _batchsa_torch

    lq = _layer(seed=6, f=8)
    form = LayerForm.from_layer(lq)
    who = np.repeat(np.arange(lq.n_neurons), 4)
    starts = lq.states(lq.rtn_integers())
    U = _batchsa_torch.run(
        form, starts, who, BatchSAOptions(num_reads=4, num_sweeps=32, device="cpu")
    )
    energies = form.energies(U.astype(float), who).reshape(-1, 4).min(axis=1)
    for i in range(lq.n_neurons):
        assert energies[i] == pytest.approx(_brute_force(lq, i), rel=1e-9)


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="num_reads"):
        get_sampler("batch-sa", num_reads=0)
    with pytest.raises(ValueError, match="t_stop"):
        get_sampler("batch-sa", t_start=0.1, t_stop=1.0)
    with pytest.raises(TypeError):
        get_sampler("batch-sa", sweeps=3)


def test_layer_path_uses_the_cache(tmp_path):
    from annealq.cache import CacheStore

    lq = _layer(seed=8)
    store = CacheStore(tmp_path / "c.sqlite")
    first = solve_layer(lq, get_sampler("batch-sa", seed=2), cache=store, solver_name="batch-sa")
    second = solve_layer(lq, get_sampler("batch-sa", seed=2), cache=store, solver_name="batch-sa")
    assert all(r.info.get("cached") for r in second)
    assert [r.sample for r in first] == [r.sample for r in second]
    other = solve_layer(lq, get_sampler("batch-sa", seed=3), cache=store, solver_name="batch-sa")
    assert not any(r.info.get("cached") for r in other)
