"""Deploying quantized models with ONNX Runtime: file and weight sizes, accuracy, output
difference and latency of the exported graphs (``annealq.export_onnx``), into
``benchmarks/DEPLOY.md`` and ``benchmarks/deploy.json``.

    ANNEALQ_DATA=../shared/data ANNEALQ_MODELS=benchmarks/models python benchmarks/deploy.py

For each reference model and width: the float model's ONNX file against the quantized
one's; the weight initializers' bytes (integers, scales, offsets) against the ideal
``bits × parameters / 8``; ONNX Runtime's test accuracy against annealq's own (the torch
model with the dequantized weights) and the largest output difference; the median latency
at batch 1 and 256 of the float graph, the QDQ graph and, for MLPs at 2 and 4 bits (int3 in
4-bit storage), ONNX Runtime's ``MatMulNBits`` contrib operator on the same integers
(blocks of 32 along K, unsigned with the default zero point, ``accuracy_level`` 0: float
compute, exact). All sessions of a row run in one process, one after the other, on one
intra-op thread. Then the same for one 4096 × 4096 layer (random weights, RTN), where
weight bandwidth decides.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import annealq
from annealq.data.cnn import reference_cnn
from annealq.data.datasets import load_dataset
from annealq.data.models import accuracy, describe
from annealq.onnx_export import OPSET, onnx_model
from annealq.quantized import QuantizationResult

HERE = Path(__file__).resolve().parent
GRIDS = {"per channel": {"per_channel": True}, "groups of 32": {"group_size": 32}}
NBITS_BLOCK = 32


def session(model, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def median_seconds(sess, x, repeats: int) -> float:
    sess.run(None, {"input": x})  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sess.run(None, {"input": x})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def weight_bytes(model) -> dict:
    """Bytes of the weight initializers by role (float weights count as ``float``)."""
    sizes = {"integers": 0, "scales": 0, "offsets": 0, "float": 0}
    for init in model.graph.initializer:
        role = ("integers" if init.name.endswith(".weight_q") else
                "scales" if init.name.endswith(".weight_scale") else
                "offsets" if init.name.endswith(".weight_offset") else
                "float" if init.name.endswith(".weight") else None)
        if role:
            sizes[role] += len(init.raw_data)
    return sizes


def nbits_model(result, bits: int):
    """The MLP with every quantized ``Linear`` a ``MatMulNBits`` on its integers (signed
    ``q`` stored as ``q + 2^(b-1)``, the operator's default zero point), or ``None`` when
    the layout does not map (convs, affine offsets, groups other than 32)."""
    from onnx import TensorProto, helper, numpy_helper

    width = 2 if bits <= 2 else 4 if bits <= 4 else 8
    layers = {layer.name: layer for layer in result.layers}
    nodes, inits, x = [], [], "input"
    for name, module in result.model.named_children():
        layer = layers.get(name)
        if isinstance(module, torch.nn.Flatten):
            nodes.append(helper.make_node("Flatten", [x], [f"{name}.out"], axis=1))
        elif isinstance(module, torch.nn.ReLU):
            nodes.append(helper.make_node("Relu", [x], [f"{name}.out"]))
        elif layer is not None and layer.weight_offset is None and layer.group_size in (
                None, NBITS_BLOCK):
            blob, scales = _nbits_arrays(layer, width)
            inits += [numpy_helper.from_array(blob, f"{name}.B"),
                      numpy_helper.from_array(scales, f"{name}.scales"),
                      numpy_helper.from_array((layer.int_bias * layer.bias_step)
                                              .astype(np.float32), f"{name}.bias")]
            nodes += [helper.make_node("MatMulNBits", [x, f"{name}.B", f"{name}.scales"],
                                       [f"{name}.mm"], domain="com.microsoft",
                                       K=layer.in_features, N=layer.out_features, bits=width,
                                       block_size=NBITS_BLOCK, accuracy_level=0),
                      helper.make_node("Add", [f"{name}.mm", f"{name}.bias"], [f"{name}.out"])]
        else:
            return None
        x = f"{name}.out"
    nodes.append(helper.make_node("Identity", [x], ["output"]))
    graph = helper.make_graph(nodes, "nbits", [helper.make_tensor_value_info(
        "input", TensorProto.FLOAT, ["batch", result.layers[0].in_features])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                   helper.make_opsetid("com.microsoft", 1)])


def _nbits_arrays(layer, width: int):
    n, k = layer.int_weight.shape
    blocks = -(-k // NBITS_BLOCK)
    q = np.zeros((n, blocks * NBITS_BLOCK), dtype=np.uint8)
    q[:, :k] = layer.int_weight + 2 ** (width - 1)  # padding: the zero point, weight 0
    q[:, k:] = 2 ** (width - 1)
    per_byte = 8 // width
    q = q.reshape(n, blocks, NBITS_BLOCK // per_byte, per_byte)
    blob = sum((q[..., j].astype(np.uint8) << (width * j)) for j in range(per_byte))
    steps = layer.weight_step
    scales = steps if steps.ndim == 2 else np.repeat(steps[:, None], blocks, axis=1)
    return blob.astype(np.uint8), scales.astype(np.float32).reshape(-1)


def latencies(graphs: dict, x: np.ndarray, args) -> dict:
    out = {}
    for batch, repeats in ((1, args.repeats), (256, max(3, args.repeats // 10))):
        inputs = x[:batch] if len(x) >= batch else np.resize(x, (batch, *x.shape[1:]))
        for label, model in graphs.items():
            try:
                sess = session(model, args.threads)
            except Exception as exc:  # a contrib op this build lacks
                out[f"{label}, batch {batch}"] = f"not run: {str(exc).splitlines()[0][:120]}"
                continue
            out[f"{label}, batch {batch}"] = median_seconds(sess, inputs, repeats) * 1e3
    return out


def outputs(model, x, threads=1):
    return session(model, threads).run(None, {"input": x})[0]


def model_row(data, arch, model, bits, grid, args) -> dict:
    solver = {"solver": args.solver, "start": args.start} if args.method == "qubo" else {}
    result = annealq.quantize(model, data, bits=bits, method=args.method, cache=False,
                              calibration_size=1000, quiet=True, seed=0, **solver,
                              **GRIDS[grid])
    quantized = onnx_model(result)
    floats = onnx_model(QuantizationResult(model, None, [], method="float"))
    x = data.x_test.astype(np.float32)
    got = outputs(quantized, x)
    with torch.no_grad():
        expected = result.model(torch.from_numpy(x)).numpy()
    params = sum(layer.int_weight.size for layer in result.layers)
    graphs = {"float": floats, "QDQ": quantized}
    nbits = nbits_model(result, bits) if arch == "mlp" else None
    row = {"model": f"{data.name} {describe(model)}", "bits": bits, "grid": grid,
           "method": f"{args.method}/{args.solver}" if args.method == "qubo" else args.method,
           "float_file": floats.ByteSize(), "file": quantized.ByteSize(),
           "weights": weight_bytes(quantized), "float_weights": 4 * params,
           "ideal": bits * params / 8,
           "accuracy_annealq": accuracy(result.model, data.x_test, data.y_test),
           "accuracy_ort": float((got.argmax(1) == data.y_test).mean()),
           "max_diff": float(np.abs(got - expected).max()),
           "max_output": float(np.abs(expected).max())}
    if nbits is not None:
        graphs["MatMulNBits"] = nbits
        try:
            row["nbits_max_diff"] = float(np.abs(outputs(nbits, x) - expected).max())
        except Exception as exc:
            row["nbits_max_diff"] = f"not run: {str(exc).splitlines()[0][:120]}"
    row["latency_ms"] = latencies(graphs, x, args)
    row["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    return row


def big_layer_row(bits, grid, args) -> dict:
    """One 4096 × 4096 layer, random weights, RTN on 256 random inputs."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4096, 4096))
    with torch.no_grad():
        model[0].weight.normal_(0, 0.02)
    x = np.random.default_rng(0).normal(size=(256, 4096)).astype(np.float32)
    result = annealq.quantize(model, x, bits=bits, method="rtn", quiet=True, **GRIDS[grid])
    quantized = onnx_model(result)
    graphs = {"float": onnx_model(QuantizationResult(model, None, [], method="float")),
              "QDQ": quantized}
    nbits = nbits_model(result, bits)
    if nbits is not None:
        graphs["MatMulNBits"] = nbits
    params = 4096 * 4096
    return {"model": "one Linear 4096x4096", "bits": bits, "grid": grid, "method": "rtn",
            "float_file": graphs["float"].ByteSize(), "file": quantized.ByteSize(),
            "weights": weight_bytes(quantized), "float_weights": 4 * params,
            "ideal": bits * params / 8, "latency_ms": latencies(graphs, x, args),
            "loadavg": Path("/proc/loadavg").read_text().split()[:3]}


def _ms(value) -> str:
    return value if isinstance(value, str) else f"{value:.3g}"


def markdown(report: dict) -> str:
    meta, rows = report["meta"], report["rows"]
    lines = ["# Deploying quantized models: ONNX Runtime", "",
             f"Filled by `{meta['command']}` (committed code; {meta['machine']}).", "",
             "Each quantized `Linear`/`Conv2d` is exported by `annealq.export_onnx` with its "
             "integers as INT2/INT4/INT8 initializers and its steps as `DequantizeLinear` "
             "scales (opset 25); int3 is stored as INT4. Accuracy on the test split; "
             "annealq's is its torch model with the dequantized weights. *max diff*: the "
             "largest |ONNX Runtime − annealq| output over the test split, relative to the "
             "largest output. Weights: the quantized layers' initializers (integers + scales) "
             "against their float32 weights and the ideal `bits × parameters / 8`.", "",
             "| model | bits | grid | method | ONNX file: float → quantized | weight bytes "
             "(integers + scales) | ideal | of float32 | scales' share | accuracy annealq | "
             "accuracy ORT | max diff |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        w = r["weights"]
        total = w["integers"] + w["scales"] + w["offsets"]
        accuracy = (f"{r['accuracy_annealq']:.2%} | {r['accuracy_ort']:.2%} | "
                    f"{r['max_diff'] / r['max_output']:.1e}" if "accuracy_ort" in r
                    else "– | – | –")
        lines.append(f"| {r['model']} | int{r['bits']} | {r['grid']} | {r['method']} | "
                     f"{r['float_file']:,} → {r['file']:,} | {w['integers']:,} + "
                     f"{w['scales']:,} | {r['ideal']:,.0f} | 1/{r['float_weights'] / total:.1f}"
                     f" | {w['scales'] / total:.1%} | {accuracy} |")
    lines += ["", "## Latency", "",
              "Median milliseconds per `run` (ONNX Runtime CPU provider, one intra-op thread), "
              "float graph against the QDQ graph and, for Linear layers, `MatMulNBits` "
              "(contrib operator, blocks of 32 along K, float compute: `accuracy_level` 0) on "
              "the same integers; all graphs of a row in one process, one after the other. "
              "The machine was shared with other jobs (2 cores): `/proc/loadavg` at the end of "
              "each row is beside it, and only ratios within a row mean anything.", "",
              "| model | bits | grid | batch | float | QDQ | MatMulNBits | MatMulNBits max diff "
              "| loadavg |", "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        t = r["latency_ms"]
        for batch in (1, 256):
            nbits = t.get(f"MatMulNBits, batch {batch}", "–")
            diff = r.get("nbits_max_diff", "–")
            diff = diff if isinstance(diff, str) or "max_output" not in r else \
                f"{diff / r['max_output']:.1e}"
            lines.append(f"| {r['model']} | int{r['bits']} | {r['grid']} | {batch} | "
                         f"{_ms(t[f'float, batch {batch}'])} | {_ms(t[f'QDQ, batch {batch}'])} "
                         f"| {_ms(nbits)} | {diff} | {' '.join(r['loadavg'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["digits/mlp", "mnist/mlp", "digits/cnn"])
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 4, 3, 2])
    parser.add_argument("--grids", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    parser.add_argument("--method", default="qubo")
    parser.add_argument("--solver", default="steepest")
    parser.add_argument("--start", default="gptq")
    parser.add_argument("--big-bits", type=int, nargs="*", default=[8, 4, 2])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "deploy.json"))
    parser.add_argument("--markdown", default=str(HERE / "DEPLOY.md"))
    args = parser.parse_args(argv)
    rows = []
    for spec in args.models:
        name, arch = spec.split("/")
        data = load_dataset(name, seed=0)
        build = reference_cnn if arch == "cnn" else annealq.reference_model
        model, _ = build(data, seed=0)
        for bits in args.bits:
            for grid in args.grids:
                rows.append(model_row(data, arch, model, bits, grid, args))
                print(json.dumps(rows[-1]), flush=True)
    for bits in args.big_bits:
        for grid in args.grids:
            rows.append(big_layer_row(bits, grid, args))
            print(json.dumps(rows[-1]), flush=True)
    env = " ".join(f"{k}={os.environ[k]}" for k in ("ANNEALQ_DATA", "ANNEALQ_MODELS")
                   if os.environ.get(k))
    meta = {"command": f"{env} python benchmarks/deploy.py {shlex.join(argv or sys.argv[1:])}"
                       .strip(),
            "machine": f"{platform.machine()}, Python {platform.python_version()}, "
                       f"onnxruntime {__import__('onnxruntime').__version__}, "
                       f"onnx {__import__('onnx').__version__}, torch {torch.__version__}"}
    report = {"meta": meta, "rows": rows}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    Path(args.markdown).write_text(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
