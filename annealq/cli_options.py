"""The command line's shared option groups and argument types (:mod:`annealq.cli`)."""

from __future__ import annotations

import argparse

from annealq.grid import MAX_WINDOW_BITS, validate_activation_bits, validate_bits


def checked(name: str, check):
    """An argparse ``type`` that parses an int and applies ``check`` (a ValueError's
    message becomes argparse's ``argument --flag: …`` line)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        try:
            check(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    parse.__name__ = name
    return parse


def at_least(low: int, high: int | None = None):
    def check(value):
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise ValueError(f"must be an integer {bound}, got {value}")

    return check


BITS = checked("bits", validate_bits)
SEED = checked("seed", at_least(0, 2**31 - 1))  # neal's seeds are below 2**31
COUNT = checked("count", at_least(1))
WINDOW = checked("window bits", at_least(1, MAX_WINDOW_BITS))
ACTIVATION_BITS = checked("activation bits", validate_activation_bits)


def arch_option(parser) -> None:
    parser.add_argument(
        "--arch",
        choices=["mlp", "cnn", "transformer"],
        default="mlp",
        help="the reference model: the dataset's MLP (default), its CNN "
        "(digits, cifar10) or a text's byte-level causal LM (pystdlib)",
    )


def onnx_options(parser, *, required: bool) -> None:
    parser.add_argument(
        "--onnx",
        metavar="OUT.onnx",
        required=required,
        help="write the quantized model as ONNX: INT2/INT4/INT8 weights, "
        "DequantizeLinear scales (opset 25)",
    )
    parser.add_argument(
        "--int2-storage",
        choices=["int2", "int4"],
        default="int2",
        help="ONNX type of int1-int2 weights (int4: for runtimes without INT2)",
    )


def data_options(parser) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder of the dataset files (default:"
        " $ANNEALQ_DATA, else ~/.cache/annealq/data); text: any file or folder",
    )
    parser.add_argument(
        "--seed",
        type=SEED,
        default=0,
        help="seed of the reference model's "
        "training, the calibration draw and the solver (default 0)",
    )


def solver_options(parser, *, default: str) -> None:
    parser.add_argument(
        "--solver",
        default=default,
        help=f"solver name (see 'annealq solvers'; default {default}; "
        "'auto' = hybrid with a token, else neal)",
    )
    parser.add_argument(
        "--fallback",
        default=None,
        metavar="SOLVER",
        help="solver to use when --solver cannot run here (e.g. neal)",
    )


def execution_options(parser) -> None:
    group = parser.add_argument_group("where problems run (results do not depend on it)")
    group.add_argument(
        "--solver-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a solver parameter (num_reads=100, time_limit=5, "
        "chain_strength=2.0, ...); repeatable",
    )
    group.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="solve chunks of each layer on N local worker processes",
    )
    group.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="solve on a running Dask cluster (tcp://host:port)",
    )
    group.add_argument(
        "--max-in-flight",
        type=int,
        default=8,
        metavar="N",
        help="cloud problems submitted and not yet answered, at most (8)",
    )
    group.add_argument(
        "--no-pack",
        action="store_true",
        help="one neuron per cloud problem (default: several per hybrid "
        "BQM or QPU anneal, to cut billed time)",
    )
    group.add_argument(
        "--max-cloud-seconds",
        type=float,
        metavar="S",
        help="billed seconds the run may spend: a plan over it is refused, "
        "and what is left when it is spent goes to the fallback solver",
    )
    group.add_argument(
        "--problem-timeout",
        type=float,
        metavar="S",
        help="seconds a cloud problem may take before it is retried",
    )
    group.add_argument(
        "--retries",
        type=int,
        default=3,
        metavar="N",
        help="retries of a cloud problem after a transient fault (3)",
    )
    group.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (problems, variables, estimated billed seconds) "
        "and exit without submitting anything",
    )


def cache_options(parser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--cache",
        metavar="PATH",
        help="cache file (default: $ANNEALQ_CACHE or the per-user cache folder)",
    )
    group.add_argument("--no-cache", action="store_true", help="solve everything again")
