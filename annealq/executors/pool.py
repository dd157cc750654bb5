"""Chunks of a layer's neurons solved on local worker processes or a Dask cluster.

:class:`PoolExecutor` is the executor behind ``workers=N`` (``"processes"``: a private
Dask ``LocalCluster`` of ``N`` single-threaded worker processes on 127.0.0.1) and
``dask_scheduler="tcp://host:port"`` (``"dask"``: a running cluster; ``"dask"`` without an
address starts the same ``LocalCluster``). Both kinds are one code path on purpose:

* a worker that dies mid-layer costs nothing but time: the scheduler reruns its chunks on
  the others (``concurrent.futures.ProcessPoolExecutor`` would instead fail every pending
  future with ``BrokenProcessPool``, and has no scatter);
* a layer's shared data (the :class:`~annealq.layer.LayerQUBO`, the sampler and its
  parameters) is scattered to every worker once per layer (``broadcast``, so a copy
  survives a dead worker); each task carries only its neurons and their warm starts;
* worker processes are spawned, not forked (fork after torch, numba or the client's own
  threads have started is not safe) and import the solvers themselves, which a pool does
  once per run; a script that uses ``workers=`` must do so under ``if __name__ == "__main__":``.

A task solves its chunk with the same :class:`~annealq.executors.base.LayerWork` or
:class:`~annealq.executors.base.BQMWork` ``.solve`` the inline executor uses, with numba and
BLAS held to one thread (the parallelism is the chunks), and returns its answers; the
client yields them per neuron as chunks complete, and the caching composite commits them
(workers never see the cache). Every solver draws its random numbers from the seed and the
neuron, so the integers do not depend on the number of workers.

``distributed`` is an optional extra (``pip install "annealq[dask]"``), imported only when
a pool is opened.

Example:
    >>> import dimod
    >>> from annealq.executors.base import BQMWork
    >>> bqm = dimod.BQM({"a": 1.0, "b": -1.0}, {("a", "b"): 0.5}, 0.0, "BINARY")
    >>> with PoolExecutor("processes", workers=1) as pool:  # doctest: +SKIP
    ...     [(k, result, _)] = pool.solve(BQMWork(dimod.ExactSolver(), [bqm], [{}]), [0])
    >>> result.sample  # doctest: +SKIP
    {'a': 0, 'b': 1}
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import uuid
from collections.abc import Sequence

from annealq.errors import ClusterError
from annealq.executors.base import BQMWork, Executor, LayerWork
from annealq.executors.chunks import solve_chunk, split_work
from annealq.executors.dask_cluster import connect, import_distributed, local_cluster

log = logging.getLogger(__name__)

KINDS = ("processes", "dask")
CHUNKS_PER_WORKER = 4  # enough to balance uneven neurons and to rerun a lost chunk cheaply
RESUME = "the cache keeps every neuron solved so far and a rerun resumes from it"


class PoolExecutor(Executor):
    """Solves chunks of neurons (or of BQMs) on Dask workers (see module docs).

    Args:
        kind: ``"processes"`` (a private ``LocalCluster``) or ``"dask"`` (``scheduler``'s
            cluster, or a private ``LocalCluster`` without one).
        workers: worker processes of a private cluster (default: one per CPU).
        scheduler: a running scheduler's address, ``"tcp://host:port"`` (``"dask"`` only).
        chunk_size: neurons per task (default: about ``CHUNKS_PER_WORKER`` tasks per
            worker thread for each layer).
        timeout: seconds to wait for the scheduler (connecting, reconnecting) and for the
            first worker.
    """

    def __init__(
        self,
        kind: str = "processes",
        workers: int | None = None,
        scheduler: str | None = None,
        *,
        chunk_size: int | None = None,
        timeout: float = 30.0,
    ):
        _validate(kind, workers, scheduler, chunk_size, timeout)
        self.kind, self.chunk_size, self.timeout = kind, chunk_size, float(timeout)
        self._distributed = import_distributed()
        began = time.perf_counter()
        self._cluster = None
        if scheduler is None:
            self._cluster = local_cluster(self._distributed, workers or os.cpu_count() or 1)
            scheduler = self._cluster.scheduler_address
        self.address = scheduler
        self._client = connect(self._distributed, scheduler, self.timeout)
        self._stats = {
            "executor": kind,
            "scheduler": scheduler,
            "layers": 0,
            "tasks": 0,
            "start_seconds": 0.0,
            "scatter_seconds": 0.0,
        }
        self._stats["start_seconds"] = round(time.perf_counter() - began, 3)
        log.info(
            "Dask %s at %s ready in %.1f s",
            "local cluster" if self._cluster else "scheduler",
            scheduler,
            self._stats["start_seconds"],
        )

    @property
    def client(self):
        """The ``distributed.Client`` (to inspect or restart workers)."""
        return self._client

    def solve(self, work: BQMWork | LayerWork, positions: Sequence[int]):
        positions = list(positions)
        if positions:
            yield from self._solve(work, positions)

    def _solve(self, work, positions):
        d = self._distributed
        kind, shared, payload = split_work(work)
        layer = uuid.uuid4().hex[:8]
        futures, scattered = [], None
        try:
            chunks = _chunks(
                positions,
                self.chunk_size
                or math.ceil(len(positions) / (CHUNKS_PER_WORKER * self._threads())),
            )
            scattered = self._scatter(shared)
            futures = [
                self._client.submit(
                    solve_chunk,
                    kind,
                    scattered,
                    chunk,
                    payload(chunk),
                    pure=False,
                    key=f"annealq-{layer}-{n}",
                )
                for n, chunk in enumerate(chunks)
            ]
            self._stats["layers"] += 1
            self._stats["tasks"] += len(futures)
            for future in d.as_completed(futures, loop=self._client.loop):
                yield from self._result(future)
        except (OSError, d.TimeoutError, d.CancelledError) as error:
            if not isinstance(error, d.CancelledError) and self._client.status == "running":
                raise  # a solver's own error, raised on a worker
            raise ClusterError(
                f"lost the Dask scheduler at {self.address} mid-layer "
                f"({type(error).__name__}); {RESUME}"
            ) from error
        finally:
            for future in futures:
                future.release()
            if scattered is not None:
                scattered.release()

    def _scatter(self, shared):
        """``shared`` on every worker (its future); a worker that cannot unpickle it (no
        annealq, another version, a solver defined only here) is one clear error."""
        begin = time.perf_counter()
        try:
            [scattered] = self._client.scatter([shared], broadcast=True, hash=False)
        except (OSError, self._distributed.TimeoutError, self._distributed.CancelledError):
            raise
        except Exception as error:  # distributed re-raises the worker's as an Exception
            raise ClusterError(
                f"the Dask workers could not load the layer ({error}); "
                f"install annealq (this version) and the solver's packages "
                f"on every worker"
            ) from error
        self._stats["scatter_seconds"] += time.perf_counter() - begin
        return scattered

    def _threads(self) -> int:
        """Worker threads in the cluster, after waiting up to ``timeout`` for one."""
        if not self._client.nthreads():
            try:
                self._client.wait_for_workers(1, timeout=self.timeout)
            except self._distributed.TimeoutError as error:
                raise ClusterError(
                    f"no Dask worker joined the scheduler at {self.address} "
                    f"within {self.timeout:g} s"
                ) from error
        return sum(self._client.nthreads().values())

    def _result(self, future):
        try:
            return future.result()
        except self._distributed.KilledWorker as error:
            raise ClusterError(
                f"a chunk of neurons killed {error.last_worker!r} and "
                f"other workers (out of memory?); {RESUME}"
            ) from error
        except ImportError as error:  # raised on a worker that lacks the solver's code
            raise ClusterError(
                f"a Dask worker could not import {error.name or error}: "
                f"install annealq (this version) and the solver's packages "
                f"on every worker; {RESUME}"
            ) from error

    def stats(self) -> dict:
        """Layers and tasks sent, seconds spent starting the pool and scattering layers."""
        return {**self._stats, "scatter_seconds": round(self._stats["scatter_seconds"], 3)}

    def close(self) -> None:
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        # a client whose scheduler is gone logs its cancelled reconnection as an error
        quiet = client is not None and client.status != "running"
        with _silenced("distributed.client" if quiet else None):
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()


@contextlib.contextmanager
def _silenced(name: str | None):
    logger = logging.getLogger(name) if name else None
    level = logger.level if logger else None
    if logger:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        if logger:
            logger.setLevel(level)


def _chunks(positions: list, size: int) -> list[list]:
    size = max(1, size)
    return [positions[k : k + size] for k in range(0, len(positions), size)]


def _validate(kind, workers, scheduler, chunk_size, timeout) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if scheduler is not None and kind != "dask":
        raise ValueError(f"dask_scheduler={scheduler!r} needs executor='dask', got {kind!r}")
    if scheduler is not None and workers is not None:
        raise ValueError(
            "give workers= (a local cluster) or dask_scheduler= (a running one), not both"
        )
    for name, value in (("workers", workers), ("chunk_size", chunk_size)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
