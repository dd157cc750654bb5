"""The upload sizes of MNIST's first layer (784-128, int4) as the hybrid solver's BQMs and as
hybrid-nl's one integer model, from the files the client would send.

    ANNEALQ_DATA=../shared/data python -m benchmarks.nl_bytes
"""

import numpy as np

import annealq
from annealq.integer_model import IntegerForm, LayerModel
from solvers.cloud import file_size

data = annealq.load_dataset("mnist")
model, _ = annealq.reference_model(data)
X = data.calibration(1000, seed=0)
problem = annealq.layer_problem(model.eval(), X, annealq.QuantizeConfig(bits=4), 0)
lq = problem.qubo
sizes = [file_size(lq.bqm(i)) for i in range(lq.n_neurons)]
print("down/up BQMs, one file per neuron:", sum(sizes), "mean", np.mean(sizes))
lq4 = problem.formulate(window_bits=4)
one = file_size(lq4.bqm(0))
print(
    "whole-grid BQM of neuron 0:",
    one,
    "x128 =",
    one * 128,
    "biases",
    lq4.bqm(0).num_interactions + lq4.bqm(0).num_variables,
)
form = IntegerForm.of_layer(lq4, range(128))
print("integer model:", len(LayerModel.build(form, form.span // 2).to_bytes()))
