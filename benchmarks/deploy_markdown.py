"""``benchmarks/DEPLOY.md`` from :mod:`benchmarks.deploy`'s report: sizes and accuracy per
model, bit width and grid, then the latencies of each row's graphs.
"""

from __future__ import annotations


def _ms(value) -> str:
    return value if isinstance(value, str) else f"{value:.3g}"


def markdown(report: dict) -> str:
    """The page for ``report`` (``{"meta", "rows"}``, as deploy.json holds it)."""
    meta, rows = report["meta"], report["rows"]
    lines = [
        "# Deploying quantized models: ONNX Runtime",
        "",
        f"Filled by `{meta['command']}` (committed code; {meta['machine']}).",
        "",
        "Each quantized `Linear`/`Conv2d` is exported by `annealq.export_onnx` with its "
        "integers as INT2/INT4/INT8 initializers and its steps as `DequantizeLinear` "
        "scales (opset 25); int3 is stored as INT4. Accuracy on the test split; "
        "annealq's is its torch model with the dequantized weights. *max diff*: the "
        "largest |ONNX Runtime − annealq| output over the test split, relative to the "
        "largest output. Weights: the quantized layers' initializers (integers + scales) "
        "against their float32 weights and the ideal `bits × parameters / 8`.",
        "",
        "| model | bits | grid | method | ONNX file: float → quantized | weight bytes "
        "(integers + scales) | ideal | of float32 | scales' share | accuracy annealq | "
        "accuracy ORT | max diff |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        w = r["weights"]
        total = w["integers"] + w["scales"] + w["offsets"]
        accuracy = (
            f"{r['accuracy_annealq']:.2%} | {r['accuracy_ort']:.2%} | "
            f"{r['max_diff'] / r['max_output']:.1e}"
            if "accuracy_ort" in r
            else "– | – | –"
        )
        lines.append(
            f"| {r['model']} | int{r['bits']} | {r['grid']} | {r['method']} | "
            f"{r['float_file']:,} → {r['file']:,} | {w['integers']:,} + "
            f"{w['scales']:,} | {r['ideal']:,.0f} | 1/{r['float_weights'] / total:.1f}"
            f" | {w['scales'] / total:.1%} | {accuracy} |"
        )
    lines += [
        "",
        "## Latency",
        "",
        "Median milliseconds per `run` (ONNX Runtime CPU provider, one intra-op thread), "
        "float graph against the QDQ graph and, for Linear layers, `MatMulNBits` "
        "(contrib operator, blocks of 32 along K, float compute: `accuracy_level` 0) on "
        "the same integers; all graphs of a row in one process, one after the other. "
        "The machine was shared with other jobs (2 cores): `/proc/loadavg` at the end of "
        "each row is beside it, and only ratios within a row mean anything.",
        "",
        "| model | bits | grid | batch | float | QDQ | MatMulNBits | MatMulNBits max diff "
        "| loadavg |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        t = r["latency_ms"]
        for batch in (1, 256):
            nbits = t.get(f"MatMulNBits, batch {batch}", "–")
            diff = r.get("nbits_max_diff", "–")
            diff = (
                diff
                if isinstance(diff, str) or "max_output" not in r
                else f"{diff / r['max_output']:.1e}"
            )
            lines.append(
                f"| {r['model']} | int{r['bits']} | {r['grid']} | {batch} | "
                f"{_ms(t[f'float, batch {batch}'])} | {_ms(t[f'QDQ, batch {batch}'])} "
                f"| {_ms(nbits)} | {diff} | {' '.join(r['loadavg'])} |"
            )
    return "\n".join(lines) + "\n"
