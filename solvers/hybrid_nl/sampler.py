"""``hybrid-nl``: Leap's nonlinear solver (``LeapHybridNLSampler``) on a layer's integer model.

A layer's neurons share one Gram matrix and differ in their linear terms, so instead of one
dense BQM per neuron (3.4 MB for a 785-input neuron's down/up QUBO, 55 MB for its whole
int4 grid) the solver gets one model per group of neurons (:mod:`annealq.integer_model`):
the Gram matrix once, integer decisions per weight and bias over their whole window, no
binary encoding. A group is as many neurons as fit the solver's published limits (decision
state size, state size, nodes); a layer that fits goes as one problem.

The model's state 0 is the warm start (GPTQ's or RTN's integers), which the solver accepts
as its initial state. Answers are decoded into integers and every neuron's error is
recomputed exactly from the layer; a neuron whose answer is worse than its start keeps the
start. The objective the solver reports is never used.

The solver takes the whole grid by default: a run with ``--solver hybrid-nl`` and no
``--window-bits`` uses ``window_bits = bits`` (the model is no larger for it), and, with no
``--start``, starts from GPTQ's integers (tuned per layer; ``--start rtn`` for RTN's).

Parameters: ``time_limit`` (seconds per problem; default the solver's estimated minimum for
the model, from its published multipliers) and ``solver`` at construction.
"""

from __future__ import annotations

import concurrent.futures
import math

import dimod
import numpy as np

from annealq.credentials import auth_message, cloud_options, redact
from annealq.errors import ProblemTooLargeError, SolverUnavailableError, TokenRejectedError
from annealq.integer_model import IntegerForm, LayerModel, bqm_form
from annealq.protocol import CloudLayerSampler, PendingProblem
from annealq.registry import SolverSpec
from annealq.results import SolveResult
from solvers.batch_sa.sampler import rtn_states
from solvers.cloud import classify, leap_unavailable
from solvers.hybrid_nl.pending import (  # noqa: F401 (AnswerLost: re-exported)
    AnswerLost,
    PendingModel,
)

# the nonlinear solver's documented defaults where a description leaves them out
_LIMITS = {
    "maximum_number_of_nodes": math.inf,
    "maximum_state_size": math.inf,
    "maximum_decision_state_size": math.inf,
}


class HybridNLSampler(dimod.Sampler, CloudLayerSampler):
    """A ``LeapHybridNLSampler`` that solves layers as integer models, without blocking.

    Args:
        nl: a ``dwave.system.LeapHybridNLSampler`` (or an object with its interface).
        **defaults: sampling parameters for every call (``time_limit``).
    """

    fallback_solver = "lns"  # the local whole-grid search takes what the cloud could not

    def __init__(self, nl, **defaults):
        unknown = sorted(set(defaults) - set(nl.parameters))
        if unknown:
            raise ValueError(f"unknown hybrid-nl solver parameter(s) {', '.join(unknown)}")
        self._nl = nl
        self.defaults_ = defaults
        # the client's upload blocks; these threads carry it while the executor goes on
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=8, thread_name_prefix="annealq-hybrid-nl"
        )

    @property
    def defaults(self) -> dict:
        return dict(self.defaults_)

    @property
    def parameters(self) -> dict:
        return {name: [] for name in self._nl.parameters} | {"initial_states": []}

    @property
    def properties(self) -> dict:
        return {**self._nl.properties, "identity": self.identity}

    @property
    def identity(self) -> str:
        return f"hybrid-nl:{self._nl.solver.name}"

    # -- limits and estimates ----------------------------------------------

    def _limit(self, name: str) -> float:
        return self._nl.properties.get(name, _LIMITS[name])

    def fits(self, model) -> bool:
        """Whether a model is within the solver's published limits."""
        return (
            model.num_nodes() <= self._limit("maximum_number_of_nodes")
            and model.state_size() <= self._limit("maximum_state_size")
            and model.decision_state_size() <= self._limit("maximum_decision_state_size")
        )

    def _time_limit(self, model, parameters) -> float:
        asked = {**self.defaults_, **parameters}.get("time_limit")
        least = float(self._nl.estimated_min_time_limit(model))
        return least if asked is None else max(float(asked), least)

    def _largest_group(self, lq, rows) -> int:
        """The most neurons of ``rows`` one model takes: sizes grow linearly with the
        neurons, so two small models give the line; the answer is then checked."""
        one = LayerModel.build(IntegerForm.of_layer(lq, rows[:1]), 0).model
        if not self.fits(one):
            return 0
        if len(rows) == 1:
            return 1
        two = LayerModel.build(IntegerForm.of_layer(lq, rows[:2]), 0).model
        most = len(rows)
        for size, limit in (
            (lambda m: m.state_size(), "maximum_state_size"),
            (lambda m: m.decision_state_size(), "maximum_decision_state_size"),
        ):
            per = size(two) - size(one)
            if per > 0:
                most = min(most, int((self._limit(limit) - size(one)) // per) + 1)
        while most > 1 and not self.fits(
            LayerModel.build(IntegerForm.of_layer(lq, rows[:most]), 0).model
        ):
            most -= 1
        return max(most, 1)

    def plan_layer(self, lq, rows, *, pack: bool) -> list[list[int]]:
        rows = list(rows)
        size = self._largest_group(lq, rows) if pack else 1
        if size == 0:  # one neuron is over the limits: a problem of one, refused on submit
            return [[k] for k in range(len(rows))]
        # equal groups, as few as fit
        count = -(-len(rows) // size)
        return [list(part) for part in np.array_split(np.arange(len(rows)), count)]

    def estimate_layer_seconds(self, lq, rows, parameters) -> float:
        model = LayerModel.build(IntegerForm.of_layer(lq, list(rows)), 0).model
        return self._time_limit(model, parameters)

    # -- submitting ----------------------------------------------------------

    def submit_layer(self, lq, rows, starts, parameters) -> PendingProblem:
        rows = list(rows)
        form = IntegerForm.of_layer(lq, rows)
        if starts is None:  # RTN, moved into each entry's window
            start_states = rtn_states(lq, rows)
        else:
            start_states = np.stack([lq.assignment(i, s) for i, s in zip(rows, starts)])
        base = lq.base[rows]
        start = np.stack([lq.integers(i, u) for i, u in zip(rows, start_states)]) - base

        def decode(offsets):
            q = base + offsets
            return lq.samples(lq.states(q, rows), rows)

        return self._submit(form, start, decode, parameters)

    def _submit(self, form: IntegerForm, start, decode, parameters) -> PendingProblem:
        layer = LayerModel.build(form, start)
        if not self.fits(layer.model):
            raise ProblemTooLargeError(
                f"an integer model of {form.neurons} neuron(s) with {form.span.shape[1]} "
                f"entries each is over the nonlinear solver's limits (state "
                f"{layer.model.state_size():,} bytes, at most "
                f"{self._limit('maximum_state_size'):,})"
            )
        call = {
            k: v for k, v in {**self.defaults_, **parameters}.items() if k in self._nl.parameters
        }
        call["time_limit"] = self._time_limit(layer.model, parameters)
        if "label" in self._nl.parameters:  # what Leap's dashboard lists the problem as
            call.setdefault(
                "label",
                f"annealq layer model: {form.neurons} neuron(s) x {form.span.shape[1]} entries",
            )
        size = len(layer.to_bytes())
        future = self._threads.submit(lambda: self._nl.sample(layer.model, **call).result())
        return PendingModel(future, layer, form, start, decode, call["time_limit"], size)

    # -- dimod and layer entry points ----------------------------------------

    def sample_layer(
        self, lq, *, neurons=None, initial_states=None, **parameters
    ) -> list[SolveResult]:
        """Every group of ``neurons`` as one problem, all in flight together, waited for."""
        rows = list(range(lq.n_neurons)) if neurons is None else list(neurons)
        pending = [
            self.submit_layer(
                lq,
                [rows[k] for k in group],
                None if initial_states is None else [initial_states[k] for k in group],
                parameters,
            )
            for group in self.plan_layer(lq, rows, pack=True)
        ]
        return [result for p in pending for result, _ in p.results()]

    def sample(self, bqm, initial_states=None, **parameters) -> dimod.SampleSet:
        """One BQM as a binary model (a one-neuron integer form)."""
        if bqm.num_variables == 0:  # nothing to send: the one empty sample
            return dimod.SampleSet.from_samples_bqm(
                (np.zeros((1, 0), dtype=np.int8), []), bqm, info={"skipped": "no variables"}
            )
        [(result, _)] = self.submit(
            [bqm], [{"initial_states": initial_states, **parameters}]
        ).results()
        return dimod.SampleSet.from_samples_bqm(result.sample, bqm, info=result.info)

    def plan(self, bqms, calls, *, pack: bool) -> list[list[int]]:
        return [[k] for k in range(len(bqms))]

    def estimate_seconds(self, bqms, calls) -> float:
        form, _ = bqm_form(bqms[0])
        return self._time_limit(LayerModel.build(form, 0).model, calls[0])

    def submit(self, bqms, calls) -> PendingProblem:
        [bqm], [call] = bqms, calls
        call = dict(call)
        given = call.pop("initial_states", None)
        form, order = bqm_form(bqm)
        start = np.zeros((1, len(order)), dtype=np.int64)
        if given is not None:
            first = (
                given.first.sample
                if isinstance(given, dimod.SampleSet)
                else (given[0] if isinstance(given, list) else given)
            )
            start[0] = [int(first[v] > 0) for v in order]

        def decode(offsets):
            u = offsets[0]
            return [
                {
                    v: (int(u[t]) if bqm.vartype is dimod.BINARY else 2 * int(u[t]) - 1)
                    for t, v in enumerate(order)
                }
            ]

        return self._submit(form, start, decode, call)

    def classify(self, exc):
        return classify(exc)


def make_sampler(*, solver=None, **defaults):
    from dwave.system import LeapHybridNLSampler

    try:
        options = cloud_options()
        if solver is not None:
            options["solver"] = solver
        nl = LeapHybridNLSampler(**options)
    except Exception as exc:
        if classify(exc)[0] == "auth":
            raise TokenRejectedError(auth_message("connecting to Leap")) from None
        raise SolverUnavailableError(
            f"could not reach Leap's nonlinear solver: {redact(f'{type(exc).__name__}: {exc}')}"
        ) from None
    return HybridNLSampler(nl, **defaults)


SPEC = SolverSpec(
    make_sampler,
    leap_unavailable,
    "Leap hybrid nonlinear solver: a layer as one integer model, whole grid (needs a Leap token)",
    whole_grid=True,
    default_start="gptq",
)
