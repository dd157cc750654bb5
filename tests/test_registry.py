import logging
import subprocess
import sys
import textwrap

import dimod
import pytest

from annealq import errors
from annealq.registry import (
    SolverRegistry,
    SolverSpec,
    available_samplers,
    get_sampler,
    resolve_sampler,
)

LOCAL = ["neal", "tabu", "steepest", "exact", "qpu-mock"]


@pytest.mark.parametrize("name", LOCAL)
def test_every_local_backend_is_a_dimod_sampler(name):
    assert isinstance(get_sampler(name), dimod.Sampler)


def test_registered_names_come_from_entry_points():
    names = {status.name for status in available_samplers()}
    assert set(LOCAL) | {"qpu", "hybrid"} <= names


def test_unknown_solver_and_unknown_parameter_are_clear_errors():
    with pytest.raises(ValueError, match="unknown solver 'nope'.*neal"):
        get_sampler("nope")
    with pytest.raises(ValueError, match="unknown parameter.*num_raeds"):
        get_sampler("neal", num_raeds=3)


def test_parameters_bound_at_construction_are_used():
    bqm = dimod.BQM({"a": 1.0, "b": -1.0}, {("a", "b"): 0.5}, 0.0, "BINARY")
    assert len(get_sampler("neal", num_reads=7, seed=1).sample(bqm)) == 7


def test_without_token_cloud_solvers_say_why(no_token):
    status = {s.name: s for s in available_samplers()}
    for name in ("qpu", "hybrid"):
        assert not status[name].available
        assert "token" in status[name].reason
        with pytest.raises(errors.SolverUnavailableError, match="no D-Wave API token"):
            get_sampler(name)
    assert status["neal"].available and status["neal"].reason is None


def test_auto_without_token_is_neal_with_one_warning(no_token, caplog):
    with caplog.at_level(logging.WARNING, logger="annealq"):
        name, sampler = resolve_sampler("auto")
    assert name == "neal"
    assert len([r for r in caplog.records if "auto" in r.getMessage()]) == 1


def test_fallback_is_used_only_when_asked(no_token, caplog):
    with pytest.raises(errors.SolverUnavailableError):
        resolve_sampler("qpu")
    with caplog.at_level(logging.WARNING, logger="annealq"):
        name, _ = resolve_sampler("qpu", fallback="neal")
    assert name == "neal"
    assert "falling back to 'neal'" in caplog.text


def test_register_in_code_and_availability_check():
    registry = SolverRegistry(entry_point_group=None)
    registry.register("mine", SolverSpec(lambda: dimod.ExactSolver(), lambda: "needs a GPU"))
    [status] = registry.statuses()
    assert (status.name, status.available, status.reason) == ("mine", False, "needs a GPU")
    with pytest.raises(errors.SolverUnavailableError, match="needs a GPU"):
        registry.get("mine")


def test_third_party_entry_point_is_found_by_name(tmp_path):
    # A tiny installed distribution: a package plus dist-info declaring the entry point.
    (tmp_path / "thirdparty_solver.py").write_text(
        textwrap.dedent("""
        import dimod
        def make(**params):
            return dimod.ExactSolver()
    """)
    )
    dist = tmp_path / "thirdparty_solver-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-solver\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[annealq.solvers]\nthird = thirdparty_solver:make\n")
    code = (
        "import annealq; s = annealq.get_sampler('third'); print(type(s).__name__); "
        "print([x.name for x in annealq.available_samplers()])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
    ).stdout
    assert out.splitlines()[0] == "ExactSolver"
    assert "'third'" in out.splitlines()[1]


def test_getting_a_local_solver_imports_no_cloud_code():
    code = (
        "import sys, annealq; annealq.get_sampler('neal'); annealq.get_sampler('exact'); "
        "print([m for m in sys.modules if m.startswith('dwave.cloud')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_the_python_api_reads_a_token_and_endpoint_from_dotenv(tmp_path, monkeypatch):
    from annealq.testing import LeapEmulator

    for name in ("DWAVE_API_TOKEN", "DWAVE_API_ENDPOINT", "ANNEALQ_ENV_FILE"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "dwave.conf"
    empty.write_text("")
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(empty))
    monkeypatch.setenv("DWAVE_CACHE_HOME", str(tmp_path / "dwave-cache"))
    monkeypatch.chdir(tmp_path)
    with LeapEmulator(time_scale=1000.0) as emu:
        (tmp_path / ".env").write_text(
            f"DWAVE_API_TOKEN={emu.token}\nDWAVE_API_ENDPOINT={emu.endpoint}\n"
        )
        sampler = get_sampler("hybrid")
        assert type(sampler).__name__ == "HybridSampler"
        assert emu.stats()["requests"] > 0
