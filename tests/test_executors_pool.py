"""The pool executor on a Dask LocalCluster of worker processes (127.0.0.1 only): the same
integers from 1, 2 and 4 workers as from this process, a worker killed mid-layer costs
nothing, a scheduler that vanishes gives one clear error and the rerun resumes from the
cache."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import annealq
from annealq import formulate_layer, get_sampler
from annealq.cache import CachedSampler, CacheStore
from annealq.dispatch import solve_layer
from annealq.errors import ClusterError
from annealq.executors.base import BQMWork, InlineExecutor, LayerWork
from annealq.protocol import LayerSampler

distributed = pytest.importorskip("distributed")
from annealq.executors.pool import PoolExecutor  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# cheap settings: the property under test (the chunking changes nothing) does not need
# the solvers' full effort
SOLVERS = {
    "neal": {"seed": 3, "num_sweeps": 20},
    "batch-sa": {"seed": 3, "num_sweeps": 200},
    "lns": {"seed": 3, "rounds": 10, "num_sweeps": 100},
}
MNIST_NEURONS = [0, 17, 42, 77, 126, 127]


def _first_layer(name):
    data = annealq.load_dataset(name)
    model, _ = annealq.reference_model(data)
    linear = model[1]
    X = data.calibration(256).reshape(256, -1)
    return formulate_layer(linear.weight.detach(), linear.bias.detach(), X, bits=2)


@pytest.fixture(scope="module")
def layers():
    """The first layers of the digits (all 64 neurons) and MNIST (8 of 128) models."""
    if not (Path(os.environ.get("ANNEALQ_DATA", "")) / "mnist.npz").exists():
        pytest.skip("MNIST is not in $ANNEALQ_DATA")
    return {
        "digits": (_first_layer("digits"), list(range(64))),
        "mnist": (_first_layer("mnist"), MNIST_NEURONS),
    }


def _work(solver, lq, rows):
    sampler, params = get_sampler(solver), SOLVERS[solver]
    if isinstance(sampler, LayerSampler):
        return LayerWork(sampler, lq, rows, None, params)
    return BQMWork(sampler, [lq.bqm(i) for i in rows], [params] * len(rows))


def _integers(executor, solver, lq, rows):
    """``(len(rows), f+1)`` integers of ``rows`` solved through ``executor``."""
    answers = dict(
        (k, r.sample) for k, r, _ in executor.solve(_work(solver, lq, rows), range(len(rows)))
    )
    assert sorted(answers) == list(range(len(rows)))
    return np.stack([lq.integers(i, lq.assignment(i, answers[k])) for k, i in enumerate(rows)])


@pytest.fixture(scope="module")
def inline(layers):
    return {
        (model, solver): _integers(InlineExecutor(), solver, *layers[model])
        for model in layers
        for solver in SOLVERS
    }


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=50,
    ) as cluster:
        yield cluster


def _scaled(cluster, n):
    cluster.scale(n)
    pool = PoolExecutor("dask", scheduler=cluster.scheduler_address, timeout=20)
    pool.client.wait_for_workers(n, timeout=120)
    return pool


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_workers_give_the_integers_of_one_process(cluster, layers, inline, workers):
    with _scaled(cluster, workers) as pool:
        assert len(pool.client.nthreads()) == workers
        for (model, solver), expected in inline.items():
            got = _integers(pool, solver, *layers[model])
            assert np.array_equal(got, expected), (model, solver, workers)
        # every chunk was a task of its own; the layer went out once per solve call
        assert pool.stats()["layers"] == len(inline)
        assert pool.stats()["tasks"] >= len(inline) * min(workers, len(MNIST_NEURONS))


def test_quantize_on_a_dask_scheduler_gives_the_integers_of_one_process(cluster, tmp_path):
    data = annealq.load_dataset("digits")
    model, _ = annealq.reference_model(data)
    options = {
        "bits": 2,
        "solver": "neal",
        "seed": 0,
        "quiet": True,
        "calibration_size": 300,
        "solver_params": {"num_sweeps": 100},
    }
    here = annealq.quantize(model, data, cache=False, **options)
    cluster.scale(2)
    there = annealq.quantize(
        model,
        data,
        cache=tmp_path / "cache.sqlite",
        dask_scheduler=cluster.scheduler_address,
        **options,
    )
    for a, b in zip(here.layers, there.layers):
        assert np.array_equal(a.int_weight, b.int_weight)
        assert np.array_equal(a.int_bias, b.int_bias)
    assert there.report["execution"]["dask_scheduler"] == cluster.scheduler_address
    assert there.cache_misses == sum(layer.out_features for layer in here.layers)


def test_cache_hits_are_not_sent(cluster, layers, tmp_path):
    lq, rows = layers["digits"]
    sampler, params = get_sampler("batch-sa"), SOLVERS["batch-sa"]
    with (
        CacheStore(tmp_path / "cache.sqlite") as store,
        PoolExecutor("dask", scheduler=cluster.scheduler_address) as pool,
    ):
        CachedSampler(sampler, store, executor=pool).sample_layer(lq, neurons=rows[:40], **params)
        sent = pool.stats()["tasks"]
        again = CachedSampler(sampler, store, executor=pool)
        again.sample_layer(lq, **params)
        assert (again.hits, again.misses) == (40, len(rows) - 40)
        assert pool.stats()["layers"] == 2 and pool.stats()["tasks"] > sent
        again.sample_layer(lq, **params)
        assert pool.stats()["layers"] == 2  # all hits: nothing scattered, no task


def test_a_worker_killed_mid_layer_changes_nothing(cluster, layers, inline):
    lq, rows = layers["digits"]
    with _scaled(cluster, 2) as pool:
        pool.chunk_size = 2  # 32 tasks: the killed worker surely holds some
        pids = pool.client.run(os.getpid)
        answers = {}
        for k, result, _ in pool.solve(_work("lns", lq, rows), range(len(rows))):
            if not answers:
                os.kill(next(iter(pids.values())), signal.SIGKILL)
            answers[k] = result.sample
        assert len(answers) == len(rows)
        got = np.stack([lq.integers(i, lq.assignment(i, answers[i])) for i in rows])
        assert np.array_equal(got, inline["digits", "lns"])
        assert set(pool.client.run(os.getpid).values()) != set(pids.values())


def test_a_solver_the_workers_cannot_import_is_one_clear_error(
    cluster, layers, tmp_path, monkeypatch
):
    (tmp_path / "only_here.py").write_text(
        "from solvers.batch_sa.sampler import BatchSASampler\n"
        "class OnlyHere(BatchSASampler):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))  # here, not on the running workers
    from only_here import OnlyHere

    lq, rows = layers["digits"]
    with PoolExecutor("dask", scheduler=cluster.scheduler_address) as pool:
        with pytest.raises(
            ClusterError,
            match=r"could not load the layer \(ModuleNotFound"
            r"Error.*only_here.*install annealq",
        ):
            list(pool.solve(LayerWork(OnlyHere(), lq, rows, None, {}), range(len(rows))))


def test_importing_the_pool_executor_does_not_load_dask():
    code = (
        "import sys, annealq, annealq.executors.pool; "
        "print([m for m in sys.modules if m.startswith(('distributed', 'dask'))])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    assert out == "[]"


def test_an_unreachable_scheduler_is_one_clear_error():
    began = time.perf_counter()
    with pytest.raises(
        ClusterError,
        match=r"could not reach the Dask scheduler at "
        r"tcp://127\.0\.0\.1:9 within 1 s",
    ):
        PoolExecutor("dask", scheduler="tcp://127.0.0.1:9", timeout=1)
    assert time.perf_counter() - began < 10


@pytest.mark.parametrize(
    "kind, options, message",
    [
        ("threads", {}, "kind must be one of processes, dask"),
        ("processes", {"scheduler": "tcp://127.0.0.1:8786"}, "needs executor='dask'"),
        ("dask", {"scheduler": "tcp://127.0.0.1:8786", "workers": 2}, "not both"),
        ("processes", {"workers": 0}, "workers must be a positive integer, got 0"),
        ("processes", {"chunk_size": 1.5}, "chunk_size must be a positive integer"),
    ],
)
def test_bad_settings_are_named(kind, options, message):
    with pytest.raises(ValueError, match=message):
        PoolExecutor(kind, **options)


@pytest.fixture
def scheduler(tmp_path):
    """A ``dask scheduler`` and one ``dask worker`` process, as README's cluster recipe
    starts them; yields ``(address, scheduler process)``."""
    file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--dashboard-address",
                "127.0.0.1:0",
                "--scheduler-file",
                str(file),
            ],
            **quiet,
        )
    ]
    try:
        deadline, address = time.monotonic() + 30, None
        while address is None:
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
            with contextlib.suppress(OSError, ValueError):  # not yet (fully) written
                address = json.loads(file.read_text())["address"]
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_worker",
                    address,
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--host",
                    "127.0.0.1",
                    "--dashboard-address",
                    "127.0.0.1:0",
                    "--death-timeout",
                    "5",
                ],
                **quiet,
            )
        )
        yield address, processes[0]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def test_a_vanished_scheduler_is_one_error_and_the_rerun_resumes(
    scheduler, layers, inline, tmp_path
):
    address, process = scheduler
    lq, rows = layers["digits"]
    sampler = get_sampler("lns")
    done, killed = [], []

    def kill_after_the_first(count):
        done.append(count)
        if len(done) == 1:
            process.kill()
            killed.append(time.perf_counter())

    with CacheStore(tmp_path / "cache.sqlite") as store:
        with PoolExecutor("dask", scheduler=address, timeout=5) as pool:
            pool.client.wait_for_workers(1, timeout=120)  # minutes on a loaded machine
            pool.chunk_size = 4
            with pytest.raises(ClusterError) as error:
                solve_layer(
                    lq,
                    sampler,
                    cache=store,
                    executor=pool,
                    progress=kill_after_the_first,
                    **SOLVERS["lns"],
                )
            assert time.perf_counter() - killed[0] < 20  # noticed at once, not at a timeout
        message = str(error.value)
        assert "\n" not in message and f"lost the Dask scheduler at {address}" in message
        assert "a rerun resumes" in message
        solved = sum(done)
        assert 0 < solved < len(rows)
        rerun = CachedSampler(sampler, store, executor=InlineExecutor())
        results = rerun.sample_layer(lq, **SOLVERS["lns"])
        assert (rerun.hits, rerun.misses) == (solved, len(rows) - solved)
        got = np.stack([lq.integers(i, lq.assignment(i, r.sample)) for i, r in enumerate(results)])
        assert np.array_equal(got, inline["digits", "lns"])
