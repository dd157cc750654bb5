"""The ``quantize`` and ``train`` commands on text: a byte-level causal language model
(``--arch transformer``) on ``pystdlib``, or on any text file or folder (``--data-dir``)."""

from __future__ import annotations

import dataclasses
import time

from annealq.data.model_file import save_model
from annealq.data.models import load_model
from annealq.data.text import TEXT_DATASETS, load_text
from annealq.data.transformer import reference_lm
from annealq.files import check_writable
from annealq.language import language_metrics
from annealq.pipeline import quantize
from annealq.summary import language_lines

DEFAULT_WINDOWS = 128


def check_text_options(args) -> str:
    """The text dataset's name, after the options that only images take are refused."""
    if args.arch != "transformer":
        raise ValueError(
            f"text dataset {args.dataset!r} has a causal language model: pass --arch transformer"
        )
    if args.dataset not in TEXT_DATASETS and args.data_dir is None:
        raise ValueError(
            f"unknown text dataset {args.dataset!r}: name pystdlib, or pass "
            f"--data-dir with a text file or folder"
        )
    for option in ("activation_bits", "dry_run", "max_cloud_seconds"):
        if getattr(args, option, None):
            raise ValueError(f"--{option.replace('_', '-')} is not supported for text yet")
    return args.dataset


def load_corpus(args):
    """``pystdlib`` from the data folder, or the text file or folder ``--data-dir``."""
    if args.dataset in TEXT_DATASETS:
        return load_text(args.dataset, data_dir=args.data_dir)
    return dataclasses.replace(load_text(path=args.data_dir), name=args.dataset)


def quantize_text(args, config, sampler, solver, store, execution):
    """Quantize the corpus's LM; ``(result, data, model, where the model came from)``."""
    data = load_corpus(args)
    if args.model:
        model = load_model(args.model, trust_pickle=getattr(args, "trust_pickle", False))
        origin = args.model
    else:
        model, path = reference_lm(data, seed=args.seed)
        origin = f"reference causal LM, seed {args.seed}, cached at {path}"
    context = model.position.num_embeddings if hasattr(model, "position") else 256
    evaluation = data.windows(context, limit=args.eval_windows or None)
    result = quantize(
        model,
        data,
        evaluation=evaluation,
        solver=sampler,
        solver_name=solver,
        config=dataclasses.replace(config, calibration_size=args.calibration or DEFAULT_WINDOWS),
        cache=store or False,
        quiet=args.quiet,
        **execution.to_dict(),
    )
    return result, data, model, origin


def run_train_text(args) -> int:
    check_text_options(args)
    check_writable("--out", args.out)
    data = load_corpus(args)
    start = time.perf_counter()
    model, path = reference_lm(data, seed=args.seed, retrain=True)
    seconds = time.perf_counter() - start
    windows = data.windows(model.position.num_embeddings, limit=512)
    print(
        f"{data.name} causal LM: trained in {seconds:.1f} s (seed {args.seed}); cached at "
        f"{path}" + language_lines(language_metrics(model, {}, windows), "")
    )
    if args.out:
        save_model(model, args.out)
        print(f"model written to {args.out}")
    return 0
