import itertools

import dimod
import pytest

from annealq import errors, get_sampler, resolve_sampler, solve_bqms


def _brute_force_minimum(bqm):
    labels = list(bqm.variables)
    return min(
        bqm.energy(dict(zip(labels, u))) for u in itertools.product((0, 1), repeat=len(labels))
    )


def _assert_valid(lq, results):
    for i, result in enumerate(results):
        assert set(result.sample) == set(lq.variables(i))
        assert set(result.sample.values()) <= {0, 1}
        w_row, bias = lq.dequantize(i, result.sample)
        assert result.energy == pytest.approx(lq.energy(i, result.sample), rel=1e-9)
        assert result.energy == pytest.approx(lq.bqm(i).energy(result.sample), rel=1e-9)


def test_exact_returns_the_true_optimum(small_layer):
    results = solve_bqms(small_layer.bqms(), get_sampler("exact"))
    _assert_valid(small_layer, results)
    for bqm, result in zip(small_layer.bqms(), results):
        assert result.energy == pytest.approx(_brute_force_minimum(bqm), rel=1e-12)
        assert result.info["proven_optimal"] is True


def test_exact_handles_spin_bqms():
    bqm = dimod.BQM({"a": 1.0, "b": -0.5}, {("a", "b"): 0.75}, 0.0, "SPIN")
    best = get_sampler("exact").sample(bqm).first
    assert best.energy == min(dimod.ExactSolver().sample(bqm).record.energy)


def test_exact_refuses_problems_too_large_to_enumerate(layer_65):
    with pytest.raises(errors.ProblemTooLargeError, match=r"\d+ variables.*limit of 24"):
        get_sampler("exact").sample(layer_65.bqm(0))
    with pytest.raises(ValueError, match="max_variables"):
        get_sampler("exact", max_variables=40)


@pytest.mark.parametrize(
    "name, params", [("neal", {"seed": 3}), ("tabu", {"seed": 3, "timeout": 20}), ("steepest", {})]
)
def test_heuristics_return_valid_samples_with_correct_energies(small_layer, name, params):
    results = solve_bqms(small_layer.bqms(), get_sampler(name, **params))
    _assert_valid(small_layer, results)
    optimum = solve_bqms(small_layer.bqms(), get_sampler("exact"))
    assert all(r.energy >= o.energy - 1e-9 for r, o in zip(results, optimum))
    assert all(r.wall_seconds > 0 for r in results)


@pytest.mark.parametrize("name", ["tabu", "steepest"])
def test_descent_from_a_warm_start_never_ends_above_it(layer_65, name):
    starts = [layer_65.rtn_sample(i) for i in range(layer_65.n_neurons)]
    params = {"seed": 1, "timeout": 20} if name == "tabu" else {}
    results = solve_bqms(layer_65.bqms(), get_sampler(name, **params), initial_states=starts)
    _assert_valid(layer_65, results)
    for i, result in enumerate(results):
        assert result.energy <= layer_65.energy(i, starts[i]) + 1e-9


def test_neal_accepts_a_warm_start(layer_65):
    starts = [layer_65.rtn_sample(i) for i in range(layer_65.n_neurons)]
    # zero sweeps: the anneal returns its initial state untouched, so the start was used
    sampler = get_sampler("neal", num_sweeps=0, seed=1)
    results = solve_bqms(layer_65.bqms(), sampler, initial_states=starts)
    assert [r.sample for r in results] == starts


def test_neal_is_deterministic_for_a_seed(layer_65):
    first = solve_bqms(layer_65.bqms(), get_sampler("neal", seed=11))
    second = solve_bqms(layer_65.bqms(), get_sampler("neal", seed=11))
    assert [r.sample for r in first] == [r.sample for r in second]


def test_qpu_mock_embeds_decodes_and_reports_chains(layer_65):
    sampler = get_sampler("qpu-mock", num_reads=5)
    assert sampler.largest_clique_size >= 65
    results = solve_bqms(layer_65.bqms(), sampler)
    _assert_valid(layer_65, results)
    info = results[0].info
    assert info["emulation"] is True and "classical emulation" in info["note"]
    assert 0.0 <= info["chain_break_fraction"] <= 1.0
    assert "chain_break_fraction" in info["best"]
    assert info["chain_length"]["max"] >= 2  # 65 variables need chains on Pegasus
    assert info["qpu_access_time"] > 0 and "problem_id" in info


def test_qpu_refuses_a_bqm_larger_than_its_largest_clique():
    sampler = get_sampler("qpu-mock")
    limit = sampler.largest_clique_size
    bqm = dimod.BQM({v: 1.0 for v in range(limit + 1)}, {(0, 1): 1.0}, 0.0, "BINARY")
    with pytest.raises(
        errors.ProblemTooLargeError,
        match=rf"{limit + 1} variables.*\({limit} variables\).*'hybrid'",
    ):
        sampler.sample(bqm)


class _FakeClient:
    """Stands in for dwave.cloud's Client in the hybrid sampler's module (tests only)."""

    configs = []

    @classmethod
    def from_config(cls, **config):
        cls.configs.append(config)
        return cls()

    def get_solver(self):
        from dwave.system.testing import MockLeapHybridSolver

        return MockLeapHybridSolver()

    def close(self):
        pass


def test_hybrid_path_offline(monkeypatch, canary_token, small_layer):
    import dwave.system.samplers.leap_hybrid_sampler as module

    monkeypatch.setattr(module, "Client", _FakeClient)
    name, sampler = resolve_sampler("auto")  # a token is configured: auto means hybrid
    assert name == "hybrid"
    results = solve_bqms(small_layer.bqms(), sampler, time_limit=1)
    _assert_valid(small_layer, results)
    config = _FakeClient.configs[-1]
    assert config["request_timeout"] and config["http_retry_total"] <= 3  # fails fast
    assert canary_token not in repr(config) and canary_token not in repr(results)


def test_unreachable_cloud_fails_fast_without_leaking_the_token(monkeypatch, canary_token):
    import dwave.system.samplers.leap_hybrid_sampler as module

    class Down(_FakeClient):
        @classmethod
        def from_config(cls, **config):
            raise ConnectionError(f"cannot reach the API with token {canary_token}")

    monkeypatch.setattr(module, "Client", Down)
    with pytest.raises(errors.SolverUnavailableError) as caught:
        get_sampler("hybrid")
    assert "could not reach Leap's hybrid solver" in str(caught.value)
    assert canary_token not in str(caught.value)
    name, sampler = resolve_sampler("hybrid", fallback="neal")
    assert name == "neal"


def test_qpu_warm_start_is_a_reverse_anneal_spread_over_the_chains(layer_65):
    from solvers.qpu import REVERSE_SCHEDULE

    sampler = get_sampler("qpu-mock", num_reads=4)
    mock = sampler._clique.child
    sent = []
    original = mock.sample
    mock.sample = lambda bqm, **kwargs: sent.append((bqm, kwargs)) or original(bqm, **kwargs)
    bqms = list(layer_65.bqms())
    starts = [layer_65.rtn_sample(i) for i in range(len(bqms))]
    results = solve_bqms(bqms, sampler, initial_states=starts)
    for bqm, start, result, (embedded, kwargs) in zip(bqms, starts, results, sent):
        chains = result.info["embedding_context"]["embedding"]
        state = kwargs["initial_state"]
        assert set(state) == set(embedded.variables)  # every active qubit, nothing else
        for v, chain in chains.items():  # each chain carries its variable's spin
            assert {state[q] for q in chain} == {2 * start[v] - 1}
        assert [list(p) for p in REVERSE_SCHEDULE] == kwargs["anneal_schedule"]
        assert kwargs["reinitialize_state"] is True
        assert result.info["reverse_anneal"]["reinitialize_state"] is True
        assert result.info["emulation"] is True
        # the emulation descends from the warm start: never above it
        assert result.energy <= bqm.energy(start) + 1e-9


def test_qpu_reverse_anneal_rejects_conflicting_parameters(layer_65):
    bqm = layer_65.bqm(0)
    start = [layer_65.rtn_sample(0)]
    with pytest.raises(ValueError, match="annealing_time"):
        get_sampler("qpu-mock", annealing_time=20).sample(bqm, initial_states=start)
    with pytest.raises(ValueError, match="start and end at s = 1"):
        get_sampler("qpu-mock").sample(bqm, initial_states=start, anneal_schedule=[[0, 0], [20, 1]])
    with pytest.raises(ValueError, match="no value for"):
        get_sampler("qpu-mock").sample(bqm, initial_states=[{("w", 0): 1}])
