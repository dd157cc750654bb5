"""What the ``annealq`` commands that quantize or train do (``demo``, ``quantize``, ``train``);
:mod:`annealq.cli` parses the command line and loads this module only to run one of them."""

from __future__ import annotations

import json
import time

from annealq.cache import open_cache
from annealq.calibration import DEFAULT_CALIBRATION_SIZE
from annealq.cli_execution import dry_run, execution_from, parse_solver_params
from annealq.commands_checks import (  # noqa: F401 (check_model_fits: re-exported)
    cache_argument,
    check_calibration,
    check_model_fits,
    inputs_of,
)
from annealq.commands_text import check_text_options, quantize_text, run_train_text
from annealq.config import FORMULATION_DEFAULTS, QuantizeConfig
from annealq.data.cnn import reference_cnn
from annealq.data.datasets import load_dataset, load_digits, validate_dataset
from annealq.data.model_file import save_model
from annealq.data.models import accuracy, describe, load_model, reference_model, train_mlp
from annealq.data.text import TEXT_DATASETS
from annealq.files import check_outputs, write_together
from annealq.grid import validate_bits
from annealq.onnx_export import check_exportable, onnx_writer
from annealq.pipeline import quantize, rtn_model
from annealq.quantized import writer
from annealq.registry import resolve_sampler, solver_spec
from annealq.summary import print_summary


def run_demo(args) -> int:
    for bits in args.bits:
        validate_bits(bits)
    solver, sampler, warm = args.solver, args.solver, None  # "auto": resolved by quantize()
    if args.solver != "auto":
        solver, sampler = resolve_sampler(args.solver, fallback=args.fallback)
        spec = solver_spec(solver)  # an emulation's own warm start guards its answers
        warm = spec.default_start if spec.emulation else None
    store = open_cache(cache_argument(args))  # an unusable cache is an error before work
    if store is not None:
        store.close()
    data = load_digits(seed=args.seed)
    check_calibration(args.calibration, data)
    model = train_mlp(data.x_train, data.y_train, hidden=(64,), seed=args.seed)
    calibration = data.calibration(args.calibration, seed=args.seed)
    print(
        f"digits MLP {data.n_features}-64-{data.n_classes}, float accuracy "
        f"{accuracy(model, data.x_test, data.y_test):.1%} on {len(data.y_test)} test images; "
        f"{len(calibration)} calibration images"
    )
    for bits in args.bits:
        start = time.perf_counter()
        result = quantize(
            model,
            calibration,
            bits=bits,
            solver=sampler,
            seed=args.seed,
            cache=cache_argument(args),
            solver_name=None if sampler == "auto" else solver,
            **({"paper": True} if args.paper else {}),
            **({"fallback": args.fallback} if sampler == "auto" and args.fallback else {}),
            **({"start": warm} if warm else {}),
        )
        seconds = time.perf_counter() - start
        rtn_acc = accuracy(rtn_model(model, calibration, bits=bits), data.x_test, data.y_test)
        qubo_acc = accuracy(result.model, data.x_test, data.y_test)
        print(
            f"\nint{bits}  accuracy: RTN {rtn_acc:.1%}  QUBO {qubo_acc:.1%}  "
            f"(solver {result.report['solver']}, {seconds:.1f} s, "
            f"cache {result.cache_hits} hits / "
            f"{result.cache_misses} misses)"
        )
        if result.report.get("emulation"):
            print(f"  NOTE: {result.report['emulation_note']}")
        kept = sum(layer.get("kept_start", 0) for layer in result.report["layers"])
        if kept:
            print(f"  {kept} neurons kept their warm start (RTN): the solver's answer was worse")
        print(f"  {'layer':<6}{'shape':>10}{'RTN error':>14}{'QUBO error':>14}{'reduction':>11}")
        for layer in result.layers:
            shape = f"{layer.in_features}x{layer.out_features}"
            print(
                f"  {layer.name:<6}{shape:>10}{layer.rtn_energy:>14.2f}{layer.energy:>14.2f}"
                f"{layer.rtn_energy / max(layer.energy, 1e-300):>10.1f}x"
            )
    return 0


def _grid_options(args) -> dict:
    """The formulation options the user changed from their defaults."""
    given = {
        "window_bits": args.window_bits,
        "scheme": args.scheme,
        "ridge": args.ridge,
        "per_channel": args.per_channel,
        "group_size": args.group_size,
        "clip_search": getattr(args, "clip_search", False),
    }
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
    text = args.dataset in TEXT_DATASETS or args.arch == "transformer"
    if not text:
        args.calibration = args.calibration or DEFAULT_CALIBRATION_SIZE
    solver_params = parse_solver_params(args.solver_param)
    config = QuantizeConfig.from_options(
        bits=args.bits,
        method=args.method,
        solver=args.solver,
        fallback=args.fallback,
        start=args.start,
        polish=args.polish,
        paper=args.paper or None,
        activation_bits=args.activation_bits,
        solver_params=solver_params,
        time_limit=getattr(args, "time_limit", None),
        calibration_size=args.calibration,
        seed=args.seed,
        **_grid_options(args),
        **({"refit_steps": True} if getattr(args, "refit_steps", False) else {}),
        **_gptq_options(args),
    )
    execution = execution_from(args)
    dataset = check_text_options(args) if text else validate_dataset(args.dataset)
    outputs = (("--report", args.report), ("--out", args.out), ("--onnx", args.onnx))
    check_outputs(outputs, inputs_of(args, None if text else dataset))
    solver, sampler = None, args.solver
    if args.method == "qubo" and args.solver != "auto":
        # fail fast (unknown name, no token) before any data is read; "auto" always runs
        # and is resolved by quantize() after the model is checked, so its warning
        # never comes before an error
        solver, sampler = resolve_sampler(args.solver, fallback=args.fallback, **solver_params)
    elif args.solver != "auto":
        solver_spec(args.solver)  # an unknown name is an error whatever the method

    # the cache is opened (and its folder checked) before any work; closed at the end
    store = open_cache(cache_argument(args)) if args.method == "qubo" else False
    try:
        if text:
            result, data, model, origin = quantize_text(
                args, config, sampler, solver, store, execution
            )
            return _finish(args, result, data, model, origin)
        data = load_dataset(dataset, data_dir=args.data_dir, seed=args.seed)
        check_calibration(args.calibration, data)
        if args.model:
            model = load_model(
                args.model,
                example=data.x_test[:64],
                trust_pickle=getattr(args, "trust_pickle", False),
                trust_torchscript=getattr(args, "trust_torchscript", False),
            )
            origin = args.model
        else:
            model, path = reference_of(args, data)
            check_outputs(outputs, [("the cached reference model", path)])
            origin = f"reference {args.arch.upper()}, seed {args.seed}, cached at {path}"
        check_model_fits(model, data, origin)
        if args.onnx:
            check_exportable(model)  # an unexportable module fails before the work
        if args.dry_run:
            print(
                dry_run(
                    model,
                    data.calibration(args.calibration, seed=args.seed),
                    sampler,
                    solver,
                    config,
                    execution,
                )
            )
            return 0
        result = quantize(
            model,
            data,
            solver=sampler,
            solver_name=solver,
            config=config,
            cache=store or False,
            quiet=args.quiet,
            **execution.to_dict(),
        )
    finally:
        if store:
            store.close()
    return _finish(args, result, data, model, origin)


def _finish(args, result, data, model, origin) -> int:
    """Print the summary and write the outputs, all of them or none."""
    print_summary(result, data, model, origin)
    outputs = [
        (path, write)
        for path, write in (
            (args.out, writer(result) if args.out else None),
            (args.onnx, args.onnx and onnx_writer(result, int2_storage=args.int2_storage)),
            (args.report, _json_writer(result.report)),
        )
        if path
    ]
    write_together(outputs)  # all of them or none
    for option, path in (
        ("quantized model", args.out),
        ("ONNX model", args.onnx),
        ("report", args.report),
    ):
        if path:
            print(f"{option} written to {path}")
    return 0


def run_train(args) -> int:
    if args.dataset in TEXT_DATASETS or args.arch == "transformer":
        return run_train_text(args)
    check_outputs([("--out", args.out)], inputs_of(args, validate_dataset(args.dataset)))
    data = load_dataset(args.dataset, data_dir=args.data_dir, seed=args.seed)
    start = time.perf_counter()
    model, path = reference_of(args, data, retrain=True)
    seconds = time.perf_counter() - start
    print(
        f"{data.name} {describe(model)}: test accuracy "
        f"{accuracy(model, data.x_test, data.y_test):.2%}, trained in {seconds:.1f} s "
        f"(seed {args.seed}); cached at {path}"
    )
    if args.out:
        save_model(model, args.out)  # safetensors and a JSON architecture: no pickle
        print(f"model written to {args.out}")
    return 0


def reference_of(args, data, retrain: bool = False):
    """The dataset's reference model of ``--arch`` (``mlp`` or ``cnn``) and its cache file."""
    build = reference_cnn if getattr(args, "arch", "mlp") == "cnn" else reference_model
    return build(data, seed=args.seed, retrain=retrain)


def _json_writer(data):
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    return lambda stream: stream.write(text.encode())
