"""What a solve returns, shared by every stage (dispatch, cache, solvers, pipeline).

Every backend reports its time the same way: ``info["timing"]["solve_seconds"]`` is the
wall time the solver spent on the problem (for a layer solver: on the call, shared by
its neurons); backend extras keep their own names beside it (``anneal_seconds``,
``qpu_access_time``, ``search_seconds``, …).

Example:
    >>> import dimod
    >>> bqm = dimod.BQM({"a": 1.0, "b": -1.0}, {("a", "b"): 0.5}, 0.0, "BINARY")
    >>> best = best_result(bqm, dimod.ExactSolver().sample(bqm), 0.01)
    >>> best.sample, best.energy, best.info["timing"]["solve_seconds"]
    ({'a': 0, 'b': 1}, -1.0, 0.01)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dimod
import numpy as np

SOLVE_SECONDS = "solve_seconds"


@dataclass(frozen=True)
class SolveResult:
    """One problem's best sample.

    Attributes:
        sample: ``{label: 0/1}``.
        energy: the problem's energy of ``sample`` (recomputed from the problem, so it is
            exact).
        info: the solver's info (``SampleSet.info`` for a dimod sampler), with
            ``info["timing"]`` as in the module docs; for a sample set also
            ``info["best"]``, the chosen sample's own fields (``num_occurrences``,
            ``chain_break_fraction``, …).
        wall_seconds: time spent in the solver for this problem.
    """

    sample: dict
    energy: float
    info: dict = field(default_factory=dict)
    wall_seconds: float = 0.0


def timing(info: dict, seconds: float) -> dict:
    """``info`` with ``info["timing"]["solve_seconds"] = seconds``, keeping the backend's
    own timing entries."""
    return {**info, "timing": {**dict(info.get("timing") or {}), SOLVE_SECONDS: seconds}}


def best_result(bqm, sampleset: dimod.SampleSet, wall_seconds: float) -> SolveResult:
    """The lowest-energy sample of ``sampleset``, read by label, with its exact energy.

    Samples are read **by variable label** (``SampleSet.first.sample`` is a mapping), never
    by position in ``record.sample``, whose column order is the sampler's business.
    """
    best = sampleset.first
    sample = {v: int(best.sample[v]) for v in bqm.variables}
    info = dict(sampleset.info)
    # per-sample fields of the chosen sample (the set-wide ones stay in info as reported)
    info["best"] = {
        name: _plain(getattr(best, name))
        for name in sampleset.record.dtype.names
        if name not in ("sample", "energy")
    }
    return SolveResult(sample, float(bqm.energy(sample)), timing(info, wall_seconds), wall_seconds)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
