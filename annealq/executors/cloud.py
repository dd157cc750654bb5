"""Leap problems in flight together: the cloud executor.

For a :class:`~annealq.protocol.CloudSampler`, a layer's cache misses become a plan of
problems (several neurons per problem when packing pays: one BQM with disjoint labels on the
hybrid solver, disjoint clique embeddings on a QPU). Up to ``max_in_flight`` problems are
submitted without waiting, through the cloud client's futures (a sampler whose
``concurrent_submits`` is above 1 builds and uploads that many problems at once, in
threads); each is collected when its future is done and its neurons are yielded at once,
so the cache commits them as they arrive. Faults are handled per problem:

* transient errors (HTTP 429 and 5xx, dropped connections, a problem past its timeout)
  are retried up to ``retries`` times, waiting ``backoff · 2^attempt`` seconds (or the
  server's ``Retry-After``, when the client passes it on);
* a problem too large for the solver, one that still fails after its retries, and
  problems beyond the budget (``max_cloud_seconds``) are solved by the fallback solver,
  and their results say so (``info["fallback"]``, never cached);
* a rejected token is an error at once, naming where the token came from, never the token.

Example (a sampler that is not a cloud sampler is solved in place):
    >>> import dimod
    >>> from annealq.executors.base import BQMWork
    >>> bqm = dimod.BQM({"a": 1.0}, {}, 0.0, "BINARY")
    >>> [(k, r, _)] = CloudExecutor().solve(BQMWork(dimod.ExactSolver(), [bqm], [{}]), [0])
    >>> k, r.sample
    (0, {'a': 0})
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from annealq.credentials import auth_message
from annealq.errors import SolverUnavailableError, TokenRejectedError
from annealq.executors.base import Executor, LayerWork
from annealq.executors.cloud_problems import BQMProblems, LayerRows
from annealq.protocol import CloudLayerSampler, CloudSampler
from annealq.results import timing

log = logging.getLogger(__name__)
POLL_SECONDS = 0.005


@dataclass(frozen=True)
class CloudPolicy:
    """Limits of the cloud path (see :class:`annealq.execution.Execution`)."""

    max_in_flight: int = 8
    pack: bool = True
    retries: int = 3
    problem_timeout: float | None = None
    max_cloud_seconds: float | None = None
    backoff: float = 0.5
    max_backoff: float = 30.0


@dataclass
class _Task:
    positions: list
    attempt: int = 0
    not_before: float = 0.0
    errors: list = field(default_factory=list)


class CloudExecutor(Executor):
    """Submits a cloud sampler's problems concurrently, packed, budgeted and retried.

    Args:
        policy: the limits.
        fallback: ``(name, dimod.Sampler)`` that solves neurons the cloud could not, or
            ``None`` (then such a neuron is an error).
        sleep, clock: injected for tests.
    """

    def __init__(
        self,
        policy: CloudPolicy = CloudPolicy(),
        *,
        fallback=None,
        sleep=time.sleep,
        clock=time.monotonic,
    ):
        self.policy = policy
        self.fallback = fallback
        self._sleep, self._clock = sleep, clock
        self.spent = 0.0  # billed seconds of answered problems (the budget's account)
        self.counts = {
            "problems": 0,
            "neurons": 0,
            "billed_seconds": 0.0,
            "estimated_seconds": 0.0,
            "retries": 0,
            "failures": 0,
            "timeouts": 0,
            "fallback_neurons": 0,
            "max_in_flight": 0,
            "uploaded_bytes": 0,
        }

    def stats(self) -> dict:
        return {
            **self.counts,
            "billed_seconds": round(self.counts["billed_seconds"], 6),
            "estimated_seconds": round(self.counts["estimated_seconds"], 6),
        }

    def solve(self, work, positions):
        if isinstance(work, LayerWork) and isinstance(work.sampler, CloudLayerSampler):
            return self._solve(LayerRows(work), list(positions))
        if isinstance(work, LayerWork) or not isinstance(work.sampler, CloudSampler):
            return work.solve(positions)
        return self._solve(BQMProblems(work), list(positions))

    def _solve(self, problems, positions):
        local = problems.local(positions)
        if local:  # nothing to send: solved here at once
            yield from problems.work.solve(local)
        positions = [k for k in positions if k not in set(local)]
        if not positions:
            return
        waiting = [_Task(group) for group in problems.plan(positions, self.policy.pack)]
        flying: list = []  # (task, pending or its upload's future, deadline, estimate)
        threads = min(self.policy.max_in_flight, getattr(problems.sampler, "concurrent_submits", 1))
        uploads = ThreadPoolExecutor(threads) if threads > 1 else None
        try:
            while waiting or flying:
                progressed = False
                now = self._clock()
                for task in [t for t in waiting if t.not_before <= now]:
                    if len(flying) >= self.policy.max_in_flight:
                        break
                    waiting.remove(task)
                    progressed = True
                    answer = self._launch(problems, task, flying, waiting, uploads)
                    if answer is not None:
                        yield from answer
                for entry in list(flying):
                    task, pending, deadline, estimate = entry
                    if pending.done():
                        flying.remove(entry)
                        progressed = True
                        yield from (
                            self._uploaded(problems, task, pending, flying, waiting, estimate)
                            if isinstance(pending, Future)
                            else self._collect(problems, task, pending, waiting)
                        )
                    elif deadline is not None and self._clock() > deadline:
                        flying.remove(entry)
                        progressed = True
                        pending.cancel()
                        self.counts["timeouts"] += 1
                        yield from self._failed(
                            problems,
                            task,
                            TimeoutError(f"no answer within {deadline - task.not_before:.0f} s"),
                            waiting,
                            transient=True,
                        )
                if not progressed:
                    self._sleep(POLL_SECONDS)
        finally:  # stopped early (an error, or the caller gave up): nothing left running
            if uploads is not None:
                uploads.shutdown(wait=True, cancel_futures=True)
            for _, pending, _, _ in flying:
                if isinstance(pending, Future):
                    pending = (
                        None if pending.cancelled() or pending.exception() else pending.result()
                    )
                if pending is not None:
                    pending.cancel()

    def _launch(self, problems, task, flying, waiting, uploads=None):
        """Submit ``task`` (in a thread when ``uploads`` is given); return answers instead
        when it goes to the fallback."""
        estimate = problems.estimate(task.positions)
        budget = self.policy.max_cloud_seconds
        reserved = sum(entry[3] for entry in flying)
        if budget is not None and self.spent + reserved + estimate > budget:
            return self._fall_back(problems, task, f"the cloud budget of {budget:g} s is spent")
        if uploads is not None:
            flying.append((task, uploads.submit(problems.submit, task.positions), None, estimate))
            return None
        try:
            pending = problems.submit(task.positions)
        except Exception as exc:  # the client's submit errors are classified below
            return list(self._failed(problems, task, exc, waiting))
        self._submitted(task, pending, flying, estimate)
        return None

    def _uploaded(self, problems, task, upload, flying, waiting, estimate):
        try:
            pending = upload.result()
        except Exception as exc:  # the client's submit errors are classified below
            yield from self._failed(problems, task, exc, waiting)
            return
        self._submitted(task, pending, flying, estimate)

    def _submitted(self, task, pending, flying, estimate) -> None:
        # default: generous (uploads of large BQMs and Leap's queue count too); a problem
        # that never finishes is still caught
        timeout = self.policy.problem_timeout or max(600.0, 10.0 * estimate)
        task.not_before = self._clock()
        flying.append((task, pending, task.not_before + timeout, estimate))
        self.counts["problems"] += 1  # every submission, a retry's too
        self.counts["estimated_seconds"] += estimate
        self.counts["uploaded_bytes"] += pending.uploaded_bytes()
        self.counts["max_in_flight"] = max(self.counts["max_in_flight"], len(flying))

    def _collect(self, problems, task, pending, waiting):
        try:
            answers = pending.results()
        except Exception as exc:
            yield from self._failed(problems, task, exc, waiting)
            return
        billed = pending.billed_seconds()
        self.spent += billed
        self.counts["billed_seconds"] += billed
        self.counts["neurons"] += len(task.positions)  # answered by the cloud: each once
        for k, (result, sampleset) in zip(task.positions, answers):
            result.info.setdefault("solved_by", problems.sampler.identity)
            yield k, result, sampleset

    def _failed(self, problems, task, exc, waiting, transient=None):
        kind, wait = problems.sampler.classify(exc)
        if kind == "auth":
            raise TokenRejectedError(auth_message("submitting a problem")) from None
        if kind == "fatal":
            raise exc
        task.errors.append(f"{type(exc).__name__}: {exc}")
        if (transient or kind == "transient") and task.attempt < self.policy.retries:
            delay = (
                wait
                if wait is not None
                else min(self.policy.backoff * 2**task.attempt, self.policy.max_backoff)
            )
            task.attempt += 1
            task.not_before = self._clock() + delay
            self.counts["retries"] += 1
            log.debug("cloud problem failed (%s); retry %d in %.2f s", exc, task.attempt, delay)
            waiting.append(task)
            return
        self.counts["failures"] += 1
        yield from self._fall_back(problems, task, task.errors[-1])

    def _fall_back(self, problems, task, reason: str):
        if self.fallback is None:
            raise SolverUnavailableError(
                f"a cloud problem of {len(task.positions)} neuron(s) could not be solved "
                f"({reason}); give a fallback solver (--fallback neal) to solve such "
                f"neurons locally"
            )
        name, sampler = self.fallback
        if not self.counts["fallback_neurons"]:
            log.warning("%s: solving with %r instead (the report counts them)", reason, name)
        self.counts["fallback_neurons"] += len(task.positions)
        answers = problems.fall_back(task.positions, sampler)
        for _, result, _ in answers:
            result.info.update(
                timing(
                    {"fallback": True, "solved_by": name, "fallback_reason": reason},
                    result.info.get("timing", {}).get("solve_seconds", 0.0),
                )
            )
        return answers
