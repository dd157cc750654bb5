"""Thin dimod composites used by the solver backends."""

from __future__ import annotations

import dimod


class DefaultsComposite(dimod.ComposedSampler):
    """Binds default ``sample()`` parameters to a child sampler.

    ``get_sampler("neal", num_reads=10)`` returns one of these, so the caller's settings
    travel with the sampler. Unknown parameter names are rejected when it is built, not
    silently ignored at sampling time.

    Example:
        >>> import dimod
        >>> from dwave.samplers import SimulatedAnnealingSampler
        >>> sampler = DefaultsComposite(SimulatedAnnealingSampler(), num_reads=3, seed=1)
        >>> len(sampler.sample(dimod.BQM({"a": 1.0}, {}, 0.0, "BINARY")))
        3
    """

    def __init__(self, child: dimod.Sampler, **defaults):
        unknown = sorted(set(defaults) - set(child.parameters))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {', '.join(unknown)} for "
                f"{type(child).__name__}; it accepts "
                f"{', '.join(sorted(child.parameters))}"
            )
        self._child = child
        self.defaults = dict(defaults)

    @property
    def children(self):
        return [self._child]

    @property
    def parameters(self):
        return dict(self._child.parameters)

    @property
    def properties(self):
        return {"child_properties": dict(self._child.properties), "defaults": self.defaults}

    def sample(self, bqm, **parameters):
        return self._child.sample(bqm, **{**self.defaults, **parameters})
