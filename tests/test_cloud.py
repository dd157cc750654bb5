"""The cloud path end to end: the real dwave-cloud-client (LeapHybridSampler, DWaveSampler)
against the project's Leap emulator — concurrency, packing, faults, budget, fallback,
resume, and no token anywhere."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import annealq
from annealq.cache import CacheStore
from annealq.errors import SolverUnavailableError
from annealq.testing import LeapEmulator
from tests.conftest import CANARY_TOKEN


@pytest.fixture(scope="module")
def digits():
    data = annealq.load_dataset("digits")
    model, _ = annealq.reference_model(data)
    return data, model


def _point_at(monkeypatch, tmp_path, emulator, token=None):
    config = tmp_path / "dwave.conf"
    config.write_text("")
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(config))
    monkeypatch.setenv("DWAVE_API_ENDPOINT", emulator.endpoint)
    monkeypatch.setenv("DWAVE_API_TOKEN", token or emulator.token)


@pytest.fixture
def leap(monkeypatch, tmp_path):
    """An emulator with realistic-ratio service times (time scale 200) and 8 hybrid slots."""
    with LeapEmulator(time_scale=200.0, slots={"hybrid": 8, "qpu": 1}) as emulator:
        _point_at(monkeypatch, tmp_path, emulator)
        yield emulator


def _run(data, model, solver, **options):
    return annealq.quantize(
        model,
        data,
        bits=2,
        solver=solver,
        cache=False,
        quiet=True,
        seed=0,
        calibration_size=200,
        **options,
    )


def test_hybrid_packs_a_layer_into_few_problems_and_bills_less(leap, digits):
    data, model = digits
    alone = _run(data, model, "hybrid", pack=False, max_in_flight=8)
    billed_alone = leap.stats()["billed_seconds"]
    packed = _run(data, model, "hybrid")
    cloud = packed.report["cloud"]
    # (a transient error under load may add a retry's submission, never a neuron)
    alone_cloud = alone.report["cloud"]
    assert 74 <= alone_cloud["problems"] <= 74 + alone_cloud["retries"]
    assert cloud["problems"] <= 4 + cloud["retries"] and cloud["neurons"] == 74
    # the mock solver's minimum_time_limit curve: ≥ 5x fewer billed seconds
    assert alone.report["cloud"]["billed_seconds"] >= 5 * cloud["billed_seconds"]
    assert sum(billed_alone.values()) == pytest.approx(alone.report["cloud"]["billed_seconds"])
    assert alone.report["cloud"]["max_in_flight"] > 1
    for layer in packed.report["layers"]:
        assert layer["solved_by"] == {"hybrid:hybrid_bqm_solver": layer["out_features"]}
        assert layer["energy"] < layer["rtn_energy"]
    # the emulator answers a neuron from its own BQM, packed or not: splitting the packed
    # answers back must give every neuron exactly its unpacked integers
    for one, other in zip(alone.layers, packed.layers):
        assert (one.int_weight == other.int_weight).all()


def test_qpu_puts_several_digits_neurons_in_one_anneal(leap, digits):
    data, model = digits
    result = _run(data, model, "qpu")
    cloud = result.report["cloud"]
    assert cloud["neurons"] == 74
    # 65-variable neurons: at least 4 per anneal on the emulated Advantage (Pegasus P16)
    assert cloud["neurons"] / cloud["problems"] >= 4
    assert leap.stats()["problems_submitted"] == cloud["problems"]


@pytest.fixture(scope="module")
def fault_free(digits, tmp_path_factory):
    data, model = digits
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        LeapEmulator(time_scale=500.0, slots=8) as clean,
    ):
        _point_at(monkeypatch, tmp_path_factory.mktemp("clean"), clean)
        return _run(data, model, "hybrid")


@pytest.mark.parametrize(
    "faults",
    [
        "http429_count=2,retry_after=0",
        "http5xx_count=2",
        "drop_count=2",
        "latency=0.01",
        "http5xx_count=1,scope=answer",
        "drop_count=1,scope=answer",
    ],
)
def test_transient_faults_are_retried_with_identical_results(
    monkeypatch, tmp_path, digits, fault_free, faults
):
    data, model = digits
    reference = fault_free
    with LeapEmulator(time_scale=500.0, slots=8, faults=faults) as faulty:
        _point_at(monkeypatch, tmp_path, faulty)
        result = _run(data, model, "hybrid")
        injected = sum(faulty.stats()["faults"].get(k, 0) for k in ("http429", "http5xx", "drop"))
    for a, b in zip(reference.layers, result.layers):
        assert (a.int_weight == b.int_weight).all() and (a.int_bias == b.int_bias).all()
    cloud = result.report["cloud"]
    # a retried problem's neurons are counted once, when answered
    assert cloud["fallback_neurons"] == 0 and cloud["neurons"] == 74
    if "latency" not in faults:
        assert injected >= 1


def test_a_problem_that_never_finishes_times_out_and_is_retried(monkeypatch, tmp_path, digits):
    data, model = digits
    with LeapEmulator(time_scale=500.0, slots=8, faults="never_finish_count=1") as emulator:
        _point_at(monkeypatch, tmp_path, emulator)
        # small problems (one neuron each), so that only the stuck one meets the timeout
        result = _run(data, model, "hybrid", pack=False, problem_timeout=3.0)
    cloud = result.report["cloud"]
    assert cloud["timeouts"] == 1 and cloud["retries"] >= 1
    assert cloud["fallback_neurons"] == 0


def test_persistent_faults_fall_back_per_neuron_and_the_report_says_so(
    monkeypatch, tmp_path, digits
):
    data, model = digits
    with LeapEmulator(time_scale=500.0, slots=8, faults="http5xx=1.0,scope=submit") as emu:
        _point_at(monkeypatch, tmp_path, emu)
        result = _run(data, model, "hybrid", retries=1)
    layers = result.report["layers"]
    assert layers[0]["solved_by"] == {"neal": 64} and layers[1]["solved_by"] == {"neal": 10}
    assert result.report["cloud"]["fallback_neurons"] == 74
    assert result.report["cloud"]["failures"] >= 1


def test_a_rejected_token_is_one_clear_error_naming_its_source(monkeypatch, tmp_path, digits):
    data, model = digits
    with LeapEmulator(time_scale=500.0, token="the-right-token") as emulator:
        _point_at(monkeypatch, tmp_path, emulator, token=CANARY_TOKEN)
        with pytest.raises(SolverUnavailableError) as error:
            _run(data, model, "hybrid")
    message = str(error.value)
    assert "rejected" in message and "DWAVE_API_TOKEN" in message
    assert CANARY_TOKEN not in message


def test_auto_with_leap_unreachable_falls_back_to_neal(monkeypatch, tmp_path, digits, caplog):
    data, model = digits
    config = tmp_path / "dwave.conf"
    config.write_text("")
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(config))
    monkeypatch.setenv("DWAVE_API_ENDPOINT", "http://127.0.0.1:9/sapi/v2/")  # nothing there
    monkeypatch.setenv("DWAVE_API_TOKEN", CANARY_TOKEN)
    result = _run(data, model, "auto", paper=True)  # the paper's auto: hybrid, else neal
    assert result.report["solver"] == "neal"
    assert any("falling back to 'neal'" in note for note in result.report["solver_notes"])
    assert CANARY_TOKEN not in json.dumps(result.report) + caplog.text
    result = _run(data, model, "auto")  # the default: hybrid-nl from kbest, else polished
    assert result.report["solver"] == "polish:neal"
    assert any(
        "falling back to the offline default" in note for note in result.report["solver_notes"]
    )
    assert CANARY_TOKEN not in json.dumps(result.report) + caplog.text


def test_budget_refuses_a_plan_over_it_and_stops_submitting_when_spent(leap, digits):
    data, model = digits
    with pytest.raises(ValueError, match="over --max-cloud-seconds"):
        _run(data, model, "hybrid", pack=False, max_cloud_seconds=10.0)
    # a plan within budget whose estimate is exceeded in flight is cut by the executor
    plan = annealq.plan.run_plan(
        model,
        data.calibration(200),
        annealq.get_sampler("hybrid"),
        annealq.config.QuantizeConfig(bits=2),
        pack=False,
    )
    assert plan["problems"] == 74 and plan["estimated_billed_seconds"] > 70


def test_dry_run_prints_the_plan_and_submits_nothing(leap, capsys):
    from annealq.cli import main

    assert (
        main(
            [
                "quantize",
                "--dataset",
                "digits",
                "--bits",
                "2",
                "--solver",
                "hybrid",
                "--dry-run",
                "--calibration",
                "200",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "nothing was submitted" in out and "billed s" in out
    assert leap.stats()["problems_submitted"] == 0


def test_kill_9_mid_layer_resumes_with_only_the_unfinished_neurons(leap, tmp_path):
    cache = tmp_path / "cache.sqlite"
    command = [
        sys.executable,
        "-m",
        "annealq",
        "quantize",
        "--dataset",
        "digits",
        "--bits",
        "2",
        "--solver",
        "hybrid",
        "--no-pack",
        "--max-in-flight",
        "2",
        "--calibration",
        "200",
        "--cache",
        str(cache),
        "--quiet",
    ]
    with LeapEmulator(time_scale=20.0, slots=2) as slow:  # ~50 ms a problem
        env = {**os.environ, "DWAVE_API_ENDPOINT": slow.endpoint}
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _entries(cache) < 10:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    done = _entries(cache)
    assert 10 <= done < 74
    with LeapEmulator(time_scale=500.0, slots=8) as fast:
        env = {**os.environ, "DWAVE_API_ENDPOINT": fast.endpoint}
        report = tmp_path / "r.json"
        subprocess.run(
            [*command, "--report", str(report)],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        submitted = fast.stats()["problems_submitted"]
    retried = json.loads(report.read_text())["cloud"]["retries"]
    # one entry per distinct neuron problem (a neuron without variables is not submitted);
    # a problem retried after a transient fault is submitted again
    assert submitted - retried == _entries(cache) - done and _entries(cache) >= 72


def _entries(path) -> int:
    if not path.exists():
        return 0
    try:
        with CacheStore(path) as store:
            return store.stats()["entries"]
    except Exception:  # the file is being created
        return 0


def test_a_neuron_too_large_for_the_qpu_goes_to_the_fallback(no_token):
    import numpy as np
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(400, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    x = np.random.default_rng(0).normal(size=(64, 400))
    result = annealq.quantize(
        model, x, bits=2, solver="qpu-mock", cache=False, quiet=True, fallback="steepest"
    )
    first, second = result.report["layers"]
    assert first["solved_by"] == {"steepest": 3}  # ~400 variables > the 180-clique limit
    assert list(second["solved_by"]) == ["MockDWaveSampler:pegasus16"]
    assert result.report["cloud"]["fallback_neurons"] == 3


def test_packing_keeps_every_bias_of_every_neuron_whatever_its_label_order():
    import dimod
    import numpy as np

    from solvers.cloud import combine

    rng = np.random.default_rng(2)
    bqms = []
    for k in range(3):
        n = 6 + k
        bqm = dimod.BQM(np.triu(rng.normal(size=(n, n))), "BINARY", offset=float(k))
        # labels that sort differently from their insertion order
        bqm.relabel_variables({v: ("w", (n - int(v)) * 3, k) for v in bqm.variables})
        bqms.append(bqm)
    packed, labels = combine(bqms)
    assert packed.offset == 0.0 + 1.0 + 2.0
    assert packed.num_interactions == sum(b.num_interactions for b in bqms)
    for bqm, own in zip(bqms, labels):
        at = dict(zip(bqm.variables, own))
        assert all(packed.get_linear(at[v]) == bias for v, bias in bqm.linear.items())
        assert all(
            packed.get_quadratic(at[u], at[v]) == bias for (u, v), bias in bqm.quadratic.items()
        )


def test_an_answer_read_while_the_client_decodes_it_is_read_again_not_resubmitted(
    leap, digits, monkeypatch
):
    """dwave-cloud-client's poller marks a hybrid problem done, decodes the answer, and only
    then records the decoded sample set: widen that window so that every read lands in it."""
    from dwave.cloud import computation

    decode = computation.Future._decode

    def slow_decode(self):
        result = decode(self)
        time.sleep(0.2)  # the poller thread, between decoding and recording the sample set
        return result

    monkeypatch.setattr(computation.Future, "_decode", slow_decode)
    data, model = digits
    result = _run(data, model, "hybrid")
    cloud = result.report["cloud"]
    assert cloud["retries"] == 0 and cloud["fallback_neurons"] == 0
    assert leap.stats()["problems_submitted"] == cloud["problems"] <= 4
    assert cloud["neurons"] == 74


def test_planning_a_layer_reads_its_bqms_one_at_a_time(leap, digits, monkeypatch):
    """Packing needs only each neuron's size: the plan never holds a layer's BQMs at once
    (a CIFAR-10 first-layer neuron's BQM is ~150 MB)."""
    import weakref

    from annealq.layer import LayerQUBO
    from solvers.hybrid import HybridSampler

    live, peaks = [], []  # BQMs alive; the most alive during each plan
    build, plan = LayerQUBO.bqm, HybridSampler.plan

    def tracked(self, i):
        bqm = build(self, i)
        live.append(i)
        weakref.finalize(bqm, live.remove, i)
        if peaks and peaks[-1] is not None:
            peaks[-1] = max(peaks[-1], len(live))
        return bqm

    def watched(self, bqms, calls, *, pack):
        peaks.append(len(live))
        try:
            return plan(self, bqms, calls, pack=pack)
        finally:
            peaks.append(None)  # outside a plan: stop recording into this entry

    monkeypatch.setattr(LayerQUBO, "bqm", tracked)
    monkeypatch.setattr(HybridSampler, "plan", watched)
    data, model = digits
    result = _run(data, model, "hybrid")
    assert result.report["cloud"]["neurons"] == 74
    peaks = [p for p in peaks if p is not None]
    assert len(peaks) == 2 and max(peaks) <= 2  # the one read and the one before it
