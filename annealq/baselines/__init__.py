"""Classical baselines on the QUBO's own objective, the peers the QUBO must beat:
round-to-nearest lives in the formulation (``LayerQUBO.rtn_integers``); GPTQ
(:mod:`~annealq.baselines.gptq`, at a fixed setting or tuned per layer), greedy coordinate
descent from GPTQ (CDQuant, :mod:`~annealq.baselines.cd`) and AdaRound
(:mod:`~annealq.baselines.adaround`); :func:`layer_error` is the exact error they are
judged by (:mod:`~annealq.baselines.common`); :func:`baseline_round` runs them by name,
as the pipeline does (:mod:`~annealq.baselines.methods`)."""

from annealq.baselines.adaround import adaround_layer
from annealq.baselines.cd import cd_layer
from annealq.baselines.common import layer_error
from annealq.baselines.gptq import gptq_layer
from annealq.baselines.methods import (
    FIXED_GPTQ_SETTING,
    GPTQ_OPTIONS,
    baseline_rechoose,
    baseline_round,
    tuned_grid,
)
from annealq.baselines.tuned import GPTQ_GRID, tuned_gptq_layer

__all__ = [
    "FIXED_GPTQ_SETTING",
    "GPTQ_GRID",
    "GPTQ_OPTIONS",
    "adaround_layer",
    "baseline_rechoose",
    "baseline_round",
    "cd_layer",
    "gptq_layer",
    "layer_error",
    "tuned_gptq_layer",
    "tuned_grid",
]
