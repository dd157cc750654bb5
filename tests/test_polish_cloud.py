"""The default run with a token: hybrid-nl from kbest's answer, through the real Ocean
client against the project's Leap emulator; never worse than kbest, neuron by neuron, and
the report shows the billed seconds."""

import numpy as np
import torch

import annealq
from annealq import formulate_layer


def test_the_default_run_with_a_token_is_hybrid_nl_from_kbest_and_never_worse(leap_emulator):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 10), torch.nn.Tanh(), torch.nn.Linear(10, 3))
    x = np.random.default_rng(0).normal(size=(150, 12))
    default = annealq.quantize(model, x, bits=2, cache=False, quiet=True, seed=0)
    kbest = annealq.quantize(model, x, bits=2, solver="kbest", cache=False, quiet=True)
    report = default.report
    assert report["solver"] == "hybrid-nl" and report["config"]["start"] == "kbest"
    assert report["cloud"]["billed_seconds"] > 0
    assert report["emulation"] and "emulation" in report["emulation_note"]
    first = model[0]
    lq = formulate_layer(first.weight, first.bias, x, bits=2, window_bits=2)

    def neuron_errors(layer):
        return lq.energies(lq.states(np.column_stack([layer.int_weight, layer.int_bias])))

    assert np.all(
        neuron_errors(default.layers[0]) <= neuron_errors(kbest.layers[0]) * (1 + 1e-12) + 1e-12
    )
