"""The ``annealq`` command line's parser (:func:`build_parser`): every command with its
options, each naming its runner as ``"module:function"`` for :mod:`annealq.cli` to load
when the command runs, and an ``annealq: error:`` line (naming the flag) for bad input.

Example:
    >>> args = build_parser().parse_args(["quantize", "--dataset", "digits", "--bits", "2"])
    >>> args.run, args.bits, args.method
    ('annealq.commands:run_quantize', 2, 'qubo')
"""

from __future__ import annotations

import argparse
import sys

from annealq.cli_options import (
    BITS,
    COUNT,
    SEED,
    arch_option,
    cache_options,
    data_options,
    onnx_options,
    solver_options,
)
from annealq.cli_quantize import QUANTIZE, add_quantize

_INSPECT = "annealq.commands_info"


class Parser(argparse.ArgumentParser):
    """argparse with one ``annealq: error:`` line (naming the flag) instead of a usage
    block; subcommand parsers are of the same class."""

    def error(self, message):
        print(f"annealq: error: {message} (see '{self.prog} -h')", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``annealq``'s command line; each command sets ``run``."""
    parser = Parser(
        prog="annealq",
        description="Quantize a model's layers as exact QUBOs "
        "and solve them (run 'annealq COMMAND -h' for a command's options).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="quantize the bundled digits MLP: RTN vs QUBO")
    demo.add_argument("--bits", type=BITS, nargs="+", default=[2, 4])
    demo.add_argument(
        "--calibration",
        type=COUNT,
        default=500,
        help="calibration images drawn from the training split",
    )
    demo.add_argument("--seed", type=SEED, default=0)
    solver_options(demo, default="auto")
    demo.add_argument(
        "--paper",
        action="store_true",
        help="the paper's setting: the down/up QUBO, 'auto' = hybrid or neal",
    )
    cache_options(demo)
    demo.set_defaults(run=f"{QUANTIZE}:run_demo")

    cache = commands.add_parser("cache", help="inspect or clear the solved-QUBO cache")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True)
    stats = cache_commands.add_parser("stats", help="entries, size, last run's hits/misses")
    stats.add_argument(
        "--cache",
        metavar="PATH",
        help="cache file (default: $ANNEALQ_CACHE or the per-user cache folder)",
    )
    stats.set_defaults(run=f"{_INSPECT}:run_cache_stats")
    clear = cache_commands.add_parser("clear", help="delete cached results")
    clear.add_argument("--cache", metavar="PATH", help="cache file")
    clear.add_argument("--solver", help="clear only this solver's entries")
    clear.set_defaults(run=f"{_INSPECT}:run_cache_clear")
    check = cache_commands.add_parser(
        "check", help="SQLite's integrity check and every entry's checksum (exit 1 when damaged)"
    )
    check.add_argument("--cache", metavar="PATH", help="cache file")
    check.set_defaults(run=f"{_INSPECT}:run_cache_check")
    repair = cache_commands.add_parser(
        "repair",
        help="keep the valid entries: copy them to "
        "a fresh file and swap it in (no run may use the cache)",
    )
    repair.add_argument("--cache", metavar="PATH", help="cache file")
    repair.set_defaults(run=f"{_INSPECT}:run_cache_repair")

    commands.add_parser(
        "leap-emulator",
        add_help=False,
        help="serve a local Leap (SAPI) emulator on 127.0.0.1: classical "
        "answers, not quantum hardware (see 'annealq leap-emulator -h')",
    )

    solvers = commands.add_parser("solvers", help="list solvers and whether they can run here")
    solvers.set_defaults(run=f"{_INSPECT}:run_solvers")

    add_quantize(commands)

    train = commands.add_parser("train", help="train (again) and cache a dataset's reference MLP")
    train.add_argument("--dataset", required=True, metavar="NAME")
    arch_option(train)
    train.add_argument(
        "--out",
        metavar="FILE",
        help="also save the model here (annealq.save_model: safetensors, no pickle)",
    )
    data_options(train)
    train.set_defaults(run=f"{QUANTIZE}:run_train")

    trial = commands.add_parser(
        "leap-trial",
        help="a budget-capped trial on Leap (needs a "
        "token): the digits model on qpu and hybrid-nl from kbest",
    )
    trial.add_argument(
        "--max-cloud-seconds",
        type=float,
        required=True,
        metavar="S",
        help="billed seconds for the whole trial, shared equally by its runs",
    )
    trial.add_argument("--out", required=True, metavar="FILE.json", help="the trial record")
    trial.set_defaults(run="annealq.leap_trial:run_leap_trial")

    export = commands.add_parser(
        "export",
        help="write a saved quantized model as an ONNX "
        "file with integer weights (runs in ONNX Runtime)",
    )
    export.add_argument("input", metavar="IN", help="a quantized model file (quantize --out)")
    onnx_options(export, required=True)
    export.add_argument(
        "--model",
        metavar="FILE",
        help="the float model it was quantized "
        "from, for models that are not nn.Sequentials of standard layers",
    )
    export.add_argument(
        "--dataset",
        metavar="NAME",
        help="or: that dataset's reference model (--arch) as the float model",
    )
    arch_option(export)
    data_options(export)
    export.set_defaults(run="annealq.export_command:run_export")

    commands.add_parser(
        "bench",
        add_help=False,
        help="from a checkout: the benchmark harness "
        "(python -m benchmarks paper|solvers|bounds ...)",
    )
    return parser
