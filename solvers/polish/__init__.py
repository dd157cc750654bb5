"""Window polishing of a layer's incumbent by any sampler (:class:`PolishComposite`)."""

from solvers.polish.composite import EXACT, PolishComposite

__all__ = ["EXACT", "PolishComposite"]
