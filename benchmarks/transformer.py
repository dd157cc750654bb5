"""The reference causal LM (pystdlib) quantized by RTN, tuned GPTQ and ``kbest``: perplexity,
its ratio to float with the 95 % interval over windows, KL to float, top-1 agreement,
summed layer error relative to tuned GPTQ's, and time; into ``benchmarks/transformer.json``
(resumed cell by cell) and the table printed for ``benchmarks/TRANSFORMER.md``.

    ANNEALQ_DATA=../shared/data python -m benchmarks.transformer --bits 4 3 --groups 0 128

Every method sees the same 128 calibration windows and is scored on the same test windows
(``--windows``, evenly spaced; 0: all).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import annealq
from annealq.data.text import load_text
from annealq.data.transformer import reference_lm
from annealq.language import language_metrics

METHODS = {
    "RTN": {"method": "rtn"},
    "GPTQ (tuned)": {"method": "gptq"},
    "kbest": {"solver": "kbest"},
}


def run(bits_list, groups, windows: int, out: Path, progress=print) -> dict:
    table = json.loads(out.read_text()) if out.is_file() else {"cells": {}}
    table["commands"] = [
        *table.get("commands", []),
        shlex.join(["python", "-m", "benchmarks.transformer", *sys.argv[1:]]),
    ]
    table["machine"] = f"{platform.machine()}, {platform.python_version()}"
    data = load_text()
    model, path = reference_lm(data)
    table["model"] = path.name
    context = model.position.num_embeddings
    test = data.windows(context, limit=windows or None)
    # an array, not the dataset: quantize() would score float and RTN on the whole test split
    calibration = data.calibration(128, context=context, seed=0)
    for bits in bits_list:
        for group in groups:
            for name, options in METHODS.items():
                key = f"int{bits}|{'channel' if not group else f'g{group}'}|{name}"
                if key in table["cells"]:
                    continue
                began = time.perf_counter()
                result = annealq.quantize(
                    model,
                    calibration,
                    bits=bits,
                    per_channel=True,
                    group_size=group or None,
                    cache=False,
                    quiet=True,
                    **options,
                )
                seconds = time.perf_counter() - began
                metrics = language_metrics(model, {"q": result.model}, test)
                table["cells"][key] = {
                    "float_perplexity": metrics["float"]["perplexity"],
                    **metrics["q"],
                    "layer_error": sum(layer.energy for layer in result.layers),
                    "seconds": seconds,
                    "windows": metrics["windows"],
                }
                out.write_text(json.dumps(table, indent=1))
                progress(f"{key}: perplexity {metrics['q']['perplexity']:.4f}, {seconds:.0f} s")
    return table


def markdown(table: dict) -> str:
    lines = [
        "| bits | steps | method | perplexity | ratio to float [95 %] | KL | top-1 | "
        "layer error / GPTQ's | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, cell in table["cells"].items():
        bits, steps, name = key.split("|")
        gptq = table["cells"].get(f"{bits}|{steps}|GPTQ (tuned)", {}).get("layer_error")
        low, high = cell["perplexity_ratio_interval"]
        relative = f"{cell['layer_error'] / gptq:.3f}" if gptq else "-"
        lines.append(
            f"| {bits} | {steps} | {name} | {cell['perplexity']:.4f} | "
            f"{cell['perplexity_ratio']:.4f} [{low:.4f}, {high:.4f}] | "
            f"{cell['kl']:.5f} | {cell['top1']:.2%} | {relative} | "
            f"{cell['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 3])
    parser.add_argument(
        "--groups",
        type=int,
        nargs="+",
        default=[0, 128],
        help="0: one step per output channel; g: groups of g inputs",
    )
    parser.add_argument("--windows", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("transformer.json"))
    args = parser.parse_args(argv)
    print(markdown(run(args.bits, args.groups, args.windows, args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
