"""The ``annealq`` command line.

A command's module is loaded when that command runs (``annealq --help`` and
``annealq solvers`` start without torch or the Leap emulator): each subparser names its
runner as ``"module:function"``, resolved by :func:`_runner`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import subprocess
import sys
from pathlib import Path

from annealq.cli_options import (
    ACTIVATION_BITS,
    BITS,
    COUNT,
    SEED,
    WINDOW,
    arch_option,
    at_least,
    cache_options,
    checked,
    data_options,
    execution_options,
    onnx_options,
    solver_options,
)
from annealq.credentials import RedactingFilter, load_env_file, redact
from annealq.errors import AnnealqError
from annealq.interrupts import deferred_interrupts

_QUANTIZE = "annealq.commands"
_INSPECT = "annealq.commands_info"
_BENCH_HINT = ("the benchmarks run from a checkout of the repository: "
               "python -m benchmarks paper|solvers|bounds ... (see benchmarks/README.md)")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["leap-emulator"]:  # the emulator parses its own options
        return _runner("annealq.testing.leap.emulator:main")(argv[1:])
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # -h (0), or one "annealq: error:" line already printed (2)
        return exc.code if isinstance(exc.code, int) else 2
    except KeyboardInterrupt:
        print("annealq: interrupted", file=sys.stderr)
        return 130
    _configure_logging()
    try:
        load_env_file()
        return _runner(args.run)(args)
    except (AnnealqError, ValueError, OSError) as exc:
        message = " ".join(redact(str(exc)).splitlines()) or type(exc).__name__
        print(f"annealq: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # solved neurons are cached: a rerun resumes
        print("annealq: interrupted", file=sys.stderr)
        return 130


def _runner(target: str):
    """The function ``"module:function"`` names, its module imported now."""
    module, _, function = target.partition(":")
    with deferred_interrupts():  # the command's modules: torch, the Ocean stack
        return getattr(importlib.import_module(module), function)


def _bench(argv) -> int:
    """``annealq bench …`` runs ``python -m benchmarks …`` when this is a checkout (the
    harness is not part of the installed package), else says how to."""
    root = _checkout()
    if root is None:
        print(f"annealq: error: {_BENCH_HINT}", file=sys.stderr)
        return 2
    path = os.pathsep.join(filter(None, (str(root), os.environ.get("PYTHONPATH"))))
    command = [sys.executable, "-m", "benchmarks", *argv]
    return subprocess.run(command, env={**os.environ, "PYTHONPATH": path}).returncode


def _checkout() -> Path | None:
    """The repository this runs from (the working folder, or the one an editable install
    points at), if it holds the benchmark harness."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (root / "benchmarks" / "__main__.py").is_file() and (root / "annealq").is_dir():
            return root
    return None


def _configure_logging() -> None:
    # annealq's own warnings only: third-party loggers (urllib3's retries, the cloud
    # client) stay quiet; their failures reach the user as annealq's error message.
    logger = logging.getLogger("annealq")
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("annealq: warning: %(message)s"))
        handler.addFilter(RedactingFilter())
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


class _Parser(argparse.ArgumentParser):
    """argparse with one ``annealq: error:`` line (naming the flag) instead of a usage
    block; subcommand parsers are of the same class."""

    def error(self, message):
        print(f"annealq: error: {message} (see '{self.prog} -h')", file=sys.stderr)
        sys.exit(2)


class _StderrHandler(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment, not the one of its creation (``main``
    may run many times in one process, as in the tests)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="annealq", description="Quantize a model's layers as exact QUBOs "
                     "and solve them (run 'annealq COMMAND -h' for a command's options).")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="quantize the bundled digits MLP: RTN vs QUBO")
    demo.add_argument("--bits", type=BITS, nargs="+", default=[2, 4])
    demo.add_argument("--calibration", type=COUNT, default=500,
                      help="calibration images drawn from the training split")
    demo.add_argument("--seed", type=SEED, default=0)
    solver_options(demo, default="auto")
    demo.add_argument("--paper", action="store_true",
                      help="the paper's setting: the down/up QUBO, 'auto' = hybrid or neal")
    cache_options(demo)
    demo.set_defaults(run=f"{_QUANTIZE}:run_demo")

    cache = commands.add_parser("cache", help="inspect or clear the solved-QUBO cache")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True)
    stats = cache_commands.add_parser("stats", help="entries, size, last run's hits/misses")
    stats.add_argument("--cache", metavar="PATH", help="cache file (default: $ANNEALQ_CACHE "
                       "or the per-user cache folder)")
    stats.set_defaults(run=f"{_INSPECT}:run_cache_stats")
    clear = cache_commands.add_parser("clear", help="delete cached results")
    clear.add_argument("--cache", metavar="PATH", help="cache file")
    clear.add_argument("--solver", help="clear only this solver's entries")
    clear.set_defaults(run=f"{_INSPECT}:run_cache_clear")
    check = cache_commands.add_parser("check", help="SQLite's integrity check and every "
                                      "entry's checksum (exit 1 when damaged)")
    check.add_argument("--cache", metavar="PATH", help="cache file")
    check.set_defaults(run=f"{_INSPECT}:run_cache_check")
    repair = cache_commands.add_parser("repair", help="keep the valid entries: copy them to "
                                       "a fresh file and swap it in (no run may use the cache)")
    repair.add_argument("--cache", metavar="PATH", help="cache file")
    repair.set_defaults(run=f"{_INSPECT}:run_cache_repair")

    commands.add_parser("leap-emulator", add_help=False,
                        help="serve a local Leap (SAPI) emulator on 127.0.0.1: classical "
                             "answers, not quantum hardware (see 'annealq leap-emulator -h')")

    solvers = commands.add_parser("solvers", help="list solvers and whether they can run here")
    solvers.set_defaults(run=f"{_INSPECT}:run_solvers")

    quantize = commands.add_parser("quantize", help="quantize a model's nn.Linear layers and "
                                   "report errors, accuracy and time")
    quantize.add_argument("--dataset", required=True, metavar="NAME",
                          help="digits, mnist, fashion-mnist, emnist, cifar10 or pystdlib")
    quantize.add_argument("--model", metavar="FILE", help="a model file of annealq.save_model or "
                          "TorchScript (default: the dataset's reference model, cached)")
    quantize.add_argument("--trust-pickle", action="store_true",
                          help="also read a --model pickled with torch.save(model): that "
                               "can run arbitrary code, so only for files you trust")
    quantize.add_argument("--trust-torchscript", action="store_true",
                          help="also read a TorchScript --model: its own code runs while it "
                               "is loaded and checked, so only for files you trust")
    quantize.add_argument("--bits", type=BITS, required=True, help="weight bits, 1..8")
    arch_option(quantize)
    solver_options(quantize, default="auto")
    quantize.add_argument("--method", default="qubo",
                          help="qubo (default), rtn, gptq, cd or adaround")
    quantize.add_argument("--window-bits", type=WINDOW, default=1, metavar="K",
                          help="binary variables per weight: 1 (default) is the paper's "
                               "down/up QUBO; K > 1 lets each weight move within 2^K grid "
                               "values (still an exact QUBO)")
    quantize.add_argument("--scheme", choices=["reference", "symmetric", "affine"],
                          default="reference",
                          help="weight grid: the paper's (default), symmetric, or affine "
                               "min/max (two levels {min, max} at one bit)")
    quantize.add_argument("--per-channel", action="store_true",
                          help="one grid per output neuron instead of one per layer")
    quantize.add_argument("--group-size", type=int, default=None, metavar="G",
                          help="one weight step per G consecutive inputs of each row "
                               "(GPTQ/AWQ-style int4 groups; still an exact QUBO)")
    quantize.add_argument("--ridge", type=float, default=0.0, metavar="R",
                          help="pull the QUBO's weights towards the float ones by R x the "
                               "mean input energy (a regulariser for small calibration "
                               "sets; default 0: the output error alone)")
    quantize.add_argument("--start", choices=["rtn", "gptq", "kbest"], default=None,
                          help="warm start of the QUBO solver (gptq, kbest: windows centred "
                               "on its solution, never worse than it)")
    quantize.add_argument("--polish", default=None, metavar="SOLVER",
                          help="with --start kbest: polish kbest's answer window by window "
                               "with SOLVER (neal, qpu, hybrid, exact, ...)")
    quantize.add_argument("--paper", action="store_true",
                          help="the paper's setting: the down/up QUBO solved by 'auto' "
                               "(default: kbest's answer polished by neal, or hybrid-nl "
                               "with a token)")
    quantize.add_argument("--time-limit", type=float, default=None, metavar="S",
                          help="seconds per layer for the search solvers (lns, exact-bb): "
                               "the best found within it, never worse than the start")
    quantize.add_argument("--act-order", choices=["on", "off"], default=None,
                          help="GPTQ's column order (gptq, cd, --start gptq); default: GPTQ "
                               "tuned per layer over act-order on/off x damping")
    quantize.add_argument("--damp", type=float, default=None, metavar="D",
                          help="GPTQ's relative damping (default: tuned over 0.01, 0.001, "
                               "0.0001); '--act-order on --damp 0.01' is the old fixed setting")
    quantize.add_argument("--clip-search", action="store_true",
                          help="scale each row's step by its weights' best clipping ratio "
                               "(MSE, 1.0 down to 0.2); for gptq, cd and --start gptq one "
                               "more axis of GPTQ's tuning")
    quantize.add_argument("--refit-steps", action="store_true",
                          help="after rounding, re-fit each row's step and the bias to the "
                               "integers and re-round, alternately (never worse)")
    quantize.add_argument("--calibration", type=COUNT, metavar="N", help="calibration "
                          "images from the training split (default 1000; text: 128 windows)")
    quantize.add_argument("--eval-windows", type=checked("count", at_least(0)), default=512,
                          metavar="N", help="text: test windows scored (default 512; 0: all)")
    quantize.add_argument("--activation-bits", type=ACTIVATION_BITS, default=None,
                          metavar="B",
                          help="round each quantized layer's input to B bits (8: int8, "
                               "asymmetric min/max per tensor); default float inputs")
    cache_options(quantize)
    quantize.add_argument("--report", metavar="FILE.json", help="write the report here")
    quantize.add_argument("--out", metavar="FILE",
                          help="save the quantized model (integers, steps, structure) here")
    data_options(quantize)
    execution_options(quantize)
    onnx_options(quantize, required=False)
    quantize.add_argument("--quiet", action="store_true", help="no progress bar")
    quantize.set_defaults(run=f"{_QUANTIZE}:run_quantize")

    train = commands.add_parser("train", help="train (again) and cache a dataset's reference MLP")
    train.add_argument("--dataset", required=True, metavar="NAME")
    arch_option(train)
    train.add_argument("--out", metavar="FILE",
                       help="also save the model here (annealq.save_model: safetensors, no pickle)")
    data_options(train)
    train.set_defaults(run=f"{_QUANTIZE}:run_train")

    trial = commands.add_parser("leap-trial", help="a budget-capped trial on Leap (needs a "
                                "token): the digits model on qpu and hybrid-nl from kbest")
    trial.add_argument("--max-cloud-seconds", type=float, required=True, metavar="S",
                       help="billed seconds for the whole trial, shared equally by its runs")
    trial.add_argument("--out", required=True, metavar="FILE.json", help="the trial record")
    trial.set_defaults(run="annealq.leap_trial:run_leap_trial")

    export = commands.add_parser("export", help="write a saved quantized model as an ONNX "
                                 "file with integer weights (runs in ONNX Runtime)")
    export.add_argument("input", metavar="IN", help="a quantized model file (quantize --out)")
    onnx_options(export, required=True)
    export.add_argument("--model", metavar="FILE", help="the float model it was quantized "
                        "from, for models that are not nn.Sequentials of standard layers")
    export.add_argument("--dataset", metavar="NAME", help="or: that dataset's reference "
                        "model (--arch) as the float model")
    arch_option(export)
    data_options(export)
    export.set_defaults(run="annealq.export_command:run_export")


    commands.add_parser("bench", add_help=False, help="from a checkout: the benchmark harness "
                        "(python -m benchmarks paper|solvers|bounds ...)")
    return parser
