"""Checks a solver must pass to serve annealq: every registry entry runs them in annealq's
own tests, and a third-party solver can run them on itself.

:func:`assert_conforms` checks the ``dimod.Sampler`` side: dimod's API, empty, SPIN and
BINARY problems with integer and tuple labels (the formulation labels weights ``("w", j)``
and the bias ``("b",)``), energies that match the problem, the same samples for the same
seed, warm starts that keep the ground state, and ``parameters`` the ``sample`` method
accepts. :func:`assert_layer_conforms` checks the layer protocol
(:class:`~annealq.protocol.LayerSampler`) on a small real layer.

Example:
    >>> import dimod
    >>> from annealq.testing.conformance import assert_conforms, assert_layer_conforms
    >>> assert_conforms(dimod.ExactSolver())
    >>> assert_layer_conforms(dimod.ExactSolver())  # not a layer solver: nothing to check
"""

from __future__ import annotations

import inspect

import dimod
import dimod.testing
import numpy as np

from annealq.formulation import formulate_layer
from annealq.protocol import LayerSampler


def random_bqm(vartype, labels, seed: int = 0) -> dimod.BQM:
    """A BQM over ``labels`` with normal biases, about 60 % of the couplings present."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    linear = {v: float(x) for v, x in zip(labels, rng.normal(size=n))}
    quadratic = {
        (labels[j], labels[k]): float(rng.normal())
        for j in range(n)
        for k in range(j + 1, n)
        if rng.random() < 0.6
    }
    return dimod.BQM(linear, quadratic, 0.25, vartype)


def assert_conforms(sampler: dimod.Sampler, *, ground_state_within: float = 1e-9) -> None:
    """Raise ``AssertionError`` unless ``sampler`` behaves as annealq needs a sampler to.

    Args:
        sampler: the ``dimod.Sampler`` to check (constructed as a user would).
        ground_state_within: how far above the ground state's energy a warm start from
            the ground state may end (for samplers that take ``initial_states``).
    """
    dimod.testing.assert_sampler_api(sampler)
    empty = sampler.sample(dimod.BQM("BINARY"))
    assert len(empty.variables) == 0
    for vartype, labels in (
        (dimod.SPIN, list(range(7))),
        (dimod.BINARY, [("w", j) for j in range(6)] + [("b",)]),
    ):
        bqm = random_bqm(vartype, labels)
        sampleset = sampler.sample(bqm)
        assert sampleset.vartype is bqm.vartype
        assert set(sampleset.variables) == set(bqm.variables)
        dimod.testing.assert_sampleset_energies(sampleset, bqm)
        values = set(np.unique(sampleset.record.sample).tolist())
        assert values <= ({-1, 1} if vartype is dimod.SPIN else {0, 1})
    bqm = random_bqm(dimod.BINARY, list(range(8)), seed=3)
    ground = dimod.ExactSolver().sample(bqm).first
    if "seed" in sampler.parameters:
        first, again = sampler.sample(bqm, seed=5), sampler.sample(bqm, seed=5)
        assert np.array_equal(first.record.sample, again.record.sample)
    if "initial_states" in sampler.parameters:
        start = dimod.SampleSet.from_samples_bqm(ground.sample, bqm)
        warm = sampler.sample(bqm, initial_states=start)
        assert warm.first.energy <= ground.energy + ground_state_within
    signature = inspect.signature(sampler.sample).parameters
    open_ended = any(p.kind is p.VAR_KEYWORD for p in signature.values())
    assert open_ended or set(sampler.parameters) <= set(signature)


def small_layer(seed: int = 42):
    """A real formulation: 3 neurons of 12 inputs (13 variables each with the bias), int2."""
    rng = np.random.default_rng(seed)
    W, b, X = rng.normal(size=(3, 12)), rng.normal(size=3), rng.normal(size=(50, 12))
    return formulate_layer(W, b, X, bits=2)


def assert_layer_conforms(sampler, lq=None) -> None:
    """For a :class:`~annealq.protocol.LayerSampler`: ``sample_layer`` answers the neurons
    asked for, in their order, each with its exact energy and ``info["timing"]
    ["solve_seconds"]``. Other samplers must not have a ``sample_layer`` method (layer
    solvers are chosen by type, never by ``hasattr``).

    Args:
        sampler: the solver to check.
        lq: the layer to solve (default: :func:`small_layer`).
    """
    if not isinstance(sampler, LayerSampler):
        assert not hasattr(type(sampler), "sample_layer"), type(sampler).__name__
        return
    lq = small_layer() if lq is None else lq
    results = sampler.sample_layer(lq, neurons=[2, 0])
    assert len(results) == 2
    for i, result in zip([2, 0], results):
        expected = lq.bqm(i).energy(result.sample)
        assert abs(result.energy - expected) <= 1e-9 * max(1.0, abs(expected))
        assert "solve_seconds" in result.info["timing"]
