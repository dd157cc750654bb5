"""The held-out check: a 784-128-10 MNIST MLP that no other benchmark or test uses (the
reference architecture and training, seed 2026), quantized whole by tuned GPTQ, CD and the
whole-grid QUBO from tuned GPTQ (``kbest``, and ``lns`` for comparison), at int4, int3
and int2, on 1,000 calibration images from the training split; test accuracy on the
10,000 test images.

Run from the repository root (about ten minutes on 2 idle cores, the first run also
trains the model, ~1 minute):

    ANNEALQ_DATA=../shared/data python benchmarks/heldout.py

It writes ``benchmarks/heldout.json`` (every run, with the command) and
``benchmarks/HELDOUT.md`` (the table). Each method quantizes the layers in turn, so a
later layer's error is on that method's own quantized inputs: the pipeline's report.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from annealq.data.datasets import load_dataset
from annealq.data.models import reference_model
from annealq.files import atomic_write
from annealq.pipeline import quantize

METHODS = (  # (label, quantize() arguments; bits are added)
    ("GPTQ (tuned)", {"method": "gptq"}),
    ("CD (tuned GPTQ + descent)", {"method": "cd"}),
    ("QUBO whole grid, kbest from tuned GPTQ", {"solver": "kbest"}),
    ("QUBO whole grid, lns from tuned GPTQ", {"solver": "lns", "start": "gptq", "whole": True}),
)
QUBO = "QUBO whole grid, kbest from tuned GPTQ"


def run(model, data, bits: int, arguments: dict) -> dict:
    arguments = dict(arguments)
    if arguments.pop("whole", False):
        arguments["window_bits"] = bits
    begin = time.perf_counter()
    result = quantize(model, data, bits=bits, calibration_size=1000, cache=False, quiet=True,
                      seed=0, **arguments)
    seconds = time.perf_counter() - begin
    return {"layer_errors": [layer.energy for layer in result.layers],
            "layer1_test_error": first_layer_test_error(model, result.model, data),
            "accuracy": result.report["accuracy"]["quantized"],
            "float_accuracy": result.report["accuracy"]["float"], "seconds": seconds}


def first_layer_test_error(model, quantized, data) -> float:
    """The first layer's squared output error on the test images, per 1,000 of them (the
    calibration error's scale): does the calibration gain carry over to unseen inputs?"""
    def weights(module):
        layer = next(m for m in module.modules() if isinstance(m, torch.nn.Linear))
        return layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()

    (W, b), (W_q, b_q) = weights(model), weights(quantized)
    x = np.asarray(data.x_test, dtype=np.float64).reshape(len(data.x_test), -1)
    return float(np.sum((x @ (W - W_q).T + (b - b_q)) ** 2) / len(x) * 1000)


def markdown(result: dict) -> str:
    lines = ["# The held-out check (issue 17): a 784-128-10 MNIST model no other benchmark uses",
             "", "    " + result["command"], "",
             f"Reference MNIST MLP trained with seed {result['seed']}, 1,000 calibration "
             "images, every layer quantized in turn (a layer's error is on the method's own "
             "quantized inputs), test accuracy on the 10,000 test images; seconds for the "
             "whole model on this 2-core machine (QUBO rows include tuned GPTQ's).", "",
             "| int | method | layer 1 error | layer 2 error | layer 1 error, test images "
             "(per 1,000) | accuracy | seconds | QUBO / this: layer 1, layer 2, layer 1 on "
             "test images |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for bits, runs in result["runs"].items():
        ours = [*runs[QUBO]["layer_errors"], runs[QUBO]["layer1_test_error"]]
        for label, row in runs.items():
            errors = [*row["layer_errors"], row["layer1_test_error"]]
            ratios = " / ".join(f"{a / b:.3f}" for a, b in zip(ours, errors)) \
                if label != QUBO else "—"
            lines.append(f"| {bits} | {label} | {errors[0]:,.1f} | {errors[1]:,.1f} | "
                         f"{errors[2]:,.1f} | {100 * row['accuracy']:.2f} % | "
                         f"{row['seconds']:.1f} | {ratios} |")
    first = next(iter(result["runs"].values()))
    lines += ["", f"Float model: {100 * next(iter(first.values()))['float_accuracy']:.2f} %.",
              ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026, help="the model's training seed")
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 3, 2])
    parser.add_argument("--out-dir", default="benchmarks")
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    command = "python benchmarks/heldout.py " + " ".join(shlex.quote(a) for a in given)
    data = load_dataset("mnist")
    model, _ = reference_model(data, seed=args.seed)
    result = {"command": command.strip(), "seed": args.seed, "runs": {}}
    for bits in args.bits:
        runs = result["runs"][str(bits)] = {}
        for label, arguments in METHODS:
            runs[label] = run(model, data, bits, arguments)
            print(f"int{bits} {label}: {runs[label]}", flush=True)
    out = Path(args.out_dir)
    text = json.dumps(result, indent=1) + "\n"
    atomic_write(out / "heldout.json", lambda stream: stream.write(text.encode()))
    table = markdown(result)
    atomic_write(out / "HELDOUT.md", lambda stream: stream.write(table.encode()))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
