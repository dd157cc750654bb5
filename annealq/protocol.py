"""The layer-solver protocol, beside ``dimod.Sampler``.

Every solver in the registry is a ``dimod.Sampler``: it solves one BQM. Solvers that can
exploit a layer's shared form (one Gram matrix for all neurons, DESIGN.md §1) also
subclass :class:`LayerSampler`; dispatch chooses by type, never by probing attributes.

Example:
    >>> import dimod
    >>> class Rounder(dimod.Sampler, LayerSampler):
    ...     parameters, properties = {}, {}
    ...     def sample(self, bqm, **parameters):
    ...         return dimod.ExactSolver().sample(bqm)
    ...     def sample_layer(self, lq, *, neurons=None, initial_states=None, **parameters):
    ...         rows = range(lq.n_neurons) if neurons is None else neurons
    ...         return [SolveResult(lq.rtn_sample(i), lq.energy(i, lq.rtn_sample(i)))
    ...                 for i in rows]
    >>> isinstance(Rounder(), LayerSampler)
    True
"""

from __future__ import annotations

import abc

from annealq.results import SolveResult


class LayerSampler(abc.ABC):
    """A solver that takes a whole :class:`~annealq.layer.LayerQUBO` at once.

    Implementations are ``dimod.Sampler`` subclasses too, so they also solve single BQMs.
    ``defaults`` (the parameters bound at construction) are part of cache keys.
    """

    @abc.abstractmethod
    def sample_layer(self, lq, *, neurons=None, initial_states=None,
                     **parameters) -> list[SolveResult]:
        """Solve ``neurons`` (default: all, in order) of layer ``lq``.

        Args:
            lq: the layer's formulation.
            neurons: the neuron indices to solve.
            initial_states: one warm start ``{label: 0/1}`` per neuron solved, or ``None``.
            **parameters: override the solver's defaults for this call.

        Returns:
            One :class:`~annealq.results.SolveResult` per neuron of ``neurons``, in order,
            with the exact energy and ``info["timing"]["solve_seconds"]``.
        """

    @property
    def defaults(self) -> dict:
        """The parameters in force; part of every cache key."""
        return {}
