"""The console summary of a ``quantize`` run: the model, the layers' errors against
round-to-nearest, accuracy, time, the cache and the cloud."""

from __future__ import annotations

from annealq.data.models import describe


def print_summary(result, data, model, origin) -> None:
    """Print the run's summary: ``origin`` says where ``model`` came from."""
    report = result.report
    solver = report["solver"] or report["method"]
    inputs = (
        f"int{report['activation_bits']} activations"
        if report["activation_bits"]
        else "float activations"
    )
    print(f"{data.name}: {describe(model)} ({origin})")
    print(
        f"int{report['bits']} weights, {inputs}, method {report['method']}"
        + (f", solver {report['solver']}" if report["solver"] else "")
        + f"; {_calibration(report, data)}"
    )
    if report.get("emulation"):
        print(f"NOTE: {report['emulation_note']}")
    width = max([10, *(len(layer["name"]) + 2 for layer in report["layers"])])
    header = (
        f"{'layer':<{width}}{'shape':>10}{'RTN error':>14}{' ' + solver + ' error':>16}"
        f"{'reduction':>11}{'seconds':>9}{'cache hits':>12}"
    )
    print("\n" + header)
    for layer in report["layers"]:
        shape = f"{layer['in_features']}x{layer['out_features']}"
        if "kernel" in layer:  # a conv: its kernel (C_out x C_in x kh x kw)
            shape = "x".join(map(str, layer["kernel"]))
        hits = f"{layer['cache']['hits']}/{layer['out_features']}" if report["solver"] else "-"
        print(
            f"{layer['name'] or '(model)':<{width}}{shape:>10}{layer['rtn_energy']:>14.6g}"
            f"{layer['energy']:>16.6g}{_ratio(layer['rtn_energy'], layer['energy']):>11}"
            f"{layer['solve_seconds']:>9.2f}{hits:>12}"
        )
    kept = sum(layer.get("kept_start", 0) for layer in report["layers"])
    if kept:
        print(f"{kept} neurons kept their warm start: the solver's answer was worse")
    convs = [layer for layer in report["layers"] if "kernel" in layer]
    if convs:
        print(
            "conv layers are dense layers over their patches: "
            + ", ".join(f"{layer['name']} ({layer['patches']} patches)" for layer in convs)
        )
    for entry in report.get("folded_batchnorm", []):
        print(f"BatchNorm {entry['batchnorm']} folded into layer {entry['layer']}")
    for entry in report["not_quantized"]:
        print(
            f"not quantized: {entry['name']} ({entry['type']}, {entry['parameters']} "
            f"parameters: {entry['reason']})"
        )
    for layer in report["layers"]:
        if "polish" in layer:
            print(polish_line(layer["name"], layer["polish"]))
    accuracy = report.get("accuracy")
    if accuracy:
        print(
            f"\naccuracy: float {accuracy['float']:.2%}  RTN {accuracy['rtn']:.2%}  "
            f"{report['method']} {accuracy['quantized']:.2%}"
        )
    language = report.get("language")
    if language:
        print(language_lines(language, solver))
    timing, cache = report["timing"], report["cache"]
    print(
        f"time: {timing['total_seconds']:.1f} s in all, {timing['solve_seconds']:.1f} s "
        f"rounding; cache: {cache['hits']} hits, {cache['misses']} misses"
    )
    if "problems" in report.get("cloud", {}):
        print(
            "cloud: {problems} problems, {uploaded_bytes:,} bytes uploaded, {billed_seconds:.1f}"
            " billed s, {retries} retries, {fallback_neurons} neurons solved by the "
            "fallback".format(**report["cloud"])
        )


def _calibration(report, data) -> str:
    language = report.get("language")
    if language:  # token windows
        return (
            f"{report['calibration_size']} calibration windows of {language['context']} "
            f"tokens from the training split"
        )
    return (
        f"{report['calibration_size']} calibration images from the training split, "
        f"{len(data.y_test)} test images"
    )


def _ratio(rtn: float, energy: float) -> str:
    if energy > 0:
        return f"{rtn / energy:.2f}x"
    return "exact" if rtn == 0 else "inf"


def polish_line(name: str, polish: dict) -> str:
    """One line of a layer's polishing, beside its matched controls."""
    controls = polish.get("controls", {})
    return (
        f"polish, layer {name}: {polish['neurons_improved']} of {polish['neurons']} neurons "
        f"improved, {polish['windows_accepted']} of {polish['windows_solved']} windows "
        f"accepted; energy {polish['incumbent_energy']:.6g} -> "
        f"{polish['final_energy']:.6g} (the same windows solved exactly: "
        f"{controls.get('exact_same_windows', float('nan')):.6g}; random windows, "
        f"exactly: {controls.get('exact_random_windows', float('nan')):.6g})"
    )


def language_lines(language: dict, method: str) -> str:
    """Perplexity (bits per token) of float, RTN and the quantized model on the held-out
    windows, with KL to float and top-1 agreement, each with its 95 % interval."""
    lines = [
        f"\nperplexity on {language['windows']} held-out windows of {language['context']} "
        f"tokens (95 % intervals over windows):"
    ]
    for key, label in (("float", "float"), ("rtn", "RTN"), ("quantized", method)):
        if key not in language:
            continue
        m = language[key]
        low, high = m["perplexity_interval"]
        line = (
            f"  {label:<10} perplexity {m['perplexity']:.4f} [{low:.4f}, {high:.4f}]  "
            f"{m['bits_per_token']:.4f} bits/token"
        )
        if key != "float":
            r_low, r_high = m["perplexity_ratio_interval"]
            k_low, k_high = m["kl_interval"]
            line += (
                f"  ratio to float {m['perplexity_ratio']:.4f} [{r_low:.4f}, {r_high:.4f}]"
                f"  KL {m['kl']:.5f} [{k_low:.5f}, {k_high:.5f}]  top-1 {m['top1']:.2%}"
            )
        lines.append(line)
    return "\n".join(lines)
