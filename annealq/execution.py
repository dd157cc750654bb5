"""How and where a run's problems are solved: settings that change the wall time, the cost and
the fault handling of a run, not its problems.

:class:`Execution` holds them for the API (``quantize(..., workers=2)``) and the CLI
(``--workers 2``); :meth:`Execution.open` picks the backend: the cloud executor for Leap
solvers, local processes or a Dask cluster for local solvers when asked, else inline.

Example:
    >>> options = {"workers": 2, "window_bits": 2}
    >>> Execution.pop_from(options).workers, options
    (2, {'window_bits': 2})
    >>> Execution(max_in_flight=0)
    Traceback (most recent call last):
    ...
    ValueError: max_in_flight must be a positive integer, got 0
"""

from __future__ import annotations

import logging
import numbers
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields

from annealq.credentials import redact, token_configured
from annealq.errors import SolverUnavailableError, TokenRejectedError
from annealq.executors.base import Executor, InlineExecutor
from annealq.executors.cloud import CloudExecutor, CloudPolicy
from annealq.executors.pool import PoolExecutor
from annealq.protocol import CloudSampler
from annealq.registry import get_sampler, resolve_sampler

log = logging.getLogger(__name__)
CLOUD_FALLBACK = "neal"  # solves what the cloud could not, unless the run names another

KINDS = ("inline", "processes", "dask")


@dataclass(frozen=True)
class Execution:
    """Where problems run, and the cloud path's limits.

    Attributes:
        executor: ``"inline"``, ``"processes"`` or ``"dask"`` (default: cloud solvers get the
            cloud executor, ``dask_scheduler`` means Dask, ``workers`` local processes).
        workers: local worker processes (or the ``LocalCluster``'s size with ``"dask"``).
        dask_scheduler: a running Dask scheduler's address, ``"tcp://host:port"``.
        max_in_flight: cloud problems submitted and not yet answered, at most.
        pack: several neurons per cloud problem (hybrid: one BQM; QPU: disjoint cliques).
        max_cloud_seconds: billed seconds the run may spend; a plan over it is refused
            and the rest of a run that reaches it goes to the fallback solver.
        retries: attempts after the first for a cloud problem that failed transiently.
        problem_timeout: seconds one cloud problem may take, upload and queue included
            (default: 10× its estimated service time, at least 600 s).
    """

    executor: str | None = None
    workers: int | None = None
    dask_scheduler: str | None = None
    max_in_flight: int = 8
    pack: bool = True
    max_cloud_seconds: float | None = None
    retries: int = 3
    problem_timeout: float | None = None

    def __post_init__(self):
        if self.executor is not None and self.executor not in KINDS:
            raise ValueError(f"executor must be one of {', '.join(KINDS)}, got {self.executor!r}")
        for name, least in (("workers", 1), ("max_in_flight", 1), ("retries", 0)):
            value = getattr(self, name)
            if value is None and name == "workers":
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
                kind = "positive" if least else "non-negative"
                raise ValueError(f"{name} must be a {kind} integer, got {value!r}")
        for name in ("max_cloud_seconds", "problem_timeout"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, numbers.Real) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.dask_scheduler is not None and not isinstance(self.dask_scheduler, str):
            raise ValueError(
                f"dask_scheduler must be an address such as "
                f"'tcp://127.0.0.1:8786', got {self.dask_scheduler!r}"
            )
        most = max_local_workers()
        if self.workers is not None and self.dask_scheduler is None and self.workers > most:
            raise ValueError(
                f"workers must be at most {most} here (4 per CPU core) for "
                f"local processes, got {self.workers}; name a Dask cluster "
                f"(dask_scheduler) for more"
            )

    @classmethod
    def pop_from(cls, options: dict) -> Execution:
        """Take this class's fields out of ``quantize``'s keyword arguments."""
        given = {f.name: options.pop(f.name) for f in fields(cls) if f.name in options}
        return cls(**{name: value for name, value in given.items() if value is not None})

    def policy(self) -> CloudPolicy:
        return CloudPolicy(
            max_in_flight=self.max_in_flight,
            pack=self.pack,
            retries=self.retries,
            problem_timeout=self.problem_timeout,
            max_cloud_seconds=self.max_cloud_seconds,
        )

    def open(self, sampler, *, fallback=None) -> Executor:
        """The executor for ``sampler``; ``fallback`` (a sampler) solves what the cloud
        could not. The caller closes it."""
        if isinstance(sampler, CloudSampler) and self.executor in (None, "inline"):
            return CloudExecutor(self.policy(), fallback=fallback)
        kind = self.executor or (
            "dask" if self.dask_scheduler else "processes" if self.workers else "inline"
        )
        if kind == "inline":
            return InlineExecutor()
        return _pool(kind, self.workers, self.dask_scheduler)

    def to_dict(self) -> dict:
        return asdict(self)


def max_local_workers() -> int:
    """The most local worker processes a run may ask for: 4 per CPU core."""
    return 4 * (os.cpu_count() or 1)


def resolve(solver, config, solver_name, notes: list):
    """``(name, sampler)`` of a run: a registered name built with the run's parameters (and
    its fallback), or a sampler object as given."""
    if isinstance(solver, str) and config.polish is not None:
        return _polisher(config, notes)
    if isinstance(solver, str):
        return resolve_sampler(
            config.solver, fallback=config.fallback, notes=notes, **config.solver_params
        )
    if config.solver_params and solver_name is None:  # (the CLI names what it built)
        raise ValueError(
            "solver_params apply to a solver given by name; configure a sampler object yourself"
        )
    return solver_name or f"{type(solver).__module__}.{type(solver).__qualname__}", solver


def _polisher(config, notes: list):
    """The polishing solver of a run: ``polish`` over its named child; ``"auto"`` is
    ``hybrid-nl`` from the start with a token (``polish`` with ``neal`` if Leap cannot be
    reached) and, offline, ``neal`` within the start's own time."""
    if config.polish == "auto":
        offline = (
            "the default run polishes kbest's answer with local simulated annealing "
            "(neal) within kbest's own time"
        )
        if not token_configured():
            notes.append(f"no D-Wave API token configured: {offline}")
        else:
            try:
                return resolve_sampler(
                    "hybrid-nl", fallback=config.fallback, notes=notes, **config.solver_params
                )
            except SolverUnavailableError as exc:
                if isinstance(exc, TokenRejectedError):
                    raise
                notes.append(redact(f"{exc}; falling back to the offline default: {offline}"))
                log.warning("%s", notes[-1])
        sampler = get_sampler("polish", child="neal", relative_budget=1.0, **config.solver_params)
        return "polish:neal", sampler
    return (
        f"polish:{config.polish}",
        get_sampler("polish", child=config.polish, **config.solver_params),
    )


def cloud_fallback(sampler, config):
    """``(name, sampler)`` that takes the neurons a cloud solver could not solve."""
    if not isinstance(sampler, CloudSampler):
        return None
    # a solver may name its own (hybrid-nl: lns, the local whole-grid search)
    name = config.fallback or getattr(sampler, "fallback_solver", CLOUD_FALLBACK)
    return name, get_sampler(name)


CLOUD_LAYER_KEYS = ("problems", "uploaded_bytes", "billed_seconds", "fallback_neurons")


def execution_summary(solved, solver_name, began: float, before=None, after=None) -> dict:
    """A layer's ``solved_by`` counts (the cache, the solver, a fallback) and its wall time
    since ``began`` (``perf_counter``) against the summed solve time of its problems (their
    ratio: the parallelism); with a cloud executor's stats ``before`` and ``after`` the
    layer, also its problems, uploaded bytes, billed seconds and fallback neurons."""
    wall_seconds = time.perf_counter() - began
    solved_by = Counter(
        "cache" if r.info.get("cached") else r.info.get("solved_by", solver_name) for r in solved
    )
    summed = sum(r.wall_seconds for r in solved if not r.info.get("cached"))
    summary = {
        "solved_by": dict(sorted(solved_by.items())),
        "wall_seconds": wall_seconds,
        "summed_solve_seconds": summed,
    }
    if after and all(key in after for key in CLOUD_LAYER_KEYS):  # a cloud executor's
        summary["cloud"] = {
            key: round(after[key] - (before or {}).get(key, 0), 6) for key in CLOUD_LAYER_KEYS
        }
    ids = sorted({str(pid) for r in solved if (pid := r.info.get("problem_id"))})
    if ids:  # the cloud problems that answered the layer (a trial records them)
        summary["problem_ids"] = ids
    labels = sorted({label for r in solved if (label := _emulation(r.info))})
    if labels:  # answers from an emulator (the project's Leap emulator says so in info)
        summary["emulation"] = labels[0]
    polished = [r.info["polish"] for r in solved if "polish" in r.info]
    if polished:
        summary["polish"] = polish_summary(polished)
    return summary


def _emulation(info: dict) -> str | None:
    label = info.get("emulation") or (info.get("timing") or {}).get("emulation")
    return label if isinstance(label, str) else None


def polish_summary(reports: list[dict]) -> dict:
    """A layer's polishing from its neurons' reports: energies before and after, neurons
    improved, windows solved and accepted, energy removed per second and per billed
    second, and the matched controls' final energies (same windows / random windows,
    solved exactly)."""
    total = {
        key: sum(r[key] for r in reports)
        for key in (
            "incumbent_energy",
            "final_energy",
            "windows_solved",
            "windows_accepted",
            "seconds",
            "billed_seconds",
        )
    }
    removed = total["incumbent_energy"] - total["final_energy"]
    total.update(
        neurons=len(reports),
        neurons_improved=sum(r["improved"] for r in reports),
        removed_per_second=removed / total["seconds"] if total["seconds"] else 0.0,
        removed_per_billed_second=(
            removed / total["billed_seconds"] if total["billed_seconds"] else None
        ),
    )
    if all("controls" in r for r in reports):
        total["controls"] = {
            name: sum(r["controls"][name] for r in reports) for name in reports[0]["controls"]
        }
    return total


def _pool(kind: str, workers, scheduler) -> Executor:
    return PoolExecutor(kind, workers, scheduler)
