import json
import logging
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import PurePosixPath

import dimod
import numpy as np
import pytest

from annealq import formulate_layer
from annealq.cache import CachedSampler, CacheStore, bqm_hash, cache_key, default_cache_path
from annealq.results import SolveResult

# Builds a 6-neuron layer with 784 inputs from a fixed seed and prints each neuron's
# bqm_hash, plus the hash of its exact bits (bits=53), as JSON.
HASH_SCRIPT = textwrap.dedent("""
    import json, numpy as np
    from annealq import formulate_layer
    from annealq.cache import bqm_hash
    rng = np.random.default_rng(7)
    W, b, X = rng.normal(size=(6, 784)), rng.normal(size=6), rng.normal(size=(1000, 784))
    bqms = list(formulate_layer(W, b, X, bits=2).bqms())
    print(json.dumps([[bqm_hash(q) for q in bqms], [bqm_hash(q, bits=53) for q in bqms]]))
""")

WRITER_SCRIPT = textwrap.dedent("""
    import sys
    from annealq.cache import CacheStore
    from annealq.results import SolveResult
    store = CacheStore(sys.argv[1])
    print("ready", flush=True)
    for k in range(int(sys.argv[2])):
        store.put(f"key{k}", "writer", SolveResult({("w", k): 1, ("b",): 0}, float(k)))
    store.close()
""")


def _small_bqm(seed=0, n=5):
    rng = np.random.default_rng(seed)
    labels = [("w", j) for j in range(n - 1)] + [("b",)]
    linear = {v: float(rng.normal()) for v in labels}
    quadratic = {(u, v): float(rng.normal()) for k, u in enumerate(labels) for v in labels[k + 1 :]}
    return dimod.BQM(linear, quadratic, float(rng.normal()), "BINARY")


def _vectors_bqm(bqm, factor_linear=1.0, factor_quadratic=1.0, factor_offset=1.0):
    """The same BQM with every linear / quadratic bias / the offset multiplied."""
    order = list(bqm.variables)
    linear, (row, col, quadratic), offset = bqm.to_numpy_vectors(variable_order=order)
    return dimod.BQM.from_numpy_vectors(
        linear * factor_linear,
        (row, col, quadratic * factor_quadratic),
        offset * factor_offset,
        bqm.vartype,
        variable_order=order,
    )


def _file_bytes(directory):
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())


class ExactChild(dimod.Sampler):
    """dimod.ExactSolver that accepts (and records) a token and a seed, and counts calls."""

    parameters = {"token": [], "seed": []}
    properties = {}

    def __init__(self):
        self.calls = []

    def sample(self, bqm, **kwargs):
        self.calls.append(kwargs)
        sampleset = dimod.ExactSolver().sample(bqm)
        sampleset.info.update(kwargs)  # a careless backend echoing its token into info
        return sampleset


class FailingChild(dimod.Sampler):
    parameters = {"token": [], "seed": []}
    properties = {}

    def sample(self, bqm, **kwargs):
        raise AssertionError("the child must not be called on a cache hit")


def test_same_layer_in_two_processes_gives_identical_keys():
    # Different BLAS thread counts change the last bits of the linear terms (measured in
    # annealq.cache.HASH_BITS); the keys must not notice.
    runs = []
    for threads in ("1", "2"):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, PYTHONHASHSEED=threads)
        runs.append(
            subprocess.Popen(
                [sys.executable, "-c", HASH_SCRIPT], env=env, stdout=subprocess.PIPE, text=True
            )
        )
    (first, _), (second, _) = (json.loads(p.communicate(timeout=60)[0]) for p in runs)
    assert all(p.returncode == 0 for p in runs)
    assert len(first) == 6 and len(set(first)) == 6
    assert first == second
    keys = [cache_key(h, "neal", {"num_reads": 10, "seed": 1}) for h in first]
    assert keys == [cache_key(h, "neal", {"seed": 1, "num_reads": 10}) for h in second]


def test_tiny_perturbation_keeps_the_hash_and_a_real_change_does_not():
    rng = np.random.default_rng(3)
    W, b, X = rng.normal(size=(2, 20)), rng.normal(size=2), rng.normal(size=(50, 20))
    bqm = formulate_layer(W, b, X, bits=2).bqm(0)
    h = bqm_hash(bqm)
    noisy = _vectors_bqm(bqm, 1 + 1e-15, 1 - 1e-15, 1 + 1e-15)
    assert bqm_hash(noisy, bits=53) != bqm_hash(bqm, bits=53)  # the bits did change
    assert bqm_hash(noisy) == h
    assert bqm_hash(_vectors_bqm(bqm, factor_linear=1 + 1e-6)) != h
    assert bqm_hash(_vectors_bqm(bqm, factor_quadratic=1 + 1e-6)) != h
    assert bqm_hash(_vectors_bqm(bqm, factor_offset=1 + 1e-6)) != h
    v = next(iter(bqm.variables))
    one = bqm.copy()
    one.add_linear(v, 1e-6 * abs(bqm.get_linear(v)))
    assert bqm_hash(one) != h
    assert bqm_hash(dimod.BQM(bqm.linear, bqm.quadratic, bqm.offset, "SPIN")) != h
    assert bqm_hash(bqm.relabel_variables({v: ("w", 99)}, inplace=False)) != h


def test_hash_ignores_construction_order_and_zero_couplers():
    bqm = _small_bqm(n=8)
    labels = list(bqm.variables)
    random.Random(1).shuffle(labels)
    couplers = list(bqm.quadratic.items())
    random.Random(2).shuffle(couplers)
    rebuilt = dimod.BQM("BINARY")
    for v in labels:
        rebuilt.add_linear(v, bqm.get_linear(v))
    for (u, v), bias in couplers:
        rebuilt.add_quadratic(v, u, bias)  # each coupler with its ends swapped
    rebuilt.offset = bqm.offset
    assert list(rebuilt.variables) != list(bqm.variables)
    assert bqm_hash(rebuilt) == bqm_hash(bqm)
    rebuilt.add_quadratic(("w", 0), ("w", 1), 0.0)
    assert bqm_hash(rebuilt) == bqm_hash(bqm)
    sparse = dimod.BQM({"a": 1.0, 3: -1.0, ("x", 1): 0.5}, {("a", 3): 2.0}, 0.0, "SPIN")
    sparse_reversed = dimod.BQM({("x", 1): 0.5, 3: -1.0, "a": 1.0}, {(3, "a"): 2.0}, 0.0, "SPIN")
    assert bqm_hash(sparse) == bqm_hash(sparse_reversed)
    assert bqm_hash(sparse) != bqm_hash(
        dimod.BQM({"a": 1.0, "3": -1.0, ("x", 1): 0.5}, {("a", "3"): 2.0}, 0.0, "SPIN")
    )


def test_hash_and_key_reject_bad_input():
    with pytest.raises(TypeError, match="BinaryQuadraticModel"):
        bqm_hash({"a": 1.0})
    with pytest.raises(ValueError, match="bits"):
        bqm_hash(_small_bqm(), bits=60)
    with pytest.raises(ValueError, match="NaN or infinite"):
        bqm_hash(dimod.BQM({"a": float("nan")}, {}, 0.0, "BINARY"))
    with pytest.raises(ValueError, match="frozenset"):
        bqm_hash(dimod.BQM({frozenset({1}): 1.0}, {}, 0.0, "BINARY"))
    with pytest.raises(ValueError, match="'callback'"):
        cache_key("ab", "neal", {"callback": object()})
    with pytest.raises(ValueError, match="solver_name"):
        cache_key("ab", "", {})
    assert cache_key("ab", "neal", {"seed": None}) == cache_key("ab", "neal", {})
    assert cache_key("ab", "neal", {"seed": 1}) != cache_key("ab", "neal", {"seed": 2})
    assert cache_key("ab", "neal", {"seed": np.int64(1)}) == cache_key("ab", "neal", {"seed": 1})


def test_default_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ANNEALQ_CACHE", str(tmp_path / "here.sqlite"))
    assert default_cache_path() == tmp_path / "here.sqlite"
    monkeypatch.delenv("ANNEALQ_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == tmp_path / "xdg" / "annealq" / "cache.sqlite"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / ".cache" / "annealq" / "cache.sqlite"


def test_put_then_get_round_trips_sample_energy_and_info(tmp_path):
    sample = {("w", 0): 1, ("w", 17): 0, ("b",): 1, "plain": 0, 5: 1}
    info = {
        "timing": {"qpu_access_time": np.float64(12.5)},
        "beta_range": (0.1, 4.0),
        "problem_id": "abc",
        "label": ("w", 1),
        "path": PurePosixPath("/tmp/x"),
    }
    with CacheStore(tmp_path / "c.sqlite") as store:
        store.put("k", "neal", SolveResult(sample, -1.25, info, 0.3))
    with CacheStore(tmp_path / "c.sqlite") as store:  # a fresh connection reads it back
        result = store.get_many(["k"])["k"]
    assert result.sample == sample
    assert list(result.sample) == list(sample)
    assert result.energy == -1.25 and result.wall_seconds == 0.3
    assert result.info == {
        "timing": {"qpu_access_time": 12.5},
        "beta_range": [0.1, 4.0],
        "problem_id": "abc",
        "label": ["w", 1],
        "path": "/tmp/x",
    }


def test_put_rejects_bad_input(tmp_path):
    with CacheStore(tmp_path / "c.sqlite") as store:
        with pytest.raises(TypeError, match="SolveResult"):
            store.put("k", "neal", {"a": 1})
        with pytest.raises(ValueError, match="finite"):
            store.put("k", "neal", SolveResult({"a": 1}, float("nan")))
        with pytest.raises(ValueError, match="key"):
            store.put("", "neal", SolveResult({"a": 1}, 0.0))
        with pytest.raises(ValueError, match="misses"):
            store.record_run(3, -1)
        assert store.stats()["entries"] == 0


def test_get_many_reads_a_layer_in_one_query_and_many_keys_in_chunks(tmp_path):
    with CacheStore(tmp_path / "c.sqlite") as store:
        for k in range(2000):
            store.put(
                f"key{k}", "neal" if k % 2 else "tabu", SolveResult({("w", k): k % 2}, float(k))
            )
        selects = []
        store._conn.set_trace_callback(
            lambda sql: selects.append(sql) if sql.startswith("SELECT") else None
        )
        layer = store.get_many([f"key{k}" for k in range(128)] + ["absent"])
        assert len(selects) == 1
        assert sorted(layer) == sorted(f"key{k}" for k in range(128))
        everything = store.get_many(f"key{k}" for k in range(2100))
        assert len(selects) == 1 + 3  # 2100 keys in chunks of 900
        assert len(everything) == 2000
        assert all(everything[f"key{k}"].energy == k for k in range(2000))
        assert everything["key7"].sample == {("w", 7): 1}
        store.record_run(hits=1500, misses=500)
        stats = store.stats()
        assert stats["entries"] == 2000 and stats["solvers"] == {"neal": 1000, "tabu": 1000}
        assert stats["bytes"] > 0
        assert (stats["last_run"]["hits"], stats["last_run"]["misses"]) == (1500, 500)
        assert store.clear(solver="tabu") == 1000
        assert store.stats()["solvers"] == {"neal": 1000}
        assert store.clear() == 1000 and store.stats()["entries"] == 0


@pytest.mark.parametrize(
    "column, garbage",
    [
        ("sample", '[["w", 0], 1'),
        ("info", "not json"),
        ("energy", "abc"),
        ("sample", '[[["w", 0], "x"]]'),
    ],
)
def test_corrupted_entry_is_a_miss_warned_once_then_rewritten(tmp_path, caplog, column, garbage):
    path = tmp_path / "c.sqlite"
    good = SolveResult({("w", 0): 1}, 2.0, {"n": 1}, 0.1)
    with CacheStore(path) as store:
        store.put("k", "neal", good)
        store.put("other", "neal", good)
        with sqlite3.connect(path) as db:
            db.execute(f"UPDATE entries SET {column} = ? WHERE key = 'k'", (garbage,))
        with caplog.at_level(logging.WARNING, logger="annealq.cache"):
            assert list(store.get_many(["k", "other"])) == ["other"]
            assert store.get_many(["k"]) == {}
        assert len(caplog.records) == 1
        message = caplog.records[0].getMessage()
        # the checksum covers the sample and the energy; info is only decoded
        assert "unreadable" in message or "fails its checksum" in message
        assert "treating it as a miss" in message
        store.put("k", "neal", good)
        assert store.get_many(["k"]) == {"k": good}


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="not a usable annealq cache"):
        CacheStore(path)


def test_one_process_writes_while_another_reads(tmp_path):
    path, n = tmp_path / "c.sqlite", 400
    CacheStore(path).close()  # create the schema before both start
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER_SCRIPT, str(path), str(n)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline().strip() == "ready"
    seen = []
    with CacheStore(path) as store:
        while writer.poll() is None:
            found = store.get_many(f"key{k}" for k in range(n))
            assert all(found[key].energy == float(key[3:]) for key in found)
            seen.append(len(found))
            assert store.stats()["entries"] >= seen[-1]
        _, errors = writer.communicate(timeout=60)
        assert writer.returncode == 0, errors
        assert len(store.get_many(f"key{k}" for k in range(n))) == n
    assert seen and seen == sorted(seen)  # reads only ever saw committed, growing data


def test_cached_sampler_answers_a_repeat_without_calling_its_child(tmp_path):
    bqm = _small_bqm(seed=4, n=6)
    with CacheStore(tmp_path / "c.sqlite") as store:
        child = ExactChild()
        sampler = CachedSampler(child, store, "exact", seed=5)
        assert sampler.parameters == child.parameters and sampler.children == [child]
        first = sampler.sample(bqm)
        assert (sampler.hits, sampler.misses, len(child.calls)) == (0, 1, 1)
        assert child.calls == [{"seed": 5}]
        brute = dimod.ExactSolver().sample(bqm).first

        again = CachedSampler(FailingChild(), store, "exact", seed=5)
        hit = again.sample(bqm)
        assert (again.hits, again.misses) == (1, 0)
        assert dict(hit.first.sample) == dict(first.first.sample) == dict(brute.sample)
        assert hit.first.energy == pytest.approx(brute.energy, abs=1e-12)
        assert hit.info["cached"] is True
        assert set(hit.variables) == set(bqm.variables)

        key = sampler.key(bqm)
        assert store.get_sampleset(key) == first  # the whole sample set was kept
        assert CachedSampler(FailingChild(), store, "exact").key(bqm) != key  # other seed
        with pytest.raises(AssertionError, match="must not be called"):
            again.sample(bqm, seed=6)


def test_cached_sampler_with_a_dwave_sampler(tmp_path):
    samplers = pytest.importorskip("dwave.samplers")
    bqm = _small_bqm(seed=8, n=6)
    with CacheStore(tmp_path / "c.sqlite") as store:
        sampler = CachedSampler(samplers.SteepestDescentSolver(), store, "steepest")
        first = sampler.sample(bqm, num_reads=20, seed=3).first
        again = CachedSampler(FailingChild(), store, "steepest")
        hit = again.sample(bqm, num_reads=20, seed=3).first
        assert dict(hit.sample) == dict(first.sample)
        assert hit.energy == pytest.approx(first.energy, rel=1e-12)  # recomputed from bqm


def test_credentials_never_reach_the_key_or_the_file(tmp_path):
    bqm = _small_bqm(seed=9, n=4)
    with CacheStore(tmp_path / "c.sqlite") as store:
        child = ExactChild()
        sampler = CachedSampler(child, store, "exact", token="canary-secret")
        sampler.sample(bqm, seed=1)
        assert child.calls == [{"token": "canary-secret", "seed": 1}]  # the child got it
        key = sampler.key(bqm, seed=1)
        assert key == cache_key(bqm_hash(bqm), "exact", {"seed": 1})
        assert set(store.get_many([key])[key].info) == {"seed", "best", "timing"}
        stored = _file_bytes(tmp_path)
        assert b"seed" in stored  # the search below reads the real data
        assert b"canary-secret" not in stored
    assert b"canary-secret" not in _file_bytes(tmp_path)
