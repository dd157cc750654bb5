"""Problem queue, service slots, billing and status bookkeeping.

Each solver kind (``qpu``, ``hybrid``, ``nl``) has its own FIFO queue served by a
fixed number of worker threads, one per slot. A worker takes the next
PENDING problem, marks it IN_PROGRESS, computes the classical answer and then
holds the slot for the rest of the problem's emulated service time divided by
``time_scale``, after which the problem is COMPLETED. Billing uses the
unscaled service time.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from typing import Optional

from annealq.testing.leap import answers
from annealq.testing.leap.admission import (
    SubmitError,
    prepare_hybrid,
    prepare_nl,
    prepare_qpu,
)
from annealq.testing.leap.faults import FaultInjector
from annealq.testing.leap.records import (
    CANCELLED,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    PENDING,
    TERMINAL,
    Problem,
    now_iso,
)
from annealq.testing.leap.solvers import SolverCatalog
from annealq.testing.leap.uploads import UploadStore

__all__ = ["ProblemStore"]


class ProblemStore:
    """All problems and uploads of one emulator, plus the slot workers.

    Args:
        catalog: The emulated solvers.
        injector: Fault injector (decides never-finishing problems).
        time_scale: Emulated service time is divided by this for wall time.
        slots: Worker count per solver kind, e.g. ``{'hybrid': 4, 'qpu': 1}``.
    """

    def __init__(
        self, catalog: SolverCatalog, injector: FaultInjector, time_scale: float, slots: dict
    ):
        self.catalog = catalog
        self.injector = injector
        self.time_scale = float(time_scale)
        self.uploads = UploadStore()
        self._problems: dict = {}
        self._cond = threading.Condition()
        self._closed = False
        self._queues = {kind: queue.Queue() for kind in slots}
        self._in_service = {kind: 0 for kind in slots}
        self._counts = {"submitted": 0, "completed": 0, "cancelled": 0, "failed": 0}
        self._max_concurrent = {kind: 0 for kind in slots}
        self._billed = {catalog.qpu_name: 0.0, catalog.hybrid_name: 0.0, catalog.nl_name: 0.0}
        self.endpoint = ""  # set by the emulator once it listens
        self._workers = [
            threading.Thread(
                target=self._serve, args=(kind,), daemon=True, name=f"leap-emulator-{kind}-{i}"
            )
            for kind, n in slots.items()
            for i in range(n)
        ]
        for worker in self._workers:
            worker.start()

    # -- submission -------------------------------------------------------

    def submit(self, job: dict) -> dict:
        """Accept one submitted problem; return its status or an error entry."""
        try:
            problem = self._make_problem(job)
        except SubmitError as exc:
            return {"error_code": exc.code, "error_msg": str(exc)}
        problem.never_finish = self.injector.never_finish()
        with self._cond:
            self._problems[problem.id] = problem
            self._counts["submitted"] += 1
            message = problem.status_message()
        self._queues[problem.kind].put(problem)
        return message

    def _make_problem(self, job: dict) -> Problem:
        if not isinstance(job, dict):
            raise SubmitError(400, "each submitted problem must be an object")
        kind = self.catalog.kind_of(job.get("solver"))
        if kind is None:
            raise SubmitError(404, f"solver {job.get('solver')!r} not found")
        params = job.get("params") or {}
        problem = Problem(
            id=str(uuid.uuid4()),
            kind=kind,
            type=job.get("type"),
            solver=job["solver"],
            params=params,
            data=job.get("data") or {},
            label=job.get("label"),
        )
        prepare = {"qpu": prepare_qpu, "nl": prepare_nl}.get(kind, prepare_hybrid)
        prepare(problem, self.catalog, self.uploads)
        return problem

    # -- service ----------------------------------------------------------

    def _serve(self, kind: str) -> None:
        pending = self._queues[kind]
        while True:
            problem = pending.get()
            if problem is None:
                return
            with self._cond:
                if problem.status != PENDING:
                    continue  # cancelled while queued
                problem.status = IN_PROGRESS
                self._in_service[kind] += 1
                busy = self._in_service[kind]
                self._max_concurrent[kind] = max(self._max_concurrent[kind], busy)
                self._cond.notify_all()
            try:
                self._run(problem)
            finally:
                with self._cond:
                    self._in_service[kind] -= 1

    def _run(self, problem: Problem) -> None:
        started = time.monotonic()
        try:
            answer = self._compute(problem)
        except Exception as exc:  # report solver bugs as FAILED, like SAPI
            self._finish(problem, FAILED, error=f"emulator failed: {exc!r}")
            return
        if problem.never_finish:
            # hold the slot until cancelled or the emulator closes
            while not (problem.wake.wait(0.5) or self._closed):
                pass
        else:
            wall = problem.service_s / self.time_scale
            problem.wake.wait(max(0.0, wall - (time.monotonic() - started)))
        self._finish(problem, COMPLETED, answer=answer)

    def _compute(self, problem: Problem) -> dict:
        if problem.kind == "nl":
            answer, problem.answer_data = answers.nl_answer(
                problem.model,
                problem.service_s,
                problem.billed_s,
                f"{self.endpoint}problems/{problem.id}/answer/data/",
            )
            problem.model = None  # the states file is all that is kept
            return answer
        if problem.kind == "qpu":
            return answers.qpu_answer(
                self.catalog.qpu_solver, problem.data, problem.type, problem.params
            )
        minimum = self.catalog.hybrid_min_time_limit(problem.bqm.num_variables)
        return answers.hybrid_answer(
            problem.bqm, problem.service_s, max(problem.service_s, minimum)
        )

    def _finish(self, problem: Problem, status: str, answer=None, error=None) -> None:
        with self._cond:
            if problem.status != IN_PROGRESS or self._closed:
                return  # cancelled meanwhile: keep CANCELLED
            problem.status, problem.answer = status, answer
            problem.error_message = error
            problem.solved_on = now_iso()
            if status == COMPLETED:
                self._counts["completed"] += 1
                self._billed[problem.solver["name"]] += problem.billed_s
            else:
                self._counts["failed"] += 1
            self._cond.notify_all()

    # -- queries ----------------------------------------------------------

    def get(self, problem_id: str) -> Optional[Problem]:
        """Return the problem with this id, or ``None``."""
        with self._cond:
            return self._problems.get(problem_id)

    def statuses(self, ids: list, wait: float = 0.0) -> list:
        """Status messages of known ``ids``; long-poll up to ``wait`` seconds.

        With ``wait > 0`` the call returns as soon as any listed problem is
        terminal or changes status (the client's long-polling contract).
        """
        with self._cond:
            known = [self._problems[i] for i in ids if i in self._problems]
            before = [p.status for p in known]

            def changed():
                return self._closed or any(
                    p.status != s or p.status in TERMINAL for p, s in zip(known, before)
                )

            if wait > 0 and known:
                self._cond.wait_for(changed, timeout=wait)
            return [p.status_message() for p in known]

    def list_recent(self, limit: int = 100) -> list:
        """Status messages of the most recent problems."""
        with self._cond:
            recent = list(self._problems.values())[-limit:]
            return [p.status_message() for p in reversed(recent)]

    def cancel(self, ids: list) -> list:
        """Cancel problems; return a status or an error entry for each id.

        Unlike real SAPI (which cancels only PENDING problems) the emulator
        also cancels IN_PROGRESS ones, so that never-finishing problems can
        be ended; the slot is freed at once and nothing is billed.
        """
        results = []
        with self._cond:
            for problem_id in ids:
                problem = self._problems.get(problem_id)
                if problem is None:
                    results.append({"error_code": 404, "error_msg": "Problem not found"})
                elif problem.status in TERMINAL:
                    results.append({"error_code": 409, "error_msg": f"Problem is {problem.status}"})
                else:
                    problem.status, problem.solved_on = CANCELLED, now_iso()
                    self._counts["cancelled"] += 1
                    problem.wake.set()
                    results.append(problem.status_message())
            self._cond.notify_all()
        return results

    def stats(self) -> dict:
        """Counters, billed seconds per solver and peak concurrency."""
        with self._cond:
            return {
                "problems_submitted": self._counts["submitted"],
                "problems_completed": self._counts["completed"],
                "problems_cancelled": self._counts["cancelled"],
                "problems_failed": self._counts["failed"],
                "billed_seconds": dict(self._billed),
                "in_service": dict(self._in_service),
                "max_concurrent": dict(self._max_concurrent),
            }

    def close(self) -> None:
        """Stop the workers and release every long poll."""
        with self._cond:
            self._closed = True
            for problem in self._problems.values():
                problem.wake.set()
            self._cond.notify_all()
        for pending in self._queues.values():
            for _ in range(len(self._workers)):
                pending.put(None)
        for worker in self._workers:
            worker.join(timeout=2.0)
