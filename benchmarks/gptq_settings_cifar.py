"""GPTQ's first-layer error on CIFAR-10 at int2 under its act-order and damping settings.

The paper table (RESULTS.md) runs GPTQ with act-order and 1 % damping, the reference
code's defaults; on CIFAR-10's first layer (3,072 strongly correlated pixel inputs) that
setting is far from GPTQ's best, which this script shows. Run from the repository root:

    ANNEALQ_DATA=../shared/data .venv/bin/python benchmarks/gptq_settings_cifar.py
"""

from annealq.baselines import gptq_layer, layer_error
from annealq.config import QuantizeConfig
from annealq.data.datasets import load_dataset
from annealq.data.models import reference_model
from annealq.problems import layer_problem

data = load_dataset("cifar10")
model, _ = reference_model(data)
x = data.calibration(1000, seed=0)
problem = layer_problem(model, x, QuantizeConfig(bits=2), 0)
(W, b), X, lq = problem.numpy_parameters(), problem.inputs, problem.qubo
for act_order in (True, False):
    for damp in (0.01, 0.001, 0.1):
        q, q_b = gptq_layer(W, b, X, bits=2, act_order=act_order, damp=damp)
        print(
            f"act_order={act_order!s:<5} damp={damp:<5} first-layer error "
            f"{layer_error(lq, q, q_b, inputs=X).sum():,.1f}"
        )
