"""The console summary of a ``quantize`` run: the model, the layers' errors against
round-to-nearest, accuracy, time, the cache and the cloud."""

from __future__ import annotations

from annealq.data.models import describe


def print_summary(result, data, model, origin) -> None:
    """Print the run's summary: ``origin`` says where ``model`` came from."""
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
    header = f"{'layer':<10}{'shape':>10}{'RTN error':>14}{' ' + solver + ' error':>16}" \
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
    kept = sum(layer.get("kept_start", 0) for layer in report["layers"])
    if kept:
        print(f"{kept} neurons kept their warm start: the solver's answer was worse")
    convs = [layer for layer in report["layers"] if "kernel" in layer]
    if convs:
        print("conv layers are dense layers over their patches: " + ", ".join(
            f"{layer['name']} ({layer['patches']} patches)" for layer in convs))
    for entry in report.get("folded_batchnorm", []):
        print(f"BatchNorm {entry['batchnorm']} folded into layer {entry['layer']}")
    for entry in report["not_quantized"]:
        print(f"not quantized: {entry['name']} ({entry['type']}, {entry['parameters']} "
              f"parameters: {entry['reason']})")
    for layer in report["layers"]:
        if "polish" in layer:
            print(polish_line(layer["name"], layer["polish"]))
    accuracy = report.get("accuracy")
    if accuracy:
        print(f"\naccuracy: float {accuracy['float']:.2%}  RTN {accuracy['rtn']:.2%}  "
              f"{report['method']} {accuracy['quantized']:.2%}")
    timing, cache = report["timing"], report["cache"]
    print(f"time: {timing['total_seconds']:.1f} s in all, {timing['solve_seconds']:.1f} s "
          f"rounding; cache: {cache['hits']} hits, {cache['misses']} misses")
    if "problems" in report.get("cloud", {}):
        print("cloud: {problems} problems, {uploaded_bytes:,} bytes uploaded, {billed_seconds:.1f}"
              " billed s, {retries} retries, {fallback_neurons} neurons solved by the "
              "fallback".format(**report["cloud"]))


def _ratio(rtn: float, energy: float) -> str:
    if energy > 0:
        return f"{rtn / energy:.2f}x"
    return "exact" if rtn == 0 else "inf"


def polish_line(name: str, polish: dict) -> str:
    """One line of a layer's polishing, beside its matched controls."""
    controls = polish.get("controls", {})
    return (f"polish, layer {name}: {polish['neurons_improved']} of {polish['neurons']} neurons "
            f"improved, {polish['windows_accepted']} of {polish['windows_solved']} windows "
            f"accepted; energy {polish['incumbent_energy']:.6g} -> "
            f"{polish['final_energy']:.6g} (the same windows solved exactly: "
            f"{controls.get('exact_same_windows', float('nan')):.6g}; random windows, "
            f"exactly: {controls.get('exact_random_windows', float('nan')):.6g})")
