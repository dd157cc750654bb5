"""The ridge chosen on validation images: does pulling the QUBO's weights towards the float
ones (``quantize(ridge=r)``) carry the calibration gain over to images no method saw, and
does a stronger damping do the same for GPTQ?

On the five held-out 784-128-10 MNIST models (training seeds 2026–2030; HELDOUT.md) with
1,000 calibration images, at int4, int3 and int2: ``kbest`` from tuned GPTQ at every ridge
of ``RIDGES``, tuned GPTQ, GPTQ at act-order with damping 0.1 and 1, and CD. Per run the
calibration layer errors and, on 10,000 **validation** images (training images outside
the calibration draw) and the 10,000 test images, the squared logit difference from the
float model per 1,000 images, the top-1 agreement with it and the accuracy. The ridge is
chosen per bit width by the lowest mean validation output error over the models (the test
images play no part); the test columns are read afterwards. Accuracy differences between
the chosen QUBO and each peer come with McNemar's exact test on the paired test images.

    ANNEALQ_DATA=../shared/data ANNEALQ_MODELS=benchmarks/models python benchmarks/ridge.py

writes ``benchmarks/ridge.json`` and ``benchmarks/RIDGE.md`` (``--markdown-only``: the
tables again from the json). About 15 minutes on 2 idle cores.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from annealq.files import atomic_write

RIDGES = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1)
PEERS = {
    "GPTQ (tuned)": {"method": "gptq"},
    "GPTQ act-order, damp 0.1": {"method": "gptq", "act_order": True, "damp": 0.1},
    "GPTQ act-order, damp 1": {"method": "gptq", "act_order": True, "damp": 1.0},
    "CD (tuned GPTQ + descent)": {"method": "cd"},
}
CHECK_PEERS = ("GPTQ (tuned)", "CD (tuned GPTQ + descent)")
COMMAND = "python benchmarks/ridge.py"


def qubo_label(ridge: float) -> str:
    return f"kbest from tuned GPTQ, ridge {ridge:g}"


def mcnemar(better: int, worse: int) -> float:
    """The exact two-sided McNemar p-value of ``better`` vs ``worse`` discordant pairs."""
    n, k = better + worse, min(better, worse)
    return 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def measure(seeds, bits_list) -> dict:
    import torch

    from annealq.data.datasets import load_dataset
    from annealq.data.models import model_fingerprint, reference_model
    from annealq.pipeline import quantize

    data = load_dataset("mnist")
    calibration = np.sort(
        np.random.default_rng(0).choice(len(data.x_train), size=1000, replace=False)
    )  # Dataset.calibration's
    validation = np.setdiff1d(np.arange(len(data.x_train)), calibration)[:10_000]
    sets = {
        "validation": (data.x_train[validation], data.y_train[validation]),
        "test": (data.x_test, data.y_test),
    }
    sets = {
        k: (torch.as_tensor(np.asarray(x), dtype=torch.float32), np.asarray(y))
        for k, (x, y) in sets.items()
    }
    methods = {**PEERS, **{qubo_label(r): {"solver": "kbest", "ridge": r} for r in RIDGES}}
    result = {"command": COMMAND, "ridges": list(RIDGES), "models": []}
    for seed in seeds:
        model, _ = reference_model(data, seed=seed)
        with torch.no_grad():
            reference = {k: model(x) for k, (x, _) in sets.items()}
        entry = {"seed": seed, "fingerprint": model_fingerprint(model), "runs": {}}
        for bits in bits_list:
            runs, correct = {}, {}
            for label, arguments in methods.items():
                begin = time.perf_counter()
                quantized = quantize(
                    model,
                    data,
                    bits=bits,
                    calibration_size=1000,
                    cache=False,
                    quiet=True,
                    seed=0,
                    **arguments,
                )
                row = {
                    "layer_errors": [layer.energy for layer in quantized.layers],
                    "seconds": time.perf_counter() - begin,
                }
                with torch.no_grad():
                    for name, (x, y) in sets.items():
                        got, want = quantized.model(x), reference[name]
                        row[f"{name}_error"] = float(((got - want) ** 2).sum() / len(x) * 1000)
                        row[f"{name}_agreement"] = float(
                            (got.argmax(1) == want.argmax(1)).double().mean()
                        )
                        hits = got.argmax(1).numpy() == y
                        row[f"{name}_accuracy"] = float(hits.mean())
                correct[label] = hits  # on the test images, the last set
                runs[label] = row
                print(f"seed {seed} int{bits} {label}: {row}", flush=True)
            for label in runs:  # paired test-image counts against the check's peers
                if label not in PEERS:
                    runs[label]["discordant"] = {
                        peer: [
                            int(np.sum(correct[label] & ~correct[peer])),
                            int(np.sum(~correct[label] & correct[peer])),
                        ]
                        for peer in CHECK_PEERS
                    }
            entry["runs"][str(bits)] = runs
        result["models"].append(entry)
    return result


def chosen_ridge(result: dict, bits: str) -> float:
    """The ridge with the lowest mean validation output error over the models."""

    def mean_validation(ridge):
        return np.mean(
            [m["runs"][bits][qubo_label(ridge)]["validation_error"] for m in result["models"]]
        )

    return min(result["ridges"], key=mean_validation)


def markdown(result: dict) -> str:
    models = result["models"]
    seeds = ", ".join(str(m["seed"]) for m in models)
    lines = [
        "# The ridge, chosen on validation images",
        "",
        "    ANNEALQ_DATA=../shared/data ANNEALQ_MODELS=benchmarks/models " + result["command"],
        "",
        f"Held-out 784-128-10 MNIST models (seeds {seeds}), 1,000 calibration "
        "images. Means over the models. *Layer errors* are the calibration objective "
        "(the check's); *output error* is the squared logit difference from the float "
        "model per 1,000 images; *agreement* is its top-1 class kept. The ridge marked "
        "★ has the lowest mean validation output error at that bit width; the test "
        "columns played no part in choosing it.",
        "",
    ]
    for bits in models[0]["runs"]:
        best = chosen_ridge(result, bits)
        lines += [
            f"## int{bits}",
            "",
            "| method | layer 1 error | layer 2 error | validation output error | "
            "validation agreement | test output error | test agreement | test accuracy "
            "| seconds |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for label in models[0]["runs"][bits]:
            rows = [m["runs"][bits][label] for m in models]
            mean = lambda key, rows=rows: np.mean([r[key] for r in rows])
            layers = np.mean([r["layer_errors"] for r in rows], axis=0)
            star = " ★" if label == qubo_label(best) else ""
            lines.append(
                f"| {label}{star} | {layers[0]:,.1f} | {layers[1]:,.1f} | "
                f"{mean('validation_error'):,.1f} | {100 * mean('validation_agreement'):.2f} % "
                f"| {mean('test_error'):,.1f} | {100 * mean('test_agreement'):.2f} % | "
                f"{100 * mean('test_accuracy'):.2f} % | {mean('seconds'):.1f} |"
            )
        lines.append("")
    lines += _paired_table(result)
    return "\n".join(lines)


def _paired_table(result: dict) -> list[str]:
    lines = [
        "## Test accuracy, chosen ridge against the check's peers, model by model",
        "",
        "Test images the QUBO gets right and the peer wrong / the other way round, and "
        "McNemar's exact two-sided p-value (small: a real difference).",
        "",
        "| seed | int | ridge ★ | QUBO accuracy | vs tuned GPTQ | p | vs CD | p | "
        "ridge 0: vs tuned GPTQ | p | vs CD | p |",
        "|---|---|---:|---:|---|---:|---|---:|---|---:|---|---:|",
    ]
    for model in result["models"]:
        for bits, runs in model["runs"].items():
            best = chosen_ridge(result, bits)
            chosen, plain = runs[qubo_label(best)], runs[qubo_label(0.0)]
            cells = []
            for row in (chosen, plain):
                for peer in CHECK_PEERS:
                    better, worse = row["discordant"][peer]
                    cells += [f"+{better} / −{worse}", f"{mcnemar(better, worse):.2f}"]
            lines.append(
                f"| {model['seed']} | {bits} | {best:g} | "
                f"{100 * chosen['test_accuracy']:.2f} % | " + " | ".join(cells) + " |"
            )
    return lines + [""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[2026, 2027, 2028, 2029, 2030])
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 3, 2])
    parser.add_argument("--out-dir", default="benchmarks")
    parser.add_argument(
        "--markdown-only", action="store_true", help="rewrite RIDGE.md from ridge.json"
    )
    args = parser.parse_args(argv)
    out = Path(args.out_dir)
    if args.markdown_only:
        result = json.loads((out / "ridge.json").read_text())
    else:
        result = measure(args.seeds, args.bits)
        text = json.dumps(result, indent=1) + "\n"
        atomic_write(out / "ridge.json", lambda stream: stream.write(text.encode()))
    table = markdown(result)
    atomic_write(out / "RIDGE.md", lambda stream: stream.write(table.encode()))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
