"""The ``annealq quantize`` command's options (:func:`add_quantize`, for
:func:`annealq.cli_parser.build_parser`): the dataset and model, the weight grid, the
method and solver with their warm start and polishing, GPTQ's settings, calibration,
activation bits, cache, outputs and execution.
"""

from __future__ import annotations

from annealq.cli_options import (
    ACTIVATION_BITS,
    BITS,
    COUNT,
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

QUANTIZE = "annealq.commands"  # the module that runs demo, quantize and train


def add_quantize(commands) -> None:
    """Add ``quantize`` and its options to the subparsers ``commands``."""
    quantize = commands.add_parser(
        "quantize", help="quantize a model's nn.Linear layers and report errors, accuracy and time"
    )
    quantize.add_argument(
        "--dataset",
        required=True,
        metavar="NAME",
        help="digits, mnist, fashion-mnist, emnist, cifar10 or pystdlib",
    )
    quantize.add_argument(
        "--model",
        metavar="FILE",
        help="a model file of annealq.save_model or "
        "TorchScript (default: the dataset's reference model, cached)",
    )
    quantize.add_argument(
        "--trust-pickle",
        action="store_true",
        help="also read a --model pickled with torch.save(model): that "
        "can run arbitrary code, so only for files you trust",
    )
    quantize.add_argument(
        "--trust-torchscript",
        action="store_true",
        help="also read a TorchScript --model: its own code runs while it "
        "is loaded and checked, so only for files you trust",
    )
    quantize.add_argument("--bits", type=BITS, required=True, help="weight bits, 1..8")
    arch_option(quantize)
    solver_options(quantize, default="auto")
    quantize.add_argument(
        "--method", default="qubo", help="qubo (default), rtn, gptq, cd or adaround"
    )
    quantize.add_argument(
        "--window-bits",
        type=WINDOW,
        default=1,
        metavar="K",
        help="binary variables per weight: 1 (default) is the paper's "
        "down/up QUBO; K > 1 lets each weight move within 2^K grid "
        "values (still an exact QUBO)",
    )
    quantize.add_argument(
        "--scheme",
        choices=["reference", "symmetric", "affine"],
        default="reference",
        help="weight grid: the paper's (default), symmetric, or affine "
        "min/max (two levels {min, max} at one bit)",
    )
    quantize.add_argument(
        "--per-channel",
        action="store_true",
        help="one grid per output neuron instead of one per layer",
    )
    quantize.add_argument(
        "--group-size",
        type=int,
        default=None,
        metavar="G",
        help="one weight step per G consecutive inputs of each row "
        "(GPTQ/AWQ-style int4 groups; still an exact QUBO)",
    )
    quantize.add_argument(
        "--ridge",
        type=float,
        default=0.0,
        metavar="R",
        help="pull the QUBO's weights towards the float ones by R x the "
        "mean input energy (a regulariser for small calibration "
        "sets; default 0: the output error alone)",
    )
    quantize.add_argument(
        "--start",
        choices=["rtn", "gptq", "kbest"],
        default=None,
        help="warm start of the QUBO solver (gptq, kbest: windows centred "
        "on its solution, never worse than it)",
    )
    quantize.add_argument(
        "--polish",
        default=None,
        metavar="SOLVER",
        help="with --start kbest: polish kbest's answer window by window "
        "with SOLVER (neal, qpu, hybrid, exact, ...)",
    )
    quantize.add_argument(
        "--paper",
        action="store_true",
        help="the paper's setting: the down/up QUBO solved by 'auto' "
        "(default: kbest's answer polished by neal, or hybrid-nl "
        "with a token)",
    )
    quantize.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="S",
        help="seconds per layer for the search solvers (lns, exact-bb): "
        "the best found within it, never worse than the start",
    )
    quantize.add_argument(
        "--act-order",
        choices=["on", "off"],
        default=None,
        help="GPTQ's column order (gptq, cd, --start gptq); default: GPTQ "
        "tuned per layer over act-order on/off x damping",
    )
    quantize.add_argument(
        "--damp",
        type=float,
        default=None,
        metavar="D",
        help="GPTQ's relative damping (default: tuned over 0.01, 0.001, "
        "0.0001); '--act-order on --damp 0.01' is the old fixed setting",
    )
    quantize.add_argument(
        "--clip-search",
        action="store_true",
        help="scale each row's step by its weights' best clipping ratio "
        "(MSE, 1.0 down to 0.2); for gptq, cd and --start gptq one "
        "more axis of GPTQ's tuning",
    )
    quantize.add_argument(
        "--refit-steps",
        action="store_true",
        help="after rounding, re-fit each row's step and the bias to the "
        "integers and re-round, alternately (never worse)",
    )
    quantize.add_argument(
        "--calibration",
        type=COUNT,
        metavar="N",
        help="calibration images from the training split (default 1000; text: 128 windows)",
    )
    quantize.add_argument(
        "--eval-windows",
        type=checked("count", at_least(0)),
        default=512,
        metavar="N",
        help="text: test windows scored (default 512; 0: all)",
    )
    quantize.add_argument(
        "--activation-bits",
        type=ACTIVATION_BITS,
        default=None,
        metavar="B",
        help="round each quantized layer's input to B bits (8: int8, "
        "asymmetric min/max per tensor); default float inputs",
    )
    cache_options(quantize)
    quantize.add_argument("--report", metavar="FILE.json", help="write the report here")
    quantize.add_argument(
        "--out", metavar="FILE", help="save the quantized model (integers, steps, structure) here"
    )
    data_options(quantize)
    execution_options(quantize)
    onnx_options(quantize, required=False)
    quantize.add_argument("--quiet", action="store_true", help="no progress bar")
    quantize.set_defaults(run=f"{QUANTIZE}:run_quantize")
