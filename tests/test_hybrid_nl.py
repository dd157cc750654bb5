"""``hybrid-nl``: a layer's exact rounding as one integer model for Leap's nonlinear solver —
the model's objective is the layer's error, and the whole path runs through the real
dwave-cloud-client (``LeapHybridNLSampler``) against the project's Leap emulator: one problem
per layer, splitting by the solver's limits, faults, fallback, budget, cache, report."""

import io
import json

import dimod
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import annealq
from annealq import formulate_layer
from annealq.cache import CacheStore
from annealq.executors.cloud import CloudExecutor, CloudPolicy
from annealq.integer_model import IntegerForm, LayerModel, bqm_form, read_layer_model
from annealq.testing import LeapEmulator


def _output_error(lq, W, b, X, q):
    """``‖X Wᵀ + b − (X ŵᵀ + b̂)‖²`` per neuron, straight from the grids."""
    w_hat = lq.weight_grid.dequantize(q[:, :-1])
    b_hat = lq.bias_grid.dequantize(q[:, -1]) if lq.has_bias else 0.0
    target = X @ W.T + (0.0 if b is None else b)
    return np.sum((target - X @ w_hat.T - b_hat) ** 2, axis=0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 4),
    f=st.integers(1, 9),
    bits=st.integers(1, 4),
    scheme=st.sampled_from(["reference", "symmetric", "affine"]),
    per_channel=st.booleans(),
    grouped=st.booleans(),
    has_bias=st.booleans(),
    window=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_the_models_objective_is_the_layers_squared_output_error(
    n, f, bits, scheme, per_channel, grouped, has_bias, window, seed
):
    if scheme == "symmetric" and bits == 1:
        bits = 2
    rng = np.random.default_rng(seed)
    W, X = rng.normal(size=(n, f)), rng.normal(size=(3 * f + 2, f))
    b = rng.normal(size=n) if has_bias else None
    lq = formulate_layer(
        W,
        b,
        X,
        bits=bits,
        scheme=scheme,
        per_channel=per_channel,
        group_size=2 if grouped else None,
        window_bits=window,
    )
    form = IntegerForm.of_layer(lq, range(n))
    o = rng.integers(0, form.span + 1)  # any state of the model
    q = lq.base + o
    errors = _output_error(lq, W, b, X, q)
    assert np.allclose(form.energies(o), errors, rtol=1e-9, atol=1e-9)
    model = LayerModel.build(form, o)
    assert model.objective() == pytest.approx(errors.sum(), rel=1e-9, abs=1e-9)
    # and the same state through the binary QUBO
    states = lq.states(q)
    assert np.allclose(
        [lq.energy(i, s) for i, s in enumerate(lq.samples(states))], errors, rtol=1e-9, atol=1e-9
    )


def test_a_bqm_is_a_one_neuron_integer_model():
    rng = np.random.default_rng(3)
    bqm = dimod.generators.gnp_random_bqm(9, 0.5, "BINARY", random_state=3)
    bqm.offset = 1.25
    form, order = bqm_form(bqm)
    for _ in range(5):
        u = rng.integers(0, 2, size=(1, len(order)))
        energy = bqm.energy(dict(zip(order, u[0])))
        assert LayerModel.build(form, u).objective() == pytest.approx(energy)


def test_the_uploaded_file_reads_back_as_the_same_layer(small_layer):
    from dwave.optimization import Model

    form = IntegerForm.of_layer(small_layer, [0, 1, 2])
    start = form.span // 2
    built = LayerModel.build(form, start)
    again, state, _ = read_layer_model(Model.from_file(io.BytesIO(built.to_bytes())))
    assert np.array_equal(again.span, form.span) and np.array_equal(state, start)
    assert np.allclose(again.gram, form.gram) and np.allclose(again.steps, form.steps)
    assert np.allclose(again.energies(start).sum(), form.energies(start).sum())


def _point_at(monkeypatch, tmp_path, emulator):
    config = tmp_path / "dwave.conf"
    config.write_text("")
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(config))
    monkeypatch.setenv("DWAVE_API_ENDPOINT", emulator.endpoint)
    monkeypatch.setenv("DWAVE_API_TOKEN", emulator.token)


@pytest.fixture
def leap(monkeypatch, tmp_path):
    with LeapEmulator(time_scale=500.0) as emulator:
        _point_at(monkeypatch, tmp_path, emulator)
        yield emulator


@pytest.fixture(scope="module")
def layer():
    rng = np.random.default_rng(11)
    W, b, X = rng.normal(size=(12, 30)), rng.normal(size=12), rng.normal(size=(150, 30))
    return formulate_layer(W, b, X, bits=3, window_bits=3)


def test_a_layer_is_one_problem_answered_with_exact_errors_never_worse_than_rtn(leap, layer):
    sampler = annealq.get_sampler("hybrid-nl")
    assert sampler.identity.startswith("hybrid-nl:")
    results = sampler.sample_layer(layer)
    rtn = layer.samples(layer.states(layer.rtn_integers()))
    for i, (result, start) in enumerate(zip(results, rtn)):
        assert result.energy == pytest.approx(layer.energy(i, result.sample), rel=1e-9)
        assert result.energy <= layer.energy(i, start) + 1e-9
        assert "emulation" in result.info and result.info["packed_neurons"] == 12
    assert sum(r.energy for r in results) < 0.9 * sum(layer.energy(i, s) for i, s in enumerate(rtn))
    stats = leap.stats()
    assert stats["problems_completed"] == 1
    assert stats["billed_seconds"][leap.catalog.nl_name] > 0


def test_a_layer_over_the_solvers_limits_is_split_into_groups_that_fit(
    monkeypatch, tmp_path, layer
):
    form = IntegerForm.of_layer(layer, range(4))
    limit = LayerModel.build(form, 0).model.state_size()  # room for 4 neurons, not 5
    with LeapEmulator(time_scale=500.0, nl_limits={"maximum_state_size": limit}) as emulator:
        _point_at(monkeypatch, tmp_path, emulator)
        sampler = annealq.get_sampler("hybrid-nl")
        groups = sampler.plan_layer(layer, list(range(12)), pack=True)
        assert sorted(k for g in groups for k in g) == list(range(12))
        assert max(map(len, groups)) == 4 and len(groups) == 3
        with CloudExecutor(CloudPolicy(retries=0)) as executor:
            results = annealq.solve_layer(layer, sampler, executor=executor)
        assert emulator.stats()["problems_completed"] == 3  # none refused as too large
    assert all(not r.info.get("fallback") for r in results)


def test_a_neuron_over_the_limits_goes_to_the_fallback(monkeypatch, tmp_path, layer):
    with LeapEmulator(time_scale=500.0, nl_limits={"maximum_state_size": 1000}) as emulator:
        _point_at(monkeypatch, tmp_path, emulator)
        sampler = annealq.get_sampler("hybrid-nl")
        with CloudExecutor(fallback=("lns", annealq.get_sampler("lns"))) as executor:
            results = annealq.solve_layer(layer, sampler, executor=executor)
            assert executor.stats()["fallback_neurons"] == 12
        assert emulator.stats()["problems_submitted"] == 0
    assert all(r.info["fallback"] and r.info["solved_by"] == "lns" for r in results)


@pytest.fixture(scope="module")
def undisturbed(layer, tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch, LeapEmulator(time_scale=500.0) as emu:
        _point_at(monkeypatch, tmp_path_factory.mktemp("clean"), emu)
        return [
            r.sample
            for r in annealq.solve_layer(
                layer, annealq.get_sampler("hybrid-nl"), executor=CloudExecutor()
            )
        ]


@pytest.mark.parametrize(
    "faults",
    [
        "http429_count=2,retry_after=0",
        "http5xx_count=2",
        "drop_count=2",
        "http5xx_count=1,scope=upload",
        "drop_count=1,scope=answer",
        "http5xx_count=1,scope=answer",
        "http429_count=1,retry_after=0,scope=answer",
        "latency=0.01",
    ],
)
def test_transient_faults_are_retried_with_identical_results(
    monkeypatch, tmp_path, layer, undisturbed, faults
):
    with LeapEmulator(time_scale=500.0, faults=faults) as emulator:
        _point_at(monkeypatch, tmp_path, emulator)
        executor = CloudExecutor(CloudPolicy(backoff=0.01))
        results = annealq.solve_layer(layer, annealq.get_sampler("hybrid-nl"), executor=executor)
    assert [r.sample for r in results] == undisturbed
    assert executor.stats()["fallback_neurons"] == 0


@pytest.mark.parametrize(
    "faults",
    [
        "http5xx=1.0,scope=submit",
        "http429=1.0,retry_after=0,scope=upload",
        "drop=1.0,scope=answer",
        "http5xx=1.0,scope=answer",
        "never_finish=1.0",
    ],
)
def test_persistent_faults_fall_back_cleanly(monkeypatch, tmp_path, layer, faults):
    with LeapEmulator(time_scale=500.0, faults=faults) as emulator:
        _point_at(monkeypatch, tmp_path, emulator)
        sampler = annealq.get_sampler("hybrid-nl")
        policy = CloudPolicy(retries=1, backoff=0.01, problem_timeout=2.0)
        with CloudExecutor(policy, fallback=("lns", annealq.get_sampler("lns"))) as executor:
            results = annealq.solve_layer(layer, sampler, executor=executor)
            stats = executor.stats()
    assert stats["fallback_neurons"] == 12 and stats["failures"] == 1
    for i, result in enumerate(results):
        assert result.info["fallback"] and result.info["solved_by"] == "lns"
        assert result.energy == pytest.approx(layer.energy(i, result.sample))


@pytest.fixture(scope="module")
def digits():
    data = annealq.load_dataset("digits")
    model, _ = annealq.reference_model(data)
    return data, model


def test_a_model_runs_end_to_end_one_problem_per_layer_and_caches(leap, digits, tmp_path):
    data, model = digits
    with CacheStore(tmp_path / "cache.sqlite") as store:
        result = annealq.quantize(
            model,
            data,
            bits=4,
            solver="hybrid-nl",
            cache=store,
            quiet=True,
            seed=0,
            calibration_size=200,
        )
        again = annealq.quantize(
            model,
            data,
            bits=4,
            solver="hybrid-nl",
            cache=store,
            quiet=True,
            seed=0,
            calibration_size=200,
        )
    report = result.report
    # the whole grid from GPTQ's integers by default
    assert report["config"]["window_bits"] == 4 and report["config"]["start"] == "gptq"
    cloud = report["cloud"]
    assert cloud["problems"] == 2 and cloud["neurons"] == 74 and cloud["fallback_neurons"] == 0
    assert [row["problems"] for row in cloud["layers"]] == [1, 1]
    assert sum(row["uploaded_bytes"] for row in cloud["layers"]) == cloud["uploaded_bytes"] > 0
    for layer in result.layers:  # exact errors, whatever the solver reported
        assert layer.energy < layer.rtn_energy
    assert again.cache_hits == 74 and leap.stats()["problems_submitted"] == 2
    for a, b in zip(result.layers, again.layers):
        assert (a.int_weight == b.int_weight).all()
    assert leap.token not in json.dumps(report)


def test_budget_and_dry_run_use_the_models_estimates(leap, digits, capsys):
    from annealq.cli import main

    data, model = digits
    with pytest.raises(ValueError, match="over --max-cloud-seconds"):
        annealq.quantize(
            model,
            data,
            bits=4,
            solver="hybrid-nl",
            cache=False,
            quiet=True,
            calibration_size=200,
            max_cloud_seconds=6.0,
        )
    assert (
        main(
            [
                "quantize",
                "--dataset",
                "digits",
                "--bits",
                "4",
                "--solver",
                "hybrid-nl",
                "--dry-run",
                "--calibration",
                "200",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "-> 1 problems" in out and "nothing was submitted" in out
    assert leap.stats()["problems_submitted"] == 0


def test_hybrid_uploads_are_reported_too(leap, digits):
    data, model = digits
    result = annealq.quantize(
        model, data, bits=2, solver="hybrid", cache=False, quiet=True, seed=0, calibration_size=200
    )
    cloud = result.report["cloud"]
    assert cloud["uploaded_bytes"] > 0
    assert sum(row["uploaded_bytes"] for row in cloud["layers"]) == cloud["uploaded_bytes"]


def test_the_cli_runs_hybrid_nl_end_to_end(leap, tmp_path):
    import os
    import subprocess
    import sys

    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "annealq",
            "quantize",
            "--dataset",
            "digits",
            "--bits",
            "4",
            "--solver",
            "hybrid-nl",
            "--calibration",
            "200",
            "--no-cache",
            "--report",
            str(report),
        ],
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "cloud: 2 problems" in done.stdout and "bytes uploaded" in done.stdout
    cloud = json.loads(report.read_text())["cloud"]
    assert cloud["problems"] == 2 and cloud["fallback_neurons"] == 0
    assert leap.token not in done.stdout + done.stderr + report.read_text()
