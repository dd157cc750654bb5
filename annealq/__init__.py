"""annealq: post-training quantization of dense layers as exact QUBOs.

The public names are loaded on first use, so ``import annealq`` stays light: it pulls in
neither torch nor the D-Wave cloud client until something needs them.

Example:
    >>> import numpy as np, annealq
    >>> lq = annealq.formulate_layer(np.eye(2), np.zeros(2), np.ones((4, 2)), bits=2)
    >>> lq.n_neurons
    2
"""

from importlib import import_module

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "formulate_layer": "annealq.formulation",
    "LayerQUBO": "annealq.layer",
    "Grid": "annealq.grid",
    "weight_grid": "annealq.grid",
    "bias_grid": "annealq.grid",
    "AnnealqError": "annealq.errors",
    "SolverUnavailableError": "annealq.errors",
    "ProblemTooLargeError": "annealq.errors",
    "get_sampler": "annealq.registry",
    "register_sampler": "annealq.registry",
    "available_samplers": "annealq.registry",
    "resolve_sampler": "annealq.registry",
    "SolverSpec": "annealq.registry",
    "LayerSampler": "annealq.protocol",
    "solve_bqms": "annealq.dispatch",
    "solve_layer": "annealq.dispatch",
    "SolveResult": "annealq.results",
    "QuantizeConfig": "annealq.config",
    "quantize": "annealq.pipeline",
    "LayerProblem": "annealq.problems",
    "LayerProblems": "annealq.problems",
    "layer_problem": "annealq.problems",
    "load": "annealq.quantized",
    "export_onnx": "annealq.onnx_export",
    "ExportError": "annealq.errors",
    "QuantizationResult": "annealq.quantized",
    "LayerResult": "annealq.quantized",
    "DatasetNotFoundError": "annealq.errors",
    "Dataset": "annealq.data.datasets",
    "load_dataset": "annealq.data.datasets",
    "load_model": "annealq.data.models",
    "save_model": "annealq.data.model_file",
    "reference_model": "annealq.data.models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'annealq' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
