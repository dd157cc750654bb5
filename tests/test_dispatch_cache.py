"""The cache as the dispatch and the pipeline use it: repeated runs, kill -9 and resume."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import dimod
import numpy as np
import pytest

from annealq import formulate_layer, get_sampler, solve_bqms
from annealq.cache import CacheStore

torch = pytest.importorskip("torch")


class _MustNotBeCalled(Exception):
    pass


def _forbid_annealing(monkeypatch):
    from dwave.samplers import SimulatedAnnealingSampler

    def refuse(self, *args, **kwargs):
        raise _MustNotBeCalled("the solver was called on a cached run")

    monkeypatch.setattr(SimulatedAnnealingSampler, "sample", refuse)


def test_second_pipeline_run_is_all_hits_calls_no_solver_and_gives_the_same_model(
    tmp_path, monkeypatch
):
    from annealq.pipeline import quantize

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    x = np.random.default_rng(0).normal(size=(30, 8))
    store = CacheStore(tmp_path / "c.sqlite")
    first = quantize(model, x, bits=2, solver="neal", seed=4, cache=store)
    assert (first.cache_hits, first.cache_misses) == (0, 9)
    _forbid_annealing(monkeypatch)
    second = quantize(model, x, bits=2, solver="neal", seed=4, cache=store)
    assert (second.cache_hits, second.cache_misses) == (9, 0)
    for a, b in zip(first.layers, second.layers):
        np.testing.assert_array_equal(a.int_weight, b.int_weight)
        np.testing.assert_array_equal(a.int_bias, b.int_bias)
        assert a.energy == b.energy
    for p, q in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(p, q)
    assert store.stats()["last_run"]["hits"] == 9
    # a different seed is a different question: the solver is called again
    with pytest.raises(_MustNotBeCalled):
        quantize(model, x, bits=2, solver="neal", seed=5, cache=store)


def test_no_cache_solves_again(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    lq = formulate_layer(
        rng.normal(size=(3, 5)), rng.normal(size=3), rng.normal(size=(9, 5)), bits=2
    )
    store = CacheStore(tmp_path / "c.sqlite")
    solve_bqms(lq.bqms(), get_sampler("neal", seed=1), cache=store, solver_name="neal")
    _forbid_annealing(monkeypatch)
    cached = solve_bqms(lq.bqms(), get_sampler("neal", seed=1), cache=store, solver_name="neal")
    assert all(r.info["cached"] for r in cached)
    with pytest.raises(_MustNotBeCalled):
        solve_bqms(lq.bqms(), get_sampler("neal", seed=1), cache=None)


_SLOW_RUN = textwrap.dedent("""
    import sys, time
    import numpy as np
    import dimod
    from annealq import formulate_layer, solve_bqms
    from annealq.cache import CacheStore

    class Slow(dimod.ExactSolver):
        def sample(self, bqm, **kw):
            with open(sys.argv[2], "a") as log:
                log.write("solve\\n")
            time.sleep(0.15)
            return super().sample(bqm, **kw)

    rng = np.random.default_rng(3)
    lq = formulate_layer(rng.normal(size=(40, 6)), rng.normal(size=40),
                         rng.normal(size=(20, 6)), bits=2)
    solve_bqms(lq.bqms(), Slow(), cache=CacheStore(sys.argv[1]), solver_name="slow")
    print("finished")
""")


def test_a_run_killed_mid_layer_resumes_solving_only_what_was_not_solved(tmp_path):
    db, log, script = tmp_path / "c.sqlite", tmp_path / "calls.log", tmp_path / "run.py"
    script.write_text(_SLOW_RUN)
    proc = subprocess.Popen([sys.executable, str(script), str(db), str(log)])
    deadline = time.time() + 60
    while time.time() < deadline and (not log.exists() or len(log.read_text().split()) < 10):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_after = len(log.read_text().split())
    assert 10 <= killed_after < 40, "the run must be killed mid-layer"
    committed = CacheStore(db).stats()["entries"]
    assert killed_after - 1 <= committed <= killed_after  # at most the one in flight is lost

    log.unlink()
    out = subprocess.run(
        [sys.executable, str(script), str(db), str(log)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip() == "finished"
    assert len(log.read_text().split()) == 40 - committed
    assert CacheStore(db).stats()["entries"] == 40


def test_qpu_mock_results_are_cached_and_the_second_run_is_all_hits(tmp_path, small_layer, caplog):
    from annealq import get_sampler
    from annealq.cache import CacheStore
    from annealq.dispatch import solve_layer

    sampler = get_sampler("qpu-mock")
    with CacheStore(tmp_path / "c.sqlite") as store:
        first = solve_layer(small_layer, sampler, cache=store, solver_name="qpu-mock")
        again = solve_layer(small_layer, sampler, cache=store, solver_name="qpu-mock")
        keys = store.stats()["entries"]
    assert "not stored" not in caplog.text
    assert keys == small_layer.n_neurons
    assert [r.info.get("cached") for r in again] == [True] * small_layer.n_neurons
    assert [r.sample for r in again] == [r.sample for r in first]


class _CountingLive(dimod.Sampler):
    """Steepest descent that records how many of the layer's BQMs are alive at each call."""

    parameters = {"initial_states": []}
    properties: dict = {}

    def __init__(self, live):
        self.live, self.seen = live, []

    def sample(self, bqm, **parameters):
        self.seen.append(len(self.live))
        return (
            dimod.ExactSolver().sample(bqm)
            if bqm.num_variables <= 8
            else dimod.SampleSet.from_samples_bqm({v: 0 for v in bqm.variables}, bqm)
        )


@pytest.mark.parametrize("cached, warm", [(False, False), (False, True), (True, True)])
def test_a_layers_bqms_are_built_one_at_a_time_never_all_held(tmp_path, monkeypatch, cached, warm):
    """A CIFAR-10 first-layer neuron's BQM is ~150 MB: 256 of them at once do not fit."""
    import weakref

    from annealq import solve_layer
    from annealq.layer import LayerQUBO

    rng = np.random.default_rng(1)
    lq = formulate_layer(rng.normal(size=(12, 3)), None, rng.normal(size=(20, 3)), bits=2)
    live = []  # one entry per BQM alive
    build = LayerQUBO.bqm

    def tracked(self, i):
        bqm = build(self, i)
        live.append(i)
        weakref.finalize(bqm, live.remove, i)
        return bqm

    monkeypatch.setattr(LayerQUBO, "bqm", tracked)
    sampler = _CountingLive(live)
    starts = [{v: 0 for v in lq.variables(i)} for i in range(12)] if warm else None
    results = solve_layer(
        lq,
        sampler,
        initial_states=starts,
        cache=CacheStore(tmp_path / "c.sqlite") if cached else None,
    )
    assert len(sampler.seen) == 12 and max(sampler.seen) == 1
    assert [r.energy for r in results] == pytest.approx(
        [lq.energy(i, r.sample) for i, r in enumerate(results)]
    )


def test_the_pool_sends_a_layers_rows_not_its_bqms():
    from annealq.executors.base import BQMWork
    from annealq.executors.chunks import split_work
    from annealq.solve import LayerBQMs, lazy_calls

    rng = np.random.default_rng(2)
    lq = formulate_layer(rng.normal(size=(5, 3)), None, rng.normal(size=(9, 3)), bits=2)
    bqms = LayerBQMs(lq, [4, 0, 2])
    sampler = get_sampler("neal")
    kind, shared, payload = split_work(
        BQMWork(sampler, bqms, lazy_calls(bqms, sampler, [None] * 3, {}))
    )
    assert kind == "LayerBQMs" and shared == (sampler, lq)
    assert payload([0, 2]) == ([4, 2], [{}, {}])
