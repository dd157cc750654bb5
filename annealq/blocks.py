"""Where each layer's calibration inputs come from: the whole model, or block by block.

A layer is formulated on ``X̂``, what the already-quantized layers feed it, with the float
network's ``X`` as the target. For a plain network (an MLP, a CNN) each layer's ``X̂``
comes from one forward pass of the quantized copy (:class:`WholeModelInputs`, the
original scheme). A transformer is a stack of blocks (an ``nn.ModuleList`` whose blocks
run in order, each on the previous one's output): there, as GPTQ's drivers do, each
block's inputs are cached once for both networks and carried forward one block at a time
(:class:`BlockInputs`), so a layer costs part of one block's forward, not a forward from
the embedding, and the cost is linear in depth.

Inside a block, layers that receive the *same tensor* (q, k and v; gate and up) form one
group: their inputs are captured once and share one set of moments (one Gram matrix).
That is exact, since a tensor that exists before any of them runs cannot depend on them.
Calibration rows are tokens: an input ``(N, T, d)`` is the ``N·T`` rows of ``d`` values,
accumulated as moments (:class:`~annealq.statistics.InputStatistics`) a chunk at a time.

Example:
    >>> import numpy as np
    >>> from annealq.data.transformer import LMConfig, build_lm
    >>> model = build_lm(LMConfig(width=16, blocks=2, heads=2, context=8)).eval()
    >>> find_blocks(model, np.zeros((1, 8), dtype=np.int64))
    ['blocks.0', 'blocks.1']
"""

from __future__ import annotations

import torch
from torch import nn

from annealq.capture import forward, layer_input_tensors, layer_inputs
from annealq.conv import layer_rows, quantizable
from annealq.statistics import InputStatistics

MAX_ROWS = 8192  # rows per step of the moments' accumulation


class _Stop(Exception):
    """Raised by a hook once it has what it needs: the rest of the forward is skipped."""


def find_blocks(model, example) -> list[str] | None:
    """The names of the model's blocks, or ``None`` when it has none that run in a chain.

    Blocks are the children of the first ``nn.ModuleList`` of two or more modules that
    each hold an ``nn.Linear`` (and no convolution), checked on ``example``: called once
    each, in order, each one's first argument the previous one's output.
    """
    for name, container in model.named_modules():
        if (
            isinstance(container, nn.ModuleList)
            and len(container) >= 2
            and all(
                any(isinstance(m, nn.Linear) for m in child.modules())
                and not any(
                    quantizable(m) and not isinstance(m, nn.Linear) for m in child.modules()
                )
                for child in container
            )
        ):
            return _chained(model, name, container, example)
    return None


def input_source(model, float_layers, calibration):
    """:class:`BlockInputs` for a model with blocks, else :class:`WholeModelInputs`."""
    blocks = find_blocks(model, calibration[:1])
    if blocks is None:
        return WholeModelInputs(model, float_layers, calibration)
    return BlockInputs(model, float_layers, blocks, calibration)


class WholeModelInputs:
    """Every layer's float inputs from one forward pass; its quantized inputs from a forward
    pass of the quantized copy (rows held as arrays)."""

    def __init__(self, model, float_layers, calibration):
        self.calibration = calibration
        self.float_inputs = dict(
            zip(
                [name for name, _ in float_layers],
                layer_inputs(model, [layer for _, layer in float_layers], calibration),
            )
        )

    def inputs(self, quantized, name, float_layer):
        """``(X̂ as captured, X)`` of layer ``name`` of ``quantized``."""
        [raw] = layer_input_tensors(quantized, [quantized.get_submodule(name)], self.calibration)
        return raw, self.float_inputs.pop(name)

    def rows(self, float_layer, raw, X):
        """What the formulation takes: arrays, or a convolution's patch moments."""
        return layer_rows(float_layer, raw, X)


class BlockInputs:
    """Block-by-block inputs (see the module docstring); layers outside the blocks (before
    or after them) are captured by a forward pass that stops at the layer."""

    def __init__(self, model, float_layers, blocks, calibration):
        self.model, self.blocks, self.calibration = model, blocks, calibration
        self.block_of = {
            name: i
            for name, _ in float_layers
            for i, block in enumerate(blocks)
            if name.startswith(block + ".")
        }
        self.current = -1
        self.float_state = self.quantized_state = self.float_next = None
        self.float_inputs: dict = {}  # the current block's layers: float input rows
        self.group: dict = {}  # layer name -> the first layer fed the same tensor
        self.quantized_inputs: dict = {}
        self.moments: dict = {}

    def inputs(self, quantized, name, float_layer):
        module = quantized.get_submodule(name)
        block = self.block_of.get(name)
        if block is None:
            return (
                _capture(quantized, module, self.calibration),
                _capture(self.model, float_layer, self.calibration),
            )
        self._advance(quantized, block)
        key = self.group[name]
        if key not in self.quantized_inputs:
            args, kwargs = self.quantized_state
            self.quantized_inputs[key] = _capture(
                quantized.get_submodule(self.blocks[block]), module, args, kwargs
            )
        return self.quantized_inputs[key], self.float_inputs[name]

    def rows(self, float_layer, raw, X):
        """The moments of ``(X̂, X)``, computed once per pair of captured tensors."""
        key = (id(raw), id(X))
        if key not in self.moments:
            stats = InputStatistics.empty(raw.shape[1])
            for start in range(0, len(raw), MAX_ROWS):
                stats = stats.add(raw[start : start + MAX_ROWS], X[start : start + MAX_ROWS])
            self.moments = {key: (stats, raw, X)}  # the tensors keep their ids unique
        stats = self.moments[key][0]
        return stats.inputs, stats.float_inputs

    def _advance(self, quantized, block: int) -> None:
        """Carry both networks' block inputs forward to ``block``; capture its float inputs."""
        while self.current < block:
            if self.current < 0:
                self.float_state = _block_arguments(self.model, self.blocks[0], self.calibration)
                self.quantized_state = _block_arguments(quantized, self.blocks[0], self.calibration)
            else:
                args, kwargs = self.quantized_state
                out = _run(quantized.get_submodule(self.blocks[self.current]), args, kwargs)
                self.quantized_state = ((out, *args[1:]), kwargs)
                args, kwargs = self.float_state
                self.float_state = ((self.float_next, *args[1:]), kwargs)
            self.current += 1
            self._float_block(self.model.get_submodule(self.blocks[self.current]))
            self.quantized_inputs = {}

    def _float_block(self, block) -> None:
        """The float inputs of every layer of ``block`` (one forward) and its output."""
        names = {m: n for n, m in self.model.named_modules()}
        # id of an input tensor -> (first layer's name, its rows, the tensor: kept alive so
        # that no later tensor of this forward takes its id)
        seen: dict = {}
        self.float_inputs, self.group = {}, {}

        def hook(module, inputs, output):
            x = inputs[0]
            first, rows, _ = seen.setdefault(
                id(x), (names[module], x.detach().reshape(-1, x.shape[-1]), x)
            )
            self.float_inputs[names[module]], self.group[names[module]] = rows, first

        hooks = [m.register_forward_hook(hook) for m in block.modules() if isinstance(m, nn.Linear)]
        try:
            args, kwargs = self.float_state
            self.float_next = _run(block, args, kwargs)
        finally:
            for h in hooks:
                h.remove()


def _chained(model, name, container, example):
    calls = []
    hooks = [
        block.register_forward_hook(
            lambda m, args, out: calls.append((m, args[0] if args else None, out))
        )
        for block in container
    ]
    try:
        forward(model, example)
    finally:
        for hook in hooks:
            hook.remove()
    if [call[0] for call in calls] != list(container):
        return None
    if any(x is not _first(out) for (_, _, out), (_, x, _) in zip(calls, calls[1:])):
        return None
    return [f"{name}.{i}" if name else str(i) for i in range(len(container))]


def _block_arguments(model, block_name, calibration):
    """The positional and keyword arguments ``block_name`` is called with."""
    captured = []

    def hook(module, args, kwargs):
        captured.append((args, kwargs))
        raise _Stop

    handle = model.get_submodule(block_name).register_forward_pre_hook(hook, with_kwargs=True)
    try:
        forward(model, calibration)
    except _Stop:
        pass
    finally:
        handle.remove()
    return captured[0]


def _capture(root, module, *call):
    """What ``module`` receives (rows ``(k, in_features)``) when ``root`` runs: on
    ``call = (calibration,)`` for a whole model, ``(args, kwargs)`` for a block."""
    captured = []

    def hook(m, inputs, output):
        x = inputs[0].detach()
        captured.append(x.reshape(-1, x.shape[-1]))
        raise _Stop

    handle = module.register_forward_hook(hook)
    try:
        if len(call) == 1:
            forward(root, call[0])
        else:
            _run(root, *call)
    except _Stop:
        pass
    finally:
        handle.remove()
    return captured[0]


def _run(block, args, kwargs):
    with torch.no_grad():
        return _first(block(*args, **kwargs))


def _first(output):
    return output[0] if isinstance(output, (tuple, list)) else output
