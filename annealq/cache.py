"""A persistent cache of solved BQMs, so repeated and interrupted runs skip solving.

* :func:`bqm_hash` names a BQM by its content and :func:`cache_key` adds the solver and
  the parameters that change its answer (never credentials);
* :class:`CacheStore` keeps each key's best sample in SQLite (WAL mode), every result
  committed on its own, so a run killed with ``kill -9`` keeps everything it solved;
* :class:`CachedSampler` is a dimod composite that answers from the store and calls its
  child only on a miss (example there).

A layer's dispatch can also look up all its keys at once: ``CachedSampler.key`` (or
:func:`cache_key` of :func:`bqm_hash`) for each BQM, then one :meth:`CacheStore.get_many`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import dimod
import numpy as np

from annealq.dispatch import SolveResult, best_result

logger = logging.getLogger(__name__)

HASH_BITS = 24
"""Significant bits a coefficient keeps in :func:`bqm_hash` (float32's precision).

Why so few: formulating the same 128×784 layer (1000 calibration rows) with OpenBLAS on
1 thread and on 2 threads changed 644 of 779 linear biases of a neuron in their last bits
(relative differences up to 2.5e-13). Keys keeping 36 bits then differed for 16 and 9 of
the 128 neurons (two seeds), 32 bits for 2 and 0, 24 to 28 bits for none; in the two-process
test, 40 bits (about 12 significant digits) changed 5 keys of 6. With 24 bits, rounding
steps are at least 6e-8 (relative) apart, so noise of ~1e-16 carries a coefficient across
one with probability ~2e-9: about once per 1000 dense 785-variable BQMs even if all their
308,000 couplers were noisy, and such a miss only costs a re-solve. The price: BQMs that
agree to 6e-8 in every coefficient share a key. A cache hit recomputes the energy from the
BQM asked about, and no solver here resolves such differences anyway.
"""

_HASH_VERSION = b"annealq-bqm-hash-v1"
_KEY_VERSION = "annealq-cache-key-v1"
_CREDENTIAL_WORDS = ("token", "password", "secret", "credential", "api_key", "apikey")
_CHUNK = 900  # keys per query: under SQLite's historical limit of 999 bound variables

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    solver TEXT NOT NULL,
    sample TEXT NOT NULL,        -- JSON [[label, value], ...]; tuple labels as lists
    energy REAL NOT NULL,
    info TEXT NOT NULL,          -- JSON object
    wall_seconds REAL NOT NULL,
    sampleset TEXT,              -- JSON of SampleSet.to_serializable(), or NULL
    created REAL NOT NULL        -- Unix time
);
CREATE INDEX IF NOT EXISTS entries_by_solver ON entries (solver);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def bqm_hash(bqm: dimod.BinaryQuadraticModel, *, bits: int = HASH_BITS) -> str:
    """A hex SHA-256 of a BQM's content, the same in every process and platform.

    Covers the vartype, the variable labels, and the linear biases, quadratic biases and
    offset rounded to ``bits`` significant bits (see :data:`HASH_BITS`). Variables are
    ordered by the JSON text of their labels and couplers by that order, so neither the
    order in which the BQM was built nor Python's hash seed matter; a coupler whose bias
    rounds to 0 is left out, as it does not change any energy.

    Cost: 30 ms (median of 50 ``time.perf_counter`` runs; best 27 ms) for the dense BQM
    ``formulate_layer(W, b, X, bits=2).bqm(0)`` with ``W`` (128, 784), ``X`` (1000, 784)
    random normal: 779 variables, 303,031 couplers. On the same shared 2-core x86 machine,
    ``dwave.samplers.SimulatedAnnealingSampler`` with its defaults took 0.64 s on it. Most
    of the 30 ms is sorting the couplers (9 ms) and SHA-256 over 7 MB (6 ms).

    Args:
        bqm: the problem.
        bits: significant bits kept per coefficient, 1..53 (53 keeps every bit).

    Raises:
        TypeError: ``bqm`` is not a ``dimod.BinaryQuadraticModel``.
        ValueError: ``bits`` out of range, a non-finite bias, or a label that is not
            JSON-like (str, int, float, bool, None or tuples of them).

    Example:
        >>> a = dimod.BQM({"x": 1.0, "y": 2.0}, {("x", "y"): -1.0}, 0.5, "BINARY")
        >>> b = dimod.BQM({"y": 2.0, "x": 1.0}, {("y", "x"): -1.0}, 0.5, "BINARY")
        >>> bqm_hash(a) == bqm_hash(b)
        True
    """
    if not isinstance(bqm, dimod.BinaryQuadraticModel):
        raise TypeError(f"bqm must be a dimod.BinaryQuadraticModel, got {type(bqm).__name__}")
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 53:
        raise ValueError(f"bits must be an integer from 1 to 53, got {bits!r}")
    texts = [_label_json(v) for v in bqm.variables]
    rank = sorted(range(len(texts)), key=texts.__getitem__)
    order = [bqm.variables[k] for k in rank]
    linear, (row, col, quadratic), offset = bqm.to_numpy_vectors(variable_order=order)
    coefficients = (linear, quadratic, np.array([offset], dtype=np.float64))
    if not all(np.all(np.isfinite(c)) for c in coefficients):
        raise ValueError("the BQM has a NaN or infinite bias; it cannot be hashed")
    linear, quadratic, offset = (_round_significant(c, bits) for c in coefficients)

    row, col = np.asarray(row, dtype=np.int64), np.asarray(col, dtype=np.int64)
    keep = quadratic != 0
    pair = np.minimum(row, col)[keep] * len(order) + np.maximum(row, col)[keep]
    by_pair = np.argsort(pair)
    parts = (_HASH_VERSION, bqm.vartype.name.encode(), str(bits).encode(),
             ("[" + ",".join(texts[k] for k in rank) + "]").encode(),
             linear.tobytes(), pair[by_pair].astype("<i8").tobytes(),
             quadratic[keep][by_pair].tobytes(), offset.tobytes())
    digest = hashlib.sha256()
    for part in parts:  # length-prefixed, so no two different BQMs give the same stream
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


def layer_hashes(lq, *, bits: int = HASH_BITS) -> list[str]:
    """One hash per neuron of a :class:`~annealq.formulation.LayerQUBO`, from its shared
    form (Gram matrix, steps, linear terms, offset, free mask) rather than a BQM.

    Two layers with equal hashes pose the same QUBOs. Cost: the shared ``ÂᵀÂ`` is rounded
    and hashed once per layer, then O(f) per neuron — no BQM is built. These hashes and
    :func:`bqm_hash` never coincide (a different prefix), so each solver path finds
    its own entries.
    """
    shared = hashlib.sha256(b"annealq-layer-form-v1")
    shared.update(np.asarray(lq.gram.shape, dtype="<i8").tobytes())
    shared.update(_round_significant(lq.gram, bits).tobytes())
    digests = []
    for i in range(lq.n_neurons):
        neuron = shared.copy()
        for row in (lq.scales[i], lq.linear[i], lq.offset[i:i + 1]):
            neuron.update(_round_significant(row, bits).tobytes())
        neuron.update(np.packbits(lq.free[i]).tobytes())
        digests.append(neuron.hexdigest())
    return digests


def cache_key(bqm_hash: str, solver_name: str, parameters: Mapping | None = None) -> str:
    """The cache key: a hex SHA-256 of the BQM hash, the solver and its parameters.

    Parameters are canonical JSON (sorted keys). Those whose name looks like a credential
    (contains ``token``, ``password``, ``secret``, ``credential`` or ``api_key``) and those
    set to ``None`` (the sampler's default) are left out: a key never contains a
    credential, and ``sample(bqm, seed=None)`` shares the key of ``sample(bqm)``.

    Args:
        bqm_hash: from :func:`bqm_hash`.
        solver_name: names the solver and its configuration (e.g. ``"neal"``).
        parameters: the ``sample()`` keyword arguments that change the answer: numbers,
            strings, sequences, mappings, numpy arrays or a ``dimod.SampleSet``
            (``initial_states``).

    Raises:
        ValueError: an empty hash or solver name, or a parameter value of another type.

    Example:
        >>> cache_key("ab12", "neal", {"num_reads": 10, "token": "x"}) == \\
        ...     cache_key("ab12", "neal", {"num_reads": 10})
        True
    """
    _validate_text(bqm_hash, "bqm_hash")
    _validate_text(solver_name, "solver_name")
    payload = {"version": _KEY_VERSION, "bqm": bqm_hash, "solver": solver_name,
               "parameters": _key_parameters(parameters or {})}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def default_cache_path() -> Path:
    """``$ANNEALQ_CACHE``, else ``$XDG_CACHE_HOME/annealq/cache.sqlite``, else
    ``~/.cache/annealq/cache.sqlite``."""
    if os.environ.get("ANNEALQ_CACHE"):
        return Path(os.environ["ANNEALQ_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # XDG: ignore relative
    return root / "annealq" / "cache.sqlite"


class CacheStore:
    """Solved BQMs in an SQLite file, one row per cache key.

    WAL mode lets one process write while others read; each :meth:`put` is its own
    committed transaction (``synchronous=NORMAL``: a killed process loses nothing
    committed, a power cut may lose the last few). A row that cannot be decoded is logged
    once, read as a miss and replaced by the next :meth:`put` of its key. One connection
    per store: share a store between threads only with a lock of your own.

    Args:
        path: the SQLite file (created with its folder); default :func:`default_cache_path`.
        timeout: seconds to wait for another process's lock before failing.

    Raises:
        ValueError: ``path`` exists but is not an SQLite database.

    Example:
        >>> import pathlib, tempfile
        >>> store = CacheStore(pathlib.Path(tempfile.mkdtemp()) / "c.sqlite")
        >>> store.put("k1", "exact", SolveResult({("w", 0): 1}, 0.25, {"note": "hi"}, 0.1))
        >>> store.get_many(["k1", "k2"])["k1"].sample
        {('w', 0): 1}
        >>> store.stats()["entries"], store.stats()["solvers"]
        (1, {'exact': 1})
        >>> store.close()
    """

    def __init__(self, path: str | os.PathLike | None = None, *, timeout: float = 30.0):
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: every write below is a single statement, hence its own transaction.
        self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None,
                                     check_same_thread=False)
        self._warned: set[str] = set()
        try:
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise ValueError(f"{self.path} is not a usable annealq cache ({exc}); "
                             "delete it or choose another path") from None
        if mode.lower() != "wal":
            logger.warning("cache %s runs in %s journal mode, not WAL: concurrent readers "
                           "may wait for writers", self.path, mode)

    def get_many(self, keys: Iterable[str]) -> dict[str, SolveResult]:
        """The stored results of ``keys`` (misses are absent), in one query per 900 keys."""
        keys = list(dict.fromkeys(keys))
        for key in keys:
            _validate_text(key, "key")
        found = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            rows = self._conn.execute(
                "SELECT key, sample, energy, info, wall_seconds FROM entries "
                f"WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            for key, *fields in rows:
                result = self._decode(key, *fields)
                if result is not None:
                    found[key] = result
        return found

    def get_sampleset(self, key: str) -> dimod.SampleSet | None:
        """The full sample set stored with ``key``, or ``None`` (absent or unreadable)."""
        _validate_text(key, "key")
        row = self._conn.execute("SELECT sampleset FROM entries WHERE key = ?",
                                 (key,)).fetchone()
        if row is None or row[0] is None:
            return None
        try:
            return dimod.SampleSet.from_serializable(json.loads(row[0]))
        except (TypeError, ValueError, KeyError) as exc:
            self._warn_once(key, exc)
            return None

    def put(self, key: str, solver: str, result: SolveResult,
            sampleset: dimod.SampleSet | None = None) -> None:
        """Store (or replace) ``key``'s result, committed before returning.

        Args:
            key: from :func:`cache_key`.
            solver: the solver's name, for :meth:`stats` and :meth:`clear`.
            result: the best sample, its energy, info (made JSON: numpy values to numbers,
                unknown objects to ``str``, credential-like keys dropped) and wall time.
            sampleset: optionally the whole sample set, kept as dimod's serialization.

        Raises:
            TypeError: ``result`` is not a :class:`SolveResult`.
            ValueError: an empty key or solver name, or a non-finite energy.
        """
        _validate_text(key, "key")
        _validate_text(solver, "solver")
        if not isinstance(result, SolveResult):
            raise TypeError(f"result must be a SolveResult, got {type(result).__name__}")
        if not math.isfinite(result.energy):
            raise ValueError(f"result.energy must be finite, got {result.energy!r}")
        sample = _dumps([[label, int(value)] for label, value in result.sample.items()])
        serialized = None
        if sampleset is not None:
            try:
                serialized = _dumps(sampleset.to_serializable())
            except (TypeError, ValueError, AttributeError) as exc:
                logger.warning("sample set of cache entry %s not stored: %s", key[:12], exc)
        self._conn.execute(
            "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, solver, sample, float(result.energy), _dumps(dict(result.info)),
             float(result.wall_seconds), serialized, time.time()))
        self._warned.discard(key)

    def record_run(self, hits: int, misses: int) -> None:
        """Remember a run's cache hits and misses, reported by :meth:`stats`."""
        for name, value in (("hits", hits), ("misses", misses)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        value = json.dumps({"hits": hits, "misses": misses, "time": time.time()})
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_run', ?)", (value,))

    def stats(self) -> dict:
        """``{"path", "entries", "bytes", "solvers": {name: entries}, "last_run"}``.

        ``bytes`` counts the database and its write-ahead log; ``last_run`` is
        ``{"hits", "misses", "time"}`` from :meth:`record_run`, or ``None``.
        """
        solvers = dict(self._conn.execute(
            "SELECT solver, COUNT(*) FROM entries GROUP BY solver ORDER BY solver"))
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal"))
                   if p.exists())
        row = self._conn.execute("SELECT value FROM meta WHERE name = 'last_run'").fetchone()
        last_run = None
        if row is not None:
            try:
                last_run = dict(json.loads(row[0]))
            except (TypeError, ValueError) as exc:
                logger.warning("cache %s: unreadable last-run record ignored (%s)",
                               self.path, exc)
        return {"path": str(self.path), "entries": sum(solvers.values()), "bytes": size,
                "solvers": solvers, "last_run": last_run}

    def clear(self, solver: str | None = None) -> int:
        """Delete every entry, or only ``solver``'s; returns how many were deleted."""
        if solver is None:
            return self._conn.execute("DELETE FROM entries").rowcount
        _validate_text(solver, "solver")
        return self._conn.execute("DELETE FROM entries WHERE solver = ?", (solver,)).rowcount

    def close(self) -> None:
        """Close the connection (the last one to close folds the WAL into the file)."""
        self._conn.close()

    def __enter__(self) -> CacheStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CacheStore({str(self.path)!r})"

    def _decode(self, key, sample, energy, info, wall_seconds) -> SolveResult | None:
        try:
            sample = {_label_from_json(label): int(value) for label, value in json.loads(sample)}
            info = json.loads(info)
            if not isinstance(info, dict):
                raise ValueError(f"info is a JSON {type(info).__name__}, not an object")
            return SolveResult(sample, float(energy), info, float(wall_seconds))
        except (TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
            self._warn_once(key, exc)
            return None

    def _warn_once(self, key: str, exc: Exception) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("cache %s: entry %s is unreadable (%s); treating it as a miss, "
                           "the next result for it replaces it", self.path, key[:12], exc)


class CachedSampler(dimod.ComposedSampler):
    """A composite that answers from a :class:`CacheStore` and solves only misses.

    On a hit it returns a one-row sample set of the stored best sample, its energy
    recomputed from the BQM, ``info`` as stored plus ``"cached": True``; the child is not
    called. On a miss it calls the child, stores the lowest-energy sample (read by label)
    with the whole sample set, and returns the child's sample set.

    Args:
        child: any ``dimod.Sampler``.
        store: where results live.
        solver_name: part of every key; name the solver *and* its configuration (which
            QPU, which time limit) when they change answers. Default: the child's class.
        **fixed_parameters: passed to every ``child.sample`` call and part of every key;
            ``sample()``'s own keyword arguments override them.

    Attributes:
        hits, misses: how many ``sample`` calls the store answered / the child solved.

    Example:
        >>> import pathlib, tempfile
        >>> bqm = dimod.BQM({"a": 1.0, "b": -1.0}, {("a", "b"): 0.5}, 0.0, "BINARY")
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "cache.sqlite"
        >>> with CacheStore(path) as store:
        ...     sampler = CachedSampler(dimod.ExactSolver(), store, "exact")
        ...     first = sampler.sample(bqm).first
        ...     again = sampler.sample(bqm).first
        >>> (sampler.misses, sampler.hits, again.sample == first.sample, float(again.energy))
        (1, 1, True, -1.0)
    """

    def __init__(self, child: dimod.Sampler, store: CacheStore, solver_name: str | None = None,
                 **fixed_parameters):
        if not isinstance(store, CacheStore):
            raise TypeError(f"store must be a CacheStore, got {type(store).__name__}")
        if solver_name is None:
            solver_name = f"{type(child).__module__}.{type(child).__qualname__}"
        _validate_text(solver_name, "solver_name")
        self._children = [child]
        self.store = store
        self.solver_name = solver_name
        self.fixed_parameters = dict(fixed_parameters)
        self.hits = 0
        self.misses = 0

    @property
    def children(self) -> list:
        return self._children

    @property
    def parameters(self) -> dict:
        return self.child.parameters.copy()

    @property
    def properties(self) -> dict:
        return {"child_properties": self.child.properties.copy(),
                "solver_name": self.solver_name}

    def key(self, bqm: dimod.BinaryQuadraticModel, **parameters) -> str:
        """The cache key of ``sample(bqm, **parameters)``; use it to look up many at once."""
        return cache_key(bqm_hash(bqm), self.solver_name, {**self.fixed_parameters,
                                                           **parameters})

    def sample(self, bqm: dimod.BinaryQuadraticModel, **parameters) -> dimod.SampleSet:
        """The stored best sample of ``bqm``, or the child's sample set (then stored).

        Args:
            bqm: the problem.
            **parameters: passed to the child's ``sample`` (after the fixed ones).
        """
        parameters = {**self.fixed_parameters, **parameters}
        key = cache_key(bqm_hash(bqm), self.solver_name, parameters)
        cached = self.store.get_many([key]).get(key)
        if cached is not None and set(cached.sample) == set(bqm.variables):
            self.hits += 1
            info = {**cached.info, "cached": True}
            return dimod.SampleSet.from_samples_bqm(cached.sample, bqm, info=info)
        self.misses += 1
        start = time.perf_counter()
        sampleset = self.child.sample(bqm, **parameters)
        sampleset.resolve()  # async samplers finish here, inside the timing
        result = best_result(bqm, sampleset, time.perf_counter() - start)
        self.store.put(key, self.solver_name, result, sampleset)
        return sampleset


def _round_significant(x: np.ndarray, bits: int) -> np.ndarray:
    """``x`` rounded to ``bits`` significant bits, as little-endian float64 (-0.0 -> 0.0)."""
    mantissa, exponent = np.frexp(np.asarray(x, dtype=np.float64))
    rounded = np.ldexp(np.rint(np.ldexp(mantissa, bits)), exponent - bits)
    # Equal values have equal bits, even where the mantissa rounds up to 1.0; + 0.0 maps
    # -0.0 to 0.0.
    return (rounded + 0.0).astype("<f8")


def _label_json(label) -> str:
    try:
        return _LABEL_ENCODER.encode(label)
    except (TypeError, ValueError):
        raise ValueError(f"variable label {label!r} cannot be hashed: labels must be str, "
                         "int, float, bool, None or tuples of them") from None


def _label_from_json(value):
    """Undo JSON's tuple -> list (a label is hashable, so never a list)."""
    return tuple(_label_from_json(v) for v in value) if isinstance(value, list) else value


def _numpy_scalar(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# One encoder for all labels: json.dumps with options builds a new encoder per call.
_LABEL_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_numpy_scalar)


def _is_credential(name) -> bool:
    return any(word in str(name).lower() for word in _CREDENTIAL_WORDS)


def _key_parameters(parameters: Mapping) -> dict:
    if not isinstance(parameters, Mapping):
        raise ValueError(f"parameters must be a mapping, got {type(parameters).__name__}")
    return {str(name): _key_value(value, name) for name, value in parameters.items()
            if value is not None and not _is_credential(name)}


def _key_value(value, name):
    """A canonical JSON-ready form of one parameter value, or ValueError."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, dimod.SampleSet):  # initial_states: samples by label, sorted
        texts = [_label_json(v) for v in value.variables]
        rank = sorted(range(len(texts)), key=texts.__getitem__)
        return {"variables": [texts[k] for k in rank],
                "samples": value.record.sample[:, rank].tolist()}
    if isinstance(value, Mapping):
        return {_label_json(k): _key_value(v, name)  # JSON text: "1" and 1 stay apart
                for k, v in value.items() if not _is_credential(k)}
    if isinstance(value, (list, tuple)):
        return [_key_value(v, name) for v in value]
    raise ValueError(f"parameter {name!r} has a value of type {type(value).__name__}, which "
                     "cannot be part of a cache key; pass numbers, strings, sequences, "
                     "mappings, numpy arrays or a SampleSet")


def _jsonable(value):
    """``value`` as plain JSON data: numpy to numbers, unknown objects to ``str``,
    credential-like mapping keys dropped."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): _jsonable(v) for k, v in value.items()
                if not _is_credential(k)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _dumps(value) -> str:
    return json.dumps(_jsonable(value), separators=(",", ":"))


def _validate_text(value, name: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def open_cache(cache) -> CacheStore | None:
    """The store an API ``cache=`` argument selects.

    ``None`` → the default store (``$ANNEALQ_CACHE`` or the per-user cache folder);
    ``False`` → no cache; a path → a store there; a :class:`CacheStore` → itself.
    """
    if cache is False:
        return None
    if cache is None:
        return CacheStore(default_cache_path())
    if isinstance(cache, CacheStore):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return CacheStore(cache)
    raise TypeError(f"cache must be None, False, a path or a CacheStore, got "
                    f"{type(cache).__name__}")
