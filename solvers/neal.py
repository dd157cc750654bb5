"""``neal``: simulated annealing from dwave-samplers (dwave-neal is its alias package).

Parameters: ``num_reads``, ``num_sweeps``, ``beta_range``, ``seed`` (< 2**31) and the other
``SimulatedAnnealingSampler.sample`` options; warm starts through ``initial_states``.
"""

from annealq.composites import DefaultsComposite
from annealq.registry import SolverSpec
from solvers import missing_package


def make_sampler(**params):
    from dwave.samplers import SimulatedAnnealingSampler

    return DefaultsComposite(SimulatedAnnealingSampler(), **params)


SPEC = SolverSpec(
    make_sampler,
    lambda: missing_package("dwave.samplers", "dwave-samplers"),
    "simulated annealing (dwave-samplers); defaults 1 read, 1,000 sweeps",
)
