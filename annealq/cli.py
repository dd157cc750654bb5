"""The ``annealq`` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from annealq.credentials import load_env_file, redact
from annealq.errors import AnnealqError


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging()
    try:
        load_env_file()
        return args.run(args)
    except (AnnealqError, ValueError, OSError) as exc:
        message = " ".join(redact(str(exc)).splitlines()) or type(exc).__name__
        print(f"annealq: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # solved neurons are cached: a rerun resumes
        print("annealq: interrupted", file=sys.stderr)
        return 130


def _configure_logging() -> None:
    # annealq's own warnings only: third-party loggers (urllib3's retries, the cloud
    # client) stay quiet; their failures reach the user as annealq's error message.
    logger = logging.getLogger("annealq")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("annealq: warning: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="annealq", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="quantize the bundled digits MLP: RTN vs QUBO")
    demo.add_argument("--bits", type=int, nargs="+", default=[2, 4])
    demo.add_argument("--calibration", type=int, default=500,
                      help="calibration images drawn from the training split")
    demo.add_argument("--seed", type=int, default=0)
    _solver_options(demo, default="neal")
    _cache_options(demo)
    demo.set_defaults(run=_run_demo)

    cache = commands.add_parser("cache", help="inspect or clear the solved-QUBO cache")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True)
    stats = cache_commands.add_parser("stats", help="entries, size, last run's hits/misses")
    stats.add_argument("--cache", metavar="PATH", help="cache file (default: $ANNEALQ_CACHE "
                       "or the per-user cache folder)")
    stats.set_defaults(run=_run_cache_stats)
    clear = cache_commands.add_parser("clear", help="delete cached results")
    clear.add_argument("--cache", metavar="PATH", help="cache file")
    clear.add_argument("--solver", help="clear only this solver's entries")
    clear.set_defaults(run=_run_cache_clear)

    solvers = commands.add_parser("solvers", help="list solvers and whether they can run here")
    solvers.set_defaults(run=_run_solvers)

    quantize = commands.add_parser("quantize", help="quantize a model's nn.Linear layers and "
                                   "report errors, accuracy and time")
    quantize.add_argument("--dataset", required=True, metavar="NAME",
                          help="digits, mnist, fashion-mnist, emnist or cifar10")
    quantize.add_argument("--model", metavar="FILE", help="a torch.save(model) or TorchScript "
                          "file (default: the dataset's reference MLP, trained once and cached)")
    quantize.add_argument("--bits", type=int, required=True, help="weight bits, 1..8")
    _solver_options(quantize, default="auto")
    quantize.add_argument("--method", default="qubo",
                          help="qubo (default), rtn, gptq or adaround")
    quantize.add_argument("--window-bits", type=int, default=1, metavar="K",
                          help="binary variables per weight: 1 (default) is the paper's "
                               "down/up QUBO; K > 1 lets each weight move within 2^K grid "
                               "values (still an exact QUBO)")
    quantize.add_argument("--scheme", choices=["reference", "symmetric", "affine"],
                          default="reference",
                          help="weight grid: the paper's (default), symmetric, or affine "
                               "min/max (two levels {min, max} at one bit)")
    quantize.add_argument("--per-channel", action="store_true",
                          help="one grid per output neuron instead of one per layer")
    quantize.add_argument("--start", choices=["rtn", "gptq"], default=None,
                          help="warm start of the QUBO solver (gptq: windows centred on "
                               "GPTQ's solution, never worse than it)")
    quantize.add_argument("--calibration", type=int, default=1000, metavar="N",
                          help="calibration images drawn from the training split (default 1000)")
    quantize.add_argument("--activation-bits", type=int, default=None, metavar="B",
                          help="round each quantized layer's input to B bits (8: int8, "
                               "asymmetric min/max per tensor); default float inputs")
    _cache_options(quantize)
    quantize.add_argument("--report", metavar="FILE.json", help="write the report here")
    quantize.add_argument("--out", metavar="FILE",
                          help="save the quantized model (integers, steps, structure) here")
    _data_options(quantize)
    quantize.add_argument("--quiet", action="store_true", help="no progress bar")
    quantize.set_defaults(run=_run_quantize)

    train = commands.add_parser("train", help="train (again) and cache a dataset's reference MLP")
    train.add_argument("--dataset", required=True, metavar="NAME")
    train.add_argument("--out", metavar="FILE",
                       help="also save the whole module here (torch.save(model))")
    _data_options(train)
    train.set_defaults(run=_run_train)

    from annealq.bench import add_bench_parser

    add_bench_parser(commands)
    return parser


def _data_options(parser) -> None:
    parser.add_argument("--data-dir", metavar="DIR", help="folder holding the dataset files "
                        "(default: $ANNEALQ_DATA, else ~/.cache/annealq/data)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the reference model's "
                        "training, the calibration draw and the solver (default 0)")


def _solver_options(parser, *, default: str) -> None:
    parser.add_argument("--solver", default=default,
                        help=f"solver name (see 'annealq solvers'; default {default}; "
                             "'auto' = hybrid with a token, else neal)")
    parser.add_argument("--fallback", default=None, metavar="SOLVER",
                        help="solver to use when --solver cannot run here (e.g. neal)")


def _cache_options(parser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--cache", metavar="PATH", help="cache file (default: $ANNEALQ_CACHE "
                       "or the per-user cache folder)")
    group.add_argument("--no-cache", action="store_true", help="solve everything again")


def _cache_argument(args):
    """The ``cache=`` argument of the API for ``--cache``/``--no-cache``."""
    return False if getattr(args, "no_cache", False) else args.cache


def _store(args):
    from annealq.cache import CacheStore, default_cache_path

    path = args.cache or default_cache_path()
    if not os.path.exists(path):
        raise ValueError(f"no cache at {path}")
    return CacheStore(path)


def _run_cache_stats(args) -> int:
    with _store(args) as store:
        stats = store.stats()
    print(f"cache {stats['path']}: {stats['entries']} entries, {stats['bytes'] / 1e6:.2f} MB")
    for solver, count in sorted(stats["solvers"].items()):
        print(f"  {solver:<20}{count:>8} entries")
    last = stats.get("last_run")
    if last:
        total = last["hits"] + last["misses"]
        rate = f" ({last['hits'] / total:.0%} hits)" if total else ""
        print(f"last run: {last['hits']} hits, {last['misses']} misses{rate}")
    return 0


def _run_cache_clear(args) -> int:
    with _store(args) as store:
        removed = store.clear(solver=args.solver)
    scope = f" of solver {args.solver!r}" if args.solver else ""
    print(f"removed {removed} cache entries{scope}")
    return 0


def _run_solvers(args) -> int:
    from annealq.credentials import token_configured
    from annealq.registry import available_samplers

    statuses = available_samplers()
    width = max(len(s.name) for s in statuses) + 2
    for status in statuses:
        state = "yes" if status.available else "no "
        why = f"  ({status.reason})" if status.reason else ""
        print(f"{status.name:<{width}}{state}  {status.description}{why}")
    print(f"\nD-Wave API token: {'configured' if token_configured() else 'not configured'}")
    return 0


def _run_demo(args) -> int:
    from annealq.datasets import load_digits
    from annealq.grid import validate_bits
    from annealq.models import accuracy, train_mlp
    from annealq.pipeline import quantize, rtn_model
    from annealq.registry import resolve_sampler

    for bits in args.bits:
        validate_bits(bits)
    solver, sampler = resolve_sampler(args.solver, fallback=args.fallback)
    data = load_digits(seed=args.seed)
    model = train_mlp(data.x_train, data.y_train, hidden=(64,), seed=args.seed)
    calibration = data.calibration(args.calibration, seed=args.seed)
    print(f"digits MLP {data.n_features}-64-{data.n_classes}, float accuracy "
          f"{accuracy(model, data.x_test, data.y_test):.1%} on {len(data.y_test)} test images; "
          f"{len(calibration)} calibration images")
    for bits in args.bits:
        start = time.perf_counter()
        result = quantize(model, calibration, bits=bits, solver=sampler, seed=args.seed,
                          cache=_cache_argument(args), solver_name=solver)
        seconds = time.perf_counter() - start
        rtn_acc = accuracy(rtn_model(model, calibration, bits=bits), data.x_test, data.y_test)
        qubo_acc = accuracy(result.model, data.x_test, data.y_test)
        print(f"\nint{bits}  accuracy: RTN {rtn_acc:.1%}  QUBO {qubo_acc:.1%}  "
              f"(solver {solver}, {seconds:.1f} s, cache {result.cache_hits} hits / "
              f"{result.cache_misses} misses)")
        if result.report.get("emulation"):
            print(f"  NOTE: {result.report['emulation_note']}")
        print(f"  {'layer':<6}{'shape':>10}{'RTN error':>14}{'QUBO error':>14}{'reduction':>11}")
        for layer in result.layers:
            shape = f"{layer.in_features}x{layer.out_features}"
            print(f"  {layer.name:<6}{shape:>10}{layer.rtn_energy:>14.2f}{layer.energy:>14.2f}"
                  f"{layer.rtn_energy / max(layer.energy, 1e-300):>10.1f}x")
    return 0


def _grid_options(args) -> dict:
    """The formulation options the user changed from their defaults."""
    options = {"window_bits": args.window_bits, "scheme": args.scheme,
               "per_channel": args.per_channel}
    defaults = {"window_bits": 1, "scheme": "reference", "per_channel": False}
    return {k: v for k, v in options.items() if v != defaults[k]}


def _run_quantize(args) -> int:
    from annealq.activations import validate_activation_bits
    from annealq.datasets import load_dataset, validate_dataset
    from annealq.grid import validate_bits
    from annealq.models import load_model, reference_model
    from annealq.pipeline import METHODS, quantize
    from annealq.registry import resolve_sampler, solver_spec

    # everything the user typed is checked before any data is read or anything is solved
    validate_bits(args.bits)
    validate_activation_bits(args.activation_bits)
    if args.method not in METHODS:
        raise ValueError(f"unknown method {args.method!r}; choose one of {', '.join(METHODS)}")
    dataset = validate_dataset(args.dataset)
    if args.calibration <= 0:
        raise ValueError(f"--calibration must be positive, got {args.calibration}")
    if not 1 <= args.window_bits <= 16:
        raise ValueError(f"--window-bits must be from 1 to 16, got {args.window_bits}")
    if args.start is not None and args.method != "qubo":
        raise ValueError(f"--start applies to --method qubo, not {args.method!r}")
    for option, path in (("--report", args.report), ("--out", args.out)):
        _check_writable(option, path)
    solver, sampler = None, args.solver
    if args.method == "qubo" and args.solver != "auto":
        # fail fast (unknown name, no token) before any data is read; "auto" always runs
        # and is resolved by quantize() after the model is checked, so its warning
        # never comes before an error
        solver, sampler = resolve_sampler(args.solver, fallback=args.fallback)
    elif args.solver != "auto":
        solver_spec(args.solver)  # an unknown name is an error whatever the method

    data = load_dataset(dataset, data_dir=args.data_dir, seed=args.seed)
    if args.model:
        model, origin = load_model(args.model, example=data.x_test[:64]), args.model
    else:
        model, path = reference_model(data, seed=args.seed)
        origin = f"reference model, seed {args.seed}, cached at {path}"
    result = quantize(model, data, bits=args.bits, solver=sampler, solver_name=solver,
                      fallback=args.fallback, cache=_cache_argument(args), method=args.method,
                      activation_bits=args.activation_bits, calibration_size=args.calibration,
                      seed=args.seed, quiet=args.quiet, start=args.start,
                      **_grid_options(args))
    _print_summary(result, data, model, origin)
    if args.out:
        result.save(args.out)
        print(f"quantized model written to {args.out}")
    if args.report:
        _write_json(args.report, result.report)
        print(f"report written to {args.report}")
    return 0


def _run_train(args) -> int:
    from annealq.datasets import load_dataset
    from annealq.models import accuracy, describe, reference_model

    _check_writable("--out", args.out)
    data = load_dataset(args.dataset, data_dir=args.data_dir, seed=args.seed)
    start = time.perf_counter()
    model, path = reference_model(data, seed=args.seed, retrain=True)
    seconds = time.perf_counter() - start
    print(f"{data.name} MLP {describe(model)}: test accuracy "
          f"{accuracy(model, data.x_test, data.y_test):.2%}, trained in {seconds:.1f} s "
          f"(seed {args.seed}); cached at {path}")
    if args.out:
        import torch

        from annealq.export import atomic_write

        atomic_write(args.out, lambda stream: torch.save(model, stream))
        print(f"model written to {args.out}")
    return 0


def _check_writable(option: str, path) -> None:
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{option} {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"{option} {path} is a folder, not a file")


def _write_json(path, data) -> None:
    import json

    from annealq.export import atomic_write

    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    atomic_write(path, lambda stream: stream.write(text.encode()))


def _print_summary(result, data, model, origin) -> None:
    from annealq.models import describe

    report = result.report
    solver = report["solver"] or report["method"]
    inputs = (f"int{report['activation_bits']} activations" if report["activation_bits"]
              else "float activations")
    print(f"{data.name}: MLP {describe(model)} ({origin})")
    print(f"int{report['bits']} weights, {inputs}, method {report['method']}"
          + (f", solver {report['solver']}" if report["solver"] else "")
          + f"; {report['calibration_size']} calibration images from the training split, "
          f"{len(data.y_test)} test images")
    if report.get("emulation"):
        print(f"NOTE: {report['emulation_note']}")
    header = f"{'layer':<10}{'shape':>10}{'RTN error':>14}{solver + ' error':>16}" \
             f"{'reduction':>11}{'seconds':>9}{'cache hits':>12}"
    print("\n" + header)
    for layer in report["layers"]:
        shape = f"{layer['in_features']}x{layer['out_features']}"
        hits = f"{layer['cache']['hits']}/{layer['out_features']}" if report["solver"] else "-"
        print(f"{layer['name'] or '(model)':<10}{shape:>10}{layer['rtn_energy']:>14.6g}"
              f"{layer['energy']:>16.6g}{_ratio(layer['rtn_energy'], layer['energy']):>11}"
              f"{layer['solve_seconds']:>9.2f}{hits:>12}")
    for entry in report["not_quantized"]:
        print(f"not quantized: {entry['name']} ({entry['type']}, {entry['parameters']} "
              f"parameters: {entry['reason']})")
    accuracy = report.get("accuracy")
    if accuracy:
        print(f"\naccuracy: float {accuracy['float']:.2%}  RTN {accuracy['rtn']:.2%}  "
              f"{report['method']} {accuracy['quantized']:.2%}")
    timing, cache = report["timing"], report["cache"]
    print(f"time: {timing['total_seconds']:.1f} s in all, {timing['solve_seconds']:.1f} s "
          f"rounding; cache: {cache['hits']} hits, {cache['misses']} misses")


def _ratio(rtn: float, energy: float) -> str:
    if energy > 0:
        return f"{rtn / energy:.2f}x"
    return "exact" if rtn == 0 else "inf"


if __name__ == "__main__":
    sys.exit(main())
