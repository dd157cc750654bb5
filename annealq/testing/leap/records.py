"""The record of one emulated problem and its SAPI status message."""

from __future__ import annotations

import dataclasses
import datetime
import threading
from typing import Optional

__all__ = [
    "Problem",
    "now_iso",
    "PENDING",
    "IN_PROGRESS",
    "COMPLETED",
    "CANCELLED",
    "FAILED",
    "TERMINAL",
]

PENDING, IN_PROGRESS = "PENDING", "IN_PROGRESS"
COMPLETED, CANCELLED, FAILED = "COMPLETED", "CANCELLED", "FAILED"
TERMINAL = (COMPLETED, CANCELLED, FAILED)


def now_iso() -> str:
    """Current UTC time in the ISO 8601 form SAPI uses."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


@dataclasses.dataclass
class Problem:
    """One submitted problem and its emulated life cycle."""

    id: str
    kind: str  # 'qpu', 'hybrid' or 'nl'
    type: str  # 'ising', 'qubo', 'bqm' or 'nl'
    solver: dict  # solver identity as submitted
    params: dict
    data: dict
    label: Optional[str] = None
    status: str = PENDING
    submitted_on: str = dataclasses.field(default_factory=now_iso)
    solved_on: Optional[str] = None
    answer: Optional[dict] = None
    error_message: Optional[str] = None
    never_finish: bool = False
    service_s: float = 0.0  # emulated (unscaled) service time
    billed_s: float = 0.0  # what a completed problem is charged
    bqm: object = None  # a hybrid problem's BQMVectors
    model: object = None  # a nonlinear problem's dwave.optimization.Model
    answer_data: Optional[bytes] = None  # its states file, fetched by URL
    wake: threading.Event = dataclasses.field(default_factory=threading.Event)

    def status_message(self, with_answer: bool = False) -> dict:
        """Return the SAPI problem status (optionally with the answer)."""
        msg = {
            "id": self.id,
            "type": self.type,
            "solver": self.solver,
            "status": self.status,
            "submitted_on": self.submitted_on,
        }
        if self.label is not None:
            msg["label"] = self.label
        if self.solved_on is not None:
            msg["solved_on"] = self.solved_on
        if self.status == FAILED:
            msg["error_message"] = self.error_message
        if with_answer and self.status == COMPLETED:
            msg["answer"] = self.answer
        return msg
