"""Deploying quantized models with ONNX Runtime: file and weight sizes, accuracy, output
difference and latency of the exported graphs (``annealq.export_onnx``), into
``benchmarks/DEPLOY.md`` and ``benchmarks/deploy.json``.

    ANNEALQ_DATA=../shared/data ANNEALQ_MODELS=benchmarks/models python -m benchmarks.deploy

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
from annealq.onnx_export import onnx_model
from annealq.quantized import QuantizationResult
from benchmarks.deploy_markdown import markdown
from benchmarks.deploy_nbits import (  # noqa: F401 (NBITS_BLOCK: re-exported)
    NBITS_BLOCK,
    nbits_model,
)

HERE = Path(__file__).resolve().parent
GRIDS = {"per channel": {"per_channel": True}, "groups of 32": {"group_size": 32}}


def session(model, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


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
        role = (
            "integers"
            if init.name.endswith(".weight_q")
            else "scales"
            if init.name.endswith(".weight_scale")
            else "offsets"
            if init.name.endswith(".weight_offset")
            else "float"
            if init.name.endswith(".weight")
            else None
        )
        if role:
            sizes[role] += len(init.raw_data)
    return sizes


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
    result = annealq.quantize(
        model,
        data,
        bits=bits,
        method=args.method,
        cache=False,
        calibration_size=1000,
        quiet=True,
        seed=0,
        **solver,
        **GRIDS[grid],
    )
    quantized = onnx_model(result)
    floats = onnx_model(QuantizationResult(model, None, [], method="float"))
    x = data.x_test.astype(np.float32)
    got = outputs(quantized, x)
    with torch.no_grad():
        expected = result.model(torch.from_numpy(x)).numpy()
    params = sum(layer.int_weight.size for layer in result.layers)
    graphs = {"float": floats, "QDQ": quantized}
    nbits = nbits_model(result, bits) if arch == "mlp" else None
    row = {
        "model": f"{data.name} {describe(model)}",
        "bits": bits,
        "grid": grid,
        "method": f"{args.method}/{args.solver}" if args.method == "qubo" else args.method,
        "float_file": floats.ByteSize(),
        "file": quantized.ByteSize(),
        "weights": weight_bytes(quantized),
        "float_weights": 4 * params,
        "ideal": bits * params / 8,
        "accuracy_annealq": accuracy(result.model, data.x_test, data.y_test),
        "accuracy_ort": float((got.argmax(1) == data.y_test).mean()),
        "max_diff": float(np.abs(got - expected).max()),
        "max_output": float(np.abs(expected).max()),
    }
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
    graphs = {
        "float": onnx_model(QuantizationResult(model, None, [], method="float")),
        "QDQ": quantized,
    }
    nbits = nbits_model(result, bits)
    if nbits is not None:
        graphs["MatMulNBits"] = nbits
    params = 4096 * 4096
    return {
        "model": "one Linear 4096x4096",
        "bits": bits,
        "grid": grid,
        "method": "rtn",
        "float_file": graphs["float"].ByteSize(),
        "file": quantized.ByteSize(),
        "weights": weight_bytes(quantized),
        "float_weights": 4 * params,
        "ideal": bits * params / 8,
        "latency_ms": latencies(graphs, x, args),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }


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
    env = " ".join(
        f"{k}={os.environ[k]}" for k in ("ANNEALQ_DATA", "ANNEALQ_MODELS") if os.environ.get(k)
    )
    meta = {
        "command": f"{env} python -m benchmarks.deploy {shlex.join(argv or sys.argv[1:])}".strip(),
        "machine": f"{platform.machine()}, Python {platform.python_version()}, "
        f"onnxruntime {__import__('onnxruntime').__version__}, "
        f"onnx {__import__('onnx').__version__}, torch {torch.__version__}",
    }
    report = {"meta": meta, "rows": rows}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    Path(args.markdown).write_text(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
