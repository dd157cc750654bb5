"""A run's plan before anything is submitted: problems, variables and estimated billed seconds
per layer, from the solver's own properties (``annealq quantize --dry-run``; the budget
check of ``max_cloud_seconds``).

The plan formulates every layer on the float network's inputs: the problems' sizes are those
of the real run (sequential calibration changes the coefficients, not the sizes).
"""

from __future__ import annotations

import numpy as np

from annealq.integer_model import IntegerForm
from annealq.problems import LayerProblems
from annealq.protocol import CloudLayerSampler, CloudSampler


def run_plan(
    model, calibration: np.ndarray, sampler, config, *, pack: bool = True, float_layers=None
) -> dict:
    """``{"layers": [...], "problems", "neurons", "estimated_billed_seconds"}`` of a QUBO run
    of ``model`` with ``sampler`` (a cloud sampler's packing and estimates; a local one
    bills nothing); ``float_layers``: the model's layers where already found."""
    cloud = isinstance(sampler, CloudSampler)
    rows = []
    for problem in LayerProblems(
        model.eval(), calibration, config, sequential=False, float_layers=float_layers, starts=False
    ):
        name, lq = problem.name, problem.qubo
        if isinstance(sampler, CloudLayerSampler):  # integer models of groups of neurons
            groups, seconds, sizes = _layer_plan(lq, sampler, config, pack)
        else:
            groups, seconds, sizes = _bqm_plan(lq, sampler, config, pack, cloud)
        rows.append(
            {
                "layer": name,
                "neurons": lq.n_neurons,
                "problems": len(groups),
                "variables_per_neuron": {"max": int(max(sizes)), "mean": float(np.mean(sizes))},
                "estimated_billed_seconds": float(seconds),
            }
        )
    return {
        "cloud": cloud,
        "pack": pack,
        "layers": rows,
        "neurons": sum(row["neurons"] for row in rows),
        "problems": sum(row["problems"] for row in rows),
        "estimated_billed_seconds": sum(row["estimated_billed_seconds"] for row in rows),
    }


def _bqm_plan(lq, sampler, config, pack, cloud):
    bqms = [bqm for bqm in lq.bqms() if bqm.num_variables]
    calls = [dict(config.solver_params) for _ in bqms]
    groups = (
        sampler.plan(bqms, calls, pack=pack) if cloud and bqms else [[k] for k in range(len(bqms))]
    )
    seconds = (
        sum(
            sampler.estimate_seconds([bqms[k] for k in group], [calls[k] for k in group])
            for group in groups
        )
        if cloud
        else 0.0
    )
    return groups, seconds, [bqm.num_variables for bqm in bqms] or [0]


def _layer_plan(lq, sampler, config, pack):
    rows = list(range(lq.n_neurons))
    groups = sampler.plan_layer(lq, rows, pack=pack)
    seconds = sum(
        sampler.estimate_layer_seconds(lq, group, dict(config.solver_params)) for group in groups
    )
    # an integer model's variables are the free entries (weights and bias), not bits
    return groups, seconds, (IntegerForm.of_layer(lq, rows).span > 0).sum(axis=1).tolist()


def check_budget(plan: dict, budget: float | None) -> None:
    """Refuse a plan whose estimate is over ``budget`` billed seconds."""
    if budget is not None and plan["estimated_billed_seconds"] > budget:
        raise ValueError(
            f"the plan needs about {plan['estimated_billed_seconds']:.1f} billed seconds "
            f"({plan['problems']} problems), over --max-cloud-seconds {budget:g}; raise the "
            f"budget, pack more (drop --no-pack) or see the plan with --dry-run"
        )


def format_plan(plan: dict, solver: str) -> str:
    """The plan as the lines ``--dry-run`` prints."""
    packing = "packed" if plan["pack"] else "one neuron per problem"
    lines = [f"plan for solver {solver!r} ({packing}); nothing was submitted"]
    for row in plan["layers"]:
        sizes = row["variables_per_neuron"]
        lines.append(
            f"  layer {row['layer']}: {row['neurons']} neurons of up to "
            f"{sizes['max']} variables -> {row['problems']} problems, about "
            f"{row['estimated_billed_seconds']:.2f} billed s"
        )
    billed = (
        f"about {plan['estimated_billed_seconds']:.2f} billed seconds"
        if plan["cloud"]
        else "a local solver: nothing is billed"
    )
    lines.append(f"total: {plan['problems']} problems for {plan['neurons']} neurons, {billed}")
    return "\n".join(lines)
