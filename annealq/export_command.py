"""``annealq export``: a saved quantized model (``quantize --out``) as an ONNX file with
integer weights (:mod:`annealq.onnx_export`)."""

from __future__ import annotations

import os

from annealq.commands import reference_of
from annealq.data.datasets import load_dataset
from annealq.data.models import load_model
from annealq.files import check_outputs, write_together
from annealq.onnx_export import onnx_writer
from annealq.quantized import load


def run_export(args) -> int:
    check_outputs(
        [("--onnx", args.onnx)], [("the input file", args.input), ("the --model file", args.model)]
    )
    model = None  # the file's recorded architecture, unless a float model is named
    if args.model:
        model = load_model(args.model)
    elif args.dataset:
        data = load_dataset(args.dataset, data_dir=args.data_dir, seed=args.seed)
        model, _ = reference_of(args, data)
    try:
        result = load(args.input, model)
    except ValueError as exc:
        if model is None and "records no architecture" in str(exc):
            raise ValueError(
                f"{args.input} records no architecture (not an nn.Sequential of "
                "standard layers): name its float model with --model FILE, or "
                "--dataset NAME --arch ARCH for a reference model"
            ) from None
        raise
    write_together([(args.onnx, onnx_writer(result, int2_storage=args.int2_storage))])
    print(
        f"ONNX model written to {args.onnx} ({os.path.getsize(args.onnx):,} bytes; "
        f"int{result.report.get('bits')} weights of {len(result.layers)} layers)"
    )
    return 0
