"""Executors: where a layer's problems are solved (see :mod:`annealq.executors.base`)."""

from annealq.executors.base import BQMWork, Executor, InlineExecutor, LayerWork

__all__ = ["BQMWork", "Executor", "InlineExecutor", "LayerWork"]
