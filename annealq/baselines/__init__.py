"""Classical baselines on the QUBO's own objective, the peers the QUBO must beat:
round-to-nearest lives in the formulation (``LayerQUBO.rtn_integers``); GPTQ
(:mod:`~annealq.baselines.gptq`, at a fixed setting or tuned per layer), greedy coordinate
descent from GPTQ (CDQuant, :mod:`~annealq.baselines.cd`) and AdaRound
(:mod:`~annealq.baselines.adaround`); :func:`layer_error` is the exact error they are
judged by (:mod:`~annealq.baselines.common`)."""

from annealq.baselines.adaround import adaround_layer
from annealq.baselines.cd import GPTQ_GRID, cd_layer, tuned_gptq_layer
from annealq.baselines.common import layer_error
from annealq.baselines.gptq import gptq_layer

__all__ = ["GPTQ_GRID", "adaround_layer", "cd_layer", "gptq_layer", "layer_error",
           "tuned_gptq_layer"]
