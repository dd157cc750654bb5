"""LeapEmulator driven by the real, unmodified Ocean samplers and cloud client."""

import json
import socket
import subprocess
import sys
import time

import dimod
import numpy as np
import pytest
import requests
from dwave.cloud.exceptions import CanceledFutureError, SolverAuthenticationError, SolverError
from dwave.cloud.testing import mocks
from dwave.system import DWaveCliqueSampler, DWaveSampler, LeapHybridSampler

from annealq.testing import LeapEmulator, parse_faults
from annealq.testing.leap.faults import FaultInjector

LABEL = "annealq LeapEmulator: classical answers, not quantum hardware"


@pytest.fixture(autouse=True)
def isolated_dwave_env(monkeypatch, tmp_path):
    """No user D-Wave config or DWAVE_* variable can steer the client."""
    import os

    for name in list(os.environ):
        if name.startswith("DWAVE_"):
            monkeypatch.delenv(name)
    empty = tmp_path / "dwave.conf"
    empty.write_text("")
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(empty))
    monkeypatch.setenv("DWAVE_CACHE_HOME", str(tmp_path / "dwave-cache"))


def _spin_bqm(n, density, seed):
    rng = np.random.default_rng(seed)
    return dimod.generators.gnp_random_bqm(
        n, density, "SPIN", random_state=seed, bias_generator=lambda k: rng.uniform(-1, 1, k)
    )


def _path_on_qubits(sampler, length=4):
    """A short path of coupled qubits, so the problem fits the QPU graph."""
    adjacency = sampler.adjacency
    path = [sampler.nodelist[0]]
    while len(path) < length:
        path.append(next(q for q in sorted(adjacency[path[-1]]) if q not in path))
    return path


def _qpu_sample(emu, num_reads=10, **kwargs):
    with DWaveSampler(endpoint=emu.endpoint, token=emu.token) as sampler:
        u, v = sampler.edgelist[0]
        sampleset = sampler.sample_ising(
            {u: 0.5, v: -0.3}, {(u, v): -1.0}, num_reads=num_reads, **kwargs
        )
        sampleset.resolve()
        return sampleset


# -- server basics ----------------------------------------------------------


def test_binds_localhost_and_frees_port_on_close():
    emu = LeapEmulator()
    host, port = emu.address
    assert host == "127.0.0.1"
    assert emu.endpoint == f"http://127.0.0.1:{port}/sapi/v2/"
    assert emu.token == "emulator-token"
    r = requests.get(emu.endpoint + "solvers/remote/", headers={"X-Auth-Token": "x"}, timeout=5)
    assert r.status_code == 200 and len(r.json()) == 3  # QPU, hybrid BQM, hybrid NL
    emu.close()
    emu.close()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(emu.endpoint + "solvers/remote/", timeout=2)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))  # port is free again


def test_solver_descriptions_come_from_client_mocks():
    with LeapEmulator() as emu:
        r = requests.get(
            emu.endpoint + "solvers/remote/hybrid_bqm_solver/",
            headers={"X-Auth-Token": emu.token},
            timeout=5,
        )
        props = r.json()["properties"]
        expected = mocks.hybrid_bqm_solver_data()["properties"]
        for key in (
            "minimum_time_limit",
            "maximum_number_of_variables",
            "maximum_number_of_biases",
            "category",
        ):
            assert props[key] == expected[key]
        r = requests.get(
            emu.endpoint + "solvers/remote/",
            params={"filter": "none,+identity,+status"},
            headers={"X-Auth-Token": emu.token},
            timeout=5,
        )
        assert all(set(d) == {"identity", "status"} for d in r.json())


# -- QPU --------------------------------------------------------------------


def test_dwave_sampler_samples_on_pegasus_qubits():
    with LeapEmulator(time_scale=100) as emu:
        with DWaveSampler(endpoint=emu.endpoint, token=emu.token) as sampler:
            assert sampler.properties["topology"] == {"type": "pegasus", "shape": [16]}
            assert sampler.solver.num_active_qubits > 5000
            path = _path_on_qubits(sampler)
            h = {q: 0.1 * (i - 1.5) for i, q in enumerate(path)}
            J = {(a, b): -1.0 for a, b in zip(path, path[1:])}
            bqm = dimod.BQM.from_ising(h, J, offset=0.25)
            sampleset = sampler.sample(bqm, num_reads=50)
            assert sampleset.record.num_occurrences.sum() == 50
            np.testing.assert_allclose(sampleset.record.energy, bqm.energies(sampleset))
            timing = sampleset.info["timing"]
            assert timing["emulation"] == LABEL
            assert timing["qpu_access_time"] > timing["qpu_programming_time"] > 0
            raw = sampler.sample(bqm, num_reads=7, answer_mode="raw")
            assert len(raw) == 7
        stats = emu.stats()
        assert stats["problems_completed"] == 2
        billed = stats["billed_seconds"][sampler.solver.name]
        assert billed == pytest.approx(
            (timing["qpu_access_time"] + raw.info["timing"]["qpu_access_time"]) * 1e-6
        )


def test_client_pointed_by_environment_variables(monkeypatch):
    with LeapEmulator(time_scale=1000) as emu:
        monkeypatch.setenv("DWAVE_API_ENDPOINT", emu.endpoint)
        monkeypatch.setenv("DWAVE_API_TOKEN", "any-token-will-do")
        with DWaveSampler() as sampler:
            u, v = sampler.edgelist[0]
            sampleset = sampler.sample_ising({u: 1.0}, {(u, v): -1.0})
            assert sampleset.info["timing"]["emulation"] == LABEL


def test_qubo_problem_type():
    with LeapEmulator(time_scale=100) as emu:
        with DWaveSampler(endpoint=emu.endpoint, token=emu.token) as sampler:
            u, v = sampler.edgelist[0]
            Q = {(u, u): -1.0, (v, v): -1.0, (u, v): 2.0}
            sampleset = sampler.sample_qubo(Q, num_reads=20)
            bqm = dimod.BQM.from_qubo(Q)
            np.testing.assert_allclose(sampleset.record.energy, bqm.energies(sampleset))
            assert sampleset.first.energy == -1.0


def test_clique_sampler_dense_20_variables():
    bqm = _spin_bqm(20, 1.0, seed=3)
    with LeapEmulator(time_scale=100) as emu:
        with DWaveCliqueSampler(endpoint=emu.endpoint, token=emu.token) as sampler:
            sampleset = sampler.sample(bqm, num_reads=30)
    assert set(sampleset.variables) == set(bqm.variables)
    np.testing.assert_allclose(sampleset.record.energy, bqm.energies(sampleset))
    assert sampleset.info["timing"]["emulation"] == LABEL
    # simulated annealing on a 20-spin problem lands well below a random state
    assert sampleset.first.energy < np.mean(
        bqm.energies(
            dimod.SampleSet.from_samples(
                np.random.default_rng(0).choice([-1, 1], (50, 20)), "SPIN", 0
            )
        )
    )


# -- hybrid -----------------------------------------------------------------


def test_hybrid_sampler_upload_billing_and_determinism():
    bqm = _spin_bqm(50, 0.2, seed=5)
    with LeapEmulator(time_scale=1000) as emu:
        with LeapHybridSampler(endpoint=emu.endpoint, token=emu.token) as sampler:
            minimum = sampler.min_time_limit(bqm)
            first = sampler.sample(bqm)
            second = sampler.sample(bqm)
            longer = sampler.sample(bqm, time_limit=5)
            for s in (first, second, longer):
                np.testing.assert_allclose(s.record.energy, bqm.energies(s))
            info = first.info
            assert info["emulation"] == LABEL
            assert "problem_data_id" in info  # went through the upload path
            assert info["charge_time"] == round(minimum * 1e6)
            assert info["run_time"] >= round(minimum * 1e6)
            assert info["qpu_access_time"] == 0
            assert longer.info["charge_time"] == 5_000_000
            assert first.first.sample == second.first.sample
            assert first.first.energy == second.first.energy
        stats = emu.stats()
    assert stats["billed_seconds"]["hybrid_bqm_solver"] == pytest.approx(2 * minimum + 5)
    assert stats["problems_completed"] == 3


def test_hybrid_slots_bound_concurrency():
    n, slots, service_wall = 8, 4, 0.3
    bqms = [_spin_bqm(50, 0.2, seed=s) for s in range(n)]
    curve = mocks.hybrid_bqm_solver_data()["properties"]["minimum_time_limit"]
    minimum = float(np.interp(50, *zip(*curve)))
    with LeapEmulator(time_scale=minimum / service_wall, slots=slots) as emu:
        with LeapHybridSampler(endpoint=emu.endpoint, token=emu.token) as sampler:
            start = time.monotonic()
            pending = [sampler.sample(b) for b in bqms]  # futures, unresolved
            for s in pending:
                s.resolve()
            wall = time.monotonic() - start
        stats = emu.stats()
    # ceil(8/4) rounds of 0.3 s, far from 8 x 0.3 s
    assert 2 * service_wall * 0.9 <= wall < 0.6 * n * service_wall
    assert stats["max_concurrent"]["hybrid"] == slots
    assert stats["problems_completed"] == n


# -- faults -----------------------------------------------------------------


def test_parse_faults_string_and_validation():
    spec = parse_faults(
        "latency=0.05,http429=0.1,retry_after=2,http5xx=0.1,"
        "drop=0.05,never_finish=0.02,seed=7,http429_count=2,scope=submit+poll"
    )
    assert spec.latency == 0.05 and spec.retry_after == 2 and spec.seed == 7
    assert spec.http429_count == 2 and spec.scope == ("submit", "poll")
    assert parse_faults("scope=all").scope[-1] == "solvers"
    for bad in ("bogus=1", "http429=2", "retry_after=0.5", "scope=nowhere", "latency"):
        with pytest.raises(ValueError):
            parse_faults(bad)


def test_faults_are_reproducible_from_seed():
    def draws(seed):
        injector = FaultInjector(parse_faults(f"http429=0.3,drop=0.3,seed={seed}"))
        return [injector.http_fault("submit") for _ in range(50)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    counted = FaultInjector(parse_faults("http5xx_count=2"))
    assert [counted.http_fault("submit") for _ in range(4)] == ["http5xx"] * 2 + [None] * 2


def test_latency_delays_every_response():
    with LeapEmulator(time_scale=1000, faults="latency=0.15") as emu:
        with DWaveSampler(endpoint=emu.endpoint, token=emu.token) as sampler:
            u, v = sampler.edgelist[0]
            start = time.monotonic()
            sampler.sample_ising({u: 1.0}, {(u, v): -1.0}).resolve()
            wall = time.monotonic() - start
        # submit, status poll and answer load: three delayed round trips
        assert wall >= 3 * 0.15
        assert emu.stats()["faults"]["latency"] == emu.stats()["requests"]


def test_http429_on_submit_is_not_retried_by_client():
    # the client never retries POST /problems/: the future fails with SolverError
    with LeapEmulator(time_scale=1000, faults="http429_count=1,retry_after=1") as emu:
        with pytest.raises(SolverError) as excinfo:
            _qpu_sample(emu)
        assert excinfo.value.error_code == 429
        assert _qpu_sample(emu).info["timing"]["emulation"] == LABEL  # next one passes
        assert emu.stats()["faults"]["http429"] == 1


def test_http429_on_poll_honours_retry_after():
    # GETs are retried by urllib3, which sleeps for Retry-After first
    with LeapEmulator(time_scale=1000, faults="http429_count=1,retry_after=1,scope=poll") as emu:
        start = time.monotonic()
        _qpu_sample(emu)
        assert time.monotonic() - start >= 1.0
        assert emu.stats()["faults"]["http429"] == 1


def test_http5xx_on_submit_fails_and_on_poll_is_transient():
    with LeapEmulator(time_scale=1000, faults="http5xx_count=1") as emu:
        with pytest.raises(SolverError) as excinfo:
            _qpu_sample(emu)
        assert excinfo.value.error_code == 503
    with LeapEmulator(time_scale=1000, faults="http5xx_count=2,scope=poll") as emu:
        _qpu_sample(emu)  # client treats 5xx on status polls as transient
        assert emu.stats()["faults"]["http5xx"] == 2


def test_dropped_connection():
    with LeapEmulator(time_scale=1000, faults="drop_count=1") as emu:
        with pytest.raises(requests.exceptions.ConnectionError):
            _qpu_sample(emu)
        assert emu.stats()["faults"]["drop"] == 1
    with LeapEmulator(time_scale=1000, faults="drop_count=1,scope=answer") as emu:
        _qpu_sample(emu)  # idempotent GET: urllib3 retries it
        assert emu.stats()["faults"]["drop"] == 1


def test_never_finishing_problem_can_be_cancelled():
    with LeapEmulator(time_scale=1000, faults="never_finish_count=1") as emu:
        with DWaveSampler(endpoint=emu.endpoint, token=emu.token) as sampler:
            u, v = sampler.edgelist[0]
            future = sampler.solver.sample_ising({u: 1.0}, {(u, v): -1.0})
            future.wait_id(timeout=10)
            deadline = time.monotonic() + 5
            while emu.stats()["in_service"]["qpu"] == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)
            assert not future.done()
            future.cancel()
            with pytest.raises(CanceledFutureError):
                future.result()
            # the slot is free again: the next problem completes
            sampler.sample_ising({u: 1.0}, {(u, v): -1.0}).resolve()
        stats = emu.stats()
    assert stats["problems_cancelled"] == 1 and stats["problems_completed"] == 1
    assert stats["faults"]["never_finish"] == 1


def test_wrong_token_gets_401_without_leaking_it():
    secret, wrong = "right-emulator-secret", "wrong-emulator-secret"
    with LeapEmulator(token=secret) as emu:
        assert emu.token == secret
        with pytest.raises(SolverAuthenticationError) as excinfo:
            DWaveSampler(endpoint=emu.endpoint, token=wrong)
        for text in (str(excinfo.value), repr(excinfo.value)):
            assert wrong not in text and secret not in text
        r = requests.get(
            emu.endpoint + "solvers/remote/", headers={"X-Auth-Token": wrong}, timeout=5
        )
        assert r.status_code == 401 and r.json()["error_code"] == 401
        assert emu.stats()["faults"]["http401"] >= 2
        _qpu_sample(emu)  # the right token works


def test_cli_prints_endpoint_and_stops_on_interrupt():
    code = (
        "from annealq.testing.leap import main; import sys; "
        "sys.exit(main(['--time-scale', '1000', '--slots', '2']))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(
            "Leap emulator (classical emulation, not quantum hardware) at http://127.0.0.1:"
        )
        endpoint = line.split(" at ")[1].strip()
        r = requests.get(endpoint + "solvers/remote/", headers={"X-Auth-Token": "t"}, timeout=5)
        assert r.status_code == 200
        proc.send_signal(2)  # SIGINT, as Ctrl-C
        assert proc.wait(timeout=10) == 0
        lines = proc.stdout.read().splitlines()
        assert lines[0].startswith("token: ")
        stats = json.loads(lines[-1].removeprefix("stats: "))
        assert stats["requests"] == 1 and stats["problems_submitted"] == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("vartype", ["BINARY", "SPIN"])
def test_the_emulators_beta_range_is_dwave_samplers_default(vartype):
    from dwave.samplers.sa.sampler import _default_ising_beta_range

    from annealq.testing.leap.anneal import beta_range as _beta_range

    rng = np.random.default_rng(4)
    Q = np.triu(rng.normal(size=(30, 30)))
    Q[rng.random(Q.shape) < 0.5] = 0.0
    Q[3, :] = Q[:, 3] = 0.0  # an uncoupled, unbiased variable
    bqm = dimod.BQM(Q, vartype)
    spin = bqm.spin
    expected = _default_ising_beta_range(dict(spin.linear), dict(spin.quadratic))
    assert _beta_range(bqm) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("vartype, labelled", [("BINARY", False), ("SPIN", True)])
def test_an_uploaded_bqm_file_reads_into_the_vectors_dimod_would_build(vartype, labelled):
    import io

    from annealq.testing.leap.bqm_file import read_bqm_vectors

    rng = np.random.default_rng(5)
    Q = np.triu(rng.normal(size=(40, 40)))
    Q[rng.random(Q.shape) < 0.6] = 0.0
    bqm = dimod.BQM(Q, vartype, offset=0.25)
    if labelled:
        bqm.relabel_variables({v: ("w", int(v) * 7 % 40, "x") for v in bqm.variables})
    raw = bqm.to_file().read()
    vectors = read_bqm_vectors(raw)
    rebuilt = dimod.BQM.from_numpy_vectors(
        vectors.linear,
        (vectors.rows, vectors.cols, vectors.values),
        vectors.offset,
        vectors.vartype,
        variable_order=vectors.labels,
    )
    assert rebuilt == dimod.BQM.from_file(io.BytesIO(raw)) == bqm
    assert vectors.labels == list(bqm.variables)
    state = rng.choice(list(bqm.vartype.value), size=40)
    assert vectors.energy(state) == pytest.approx(
        float(bqm.energies((state[None, :], vectors.labels))[0]), rel=1e-12
    )
