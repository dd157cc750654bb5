"""Post-training quantization of a torch network's ``nn.Linear`` layers, one layer at a time.

Stages (plain data between them): capture the layer's float and quantized inputs →
``formulate_layer`` → ``solve_bqms`` → decode integers → write the dequantized weights
into the quantized copy, which feeds the next layer (sequential calibration, DESIGN.md §1).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np

from annealq.cache import open_cache
from annealq.dispatch import solve_layer
from annealq.formulation import LayerQUBO, formulate_layer
from annealq.grid import validate_bits
from annealq.registry import resolve_sampler


@dataclass
class LayerResult:
    """One quantized layer: integers, steps and errors (squared output error on calibration)."""

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

    def report(self) -> dict:
        return {"name": self.name, "in_features": self.in_features,
                "out_features": self.out_features, "energy": self.energy,
                "rtn_energy": self.rtn_energy, "solve_seconds": self.solve_seconds,
                "cache": {"hits": self.cache_hits, "misses": self.cache_misses}}


@dataclass
class QuantizationResult:
    """What :func:`quantize` returns: the quantized model and per-layer results."""

    model: object
    solver: str
    layers: list[LayerResult] = field(default_factory=list)

    @property
    def cache_hits(self) -> int:
        return sum(layer.cache_hits for layer in self.layers)

    @property
    def cache_misses(self) -> int:
        return sum(layer.cache_misses for layer in self.layers)


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


def quantize(model, calibration, *, bits: int, solver="auto", solver_params=None,
             fallback: str | None = None, seed: int | None = None, cache=None,
             solver_name: str | None = None, **scheme_options) -> QuantizationResult:
    """Quantize every ``nn.Linear`` of ``model`` with the exact rounding QUBO.

    Args:
        model: a ``torch.nn.Module``; it is not modified.
        calibration: inputs ``(m, …)`` as a numpy array or tensor.
        bits: weight bit width, 1..8.
        solver: a registered solver name (``"auto"``, ``"neal"``, ``"qpu"``, …) or any
            ``dimod.Sampler``.
        solver_params: the solver's parameters (``num_reads``, ``time_limit``, …).
        fallback: a solver to use instead when ``solver`` cannot run here.
        seed: passed to every ``sample`` call of solvers that take one.
        solver_name: names a sampler object in reports and cache keys (a solver given
            by name is named by it).
        cache: ``None`` for the default cache, ``False`` for none, a path or a
            ``CacheStore``; solved neurons are skipped on later runs.
        **scheme_options: passed to :func:`formulate_layer` (``scheme``, ``per_channel``, …).
    """
    validate_bits(bits)
    solver_name, sampler = _sampler(solver, solver_params, fallback, solver_name)
    sample_parameters = {"seed": seed} if seed is not None and "seed" in sampler.parameters else {}
    model = model.eval()
    quantized = copy.deepcopy(model)
    float_layers = linear_layers(model, calibration)
    quant_modules = dict(quantized.named_modules())
    result = QuantizationResult(quantized, solver_name)
    store = open_cache(cache)
    for name, float_layer in float_layers:
        quant_layer = quant_modules[name]
        X = _layer_inputs(model, float_layer, calibration)
        X_hat = _layer_inputs(quantized, quant_layer, calibration)
        bias = None if float_layer.bias is None else float_layer.bias
        lq = formulate_layer(float_layer.weight, bias, X_hat, bits=bits, float_inputs=X,
                             **scheme_options)
        layer = _solve_layer(name, lq, sampler, store, solver_name, sample_parameters)
        _write_weights(quant_layer, layer)
        result.layers.append(layer)
    if store is not None:
        store.record_run(result.cache_hits, result.cache_misses)
    return result


def rtn_model(model, calibration, *, bits: int, **scheme_options):
    """A copy of ``model`` with every ``nn.Linear`` rounded to nearest on the same grids."""
    import torch

    rounded = copy.deepcopy(model.eval())
    modules = dict(rounded.named_modules())
    for name, layer in linear_layers(model, calibration):
        lq = formulate_layer(layer.weight, layer.bias, np.zeros((1, layer.in_features)),
                             bits=bits, **scheme_options)
        q = lq.rtn_integers() * lq.scales
        with torch.no_grad():
            modules[name].weight.copy_(torch.as_tensor(q[:, :-1]))
            if modules[name].bias is not None:
                modules[name].bias.copy_(torch.as_tensor(q[:, -1]))
    return rounded


def _sampler(solver, params, fallback, solver_name):
    if isinstance(solver, str):
        return resolve_sampler(solver, fallback=fallback, **(params or {}))
    if params:
        raise ValueError("solver_params apply to a solver given by name; configure a "
                         "sampler object yourself")
    return solver_name or f"{type(solver).__module__}.{type(solver).__qualname__}", solver


def _solve_layer(name: str, lq: LayerQUBO, sampler, store, solver_name,
                 parameters) -> LayerResult:
    start = time.perf_counter()
    solved = solve_layer(lq, sampler, cache=store, solver_name=solver_name, **parameters)
    seconds = time.perf_counter() - start
    hits = sum(bool(r.info.get("cached")) for r in solved)
    q, qb = lq.decode([r.sample for r in solved])
    rtn_energy = sum(lq.energy(i, lq.rtn_sample(i)) for i in range(lq.n_neurons))
    return LayerResult(name, lq.n_inputs, lq.n_neurons, q, qb, lq.weight_grid.step,
                       lq.bias_grid.step, float(sum(r.energy for r in solved)),
                       float(rtn_energy), seconds, hits, len(solved) - hits)


def _write_weights(module, layer: LayerResult) -> None:
    import torch

    with torch.no_grad():
        module.weight.copy_(torch.as_tensor(layer.int_weight * layer.weight_step[:, None]))
        if module.bias is not None:
            module.bias.copy_(torch.as_tensor(layer.int_bias * layer.bias_step))


def _layer_inputs(model, module, calibration) -> np.ndarray:
    """What ``module`` receives when ``model`` runs on ``calibration``, as ``(m, f)`` float64."""
    captured = []
    hook = module.register_forward_hook(lambda m, i, o: captured.append(i[0].detach()))
    try:
        _forward(model, calibration)
    finally:
        hook.remove()
    return captured[0].reshape(-1, module.in_features).double().numpy()


def _forward(model, x):
    import torch

    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    with torch.no_grad():
        return model(torch.as_tensor(np.asarray(x), dtype=dtype))
