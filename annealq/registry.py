"""Solvers by name: a registry of factories that build ``dimod.Sampler`` objects.

Backends live in the top-level ``solvers`` package and are found through the entry-point
group ``annealq.solvers`` (see ``pyproject.toml``), so a third-party package adds one by
declaring an entry point whose object is a :class:`SolverSpec` or a plain factory
``f(**params) -> dimod.Sampler``. Nothing heavy is imported until a solver is asked for.

Example:
    >>> import dimod
    >>> registry = SolverRegistry(entry_point_group=None)
    >>> registry.register("exact-dimod", lambda: dimod.ExactSolver())
    >>> type(registry.get("exact-dimod")).__name__
    'ExactSolver'
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

import dimod

from annealq.credentials import load_env_file, redact, token_configured
from annealq.errors import SolverUnavailableError, TokenRejectedError
from annealq.parameters import validate_solver_params

ENTRY_POINT_GROUP = "annealq.solvers"
log = logging.getLogger(__name__)


def _always_available() -> str | None:
    return None


@dataclass(frozen=True)
class SolverSpec:
    """How to build one solver.

    Attributes:
        factory: ``factory(**params) -> dimod.Sampler``; sample-time parameters given to
            it become the sampler's defaults.
        unavailable: returns why the solver cannot run here (``None`` when it can);
            cheap, offline, and never reveals a credential.
        description: one line for ``annealq solvers``.
        emulation: results are a classical emulation of quantum hardware.
        whole_grid: the solver's problems are as small over the whole grid as over the
            down/up window (integer models), so a run that sets no ``window_bits`` gets
            ``window_bits = bits``.
        default_start: the warm start a run that sets no ``start`` gets (``"gptq"``,
            ``"rtn"``; ``None``: each solver's own).
    """

    factory: Callable[..., dimod.Sampler]
    unavailable: Callable[[], str | None] = _always_available
    description: str = ""
    emulation: bool = False
    whole_grid: bool = False
    default_start: str | None = None


@dataclass(frozen=True)
class SolverStatus:
    """One line of :func:`available_samplers`."""

    name: str
    available: bool
    reason: str | None
    description: str


class SolverRegistry:
    """Names → :class:`SolverSpec`, filled from entry points on first use."""

    def __init__(self, entry_point_group: str | None = ENTRY_POINT_GROUP):
        self._specs: dict[str, SolverSpec] = {}
        self._group = entry_point_group
        self._loaded = entry_point_group is None

    def register(self, name: str, factory, **spec_options) -> None:
        """Add (or replace) solver ``name``; ``factory`` is a callable or a SolverSpec."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"solver name must be a non-empty string, got {name!r}")
        spec = factory if isinstance(factory, SolverSpec) else SolverSpec(factory, **spec_options)
        self._specs[name] = spec

    def spec(self, name: str) -> SolverSpec:
        self._load_entry_points()
        try:
            return self._specs[name]
        except KeyError:
            raise ValueError(
                f"unknown solver {name!r}; available: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._specs)

    def get(self, name: str, **params) -> dimod.Sampler:
        """Build solver ``name``; raise SolverUnavailableError saying why it cannot run.

        Reads ``.env`` first (as the CLI does), so the API finds a token kept there."""
        spec = self.spec(name)
        validate_solver_params(params)
        load_env_file()
        reason = spec.unavailable()
        if reason:
            raise SolverUnavailableError(f"solver {name!r} is not available: {reason}")
        return spec.factory(**params)

    def statuses(self) -> list[SolverStatus]:
        load_env_file()  # as get() does: a token kept in .env counts here too
        statuses = []
        for name in self.names():
            spec = self._specs[name]
            try:
                reason = spec.unavailable()
            except Exception as exc:  # a broken plugin must not hide the others
                reason = f"availability check failed: {type(exc).__name__}"
            statuses.append(SolverStatus(name, not reason, reason, spec.description))
        return statuses

    def _load_entry_points(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for entry in entry_points(group=self._group):
            if entry.name in self._specs:  # registered in code: that one wins
                continue
            try:
                self.register(entry.name, entry.load())
            except Exception as exc:
                log.warning("solver plugin %r could not be loaded: %s", entry.name, exc)


_default = SolverRegistry()


def register_sampler(name: str, factory, **spec_options) -> None:
    """Register a solver by name in the default registry (see :class:`SolverSpec`)."""
    _default.register(name, factory, **spec_options)


def get_sampler(name: str, **params) -> dimod.Sampler:
    """Build the ``dimod.Sampler`` registered as ``name`` with ``params``.

    Raises:
        ValueError: unknown name or parameter.
        SolverUnavailableError: the solver cannot run here (the message says why).
    """
    return _default.get(name, **params)


def available_samplers() -> list[SolverStatus]:
    """Every registered solver, whether it can run here, and if not, why."""
    return _default.statuses()


def solver_spec(name: str) -> SolverSpec:
    """The :class:`SolverSpec` registered as ``name``."""
    return _default.spec(name)


def emulation_note(name: str | None) -> str | None:
    """For a solver whose results only emulate quantum hardware classically, the line that
    must accompany them wherever they are shown; ``None`` otherwise."""
    try:
        spec = solver_spec(name) if name else None
    except ValueError:  # not a registered name (e.g. a sampler object passed directly)
        return None
    if spec is None or not spec.emulation:
        return None
    return f"solver {name!r} is a classical emulation, not quantum hardware ({spec.description})"


def resolve_sampler(
    name: str, *, fallback: str | None = None, notes: list | None = None, **params
) -> tuple[str, dimod.Sampler]:
    """Build solver ``name`` and return ``(name actually used, sampler)``.

    ``"auto"`` is ``hybrid`` when a D-Wave token is configured, otherwise ``neal`` (with one
    warning); a configured token with Leap unreachable also gives ``neal`` with one warning
    (a rejected token stays an error). When ``name`` cannot run here and ``fallback`` names
    another solver, that one is used instead, with a warning; without a fallback the error
    propagates (fail fast). ``notes`` collects the reason of any substitution.
    """
    notes = [] if notes is None else notes
    if name == "auto":
        if token_configured():
            name, fallback = "hybrid", fallback or "neal"
        else:
            notes.append(
                "no D-Wave API token configured: solver 'auto' uses local "
                "simulated annealing (neal)"
            )
            log.warning("%s", notes[-1])
            name = "neal"
    try:
        return name, get_sampler(name, **params)
    except SolverUnavailableError as exc:
        if fallback is None or fallback == name or isinstance(exc, TokenRejectedError):
            raise
        notes.append(redact(f"{exc}; falling back to {fallback!r}"))
        log.warning("%s", notes[-1])
        return fallback, get_sampler(fallback)
