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
        print(f"annealq: error: {redact(str(exc))}", file=sys.stderr)
        return 2


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
    return parser


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
        print(f"  {'layer':<6}{'shape':>10}{'RTN error':>14}{'QUBO error':>14}{'reduction':>11}")
        for layer in result.layers:
            shape = f"{layer.in_features}x{layer.out_features}"
            print(f"  {layer.name:<6}{shape:>10}{layer.rtn_energy:>14.2f}{layer.energy:>14.2f}"
                  f"{layer.rtn_energy / max(layer.energy, 1e-300):>10.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
