"""A neuron's answer depends on the seed and the neuron, never on which other neurons share
the call: the property that lets a layer be split into chunks and solved anywhere (cache
misses only, other workers, other machines) with the whole layer's result."""

import numpy as np
import pytest

from annealq import formulate_layer, get_sampler
from annealq.protocol import LayerSampler


@pytest.fixture(scope="module")
def layer():
    rng = np.random.default_rng(3)
    W, b, X = rng.normal(size=(8, 20)), rng.normal(size=8), rng.normal(size=(120, 20))
    return {k: formulate_layer(W, b, X, bits=3, window_bits=k) for k in (1, 3)}


@pytest.mark.parametrize(
    "solver, params",
    [
        ("batch-sa", {"seed": 5}),
        ("lns", {"seed": 5}),
        ("lns", {"seed": 5, "search": "bits", "anneal": True}),
        ("neal", {"seed": 5, "num_reads": 4}),
        ("kbest", {"width": 16}),
    ],
)
@pytest.mark.parametrize("window_bits", [1, 3])
def test_chunks_give_the_whole_layers_answer(layer, solver, params, window_bits):
    lq = layer[window_bits]
    sampler = get_sampler(solver)
    if isinstance(sampler, LayerSampler):
        whole = sampler.sample_layer(lq, **params)
        parts = [
            r
            for chunk in ([5, 1], [0, 7, 2], [3], [6, 4])
            for r in sampler.sample_layer(lq, neurons=chunk, **params)
        ]
        order = [5, 1, 0, 7, 2, 3, 6, 4]
        assert [parts[order.index(i)].sample for i in range(8)] == [r.sample for r in whole]
    else:
        whole = [sampler.sample(lq.bqm(i), **params).first.sample for i in (4, 6)]
        again = [sampler.sample(lq.bqm(i), **params).first.sample for i in (6, 4)]
        assert whole == again[::-1]
