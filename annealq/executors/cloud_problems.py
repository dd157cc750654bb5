"""What the cloud executor (:mod:`annealq.executors.cloud`) submits, per kind of work: a
cloud sampler's BQMs (several per problem where packing pays), or groups of a layer's
neurons for a cloud layer sampler; each also says how to plan, estimate, submit, and
solve its problems with a fallback solver instead.
"""

from __future__ import annotations

from annealq.protocol import LayerSampler
from annealq.solve import OnDemand, call_parameters, solve_one

__all__ = ["BQMProblems", "LayerRows"]


class BQMProblems:
    """A :class:`CloudSampler`'s problems: BQMs, several per problem where packing pays."""

    def __init__(self, work):
        self.work, self.sampler = work, work.sampler

    def local(self, positions) -> list:
        return sorted(k for k in positions if self.work.bqms[k].num_variables == 0)

    def _pick(self, positions):
        """The BQMs and calls of ``positions``, each read when used (a layer's BQMs are
        built then: a group holds only its own, never the whole layer's)."""
        bqms, calls = self.work.bqms, self.work.calls
        return (
            OnDemand(len(positions), lambda t: bqms[positions[t]]),
            OnDemand(len(positions), lambda t: calls[positions[t]]),
        )

    def plan(self, positions, pack: bool) -> list:
        groups = self.sampler.plan(*self._pick(positions), pack=pack)
        return [[positions[g] for g in group] for group in groups]

    def estimate(self, positions) -> float:
        return self.sampler.estimate_seconds(*self._pick(positions))

    def submit(self, positions):
        return self.sampler.submit(*self._pick(positions))

    def fall_back(self, positions, sampler) -> list:
        answers = []
        for k in positions:
            call = {
                key: value for key, value in self.work.calls[k].items() if key in sampler.parameters
            }
            answers.append((k, *solve_one(self.work.bqms[k], sampler, call)))
        return answers


class LayerRows:
    """A :class:`CloudLayerSampler`'s problems: groups of a layer's neurons."""

    def __init__(self, work):
        self.work, self.sampler = work, work.sampler

    def local(self, positions) -> list:
        return []

    def _rows(self, positions) -> list:
        return [self.work.rows[k] for k in positions]

    def _starts(self, positions):
        starts = self.work.starts
        return None if starts is None else [starts[k] for k in positions]

    def plan(self, positions, pack: bool) -> list:
        groups = self.sampler.plan_layer(self.work.lq, self._rows(positions), pack=pack)
        return [[positions[g] for g in group] for group in groups]

    def estimate(self, positions) -> float:
        return self.sampler.estimate_layer_seconds(
            self.work.lq, self._rows(positions), self.work.parameters
        )

    def submit(self, positions):
        return self.sampler.submit_layer(
            self.work.lq, self._rows(positions), self._starts(positions), self.work.parameters
        )

    def fall_back(self, positions, sampler) -> list:
        """The neurons through ``sampler``: all at once for a layer solver, else one BQM
        each (with the warm starts where it takes them)."""
        lq, rows, starts = self.work.lq, self._rows(positions), self._starts(positions)
        parameters = {
            key: value for key, value in self.work.parameters.items() if key in sampler.parameters
        }
        if isinstance(sampler, LayerSampler):
            solved = sampler.sample_layer(lq, neurons=rows, initial_states=starts, **parameters)
            return [(k, result, None) for k, result in zip(positions, solved)]
        answers = []
        for t, (k, i) in enumerate(zip(positions, rows)):
            bqm = lq.bqm(i)
            call = call_parameters(bqm, sampler, None if starts is None else starts[t], parameters)
            answers.append((k, *solve_one(bqm, sampler, call)))
        return answers
