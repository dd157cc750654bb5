"""Every registry entry behaves as a dimod sampler should (the qpu and hybrid ones through
the project's Leap emulator and the real cloud client; qpu-mock on dwave-system's mock QPU).

A third-party solver runs the same checks on itself with ``assert_conforms``::

    from tests.test_sampler_conformance import assert_conforms
    assert_conforms(MySampler())
"""

import inspect

import dimod
import dimod.testing
import numpy as np
import pytest

import annealq
from annealq.protocol import LayerSampler
from annealq.testing import LeapEmulator

LOCAL = ["neal", "tabu", "steepest", "exact", "batch-sa", "exact-bb", "lns", "kbest", "qpu-mock"]
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


def _bqm(vartype, labels, seed=0):
    rng = np.random.default_rng(seed)
    n = len(labels)
    linear = {v: float(x) for v, x in zip(labels, rng.normal(size=n))}
    quadratic = {(labels[j], labels[k]): float(rng.normal())
                 for j in range(n) for k in range(j + 1, n) if rng.random() < 0.6}
    return dimod.BQM(linear, quadratic, 0.25, vartype)


def assert_conforms(sampler, *, ground_state_within=1e-9):
    """The checks every solver passes: dimod's API, empty / SPIN / int- and tuple-labelled
    BQMs with consistent energies, seeded determinism, warm starts and declared parameters."""
    dimod.testing.assert_sampler_api(sampler)
    empty = sampler.sample(dimod.BQM("BINARY"))
    assert len(empty.variables) == 0
    for vartype, labels in ((dimod.SPIN, list(range(7))),
                            (dimod.BINARY, [("w", j) for j in range(6)] + [("b",)])):
        bqm = _bqm(vartype, labels)
        sampleset = sampler.sample(bqm)
        assert sampleset.vartype is bqm.vartype
        assert set(sampleset.variables) == set(bqm.variables)
        dimod.testing.assert_sampleset_energies(sampleset, bqm)
        values = set(np.unique(sampleset.record.sample).tolist())
        assert values <= ({-1, 1} if vartype is dimod.SPIN else {0, 1})
    bqm = _bqm(dimod.BINARY, list(range(8)), seed=3)
    ground = dimod.ExactSolver().sample(bqm).first
    if "seed" in sampler.parameters:
        first, again = sampler.sample(bqm, seed=5), sampler.sample(bqm, seed=5)
        assert np.array_equal(first.record.sample, again.record.sample)
    if "initial_states" in sampler.parameters:
        start = dimod.SampleSet.from_samples_bqm(ground.sample, bqm)
        warm = sampler.sample(bqm, initial_states=start)
        assert warm.first.energy <= ground.energy + ground_state_within
    signature = inspect.signature(sampler.sample).parameters
    open_ended = any(p.kind is p.VAR_KEYWORD for p in signature.values())
    assert open_ended or set(sampler.parameters) <= set(signature)


@pytest.mark.parametrize("sampler", LOCAL + CLOUD, indirect=True)
def test_every_registry_entry_conforms(sampler):
    assert_conforms(sampler[1])


@pytest.mark.parametrize("sampler", LOCAL + CLOUD, indirect=True)
def test_layer_solvers_give_exact_energies_for_every_neuron(sampler, small_layer):
    name, solver = sampler
    if not isinstance(solver, LayerSampler):
        assert not hasattr(type(solver), "sample_layer"), name  # chosen by type only
        return
    results = solver.sample_layer(small_layer, neurons=[2, 0])
    for i, result in zip([2, 0], results):
        assert result.energy == pytest.approx(small_layer.bqm(i).energy(result.sample),
                                              rel=1e-9)
        assert "solve_seconds" in result.info["timing"]


@pytest.mark.parametrize("sampler", LOCAL, indirect=True)
def test_every_backend_reports_solve_seconds_in_one_timing_schema(sampler):
    _, solver = sampler
    sampleset = solver.sample(_bqm(dimod.BINARY, list(range(6))))
    if "timing" in sampleset.info and "solve_seconds" in sampleset.info["timing"]:
        assert sampleset.info["timing"]["solve_seconds"] >= 0
    result = annealq.solve_bqms([_bqm(dimod.BINARY, list(range(6)))], solver)[0]
    assert result.info["timing"]["solve_seconds"] >= 0


def test_registry_entries_are_all_covered():
    assert set(annealq.registry._default.names()) == set(LOCAL + CLOUD)


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
