"""``steepest``: dwave-samplers' SteepestDescentSolver, a greedy descent to a local
minimum; from a warm start (``initial_states``, e.g. RTN) it is a cheap polish."""

from annealq.composites import DefaultsComposite
from annealq.registry import SolverSpec
from solvers import missing_package


def make_sampler(**params):
    from dwave.samplers import SteepestDescentSolver

    return DefaultsComposite(SteepestDescentSolver(), **params)


SPEC = SolverSpec(
    make_sampler,
    lambda: missing_package("dwave.samplers", "dwave-samplers"),
    "steepest descent (dwave-samplers); warm starts accepted",
)
