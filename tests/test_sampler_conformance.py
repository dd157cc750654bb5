"""Every registry entry behaves as a dimod sampler should (the qpu and hybrid ones through
the project's Leap emulator and the real cloud client; qpu-mock on dwave-system's mock QPU).

The checks live in the package (:mod:`annealq.testing.conformance`), so that a
third-party solver runs the same ones on itself::

    from annealq.testing.conformance import assert_conforms, assert_layer_conforms
    assert_conforms(MySampler())
    assert_layer_conforms(MySampler())
"""

import dimod
import pytest

import annealq
from annealq.testing import LeapEmulator
from annealq.testing.conformance import assert_conforms, assert_layer_conforms, random_bqm

LOCAL = [
    "neal",
    "tabu",
    "steepest",
    "exact",
    "batch-sa",
    "exact-bb",
    "lns",
    "kbest",
    "qpu-mock",
    "polish",
]
CLOUD = ["qpu", "hybrid", "hybrid-nl"]


@pytest.fixture(scope="module")
def emulator():
    with LeapEmulator(time_scale=1000.0) as emu:
        yield emu


@pytest.fixture
def sampler(request, emulator, monkeypatch, tmp_path):
    name = request.param
    if name in CLOUD:
        empty = tmp_path / "dwave.conf"
        empty.write_text("")
        monkeypatch.setenv("DWAVE_CONFIG_FILE", str(empty))
        monkeypatch.setenv("DWAVE_API_ENDPOINT", emulator.endpoint)
        monkeypatch.setenv("DWAVE_API_TOKEN", emulator.token)
        monkeypatch.setenv("DWAVE_CACHE_HOME", str(tmp_path / "dwave-cache"))
    return name, annealq.get_sampler(name)


@pytest.mark.parametrize("sampler", LOCAL + CLOUD, indirect=True)
def test_every_registry_entry_conforms(sampler):
    assert_conforms(sampler[1])


@pytest.mark.parametrize("sampler", LOCAL + CLOUD, indirect=True)
def test_layer_solvers_give_exact_energies_for_every_neuron(sampler, small_layer):
    assert_layer_conforms(sampler[1], small_layer)


@pytest.mark.parametrize("sampler", LOCAL, indirect=True)
def test_every_backend_reports_solve_seconds_in_one_timing_schema(sampler):
    _, solver = sampler
    sampleset = solver.sample(random_bqm(dimod.BINARY, list(range(6))))
    if "timing" in sampleset.info and "solve_seconds" in sampleset.info["timing"]:
        assert sampleset.info["timing"]["solve_seconds"] >= 0
    result = annealq.solve_bqms([random_bqm(dimod.BINARY, list(range(6)))], solver)[0]
    assert result.info["timing"]["solve_seconds"] >= 0


def test_registry_entries_are_all_covered():
    assert set(annealq.registry._default.names()) == set(LOCAL + CLOUD)


class _WrongEnergies(dimod.Sampler):
    """Answers with the right samples but energies off by one."""

    parameters, properties = {}, {}

    def sample(self, bqm, **parameters):
        sampleset = dimod.ExactSolver().sample(bqm)
        return dimod.SampleSet.from_samples(
            sampleset.samples(), bqm.vartype, sampleset.record.energy + 1.0
        )


class _LayerByName(dimod.ExactSolver):
    def sample_layer(self, lq, **parameters):  # a layer method without the protocol's type
        return []


@pytest.mark.parametrize(
    "check, bad", [(assert_conforms, _WrongEnergies()), (assert_layer_conforms, _LayerByName())]
)
def test_the_checks_catch_a_sampler_that_breaks_them(check, bad):
    with pytest.raises(AssertionError):
        check(bad)


@pytest.mark.parametrize("sampler", LOCAL + CLOUD, indirect=True)
def test_declared_parameters_are_checked_by_type_and_range(sampler):
    """Each typed parameter a solver declares: a wrong type, a NaN or a value out of its
    range is one ValueError naming it, before the sampler is built; a sane one builds."""
    from annealq.parameters import INTEGERS, REALS

    name, solver = sampler
    typed = sorted(set(solver.parameters) & (set(INTEGERS) | set(REALS)))
    for parameter in typed:
        high = (INTEGERS.get(parameter) or REALS[parameter])[1]
        for bad in ("abc", float("nan"), high * 10, -1, True):
            with pytest.raises(ValueError, match=f"solver parameter {parameter} must be"):
                annealq.get_sampler(name, **{parameter: bad})
    if "num_reads" in solver.parameters:
        annealq.get_sampler(name, num_reads=2)
