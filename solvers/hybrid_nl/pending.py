"""One integer model of :class:`~solvers.hybrid_nl.sampler.HybridNLSampler` in flight
(:class:`PendingModel`): its answer read back from the states file, checked against the
model's bounds, decoded into each neuron's sample with its exact error recomputed from the
layer's own form, and a neuron whose answer is worse than its start keeping the start.
"""

from __future__ import annotations

import time

import numpy as np

from annealq.protocol import PendingProblem
from annealq.results import SolveResult, timing


class AnswerLost(ConnectionError):
    """The answer of a finished problem could not be read back (transient: retried)."""


class PendingModel(PendingProblem):
    """One integer model in flight; its results are the neurons' exact errors."""

    def __init__(self, future, layer, form, start, decode, time_limit, size):
        self.future, self.layer, self.form, self.start = future, layer, form, start
        self.decode, self.time_limit, self.size = decode, time_limit, size
        self.began = time.perf_counter()
        self.info: dict = {}

    def done(self) -> bool:
        return self.future.done()

    def results(self) -> list:
        result = self.future.result()
        self.info = dict(result.info)
        try:
            answer = self.layer.offsets(0)  # reads the states file the client downloaded
        except ValueError as exc:
            # the client keeps the body of a failed download (an HTTP error's JSON) as the
            # states file: the answer is lost, so the problem goes again (a retry)
            raise AnswerLost(f"the answer's states file is unreadable ({exc})") from None
        if (
            answer.shape != self.start.shape
            or np.any(answer < 0)
            or np.any(answer > self.form.span)
        ):
            raise ValueError(
                f"the nonlinear solver's state has shape {answer.shape} or "
                f"values outside the model's bounds"
            )
        # exact errors from the layer's own form, never the solver's objective
        energies, starts = self.form.energies(answer), self.form.energies(self.start)
        worse = energies > starts
        offsets = np.where(worse[:, None], self.start, answer)
        energies = np.where(worse, starts, energies)
        t = self.info.get("timing", {})
        shared = {
            key: t[key]
            for key in ("run_time", "charge_time", "qpu_access_time", "emulation")
            if key in t
        }
        shared.update(
            problem_id=self.info.get("problem_id"),
            packed_neurons=len(energies),
            uploaded_bytes=self.size,
        )
        seconds = t.get("run_time", 0) / 1e6 / len(energies)
        return [
            (
                SolveResult(
                    sample,
                    float(energy),
                    timing({**shared, "kept_start": bool(kept)}, seconds),
                    seconds,
                ),
                None,
            )
            for sample, energy, kept in zip(self.decode(offsets), energies, worse)
        ]

    def billed_seconds(self) -> float:
        charge = self.info.get("timing", {}).get("charge_time")
        return self.time_limit if charge is None else charge / 1e6

    def uploaded_bytes(self) -> int:
        return self.size

    def cancel(self) -> None:
        self.future.cancel()  # a problem already in Leap's queue runs to its time limit
