"""Dask for the pool executor (:mod:`annealq.executors.pool`): the optional import, a local
cluster of worker processes, a client of a running scheduler; each failure is one error
that says what to do.
"""

from __future__ import annotations

import logging

from annealq.errors import ClusterError, SolverUnavailableError

__all__ = ["connect", "import_distributed", "local_cluster"]


def import_distributed():
    """The ``distributed`` package, or why it cannot be used."""
    try:
        import distributed
    except ImportError as error:
        raise SolverUnavailableError(
            'workers= and dask_scheduler= need Dask: pip install "annealq[dask]"'
        ) from error
    return distributed


def local_cluster(distributed, workers: int):
    """A local cluster of ``workers`` single-threaded worker processes."""
    try:
        return distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.CRITICAL,
        )
    except RuntimeError as error:
        raise ClusterError(
            f"could not start {workers} local worker processes ({error}); a "
            f"script that runs with workers= must do so under "
            f"'if __name__ == \"__main__\":'"
        ) from error


def connect(distributed, address: str, timeout: float):
    """A client of the running Dask scheduler at ``address``."""
    try:
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, distributed.TimeoutError) as error:
        raise ClusterError(
            f"could not reach the Dask scheduler at {address} within "
            f"{timeout:g} s ({type(error).__name__})"
        ) from error
