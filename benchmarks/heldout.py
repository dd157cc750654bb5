"""The held-out check: 784-128-10 MNIST MLPs that no other benchmark or test uses (the
reference architecture and training, seed 2026 and, with ``--seeds``, more), quantized
whole by tuned GPTQ, CD and the whole-grid QUBO from tuned GPTQ (``kbest``, and ``lns``
for comparison), at int4, int3 and int2, on 1,000 calibration images from the training
split; test accuracy on the 10,000 test images, agreement with the float model's
predictions there (the share of test images on which the quantized model's top-1 class is
the float model's: what quantization alone changed, without the float model's own errors)
and the output error there (the squared difference of the two models' logits per 1,000
images: the calibration objective measured on images no method saw).

Run from the repository root (about ten minutes a model on 2 idle cores; the first run
also trains each model, ~1 minute):

    ANNEALQ_DATA=../shared/data python benchmarks/heldout.py --seeds 2026 2027 2028 2029 2030

It writes ``benchmarks/heldout.json`` (every run, with the command) and
``benchmarks/HELDOUT.md`` (a table per model, then the models together). Each method
quantizes the layers in turn, so a later layer's error is on that method's own quantized
inputs: the pipeline's report.
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
from annealq.data.models import model_fingerprint, reference_model
from annealq.files import atomic_write
from annealq.pipeline import quantize

METHODS = (  # (label, quantize() arguments; bits are added)
    ("GPTQ (tuned)", {"method": "gptq"}),
    ("CD (tuned GPTQ + descent)", {"method": "cd"}),
    ("QUBO whole grid, kbest from tuned GPTQ", {"solver": "kbest"}),
    ("QUBO whole grid, lns from tuned GPTQ", {"solver": "lns", "start": "gptq", "whole": True}),
)
QUBO = "QUBO whole grid, kbest from tuned GPTQ"
PEERS = ("GPTQ (tuned)", "CD (tuned GPTQ + descent)")


def run(model, data, bits: int, arguments: dict, float_logits: np.ndarray) -> dict:
    arguments = dict(arguments)
    if arguments.pop("whole", False):
        arguments["window_bits"] = bits
    begin = time.perf_counter()
    result = quantize(
        model, data, bits=bits, calibration_size=1000, cache=False, quiet=True, seed=0, **arguments
    )
    seconds = time.perf_counter() - begin
    quantized = logits(result.model, data.x_test)
    return {
        "layer_errors": [layer.energy for layer in result.layers],
        "layer1_test_error": first_layer_test_error(model, result.model, data),
        "output_test_error": float(np.sum((quantized - float_logits) ** 2) / len(quantized) * 1000),
        "accuracy": result.report["accuracy"]["quantized"],
        "agreement": float(np.mean(quantized.argmax(axis=1) == float_logits.argmax(axis=1))),
        "float_accuracy": result.report["accuracy"]["float"],
        "seconds": seconds,
    }


def logits(model, x) -> np.ndarray:
    """The model's outputs on every image of ``x`` (float64)."""
    parameter = next(model.parameters())
    with torch.no_grad():
        out = model(torch.as_tensor(np.asarray(x), dtype=parameter.dtype))
    return out.double().numpy()


def first_layer_test_error(model, quantized, data) -> float:
    """The first layer's squared output error on the test images, per 1,000 of them (the
    calibration error's scale): does the calibration gain carry over to unseen inputs?"""

    def weights(module):
        layer = next(m for m in module.modules() if isinstance(m, torch.nn.Linear))
        return layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()

    (W, b), (W_q, b_q) = weights(model), weights(quantized)
    x = np.asarray(data.x_test, dtype=np.float64).reshape(len(data.x_test), -1)
    return float(np.sum((x @ (W - W_q).T + (b - b_q)) ** 2) / len(x) * 1000)


def model_table(entry: dict) -> list[str]:
    """One model's table: every method's errors, accuracy, agreement and time."""
    lines = [
        f"## Seed {entry['seed']} (float model {100 * entry['float_accuracy']:.2f} %)",
        "",
        "| int | method | layer 1 error | layer 2 error | layer 1 error, test images "
        "(per 1,000) | output error, test images (per 1,000) | accuracy | agreement "
        "with float | seconds | QUBO / this: layer 1, layer 2, layer 1 on test images, "
        "output on test images |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for bits, runs in entry["runs"].items():
        ours = _errors(runs[QUBO])
        for label, row in runs.items():
            errors = _errors(row)
            ratios = (
                " / ".join(f"{a / b:.3f}" for a, b in zip(ours, errors)) if label != QUBO else "—"
            )
            cells = " | ".join(f"{e:,.1f}" for e in errors)
            lines.append(
                f"| {bits} | {label} | {cells} | {100 * row['accuracy']:.2f} % | "
                f"{100 * row['agreement']:.2f} % | {row['seconds']:.1f} | {ratios} |"
            )
    return lines + [""]


def _errors(row: dict) -> list[float]:
    return [*row["layer_errors"], row["layer1_test_error"], row["output_test_error"]]


def summary_table(models: list[dict]) -> list[str]:
    """The models together: per int and method, mean accuracy, agreement and output error
    ratio, and for the QUBO how many models meet each part of the check."""
    lines = [
        f"## The {len(models)} models together",
        "",
        "Mean (lowest–highest) over the models. For the QUBO row: on how many models "
        "its error is ≤ 0.90× tuned GPTQ's and ≤ 0.95× CD's on both layers, and its "
        "accuracy ≥ both peers'.",
        "",
        "| int | method | accuracy | agreement with float | output error on the test "
        "images, QUBO / this | worst layer-error ratio, QUBO / this | models: errors "
        "within the check | models: accuracy ≥ both |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for bits in models[0]["runs"]:
        runs = [m["runs"][bits] for m in models]
        for label in runs[0]:
            accuracy = np.array([100 * r[label]["accuracy"] for r in runs])
            agreement = np.array([100 * r[label]["agreement"] for r in runs])
            worst = max(
                max(a / b for a, b in zip(r[QUBO]["layer_errors"], r[label]["layer_errors"]))
                for r in runs
            )
            output = [r[QUBO]["output_test_error"] / r[label]["output_test_error"] for r in runs]
            output = (
                "—"
                if label == QUBO
                else f"{np.mean(output):.3f} ({min(output):.3f}–{max(output):.3f})"
            )
            errors_met = accuracy_met = "—"
            if label == QUBO:
                errors_met = f"{sum(_errors_within(r) for r in runs)} of {len(runs)}"
                accuracy_met = f"{sum(_accuracy_above(r) for r in runs)} of {len(runs)}"
            lines.append(
                f"| {bits} | {label} | {accuracy.mean():.2f} % ({accuracy.min():.2f}–"
                f"{accuracy.max():.2f}) | {agreement.mean():.2f} % ({agreement.min():.2f}–"
                f"{agreement.max():.2f}) | {output} | "
                f"{'—' if label == QUBO else f'{worst:.3f}'} | "
                f"{errors_met} | {accuracy_met} |"
            )
    return lines + [""]


def _errors_within(runs: dict) -> bool:
    ours = runs[QUBO]["layer_errors"]
    return all(
        a <= limit * b
        for label, limit in zip(PEERS, (0.90, 0.95))
        for a, b in zip(ours, runs[label]["layer_errors"])
    )


def _accuracy_above(runs: dict) -> bool:
    return all(runs[QUBO]["accuracy"] >= runs[label]["accuracy"] for label in PEERS)


def markdown(result: dict) -> str:
    lines = [
        "# The held-out check (issue 17): 784-128-10 MNIST models no other benchmark uses",
        "",
        "    " + result["command"],
        "",
        "Reference MNIST MLPs (one per training seed), 1,000 calibration images, every "
        "layer quantized in turn (a layer's error is on the method's own quantized "
        "inputs), test accuracy on the 10,000 test images and agreement with the float "
        "model's top-1 class on them; seconds for the whole model on this 2-core "
        "machine (QUBO rows include tuned GPTQ's).",
        "",
    ]
    for entry in result["models"]:
        lines += model_table(entry)
    if len(result["models"]) > 1:
        lines += summary_table(result["models"])
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[2026],
        help="the models' training seeds (2026: the held-out check)",
    )
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 3, 2])
    parser.add_argument("--out-dir", default="benchmarks")
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    command = "python benchmarks/heldout.py " + " ".join(shlex.quote(a) for a in given)
    data = load_dataset("mnist")
    result = {"command": command.strip(), "models": []}
    for seed in args.seeds:
        model, _ = reference_model(data, seed=seed)
        float_logits = logits(model, data.x_test)
        entry = {"seed": seed, "fingerprint": model_fingerprint(model), "runs": {}}
        for bits in args.bits:
            runs = entry["runs"][str(bits)] = {}
            for label, arguments in METHODS:
                runs[label] = run(model, data, bits, arguments, float_logits)
                print(f"seed {seed} int{bits} {label}: {runs[label]}", flush=True)
        entry["float_accuracy"] = next(iter(runs.values()))["float_accuracy"]
        result["models"].append(entry)
        table = write(result, Path(args.out_dir))  # after each model: a stopped run keeps it
    print(table)
    return 0


def write(result: dict, out: Path) -> str:
    text = json.dumps(result, indent=1) + "\n"
    atomic_write(out / "heldout.json", lambda stream: stream.write(text.encode()))
    table = markdown(result)
    atomic_write(out / "HELDOUT.md", lambda stream: stream.write(table.encode()))
    return table


if __name__ == "__main__":
    sys.exit(main())
