"""What each ``annealq`` subcommand does; :mod:`annealq.cli` parses the command line."""

from __future__ import annotations

import json
import logging
import os
import time

import torch

from annealq.cache import CacheStore, default_cache_path, open_cache
from annealq.cache.repair import check_cache, repair_cache
from annealq.cli_execution import dry_run, execution_from, parse_solver_params
from annealq.config import FORMULATION_DEFAULTS, QuantizeConfig
from annealq.credentials import token_configured
from annealq.data.datasets import load_dataset, load_digits, validate_dataset
from annealq.data.cnn import reference_cnn
from annealq.data.model_file import save_model
from annealq.data.models import accuracy, describe, load_model, reference_model, train_mlp
from annealq.files import check_writable, write_together
from annealq.grid import validate_bits
from annealq.pipeline import quantize, rtn_model
from annealq.quantized import writer
from annealq.registry import available_samplers, resolve_sampler, solver_spec
from annealq.report import calibration_warning

log = logging.getLogger("annealq.commands")


def _cache_argument(args):
    """The ``cache=`` argument of the API for ``--cache``/``--no-cache``."""
    return False if getattr(args, "no_cache", False) else args.cache


def _store(args):
    path = args.cache or default_cache_path()
    if not os.path.exists(path):
        raise ValueError(f"no cache at {path}")
    return CacheStore(path)


def run_cache_stats(args) -> int:
    with _store(args) as store:
        stats = store.stats()
    print(f"cache {stats['path']}: {stats['entries']} entries, {stats['bytes'] / 1e6:.2f} MB "
          "('annealq cache check' verifies them)")
    for solver, count in sorted(stats["solvers"].items()):
        print(f"  {solver:<20}{count:>8} entries")
    last = stats.get("last_run")
    if last:
        total = last["hits"] + last["misses"]
        rate = f" ({last['hits'] / total:.0%} hits)" if total else ""
        print(f"last run: {last['hits']} hits, {last['misses']} misses{rate}")
    return 0


def run_cache_clear(args) -> int:
    with _store(args) as store:
        removed = store.clear(solver=args.solver)
    scope = f" of solver {args.solver!r}" if args.solver else ""
    print(f"removed {removed} cache entries{scope}")
    return 0


def run_cache_check(args) -> int:
    report = check_cache(args.cache or default_cache_path())
    print("\n".join(report.lines()))
    return 0 if report.healthy else 1


def run_cache_repair(args) -> int:
    report, kept = repair_cache(args.cache or default_cache_path())
    dropped = report.bad_checksum + report.unreadable + report.lost_rows
    print(f"cache {report.path}: kept {kept} valid entries, dropped {dropped} "
          f"({report.bad_checksum} failing their checksum, {report.unreadable} unreadable, "
          f"{report.lost_rows} in damaged pages); the repaired file replaced the old one")
    return 0


def run_solvers(args) -> int:
    statuses = available_samplers()
    width = max(len(s.name) for s in statuses) + 2
    for status in statuses:
        state = "yes" if status.available else "no "
        why = f"  ({status.reason})" if status.reason else ""
        print(f"{status.name:<{width}}{state}  {status.description}{why}")
    print(f"\nD-Wave API token: {'configured' if token_configured() else 'not configured'}")
    return 0


def run_demo(args) -> int:
    for bits in args.bits:
        validate_bits(bits)
    solver, sampler = resolve_sampler(args.solver, fallback=args.fallback)
    store = open_cache(_cache_argument(args))  # an unusable cache is an error before work
    if store is not None:
        store.close()
    data = load_digits(seed=args.seed)
    _check_calibration(args.calibration, data)
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
    given = {"window_bits": args.window_bits, "scheme": args.scheme, "ridge": args.ridge,
             "per_channel": args.per_channel, "group_size": args.group_size,
             "clip_search": getattr(args, "clip_search", False)}
    return {k: v for k, v in given.items() if v != FORMULATION_DEFAULTS[k]}


def _gptq_options(args) -> dict:
    """GPTQ's setting where the user fixed it (otherwise it is tuned per layer)."""
    options = {}
    if getattr(args, "act_order", None) is not None:
        options["act_order"] = args.act_order == "on"
    if getattr(args, "damp", None) is not None:
        options["damp"] = args.damp
    return options


def run_quantize(args) -> int:
    # everything the user typed is checked before any data is read or anything is solved
    solver_params = parse_solver_params(args.solver_param)
    config = QuantizeConfig.from_options(
        bits=args.bits, method=args.method, solver=args.solver, fallback=args.fallback,
        start=args.start, activation_bits=args.activation_bits, solver_params=solver_params,
        time_limit=getattr(args, "time_limit", None),
        calibration_size=args.calibration, seed=args.seed, **_grid_options(args),
        **({"refit_steps": True} if getattr(args, "refit_steps", False) else {}),
        **_gptq_options(args))
    execution = execution_from(args)
    dataset = validate_dataset(args.dataset)
    _check_outputs(("--report", args.report), ("--out", args.out))
    solver, sampler = None, args.solver
    if args.method == "qubo" and args.solver != "auto":
        # fail fast (unknown name, no token) before any data is read; "auto" always runs
        # and is resolved by quantize() after the model is checked, so its warning
        # never comes before an error
        solver, sampler = resolve_sampler(args.solver, fallback=args.fallback,
                                          **solver_params)
    elif args.solver != "auto":
        solver_spec(args.solver)  # an unknown name is an error whatever the method

    # the cache is opened (and its folder checked) before any work; closed at the end
    store = open_cache(_cache_argument(args)) if args.method == "qubo" else False
    try:
        data = load_dataset(dataset, data_dir=args.data_dir, seed=args.seed)
        _check_calibration(args.calibration, data)
        if args.model:
            model = load_model(args.model, example=data.x_test[:64],
                               trust_pickle=getattr(args, "trust_pickle", False))
            origin = args.model
        else:
            model, path = _reference(args, data)
            origin = f"reference {args.arch.upper()}, seed {args.seed}, cached at {path}"
        check_model_fits(model, data, origin)
        if args.dry_run:
            print(dry_run(model, data.calibration(args.calibration, seed=args.seed), sampler,
                          solver, config, execution))
            return 0
        result = quantize(model, data, solver=sampler, solver_name=solver, config=config,
                          cache=store or False, quiet=args.quiet, **execution.to_dict())
    finally:
        if store:
            store.close()
    _print_summary(result, data, model, origin)
    outputs = [(path, write) for path, write in (
        (args.out, writer(result) if args.out else None),
        (args.report, _json_writer(result.report))) if path]
    write_together(outputs)  # all of them or none
    for option, path in (("quantized model", args.out), ("report", args.report)):
        if path:
            print(f"{option} written to {path}")
    return 0


def _check_outputs(*options) -> None:
    """Every output path writable, and no two the same, before any work starts."""
    seen = {}
    for option, path in options:
        check_writable(option, path)
        if path is not None:
            real = os.path.realpath(path)
            if real in seen:
                raise ValueError(f"{seen[real]} and {option} name the same file {path}")
            seen[real] = option


def _check_calibration(size: int, data) -> None:
    """An error for more calibration inputs than the training split holds; a warning for
    a very small calibration set (the report records it too)."""
    if size > len(data.x_train):
        raise ValueError(f"--calibration {size} is larger than the training split of "
                         f"{data.name} ({len(data.x_train)} images); pass at most "
                         f"{len(data.x_train)}")
    warning = calibration_warning(size)
    if warning:
        log.warning("%s", warning)


def check_model_fits(model, data, origin) -> None:
    """The model runs on the dataset's inputs and gives one output per class."""
    if not any(isinstance(m, torch.nn.Linear) for m in model.modules()):
        return  # quantize() says there is nothing to quantize
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    x = torch.as_tensor(data.x_test[:2], dtype=dtype)
    try:
        with torch.no_grad():
            out = model.eval()(x)
    except Exception as exc:  # a model's forward raises anything
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"model ({origin}) cannot run on {data.name}'s inputs of shape "
                         f"{tuple(x.shape[1:])}: {first}") from None
    width = out.shape[1] if isinstance(out, torch.Tensor) and out.ndim == 2 else None
    if width != data.n_classes:
        got = f"{width} outputs" if width is not None else (
            f"outputs of shape {tuple(getattr(out, 'shape', ()))}")
        raise ValueError(f"model ({origin}) gives {got} per input, but {data.name} has "
                         f"{data.n_classes} classes: it was not trained on this dataset")


def run_train(args) -> int:
    check_writable("--out", args.out)
    data = load_dataset(args.dataset, data_dir=args.data_dir, seed=args.seed)
    start = time.perf_counter()
    model, path = _reference(args, data, retrain=True)
    seconds = time.perf_counter() - start
    print(f"{data.name} {describe(model)}: test accuracy "
          f"{accuracy(model, data.x_test, data.y_test):.2%}, trained in {seconds:.1f} s "
          f"(seed {args.seed}); cached at {path}")
    if args.out:
        save_model(model, args.out)  # safetensors and a JSON architecture: no pickle
        print(f"model written to {args.out}")
    return 0


def _reference(args, data, retrain: bool = False):
    """The dataset's reference model of ``--arch`` (``mlp`` or ``cnn``) and its cache file."""
    build = reference_cnn if getattr(args, "arch", "mlp") == "cnn" else reference_model
    return build(data, seed=args.seed, retrain=retrain)


def _json_writer(data):
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    return lambda stream: stream.write(text.encode())


def _print_summary(result, data, model, origin) -> None:
    report = result.report
    solver = report["solver"] or report["method"]
    inputs = (f"int{report['activation_bits']} activations" if report["activation_bits"]
              else "float activations")
    print(f"{data.name}: {describe(model)} ({origin})")
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
        if "kernel" in layer:  # a conv: its kernel (C_out x C_in x kh x kw)
            shape = "x".join(map(str, layer["kernel"]))
        hits = f"{layer['cache']['hits']}/{layer['out_features']}" if report["solver"] else "-"
        print(f"{layer['name'] or '(model)':<10}{shape:>10}{layer['rtn_energy']:>14.6g}"
              f"{layer['energy']:>16.6g}{_ratio(layer['rtn_energy'], layer['energy']):>11}"
              f"{layer['solve_seconds']:>9.2f}{hits:>12}")
    convs = [layer for layer in report["layers"] if "kernel" in layer]
    if convs:
        print("conv layers are dense layers over their patches: " + ", ".join(
            f"{layer['name']} ({layer['patches']} patches)" for layer in convs))
    for entry in report.get("folded_batchnorm", []):
        print(f"BatchNorm {entry['batchnorm']} folded into layer {entry['layer']}")
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
    if report.get("cloud"):
        print("cloud: {problems} problems, {uploaded_bytes:,} bytes uploaded, {billed_seconds:.1f}"
              " billed s, {retries} retries, {fallback_neurons} neurons solved by the "
              "fallback".format(**report["cloud"]))


def _ratio(rtn: float, energy: float) -> str:
    if energy > 0:
        return f"{rtn / energy:.2f}x"
    return "exact" if rtn == 0 else "inf"
