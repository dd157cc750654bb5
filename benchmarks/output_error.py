"""How far the ``kbest`` model's outputs are from the float model's on images no solver saw,
for the held-out MNIST models: a lower-noise measure than accuracy, for choosing between two
versions of the code without looking at the test images.

Per model (training seeds 2026–2030) and bit width it quantizes with ``--solver kbest``
(1,000 calibration images, seed 0) and records the squared logit difference per 1,000
images and the top-1 agreement with the float model, on 10,000 **validation** images (the
training images after the calibration draw's, which the model was trained on but no
solver saw) and on the 10,000 test images. Run it once per tree and compare the files:

    ANNEALQ_DATA=../shared/data ANNEALQ_MODELS=benchmarks/models PYTHONPATH=<tree> \\
        python benchmarks/output_error.py <out>.json
    python benchmarks/output_error.py --compare <before>.json <after>.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from annealq.files import atomic_write


def measure(out: str) -> None:
    import torch

    from annealq.data.datasets import load_dataset
    from annealq.data.models import reference_model
    from annealq.pipeline import quantize

    data = load_dataset("mnist")
    calibration = np.sort(
        np.random.default_rng(0).choice(len(data.x_train), size=1000, replace=False)
    )  # Dataset.calibration's
    validation = np.setdiff1d(np.arange(len(data.x_train)), calibration)[:10_000]
    images = {
        "validation": torch.as_tensor(np.asarray(data.x_train[validation]), dtype=torch.float32),
        "test": torch.as_tensor(np.asarray(data.x_test), dtype=torch.float32),
    }
    result = {}
    for seed in (2026, 2027, 2028, 2029, 2030):
        model, _ = reference_model(data, seed=seed)
        with torch.no_grad():
            reference = {name: model(x) for name, x in images.items()}
        for bits in (4, 3, 2):
            quantized = quantize(
                model,
                data,
                bits=bits,
                solver="kbest",
                calibration_size=1000,
                cache=False,
                quiet=True,
                seed=0,
            ).model
            row = {}
            with torch.no_grad():
                for name, x in images.items():
                    got, want = quantized(x), reference[name]
                    row[f"{name}_error"] = float(((got - want) ** 2).sum() / len(x) * 1000)
                    row[f"{name}_agreement"] = float(
                        (got.argmax(1) == want.argmax(1)).double().mean()
                    )
            result[f"{seed}|{bits}"] = row
            print(seed, bits, row, flush=True)
    text = json.dumps(result, indent=1) + "\n"
    atomic_write(Path(out), lambda stream: stream.write(text.encode()))


def compare(before: str, after: str) -> None:
    a, b = (json.load(open(path)) for path in (before, after))
    print(
        "| int | validation error, before → after | test error, before → after | "
        "validation agreement, before → after |\n|---|---:|---:|---:|"
    )
    for bits in ("4", "3", "2"):
        keys = [k for k in a if k.endswith(f"|{bits}")]
        mean = lambda d, field, keys=keys: np.mean([d[k][field] for k in keys])
        print(
            f"| {bits} | {mean(a, 'validation_error'):.1f} → {mean(b, 'validation_error'):.1f}"
            f" | {mean(a, 'test_error'):.1f} → {mean(b, 'test_error'):.1f} | "
            f"{100 * mean(a, 'validation_agreement'):.2f} → "
            f"{100 * mean(b, 'validation_agreement'):.2f} % |"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compare"]:
        compare(*sys.argv[2:4])
    else:
        measure(sys.argv[1])
