"""The layer-solver protocol, beside ``dimod.Sampler``.

Every solver in the registry is a ``dimod.Sampler``: it solves one BQM. Solvers that can
exploit a layer's shared form (one Gram matrix for all neurons, docs/design.md §1) also
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
    def sample_layer(
        self, lq, *, neurons=None, initial_states=None, **parameters
    ) -> list[SolveResult]:
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


class PolishingSampler(LayerSampler):
    """A layer solver that only improves the incumbents it is given (``initial_states``),
    never making a neuron worse, within a time budget: ``time_limit`` seconds per layer,
    or, where ``relative_budget`` is set, that multiple of the seconds the incumbents took
    (the pipeline sets it per layer)."""

    time_limit: float | None = None
    relative_budget: float | None = None
    store = None  # a CacheStore for the sub-problems' answers, set by the pipeline


class CloudSampler(abc.ABC):
    """A solver whose problems run remotely (Leap's QPU or hybrid solvers).

    Implementations are ``dimod.Sampler`` subclasses too (``sample`` blocks until its
    answer is in). The cloud executor (:class:`~annealq.executors.cloud.CloudExecutor`)
    uses the rest: it asks for a plan that packs a layer's neurons into problems, submits
    problems without waiting (:meth:`submit` returns a :class:`PendingProblem`), keeps a
    bounded number in flight and collects them as they finish.
    """

    #: how many problems :meth:`submit` may build and upload at once, in threads (1: one
    #: at a time, for a sampler whose submit is not thread-safe)
    concurrent_submits: int = 1

    @property
    @abc.abstractmethod
    def identity(self) -> str:
        """Which remote solver answers (its name or chip id, or the mock's topology): part
        of every cache key, so two solvers' answers never mix."""

    @abc.abstractmethod
    def plan(self, bqms, calls, *, pack: bool) -> list[list[int]]:
        """Group the positions of ``bqms`` into problems (each position exactly once)."""

    @abc.abstractmethod
    def estimate_seconds(self, bqms, calls) -> float:
        """Billed seconds of one problem made of ``bqms``, from the solver's properties."""

    @abc.abstractmethod
    def classify(self, exc: BaseException) -> tuple[str, float | None]:
        """What a failure means: ``("transient", retry_after or None)`` (retry),
        ``("auth", None)`` (a rejected token: stop), ``("fatal", None)`` (a bug or bad
        parameter: stop) or ``("failed", None)`` (this problem cannot be solved here, e.g.
        too large: the fallback solver takes it)."""

    @abc.abstractmethod
    def submit(self, bqms, calls) -> PendingProblem:
        """Send one problem made of ``bqms`` (their ``sample()`` keyword arguments in
        ``calls``) and return at once."""


class CloudLayerSampler(CloudSampler, LayerSampler):
    """A cloud solver whose problems are groups of a layer's neurons over the layer's shared
    form (Leap's nonlinear solver: one integer model per group), not BQMs. The cloud
    executor plans, budgets, retries and falls back with these methods exactly as it does
    with a :class:`CloudSampler`'s BQM problems."""

    @abc.abstractmethod
    def plan_layer(self, lq, rows, *, pack: bool) -> list[list[int]]:
        """Group the positions of ``rows`` (neurons of ``lq``) into problems that fit the
        solver's limits (each position exactly once)."""

    @abc.abstractmethod
    def estimate_layer_seconds(self, lq, rows, parameters) -> float:
        """Billed seconds of one problem made of neurons ``rows``."""

    @abc.abstractmethod
    def submit_layer(self, lq, rows, starts, parameters) -> PendingProblem:
        """Send neurons ``rows`` of ``lq`` (warm starts ``starts``, one ``{label: 0/1}``
        per row, or ``None``) as one problem and return at once; its results are one per
        row."""


class PendingProblem(abc.ABC):
    """A submitted cloud problem."""

    @abc.abstractmethod
    def done(self) -> bool:
        """Whether :meth:`results` would return (or raise) without waiting."""

    @abc.abstractmethod
    def results(self) -> list:
        """``(SolveResult, SampleSet | None)`` per BQM of the problem, in order; energies
        recomputed exactly from each BQM. Raises what the client raised."""

    def billed_seconds(self) -> float:
        """What the solver charged for it (after :meth:`results`)."""
        return 0.0

    def uploaded_bytes(self) -> int:
        """The bytes of problem data sent for it (the report's ``cloud`` section)."""
        return 0

    def cancel(self) -> None:  # noqa: B027 (optional: a no-op unless overridden)
        """Give up on it (best effort)."""
