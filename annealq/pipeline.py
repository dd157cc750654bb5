"""Post-training quantization of a torch network's ``nn.Linear`` layers, one layer at a time.

Stages (plain data between them): capture the layer's float and quantized inputs →
(optionally) round the quantized inputs to integer activations → ``formulate_layer`` →
round the weights (``solve_layer`` for the QUBO, or a baseline) → decode integers → write
the dequantized weights into the quantized copy, which feeds the next layer (sequential
calibration, DESIGN.md §1).

Example:
    >>> import numpy as np, torch
    >>> torch.manual_seed(0) and None
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    >>> x = np.random.default_rng(0).normal(size=(20, 4))
    >>> result = quantize(model, x, bits=2, solver="exact", cache=False, quiet=True)
    >>> [layer.name for layer in result.layers], result.report["method"]
    (['0', '2'], 'qubo')
    >>> all(layer.energy <= layer.rtn_energy for layer in result.layers)
    True
"""

from __future__ import annotations

import copy
import inspect
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from annealq.activations import ActivationGrid, QuantizedInputLinear, validate_activation_bits
from annealq.cache import open_cache
from annealq.datasets import Dataset
from annealq.dispatch import solve_layer
from annealq.export import as_array
from annealq.formulation import LayerQUBO, formulate_layer
from annealq.grid import validate_bits
from annealq.registry import emulation_note, resolve_sampler

log = logging.getLogger(__name__)

METHODS = ("rtn", "qubo", "gptq", "adaround")
DEFAULT_CALIBRATION_SIZE = 1000
# formulate_layer's keyword options (scheme, per_channel, bias_step, ...): every method
# quantizes on the grids they define; the other options belong to the method.
_FORMULATION_OPTIONS = frozenset(
    name for name, p in inspect.signature(formulate_layer).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY) - {"bits", "float_inputs", "center"}
_WINDOW_OPTIONS = frozenset({"window_bits", "bias_window_bits"})
STARTS = ("rtn", "gptq")


@dataclass
class LayerResult:
    """One quantized layer: integers, steps and errors (squared output error on calibration).

    Attributes:
        int_weight: int64 ``(out_features, in_features)``; the layer computes with
            ``int_weight * weight_step[:, None]``.
        int_bias: int64 ``(out_features,)`` (zeros for a layer without bias), times
            ``bias_step``.
        energy: the layer's squared output error on the calibration set with this rounding.
        rtn_energy: the same with round-to-nearest on the same grids and inputs.
        input_grid: the grid its inputs are rounded to (``activation_bits``), or ``None``.
    """

    name: str
    in_features: int
    out_features: int
    int_weight: np.ndarray
    int_bias: np.ndarray
    weight_step: np.ndarray
    bias_step: np.ndarray
    energy: float
    rtn_energy: float
    solve_seconds: float
    cache_hits: int = 0
    cache_misses: int = 0
    has_bias: bool = True
    input_grid: ActivationGrid | None = None
    weight_offset: np.ndarray | None = None
    proven_optimal: int | None = None  # neurons whose solver proved their optimum

    @property
    def weight(self) -> np.ndarray:
        """The dequantized weights ``offset + int_weight * weight_step`` (offset: affine
        grids only)."""
        values = self.int_weight * self.weight_step[:, None]
        return values if self.weight_offset is None else values + self.weight_offset[:, None]

    def report(self) -> dict:
        entry = {"name": self.name, "in_features": self.in_features,
                 "out_features": self.out_features, "energy": self.energy,
                 "rtn_energy": self.rtn_energy, "solve_seconds": self.solve_seconds,
                 "cache": {"hits": self.cache_hits, "misses": self.cache_misses}}
        if self.input_grid is not None:
            entry["input_grid"] = self.input_grid.to_dict()
        if self.proven_optimal is not None:
            entry["proven_optimal"] = self.proven_optimal
        return entry

    def to_dict(self) -> dict:
        """Plain data (numpy arrays, numbers, strings) for :func:`annealq.export.save`."""
        entry = {name: getattr(self, name) for name in self.__dataclass_fields__}
        entry["input_grid"] = None if self.input_grid is None else self.input_grid.to_dict()
        return entry

    @classmethod
    def from_dict(cls, entry: dict) -> LayerResult:
        entry = dict(entry)
        grid = entry.pop("input_grid", None)
        for name, dtype in (("int_weight", np.int64), ("int_bias", np.int64),
                            ("weight_step", np.float64), ("bias_step", np.float64)):
            entry[name] = as_array(entry[name], dtype)
        if entry.get("weight_offset") is not None:
            entry["weight_offset"] = as_array(entry["weight_offset"], np.float64)
        return cls(**entry, input_grid=None if grid is None else ActivationGrid(**grid))


@dataclass
class QuantizationResult:
    """What :func:`quantize` returns.

    Attributes:
        model: the quantized copy of the model, computing with the dequantized weights
            (and rounded inputs with ``activation_bits``).
        solver: the solver used (``None`` for methods that use none).
        layers: one :class:`LayerResult` per quantized layer, in execution order.
        method: ``"qubo"``, ``"rtn"``, ``"gptq"`` or ``"adaround"``.
        report: the run's report (the CLI's JSON schema; see the README).
    """

    model: object
    solver: str | None
    layers: list[LayerResult] = field(default_factory=list)
    method: str = "qubo"
    report: dict = field(default_factory=dict)

    @property
    def cache_hits(self) -> int:
        return sum(layer.cache_hits for layer in self.layers)

    @property
    def cache_misses(self) -> int:
        return sum(layer.cache_misses for layer in self.layers)

    def save(self, path) -> None:
        """Write integers, steps, report and model structure to ``path`` (atomically).

        :func:`annealq.load` reads it back. The file unpickles on load: share it only
        with people who trust you.
        """
        from annealq.export import save

        save(self, path)


def quantize(model, calibration, *, bits: int, solver="auto", cache=None,
             method: str = "qubo", activation_bits: int | None = None,
             calibration_size: int | None = None, evaluation=None, quiet: bool = False,
             solver_params=None, fallback: str | None = None, seed: int | None = None,
             solver_name: str | None = None, start: str | None = None,
             **options) -> QuantizationResult:
    """Quantize every ``nn.Linear`` of ``model``, each layer on what the quantized ones feed it.

    Args:
        model: a ``torch.nn.Module``; it is not modified (it is put in eval mode).
        calibration: inputs ``(m, …)`` (numpy array or tensor), or a
            :class:`~annealq.datasets.Dataset`: then ``calibration_size`` inputs are drawn
            from its training split and accuracy is measured on its test split.
        bits: weight bit width, 1..8.
        solver: a registered solver name (``"auto"``, ``"neal"``, ``"qpu"``, …) or any
            ``dimod.Sampler``; used by ``method="qubo"`` only.
        cache: ``None`` for the default cache, ``False`` for none, a path or a
            ``CacheStore``; solved neurons are skipped on later runs.
        method: ``"qubo"`` (the exact rounding QUBO), ``"rtn"`` (round to nearest), or the
            baselines ``"gptq"`` and ``"adaround"`` from :mod:`annealq.baselines`; all on the
            same grids, calibration set and sequential scheme.
        activation_bits: round every quantized layer's input to this many bits (asymmetric
            min/max per tensor from the calibration set, :mod:`annealq.activations`); the
            bias step is then ``s_x · s``. ``None`` keeps float inputs.
        calibration_size: the number of calibration inputs drawn from a ``Dataset``
            (default 1,000).
        evaluation: ``(x, y)`` to measure accuracy on (float, RTN and quantized models).
        quiet: no progress bar (it is shown on a terminal only anyway).
        solver_params: the solver's parameters (``num_reads``, ``time_limit``, …).
        fallback: a solver to use instead when ``solver`` cannot run here.
        seed: passed to every ``sample`` call of solvers that take one (and to the
            calibration draw from a ``Dataset``).
        solver_name: names a sampler object in reports and cache keys.
        start: the QUBO solvers' warm start, ``"rtn"`` or ``"gptq"`` (``None``: each
            solver's own). With ``"gptq"`` every window is centred on GPTQ's integers
            (``window_bits``), and a neuron's result is never worse than the start's.
        **options: :func:`~annealq.formulation.formulate_layer` options (``scheme``,
            ``per_channel``, …); with ``gptq``/``adaround`` also that method's own options.

    Returns:
        A :class:`QuantizationResult`.

    Raises:
        ValueError: bad bits, method, options, model or calibration data (named).
    """
    began = time.perf_counter()
    bits = validate_bits(bits)
    activation_bits = validate_activation_bits(activation_bits)
    method = _validate_method(method)
    if options.get("scheme") == "affine" and (method in ("gptq", "adaround") or start == "gptq"):
        raise ValueError("the affine scheme is for the qubo and rtn methods; gptq and "
                         "adaround use the reference or symmetric grids")
    if start is not None and (start not in STARTS or method != "qubo"):
        raise ValueError(f"start must be one of {', '.join(STARTS)} with method 'qubo', "
                         f"got start={start!r}, method={method!r}")
    scheme_options, method_options = _split_options(method, options, activation_bits)
    dataset, calibration, evaluation = _calibration_data(calibration, calibration_size,
                                                         evaluation, seed)
    model = _validate_model(model).eval()
    float_layers = linear_layers(model, calibration)

    sampler = None
    if method == "qubo":
        solver_name, sampler = _sampler(solver, solver_params, fallback, solver_name)
    else:
        solver_name = None
    store = open_cache(cache) if method == "qubo" else None
    try:
        run = _Run(bits, method, activation_bits, scheme_options, method_options, sampler,
                   solver_name, store, seed, start)
        result = run.quantize(model, float_layers, calibration, quiet=quiet)
        if store is not None:
            store.record_run(result.cache_hits, result.cache_misses)
    finally:
        if store is not None and store is not cache:
            store.close()

    evaluate_start = time.perf_counter()
    accuracy = None
    if evaluation is not None:
        accuracy = _accuracies(model, result.model, calibration, evaluation, bits, method,
                               activation_bits, scheme_options)
    timing = {"total_seconds": time.perf_counter() - began,
              "solve_seconds": sum(layer.solve_seconds for layer in result.layers),
              "evaluate_seconds": time.perf_counter() - evaluate_start}
    result.report = _report(result, model, float_layers, dataset, bits, activation_bits,
                            len(calibration), scheme_options, method_options, seed, accuracy,
                            timing)
    result.report["start"] = start
    return result


def load(path) -> QuantizationResult:
    """Read a result saved by :meth:`QuantizationResult.save` (only from trusted files)."""
    from annealq.export import load as load_file

    return load_file(path)


def rtn_model(model, calibration, *, bits: int, activation_bits: int | None = None,
              **scheme_options):
    """A copy of ``model`` with every ``nn.Linear`` rounded to nearest on the same grids."""
    return quantize(model, calibration, bits=bits, method="rtn", cache=False, quiet=True,
                    activation_bits=activation_bits, **scheme_options).model


def linear_layers(model, example) -> list[tuple[str, object]]:
    """The model's ``nn.Linear`` modules as ``(name, module)`` in execution order."""
    from torch import nn

    names = {module: name for name, module in model.named_modules()}
    order: list = []
    hooks = [module.register_forward_hook(lambda m, i, o: order.append(m) if m not in order else None)
             for module in model.modules() if isinstance(module, nn.Linear)]
    try:
        _forward(model, example)
    finally:
        for hook in hooks:
            hook.remove()
    if not order:
        raise ValueError("the model has no nn.Linear layer to quantize")
    return [(names[module], module) for module in order]


def write_layer(module, layer: LayerResult) -> None:
    """Set ``module``'s weight and bias to ``layer``'s integers times their steps."""
    import torch

    with torch.no_grad():
        module.weight.copy_(torch.as_tensor(layer.weight))
        if module.bias is not None:
            module.bias.copy_(torch.as_tensor(layer.int_bias * layer.bias_step))


@dataclass
class _Run:
    """One quantization pass: the settings shared by every layer."""

    bits: int
    method: str
    activation_bits: int | None
    scheme_options: dict
    method_options: dict
    sampler: object
    solver_name: str | None
    store: object
    seed: int | None
    start: str | None = None

    def quantize(self, model, float_layers, calibration, *, quiet: bool) -> QuantizationResult:
        from tqdm.auto import tqdm

        quantized = copy.deepcopy(model)
        result = QuantizationResult(quantized, self.solver_name, method=self.method)
        float_inputs = layer_inputs(model, [layer for _, layer in float_layers],
                                         calibration)
        total = sum(layer.out_features for _, layer in float_layers)
        # disable=None: a bar on a terminal only, so logs and pipes stay clean
        with tqdm(total=total, unit="neuron", desc=f"{self.method} int{self.bits}",
                  disable=True if quiet else None) as bar:
            for (name, float_layer), X in zip(float_layers, float_inputs):
                bar.set_postfix_str(f"layer {name} ({float_layer.out_features} neurons)")
                layer = self._layer(result, name, float_layer, X, calibration)
                result.layers.append(layer)
                bar.update(layer.out_features)
                log.info("layer %s (%dx%d): error %.6g, RTN %.6g, %.2f s", name,
                         layer.in_features, layer.out_features, layer.energy,
                         layer.rtn_energy, layer.solve_seconds)
        return result

    def _layer(self, result, name, float_layer, X, calibration) -> LayerResult:
        quantized = result.model
        module = quantized.get_submodule(name)
        [raw] = _layer_input_tensors(quantized, [module], calibration)
        input_grid = None
        options = dict(self.scheme_options)
        if self.activation_bits is not None:
            input_grid = ActivationGrid.calibrate(raw, bits=self.activation_bits)
            raw = input_grid.fake_quantize(raw)
            module = QuantizedInputLinear.from_linear(module, input_grid)
            if name:
                _replace_module(quantized, name, module)
            else:  # the model is this one nn.Linear
                result.model = module
            options["input_step"] = input_grid.step
        X_hat = raw.double().cpu().numpy()
        weight, bias = float_layer.weight, float_layer.bias
        lq = formulate_layer(weight, bias, X_hat, bits=self.bits, float_inputs=X, **options)
        start = time.perf_counter()
        start_integers = lq.rtn_integers() if self.start == "rtn" else None
        if self.method == "qubo" and self.start == "gptq":
            # the windows are centred on GPTQ's integers, so GPTQ's solution is a state
            q_g, q_b_g, _ = self._baseline_round("gptq", weight, bias, X, X_hat, options)
            start_integers = np.column_stack([q_g, q_b_g])
            lq = formulate_layer(weight, bias, X_hat, bits=self.bits, float_inputs=X,
                                 center=start_integers, **options)
        q, q_b, hits, proven = self._round(lq, weight, bias, X, X_hat, options,
                                           start_integers)
        seconds = time.perf_counter() - start
        rtn = lq.rtn_integers()
        layer = LayerResult(name, lq.n_inputs, lq.n_neurons, q, q_b, lq.weight_grid.step,
                            lq.bias_grid.step, _output_error(lq, X, X_hat, q, q_b),
                            _output_error(lq, X, X_hat, rtn[:, :-1], rtn[:, -1]), seconds,
                            hits, (lq.n_neurons - hits) if self.method == "qubo" else 0,
                            has_bias=lq.has_bias, input_grid=input_grid,
                            weight_offset=lq.weight_grid.offset, proven_optimal=proven)
        write_layer(module, layer)
        return layer

    def _round(self, lq: LayerQUBO, weight, bias, X, X_hat, options, start_integers=None):
        """Integer weights and bias of the layer by this run's method, cache hits, and how
        many neurons the solver proved optimal (``None`` for solvers that prove nothing)."""
        if self.method == "qubo":
            parameters = ({"seed": self.seed}
                          if self.seed is not None and "seed" in self.sampler.parameters else {})
            starts = None if start_integers is None else _samples(lq, start_integers)
            solved = solve_layer(lq, self.sampler, cache=self.store, initial_states=starts,
                                 solver_name=self.solver_name, **parameters)
            samples = [r.sample for r in solved]
            if starts is not None:
                # never worse than the warm start, whatever the solver does with it
                samples = [start if lq.energy(i, start) < lq.energy(i, sample) else sample
                           for i, (sample, start) in enumerate(zip(samples, starts))]
            q, q_b = lq.decode(samples)
            proofs = [r.info["proven_optimal"] for r in solved if "proven_optimal" in r.info]
            return (q, q_b, sum(bool(r.info.get("cached")) for r in solved),
                    sum(map(bool, proofs)) if proofs else None)
        if self.method == "rtn":
            rtn = lq.rtn_integers()
            return rtn[:, :-1], rtn[:, -1], 0, None
        return (*self._baseline_round(self.method, weight, bias, X, X_hat, options), None)

    def _baseline_round(self, method, weight, bias, X, X_hat, options):
        function = _baseline(method)
        extra = dict(self.method_options) if method == self.method else {}
        if self.seed is not None and "seed" in inspect.signature(function).parameters:
            extra.setdefault("seed", self.seed)
        grid_options = {k: v for k, v in options.items() if k not in _WINDOW_OPTIONS}
        q, q_b = function(weight, bias, X_hat, bits=self.bits, float_inputs=X, **grid_options,
                          **extra)
        return np.asarray(q, dtype=np.int64), np.asarray(q_b, dtype=np.int64), 0


def _samples(lq: LayerQUBO, integers: np.ndarray) -> list[dict]:
    """One sample per neuron (by label) that encodes ``integers`` ``(n, f+1)``."""
    labels = lq.labels()
    return [{labels[k]: int(state[k]) for k in np.flatnonzero(lq.free[i])}
            for i, state in enumerate(lq.states(integers))]


def _baseline(method: str):
    """``annealq.baselines.<method>_layer``, imported only when asked for."""
    try:
        from annealq import baselines
    except ImportError as exc:
        raise ValueError(f"method {method!r} needs annealq.baselines, which cannot be "
                         f"imported: {exc}") from None
    return getattr(baselines, f"{method}_layer")


def _output_error(lq: LayerQUBO, X, X_hat, q, q_b) -> float:
    """``‖X Wᵀ + b − X̂ (s q)ᵀ − s_b q_b‖²``: the layer's squared output error, directly."""
    f = lq.n_inputs
    target = X @ lq.values[:, :f].T + lq.values[:, f]
    output = X_hat @ lq.weight_grid.dequantize(q).T + lq.bias_grid.dequantize(q_b)
    return float(np.sum((target - output) ** 2))


def _validate_method(method) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def _split_options(method: str, options: dict, activation_bits) -> tuple[dict, dict]:
    scheme = {k: v for k, v in options.items() if k in _FORMULATION_OPTIONS}
    rest = {k: v for k, v in options.items() if k not in _FORMULATION_OPTIONS}
    if activation_bits is not None and "input_step" in scheme:
        raise ValueError("input_step is set by activation_bits; give one or the other")
    if rest and method in ("qubo", "rtn"):
        raise ValueError(f"unknown option(s) {', '.join(sorted(rest))} for method {method!r}; "
                         f"formulation options are {', '.join(sorted(_FORMULATION_OPTIONS))}")
    return scheme, rest


def _calibration_data(calibration, size, evaluation, seed):
    """``(dataset name or None, calibration array, evaluation pair or None)``."""
    dataset = None
    if isinstance(calibration, Dataset):
        dataset = calibration.name
        if evaluation is None:
            evaluation = (calibration.x_test, calibration.y_test)
        calibration = calibration.calibration(
            DEFAULT_CALIBRATION_SIZE if size is None else size, seed=seed or 0)
    elif size is not None:
        raise ValueError("calibration_size applies to a Dataset; with an array of inputs, "
                         "pass the inputs you want to calibrate on")
    if hasattr(calibration, "detach"):
        calibration = calibration.detach().cpu().numpy()
    try:
        calibration = np.asarray(calibration, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"calibration must be a numeric array: {exc}") from None
    if calibration.ndim < 2 or len(calibration) == 0:
        raise ValueError(f"calibration must be a non-empty batch (m, …) of inputs, got shape "
                         f"{calibration.shape}")
    if not np.all(np.isfinite(calibration)):
        raise ValueError("calibration contains NaN or Inf values")
    return dataset, calibration, evaluation


def _validate_model(model):
    from torch import nn

    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise ValueError(f"the model's {name} contains NaN or Inf values")
    return model


def _sampler(solver, params, fallback, solver_name):
    if isinstance(solver, str):
        return resolve_sampler(solver, fallback=fallback, **(params or {}))
    if params:
        raise ValueError("solver_params apply to a solver given by name; configure a "
                         "sampler object yourself")
    return solver_name or f"{type(solver).__module__}.{type(solver).__qualname__}", solver


def _replace_module(root, name: str, module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def layer_inputs(model, modules, calibration) -> list[np.ndarray]:
    """What each of ``modules`` receives in one forward pass, as ``(m, f)`` float64."""
    return [x.double().cpu().numpy() for x in _layer_input_tensors(model, modules, calibration)]


def _layer_input_tensors(model, modules, calibration) -> list:
    captured: dict = {}

    def capture(module, inputs, output):
        captured.setdefault(module, inputs[0].detach().reshape(-1, module.in_features))

    hooks = [module.register_forward_hook(capture) for module in modules]
    try:
        _forward(model, calibration)
    finally:
        for hook in hooks:
            hook.remove()
    return [captured[module] for module in modules]


def _forward(model, x):
    import torch

    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    device = parameter.device if parameter is not None else None
    with torch.no_grad():
        inputs = torch.as_tensor(np.asarray(x), dtype=dtype, device=device)
        try:
            return model(inputs)
        except RuntimeError as exc:  # shape mismatches and the like: a user error here
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else "failed"
            raise ValueError(f"the model cannot run on inputs of shape "
                             f"{tuple(inputs.shape)}: {message}") from None


def _accuracies(model, quantized, calibration, evaluation, bits, method, activation_bits,
                scheme_options) -> dict:
    from annealq.models import accuracy

    x, y = evaluation
    rounded = quantized if method == "rtn" else rtn_model(
        model, calibration, bits=bits, activation_bits=activation_bits, **scheme_options)
    return {"float": accuracy(model, x, y), "rtn": accuracy(rounded, x, y),
            "quantized": accuracy(quantized, x, y)}


def _not_quantized(model, float_layers) -> list[dict]:
    """Modules with parameters of their own that were left in float."""
    from torch import nn

    done = {name for name, _ in float_layers}
    entries = []
    for name, module in model.named_modules():
        count = sum(p.numel() for p in module.parameters(recurse=False))
        if count == 0 or name in done:
            continue
        reason = ("not run on the calibration inputs" if isinstance(module, nn.Linear)
                  else "not an nn.Linear: kept in float")
        entries.append({"name": name, "type": type(module).__name__, "parameters": count,
                        "reason": reason})
    return entries


def _report(result, model, float_layers, dataset, bits, activation_bits, calibration_size,
            scheme_options, method_options, seed, accuracy, timing) -> dict:
    from annealq import __version__

    report = {"dataset": dataset, "bits": bits, "solver": result.solver,
              "method": result.method, "activation_bits": activation_bits,
              "calibration_size": calibration_size,
              "options": {k: _plain(v) for k, v in {**scheme_options, **method_options}.items()},
              "seed": seed}
    note = emulation_note(result.solver)
    if note:
        report.update({"emulation": True, "emulation_note": note})
    if accuracy is not None:
        report["accuracy"] = accuracy
    report.update({
        "layers": [layer.report() for layer in result.layers],
        "not_quantized": _not_quantized(model, float_layers),
        "cache": {"hits": result.cache_hits, "misses": result.cache_misses},
        "timing": timing, "annealq_version": __version__})
    return report


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value
