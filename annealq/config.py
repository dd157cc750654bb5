"""The typed configuration of a quantization run, validated in one place for the API and
the CLI, and recorded whole in the report.

Example:
    >>> config = QuantizeConfig.from_options(bits=2, solver="neal", window_bits=2,
    ...                                      start="gptq", seed=1)
    >>> config.formulation_options()
    {'window_bits': 2}
    >>> QuantizeConfig.from_dict(config.to_dict()) == config
    True
    >>> QuantizeConfig(bits=9)
    Traceback (most recent call last):
    ...
    ValueError: bits must be from 1 to 8, got 9
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields

from annealq.baselines.methods import GPTQ_OPTIONS
from annealq.formulation import validate_ridge
from annealq.grid import (
    validate_activation_bits,
    validate_bits,
    validate_group_size,
)
from annealq.parameters import validate_solver_params
from annealq.registry import solver_spec
from annealq.settings_checks import validate_counts, validate_grid, validate_time_limit

METHODS = ("rtn", "qubo", "gptq", "adaround", "cd")
STARTS = ("rtn", "gptq", "kbest")
AUTO = "auto"  # polish="auto": neal offline; with a token, hybrid-nl from kbest instead
DEFAULT_SOLVER = "auto"
# options of formulate_layer a run can set (with their defaults); the rest of quantize's
# **options belong to the method (gptq's act_order, adaround's iterations, ...)
FORMULATION_DEFAULTS = {
    "scheme": "reference",
    "per_channel": False,
    "window_bits": 1,
    "bias_window_bits": None,
    "bias_step": None,
    "input_step": None,
    "group_size": None,
    "ridge": 0.0,
    "clip_search": False,
}
# the formulation options of the QUBO alone, not of the baselines' grids
QUBO_ONLY_OPTIONS = frozenset({"window_bits", "bias_window_bits", "ridge"})


@dataclass(frozen=True)
class QuantizeConfig:
    """Everything that decides a run's result (not where it is cached or reported).

    Attributes:
        bits: weight bit width, 1..8.
        method: ``"qubo"``, ``"rtn"``, ``"gptq"``, ``"adaround"`` or ``"cd"``.
        solver: a registered solver name (``method="qubo"`` only).
        solver_params: the solver's parameters (``num_reads``, ``time_limit``, …).
        fallback: the solver to use when ``solver`` cannot run here.
        start: the QUBO solver's warm start, ``"rtn"``, ``"gptq"`` or ``"kbest"`` (``kbest``'s
            answer on the whole grid from tuned GPTQ: each neuron's incumbent, never lost).
        polish: a solver name: polish the start's answer with it window by window
            (:mod:`solvers.polish`); ``"auto"`` (the default run's) is ``neal`` within
            ``kbest``'s own time offline, and ``hybrid-nl`` from ``kbest`` with a token.
        paper: the paper's setting (the down/up QUBO, ``auto`` = ``hybrid``/``neal``)
            instead of the default ``kbest`` start with polishing.
        scheme: the weight grid's scheme; it and ``per_channel``, ``window_bits``,
            ``bias_window_bits``, ``bias_step``, ``input_step`` and ``group_size`` are the
            grids and windows of :func:`~annealq.formulation.formulate_layer`
            (``group_size``: one weight step per that many consecutive inputs of a row).
        ridge: the QUBO's pull towards the float weights (``method="qubo"`` only;
            :func:`~annealq.formulation.formulate_layer`); 0 is the output error alone.
        clip_search: steps scaled by the weights' best clipping ratio per row (group),
            :func:`~annealq.grid.clip_ratios`; for ``gptq``, ``cd`` and ``start="gptq"``
            one more axis of GPTQ's per-layer tuning (the setting says which grid won).
        refit_steps: after rounding, re-fit each row's (group's) step and the bias to the
            integers and re-round on the new grid, alternately (:mod:`annealq.refit`).
        activation_bits: round each quantized layer's input to this many bits.
        calibration_size: inputs drawn from a ``Dataset`` (``None``: 1,000).
        seed: the calibration draw's and the solvers' seed.
        time_limit: seconds per layer for the search solvers (``lns``, ``exact-bb``: their
            ``layer_time_limit``, an anytime budget; never worse than the start).
        method_options: the baseline's own options (``iterations``, ``sweeps``, …) and
            GPTQ's setting, ``act_order`` and ``damp``, for ``gptq``, ``cd`` and
            ``start="gptq"``: GPTQ is tuned per layer over the rest
            (:mod:`annealq.baselines.methods`); both given fix it.
    """

    bits: int
    method: str = "qubo"
    solver: str = DEFAULT_SOLVER
    solver_params: Mapping = field(default_factory=dict)
    fallback: str | None = None
    start: str | None = None
    polish: str | None = None
    paper: bool = False
    scheme: str = "reference"
    per_channel: bool = False
    window_bits: int = 1
    bias_window_bits: int | None = None
    bias_step: float | None = None
    input_step: float | None = None
    group_size: int | None = None
    ridge: float = 0.0
    clip_search: bool = False
    activation_bits: int | None = None
    calibration_size: int | None = None
    seed: int | None = None
    time_limit: float | None = None
    refit_steps: bool = False
    method_options: Mapping = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "bits", validate_bits(self.bits))
        object.__setattr__(self, "activation_bits", validate_activation_bits(self.activation_bits))
        object.__setattr__(
            self, "solver_params", validate_solver_params(dict(self.solver_params or {}))
        )
        object.__setattr__(self, "method_options", dict(self.method_options or {}))
        _validate_method(self.method, self.start, self.scheme, self.method_options)
        _validate_polish(self.polish, self.start, self.paper)
        validate_grid(self.scheme, self.per_channel, self.window_bits, self.bias_window_bits)
        validate_counts(self.calibration_size, self.seed)
        validate_time_limit(self.time_limit, self.method)
        for name in ("clip_search", "refit_steps"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        object.__setattr__(self, "ridge", validate_ridge(self.ridge))
        if self.ridge and self.method != "qubo":
            raise ValueError(
                f"ridge regularises the qubo method's objective, not method {self.method!r}"
            )
        if self.group_size is not None:
            object.__setattr__(self, "group_size", validate_group_size(self.group_size))
        if self.activation_bits is not None and self.input_step is not None:
            raise ValueError("input_step is set by activation_bits; give one or the other")
        for name in ("solver", "fallback"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name} must be a solver name, got {value!r}")

    @classmethod
    def from_options(cls, *, bits, sampler_object: bool = False, **options) -> QuantizeConfig:
        """A config from ``quantize``'s keyword arguments: its own fields by name, the
        remaining ``**options`` sorted into the formulation's and the method's
        (``sampler_object``: the solver is a sampler object, not a name)."""
        own = {f.name for f in fields(cls)} - {"method_options"}
        method_options = {k: v for k, v in options.items() if k not in own}
        given = {k: v for k, v in options.items() if k in own and v is not None}
        solver = given.get("solver", DEFAULT_SOLVER)
        if given.get("polish") is not None and solver != DEFAULT_SOLVER:
            raise ValueError(
                f"give polish or solver, not both (polish={given['polish']!r} "
                f"solves the windows; solver={given['solver']!r})"
            )
        if not sampler_object and _default_run(given):  # kbest's answer, polished
            given.update(start="kbest", polish=AUTO)
        if given.get("polish") is not None:
            given.setdefault("start", "kbest")
        polished = {**given, "solver": "polish"} if given.get("polish") else given
        spec = _qubo_solver(polished)
        if spec is not None and spec.whole_grid and "window_bits" not in given:
            given["window_bits"] = bits  # an integer-model solver: the whole grid costs no more
        if spec is not None and spec.default_start and "start" not in given:
            given["start"] = spec.default_start
        return cls(bits=bits, **given, method_options=method_options)

    def formulation_options(self) -> dict:
        """The formulation options that differ from their defaults."""
        return {
            name: getattr(self, name)
            for name, default in FORMULATION_DEFAULTS.items()
            if getattr(self, name) != default
        }

    def grid_options(self) -> dict:
        """The formulation options that are the grid's (what RTN and the baselines use)."""
        return {k: v for k, v in self.formulation_options().items() if k not in QUBO_ONLY_OPTIONS}

    def baseline_options(self, method: str, options: Mapping) -> tuple[dict, dict]:
        """Baseline ``method``'s own options in this run and its grid options (the
        formulation ``options`` less the QUBO's); GPTQ as the QUBO's start takes only
        GPTQ's setting (``act_order``, ``damp``)."""
        extra = dict(self.method_options)
        if method != self.method:
            extra = {k: v for k, v in extra.items() if k in GPTQ_OPTIONS}
        if method == "adaround" and self.seed is not None:
            extra.setdefault("seed", self.seed)
        return extra, {k: v for k, v in options.items() if k not in QUBO_ONLY_OPTIONS}

    def to_dict(self) -> dict:
        """Plain data (numbers, strings, dicts), as recorded in the report."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> QuantizeConfig:
        """The config :meth:`to_dict` wrote; unknown keys are an error."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown configuration key(s) {', '.join(unknown)}")
        return cls(**data)


def run_config(config, bits, solver, options) -> QuantizeConfig:
    """The run's configuration: ``config`` itself, or one built from the keyword arguments
    (a solver given as an object is recorded by its ``solver_name``)."""
    if config is not None:
        if bits is not None or options:
            raise ValueError("give either config= or the keyword arguments it holds, not both")
        return config
    if bits is None:
        raise ValueError("quantize() needs bits (or a config)")
    name = solver if isinstance(solver, str) else DEFAULT_SOLVER
    return QuantizeConfig.from_options(
        bits=bits, solver=name, sampler_object=not isinstance(solver, str), **options
    )


def _validate_method(method, start, scheme, method_options) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if start is not None and (start not in STARTS or method != "qubo"):
        raise ValueError(
            f"start must be one of {', '.join(STARTS)} with method 'qubo', "
            f"got start={start!r}, method={method!r}"
        )
    unknown = set(method_options) - (set(GPTQ_OPTIONS) if start in ("gptq", "kbest") else set())
    if unknown and method in ("qubo", "rtn"):
        raise ValueError(
            f"unknown option(s) {', '.join(sorted(unknown))} for method "
            f"{method!r}; formulation options are "
            f"{', '.join(sorted(FORMULATION_DEFAULTS))}"
            + (
                f"; GPTQ's {', '.join(GPTQ_OPTIONS)} go with start='gptq'"
                if set(GPTQ_OPTIONS) & unknown
                else ""
            )
        )
    _validate_gptq_options(method_options)
    if scheme == "affine" and (method in ("gptq", "adaround", "cd") or start in ("gptq", "kbest")):
        raise ValueError(
            "the affine scheme is for the qubo and rtn methods; gptq, cd and "
            "adaround use the reference or symmetric grids"
        )


def _default_run(given) -> bool:
    """A QUBO run with solver ``auto`` that sets no start, window or polish (and not
    ``paper``) gets the default: ``kbest``'s answer polished."""
    return (
        given.get("solver", DEFAULT_SOLVER) == DEFAULT_SOLVER
        and given.get("method", "qubo") == "qubo"
        and not given.get("paper")
        and given.get("scheme") != "affine"
        and not {"start", "window_bits", "polish"} & set(given)
    )


def _validate_polish(polish, start, paper) -> None:
    if not isinstance(paper, bool):
        raise ValueError(f"paper must be True or False, got {paper!r}")
    if polish is None:
        return
    if not isinstance(polish, str) or not polish:
        raise ValueError(f"polish must be a solver name, got {polish!r}")
    if start != "kbest" or paper:
        raise ValueError(
            f"polish improves kbest's answer: it needs start='kbest' (and not "
            f"paper), got start={start!r}"
        )


def _validate_gptq_options(method_options) -> None:
    act_order, damp = method_options.get("act_order"), method_options.get("damp")
    if act_order is not None and not isinstance(act_order, bool):
        raise ValueError(f"act_order must be True or False, got {act_order!r}")
    if damp is not None and (
        isinstance(damp, bool) or not isinstance(damp, numbers.Real) or not 0 <= damp < float("inf")
    ):
        raise ValueError(f"damp must be a finite number >= 0, got {damp!r}")


def _qubo_solver(options):
    """The :class:`~annealq.registry.SolverSpec` of the run's QUBO solver (by name), whose
    preferences (``whole_grid``, ``default_start``) fill what the run leaves unset; or
    ``None``."""
    name = options.get("solver", DEFAULT_SOLVER)
    if options.get("method", "qubo") != "qubo" or not isinstance(name, str):
        return None
    try:
        return solver_spec(name)
    except ValueError:  # an unknown name is reported where the solver is built
        return None
