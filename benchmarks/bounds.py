"""Certified distance to the optimum: a proven lower bound per neuron on each benchmark
layer's whole-grid problem, beside every method's error on the same layer.

``annealq bench bounds --datasets digits mnist --bits 4 3 2`` takes each ``nn.Linear`` of
the dataset's reference MLP **alone on its float inputs** (``X̂ = X``, as ``bench solvers``
does; for a first layer this is exactly the layer every method of ``bench paper`` sees),
and per neuron

* runs the methods: GPTQ tuned per layer, GPTQ at the fixed setting (act-order, 1 %
  damping), CD from tuned GPTQ, and the whole-grid QUBO (``window_bits=4``: the whole
  weight grid at int2–int4) solved by ``lns`` and by ``kbest`` from tuned GPTQ;
* proves a lower bound on the neuron's whole-grid problem (all weights on the grid, the
  bias on its int32 grid) with
  :func:`solvers.exact_bb.bound.box_lower_bound`, starting from the best method's
  solution: the optimum itself where the sphere decoder finishes, else a certified
  radius around the real box minimiser, raised (``reduced_nodes``) by searches on a reduced
  basis below a value that finish without a point.

Totals go to ``results.json`` (``"bounds"``) and a section of ``RESULTS.md``: per layer,
the bound, how many neurons were proven optimal, and each method's error as "% above
the bound" (an upper bound on its distance to the optimum).
"""

from __future__ import annotations

import time

import numpy as np

from annealq.baselines import FIXED_GPTQ_SETTING, cd_layer, layer_error, tuned_gptq_layer
from annealq.baselines.gptq import gptq_layer
from annealq.config import QuantizeConfig
from annealq.data.datasets import load_dataset
from annealq.data.models import model_fingerprint, reference_model
from annealq.dispatch import solve_layer
from annealq.problems import LayerProblems
from annealq.registry import get_sampler
from solvers.exact_bb.bound import box_lower_bound, neuron_box

METHODS = (
    "GPTQ (tuned)",
    "GPTQ, fixed (act-order, 1 % damp)",
    "CD (tuned GPTQ + descent)",
    "QUBO whole grid, lns from tuned GPTQ",
    "QUBO whole grid, kbest from tuned GPTQ",
    "QUBO whole grid, kbest + reduced basis, from tuned GPTQ",
)
MEDIANS = {3: "lns", 4: "kbest", 5: "kbest + reduced"}  # median neuron columns
SMALL_NEURON = 200  # entries: below, a neuron gets the longer time limit


def layer_bounds(
    problem, *, nodes: int, small_nodes: int, reduced_nodes: int = 0, progress=lambda line: None
) -> dict:
    """The methods' errors and the proven bounds of one layer's problem
    (:class:`~annealq.problems.LayerProblem`; see the module docs)."""
    (W, b), X, bits, plain = problem.numpy_parameters(), problem.inputs, problem.bits, problem.qubo
    errors, seconds, integers = {}, {}, {}

    def record(label, begin, q, q_b):
        seconds[label] = time.perf_counter() - begin
        integers[label] = np.column_stack([q, q_b])
        errors[label] = layer_error(plain, q, q_b, inputs=X)

    begin = time.perf_counter()
    q, q_b, _ = tuned_gptq_layer(W, b, X, bits=bits)
    record(METHODS[0], begin, q, q_b)
    tuned_seconds = seconds[METHODS[0]]
    begin = time.perf_counter()
    record(METHODS[1], begin, *gptq_layer(W, b, X, bits=bits, **FIXED_GPTQ_SETTING))
    begin = time.perf_counter()
    record(METHODS[2], begin, *cd_layer(W, b, X, bits=bits, start=(q, q_b)))
    seconds[METHODS[2]] += tuned_seconds
    begin = time.perf_counter()
    start = integers[METHODS[0]]
    lq = problem.formulate(window_bits=4, center=start)
    warm = lq.samples(lq.states(start))
    for label, solver in (
        (METHODS[3], get_sampler("lns", seed=0)),
        (METHODS[4], get_sampler("kbest")),
        (METHODS[5], get_sampler("kbest", reduced="auto")),
    ):
        begin = time.perf_counter()
        solved = solve_layer(lq, solver, initial_states=warm)
        record(label, begin, *lq.decode([r.sample for r in solved]))
        seconds[label] += tuned_seconds
    progress("  methods: " + ", ".join(f"{k} {v.sum():.6g}" for k, v in errors.items()))

    best = np.argmin(np.stack([errors[m] for m in METHODS]), axis=0)
    bounds, proven = np.empty(lq.n_neurons), np.zeros(lq.n_neurons, dtype=bool)
    small = lq.n_inputs + 1 <= SMALL_NEURON
    limit, reduced_nodes = (small_nodes, reduced_nodes) if small else (nodes, 0)
    begin = time.perf_counter()
    grid = lq.weight_grid
    for i in range(lq.n_neurons):
        span, e, p = lq.integer_form(i)
        base = lq.base[i]
        H, h, low, high, incumbent, _, relaxed = neuron_box(
            lq.entry_gram,
            e,
            p,
            grid.q_min - base[:-1],
            grid.q_max - base[:-1],
            incumbent=integers[METHODS[best[i]]][i] - base,
            bias=lq.has_bias,
        )
        result = box_lower_bound(
            H,
            h,
            low,
            high,
            incumbent=incumbent,
            max_nodes=limit,
            relaxed=relaxed,
            reduced_nodes=reduced_nodes,
        )
        bounds[i] = float(lq.offset[i]) + result.bound
        proven[i] = result.proven
    bound_seconds = time.perf_counter() - begin
    gaps = {m: errors[m] / np.maximum(bounds, 1e-300) - 1 for m in METHODS}
    # a bound is offset + min f in the Gram form, whose rounding grows with the offset (the
    # error at the window's base integers, ~1e6 on digits' second layer, where it moves the
    # value of a point by up to ~2e-15 of it against its error computed from the inputs): a
    # method at a proven optimum may sit that far below it without being below it
    slack = 1e-9 * bounds + 1e-13 * np.abs(lq.offset)
    return {
        "bound": float(bounds.sum()),
        "proven": int(proven.sum()),
        "neurons": int(lq.n_neurons),
        "entries": int(lq.n_inputs + 1),
        "bound_seconds": bound_seconds,
        "nodes": limit,
        "reduced_nodes": reduced_nodes,
        "raised": bool(reduced_nodes),  # bound.py's step 3 (searches below a value)
        "errors": {m: float(errors[m].sum()) for m in METHODS},
        "seconds": {m: seconds[m] for m in METHODS},
        "median_neuron_gap": {m: float(np.median(gaps[m])) for m in METHODS},
        # per neuron: the method is never below a proven bound (checked here)
        "violations": int(sum(np.sum(errors[m] < bounds - slack) for m in METHODS)),
        "neuron_bounds": bounds.tolist(),
        "neuron_errors": {m: errors[m].tolist() for m in METHODS},
    }


def bench_bounds(
    datasets,
    bits_list,
    *,
    table: dict,
    nodes: int = 200_000,
    small_nodes: int = 200_000_000,
    reduced_nodes: int = 0,
    calibration: int = 1000,
    data_dir=None,
    layers=None,
    progress=print,
) -> dict:
    """Fill ``table["bounds"]`` (``"dataset|layer|bits"`` → :func:`layer_bounds`)."""
    cells = table.setdefault("bounds", {})
    for name in datasets:
        data = load_dataset(name, data_dir=data_dir)
        model, _ = reference_model(data)
        x = data.calibration(calibration, seed=0)
        problems = LayerProblems(
            model, x, QuantizeConfig(bits=bits_list[0]), sequential=False, layers=layers
        )
        chosen = range(len(problems.all_layers)) if layers is None else layers
        for index, problem in zip(chosen, problems):
            for bits in bits_list:
                progress(f"{name} layer {index} int{bits}:")
                cell = layer_bounds(
                    problem.with_bits(bits),
                    nodes=nodes,
                    small_nodes=small_nodes,
                    reduced_nodes=reduced_nodes,
                    progress=progress,
                )
                cells[f"{name}|{index}|{bits}"] = {**cell, "model": model_fingerprint(model)}
                progress(
                    f"  bound {cell['bound']:.6g} ({cell['proven']}/{cell['neurons']} "
                    f"proven, {cell['bound_seconds']:.1f} s)"
                )
    return table


def bounds_markdown(table: dict) -> list[str]:
    """The RESULTS.md section of ``table["bounds"]`` (empty without one)."""
    cells = table.get("bounds")
    if not cells:
        return []
    lines = [
        "## Distance to a proven lower bound (each layer alone, on its float inputs)",
        "",
        "Filled by "
        + ", ".join(f"`{c}`" for c in dict.fromkeys(table.get("bounds_commands", [])))
        + " (each writes its cells as it goes; a run stopped early keeps the cells it "
        "finished). Per layer, the sum over neurons of a proven lower bound on the neuron's "
        "whole-grid problem (`benchmarks/bounds.py`: the exact optimum where the sphere "
        "decoder finishes within its node budget, else a certified radius around the "
        "real box minimiser; search-tree nodes per neuron: `--nodes`, default 200,000, "
        "and `--small-nodes`, default 200,000,000, for neurons of at most "
        f"{SMALL_NEURON} entries, which then get a second search on an LLL/BKZ-reduced "
        "basis, `--reduced-nodes`, default 5,000,000,000, where its estimated node count "
        "is within 10× that, and as many nodes again for searches on that basis below "
        "a value between the certified bound and the best solution, which prove the "
        "value a bound when they finish empty: `reduced` in the bound column, `reduced, "
        "raised` with those searches; blank where the row was run before the reduced "
        "basis existed), and each method's layer error as % above it: an upper "
        "bound on the distance to the optimum. First layers are exactly the layer "
        "`bench paper` quantizes first; later layers here see float inputs. "
        "Median: the median neuron's gap.",
        "",
        "| dataset | layer | bits | entries × neurons | bound (proven neurons, s per "
        "neuron) | "
        + " | ".join(METHODS)
        + " | "
        + " | ".join(f"median neuron, {name}" for name in MEDIANS.values())
        + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * (len(METHODS) + len(MEDIANS)),
    ]
    for key, cell in cells.items():
        name, layer, bits = key.split("|")
        values = [
            f"{cell['errors'][m]:.5g} ({_gap(cell['errors'][m] / cell['bound'] - 1)})"
            if m in cell["errors"]
            else "not run"
            for m in METHODS
        ]
        medians = [
            _gap(cell["median_neuron_gap"][METHODS[k]])
            if METHODS[k] in cell["median_neuron_gap"]
            else "not run"
            for k in MEDIANS
        ]
        lines.append(
            f"| {name} | {layer} | int{bits} | {cell['entries']} × {cell['neurons']} | "
            f"{cell['bound']:.5g} ({cell['proven']}/{cell['neurons']}, "
            f"{cell['bound_seconds'] / cell['neurons']:.2g} s"
            + (", reduced" if cell.get("reduced_nodes") else "")
            + (", raised" if cell.get("raised") else "")
            + ") | "
            + " | ".join(values)
            + " | "
            + " | ".join(medians)
            + " |"
        )
    return ["", *lines]


def _gap(gap: float) -> str:
    """``+x.x%``; an error at its proven optimum can sit a rounding below it (−1e-12)."""
    return f"+{max(gap, 0.0):.1%}" if gap > -1e-9 else f"{gap:.1%}"
