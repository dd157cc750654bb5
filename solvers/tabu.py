"""``tabu``: dwave-samplers' TabuSampler (``timeout`` in ms per read; ``initial_states``)."""

from annealq.composites import DefaultsComposite
from annealq.registry import SolverSpec
from solvers import missing_package


def make_sampler(**params):
    from dwave.samplers import TabuSampler

    return DefaultsComposite(TabuSampler(), **params)


SPEC = SolverSpec(
    make_sampler,
    lambda: missing_package("dwave.samplers", "dwave-samplers"),
    "tabu search (dwave-samplers); warm starts accepted",
)
