"""The matched controls of :class:`~solvers.polish.composite.PolishComposite`'s report: the
windows the child solved, solved again exactly (the box sphere decoder) from the neuron's
incumbent, and as many random windows of the same sizes, so that what the child removed
reads against what the windows held and what choosing them is worth.
"""

from __future__ import annotations

import zlib

import numpy as np

from solvers.exact_bb.box import solve_box
from solvers.polish.windows import NeuronState, Window


def matched_controls(state: NeuronState, start_o, windows, neuron: int, max_nodes: int) -> dict:
    """The matched controls: the same windows, then as many random windows of the same
    sizes, each solved exactly (``max_nodes`` per window) from the neuron's incumbent."""
    out = {}
    rng = np.random.default_rng(zlib.crc32(f"controls:{neuron}".encode()))
    live = NeuronState(
        **{**state.__dict__, "o": start_o.copy(), "field": state.gram @ (state.e * start_o)}
    ).live()
    for name in ("exact_same_windows", "exact_random_windows"):
        control = NeuronState(
            **{**state.__dict__, "o": start_o.copy(), "field": state.gram @ (state.e * start_o)}
        )
        control.refit_bias()
        for S, move in windows:
            if name == "exact_random_windows":
                S = np.sort(rng.choice(live, size=len(S), replace=False))
            window = Window.of(control, S, move=move)
            o = solve_box(
                window.H,
                window.b,
                window.low,
                window.high,
                incumbent=window.incumbent,
                max_nodes=max_nodes,
            ).o
            if window.gain(o) < 0:
                control.move(S, o)
        out[name] = control.energy()
    return out
