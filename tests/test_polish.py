"""Polishing kbest's answer window by window (issue 32): planted improvements recovered,
windows whose BQM energies are exact, the default run never worse than kbest per neuron,
and a rerun that replays every window from the cache."""

import dimod
import numpy as np
import pytest

import annealq
from annealq import formulate_layer
from annealq.cache import CacheStore
from annealq.capture import layer_inputs, linear_layers
from solvers.exact_bb.box import solve_box
from solvers.polish import EXACT, PolishComposite
from solvers.polish.windows import NeuronState, Window, neighbours


@pytest.fixture(scope="module")
def digits():
    data = annealq.load_dataset("digits")
    model, _ = annealq.reference_model(data)
    return data, model


@pytest.fixture(scope="module")
def digits_first_layer(digits):
    """Digits' first layer (64 inputs) at int2 on the whole grid: its neurons' optima are
    proven by the box sphere decoder in milliseconds."""
    data, model = digits
    x = data.calibration(300, seed=0)
    [(_, layer), *_] = linear_layers(model, x)
    X = layer_inputs(model, [layer], x)[0]
    return formulate_layer(layer.weight, layer.bias, X, bits=2, window_bits=2)


def _optimum(lq, i):
    state = NeuronState.of(lq, i, np.zeros(lq.n_inputs + 1, dtype=np.int64))
    span, e, p = lq.integer_form(i)
    H = lq.entry_gram * np.outer(e, e)
    result = solve_box(H, -e * p, np.zeros_like(span), span, incumbent=np.zeros_like(span))
    assert result.proven
    state.move(np.arange(len(span)), result.o)  # (the bias refit keeps the optimum)
    return state


def _planted(best: NeuronState):
    """The optimum with three weights of one window moved by ±1: the window the polisher
    tries first (seeded at the weight nearest a tie, grown along the correlations)."""
    live = best.live()
    table = neighbours(best.gram, live, 12)
    for row, seed in enumerate(live):
        inside = [c for c in table[row] if 0 < best.o[c] < best.span[c]][:3]
        if seed not in inside or len(inside) < 3:
            continue
        o = best.o.copy()
        o[inside] += np.array([-1, 1, -1])
        state = NeuronState(**{**best.__dict__, "o": o, "field": best.gram @ (best.e * o)})
        if state.tie_order(live)[0] == seed:
            return o
    pytest.fail("no window to plant a move in")


def test_a_planted_move_inside_one_window_is_recovered_exactly(digits_first_layer):
    lq = digits_first_layer
    for i in (0, 7):
        best = _optimum(lq, i)
        planted = _planted(best)
        start = lq.samples(lq.states((lq.base[i] + planted)[None, :], [i]), [i])
        assert lq.energy(i, start[0]) > best.energy() * 1.01
        [result] = PolishComposite(EXACT, window=12).sample_layer(
            lq, neurons=[i], initial_states=start
        )
        found = lq.integers(i, lq.assignment(i, result.sample)) - lq.base[i]
        assert result.energy == pytest.approx(best.energy(), rel=1e-9)
        assert np.array_equal(found[:-1], best.o[:-1])
        assert result.info["polish"]["windows_accepted"] >= 1


def test_a_move_planted_in_any_window_is_recovered_with_the_best_window_and_the_bias_inside(
    digits_first_layer,
):
    """A ±1 move on three weights of a random window (not the one tried first): the first
    improving window can lead elsewhere, but each pass's best window, with the bias free to
    move back with the weights, returns to the proven optimum."""
    lq = digits_first_layer
    rng = np.random.default_rng(1)
    for i in range(6):
        best = _optimum(lq, i)
        live = best.live()
        table = neighbours(best.gram, live, 12)
        room = [c for c in table[rng.integers(len(live))] if 0 < best.o[c] < best.span[c]]
        o = best.o.copy()
        o[rng.choice(room, 3, replace=False)] += rng.choice([-1, 1], 3)
        start = lq.samples(lq.states((lq.base[i] + o)[None, :], [i]), [i])
        [result] = PolishComposite(
            EXACT, window=12, whole_first=False, accept="best", bias_in_windows=True
        ).sample_layer(lq, neurons=[i], initial_states=start)
        assert result.energy == pytest.approx(best.energy(), rel=1e-9)


def test_a_windows_bqm_is_its_exact_problem_for_every_assignment():
    rng = np.random.default_rng(3)
    lq = formulate_layer(
        rng.normal(size=(1, 6)), rng.normal(size=1), rng.normal(size=(30, 6)), bits=3, window_bits=3
    )
    state = NeuronState.of(lq, 0, lq.rtn_integers()[0] - lq.base[0])
    for move in (1, None):
        window = Window.of(state, np.array([0, 2, 5]), move=move)
        bqm, C = window.bqm()
        for sample, energy in dimod.ExactSolver().sample(bqm).data(["sample", "energy"]):
            o = window.decode(C, sample)
            assert np.all((window.low <= o) & (o <= window.high))
            assert energy == pytest.approx(window.value(o), rel=1e-9, abs=1e-9)
        incumbent = window.decode(C, window.encode(C, window.incumbent))
        assert np.array_equal(incumbent, window.incumbent)


def test_an_annealer_never_makes_a_neuron_worse_and_the_controls_are_reported():
    rng = np.random.default_rng(5)
    lq = formulate_layer(
        rng.normal(size=(4, 20)),
        rng.normal(size=4),
        rng.normal(size=(80, 20)),
        bits=3,
        window_bits=3,
    )
    starts = lq.samples(lq.states(lq.rtn_integers()))
    polisher = annealq.get_sampler("polish", child="neal", window=6, num_reads=2, num_sweeps=50)
    results = polisher.sample_layer(lq, initial_states=starts)
    for i, (result, start) in enumerate(zip(results, starts)):
        report = result.info["polish"]
        assert result.energy <= lq.energy(i, start) + 1e-9
        assert report["final_energy"] == pytest.approx(result.energy, rel=1e-9)
        assert set(report["controls"]) == {"exact_same_windows", "exact_random_windows"}
        # the controls start from the same incumbent and never rise above it either
        for energy in report["controls"].values():
            assert energy <= report["incumbent_energy"] + 1e-9


def test_the_default_run_is_never_worse_than_kbest_neuron_by_neuron(no_token):
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 10), torch.nn.Tanh(), torch.nn.Linear(10, 3))
    x = np.random.default_rng(0).normal(size=(150, 12))
    default = annealq.quantize(model, x, bits=2, cache=False, quiet=True)
    kbest = annealq.quantize(model, x, bits=2, solver="kbest", cache=False, quiet=True)
    assert default.report["config"]["start"] == "kbest"
    assert default.report["config"]["polish"] == "auto"
    # the first layer sees the same inputs in both runs: compare neuron by neuron
    first = model[0]
    lq = formulate_layer(first.weight, first.bias, x, bits=2, window_bits=2)

    def neuron_errors(layer):
        integers = np.column_stack([layer.int_weight, layer.int_bias])
        return lq.energies(lq.states(integers))

    assert np.all(
        neuron_errors(default.layers[0]) <= neuron_errors(kbest.layers[0]) * (1 + 1e-12) + 1e-12
    )
    # every layer: the polished answer is never above kbest's on the run's own inputs
    for layer in default.report["layers"]:
        assert layer["polish"]["final_energy"] <= layer["polish"]["incumbent_energy"] + 1e-9
        assert layer["energy"] <= layer["polish"]["incumbent_energy"] * (1 + 1e-9)
    paper = annealq.quantize(model, x, bits=2, cache=False, quiet=True, paper=True)
    assert paper.report["config"]["start"] is None and paper.report["solver"] == "neal"


def _small_layer():
    """A random 3-neuron, 16-input layer at int3 (the same one in the killed process) and its
    RTN samples."""
    rng = np.random.default_rng(9)
    lq = formulate_layer(
        rng.normal(size=(3, 16)),
        rng.normal(size=3),
        rng.normal(size=(60, 16)),
        bits=3,
        window_bits=3,
    )
    return lq, lq.samples(lq.states(lq.rtn_integers()))


def _counting(seen):
    """An ExactSolver that calls ``seen(bqm)`` on every window it solves."""

    class Counting(dimod.ExactSolver):
        def sample(self, bqm, **kw):
            seen(bqm)
            return super().sample(bqm, **{k: v for k, v in kw.items() if k in self.parameters})

    return Counting


def test_a_rerun_replays_every_window_from_the_cache(tmp_path):
    lq, starts = _small_layer()
    calls = []
    Counting = _counting(lambda bqm: calls.append(1))

    with CacheStore(tmp_path / "c.sqlite") as store:
        first = PolishComposite(
            Counting(), window=4, store=store, child_name="counting", whole_first=False
        )
        one = first.sample_layer(lq, initial_states=starts)
        solved = len(calls)
        # a killed run: the same windows again (a fresh composite, the same store)
        again = PolishComposite(
            Counting(), window=4, store=store, child_name="counting", whole_first=False
        )
        two = again.sample_layer(lq, initial_states=starts)
    assert solved > 0 and len(calls) == solved  # no window solved twice
    assert [r.energy for r in one] == [r.energy for r in two]


KILLED_RUN = """
import os, signal, sys
import dimod, numpy as np
from annealq import formulate_layer
from annealq.cache import CacheStore
from solvers.polish import PolishComposite

rng = np.random.default_rng(9)
lq = formulate_layer(rng.normal(size=(3, 16)), rng.normal(size=3), rng.normal(size=(60, 16)),
                     bits=3, window_bits=3)
log = open(sys.argv[2], "a")

class Dying(dimod.ExactSolver):
    calls = 0
    def sample(self, bqm, **kw):
        Dying.calls += 1
        if Dying.calls == 6:  # killed in the middle of a window: nothing of it is stored
            os.kill(os.getpid(), signal.SIGKILL)
        log.write(repr(sorted(bqm.to_serializable()["linear_biases"])) + "\\n")
        log.flush()
        return super().sample(bqm, **{k: v for k, v in kw.items() if k in self.parameters})

with CacheStore(sys.argv[1]) as store:
    PolishComposite(Dying(), window=4, store=store, child_name="counting",
                    whole_first=False).sample_layer(
        lq, initial_states=lq.samples(lq.states(lq.rtn_integers())))
"""


def test_a_killed_run_resumes_with_no_window_solved_twice(tmp_path):
    """A polishing process killed with SIGKILL mid-window; the rerun solves none of the
    windows the killed one finished, and ends where an uninterrupted run ends."""
    import subprocess
    import sys

    killed_log = tmp_path / "killed.log"
    done = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(tmp_path / "c.sqlite"), str(killed_log)],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr.decode()[-500:]
    finished = killed_log.read_text().splitlines()
    assert len(finished) == 5
    lq, starts = _small_layer()
    solved = []
    Counting = _counting(
        lambda bqm: solved.append(repr(sorted(bqm.to_serializable()["linear_biases"])))
    )

    with CacheStore(tmp_path / "c.sqlite") as store:
        resumed = PolishComposite(
            Counting(), window=4, store=store, child_name="counting", whole_first=False
        ).sample_layer(lq, initial_states=starts)
    assert not set(finished) & set(solved)  # none of the killed run's windows again
    fresh = PolishComposite(EXACT, window=4, whole_first=False).sample_layer(
        lq, initial_states=starts
    )
    assert [r.energy for r in resumed] == pytest.approx([r.energy for r in fresh], rel=1e-12)
