"""How a cache entry is written to and read back from its SQLite row: the tables
(:data:`SCHEMA`, :data:`COLUMNS`), JSON-safe values, and a row decoded and checked against
its checksum.

Example:
    >>> from annealq.cache.keys import entry_checksum
    >>> sample = dumps([[["w", 0], 1]])
    >>> result, problem = decode_row("k", "neal", sample, 2.0, "{}", 0.1,
    ...                              entry_checksum("k", "neal", sample, 2.0))
    >>> result.sample, problem
    ({('w', 0): 1}, None)
    >>> decode_row("k", "neal", sample, 3.0, "{}", 0.1,
    ...            entry_checksum("k", "neal", sample, 2.0))[1]
    'fails its checksum (edited or damaged on disk)'
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import dimod
import numpy as np

from annealq.cache.keys import entry_checksum, is_credential, label_from_json
from annealq.results import SolveResult

# the store's tables (annealq.cache.store): one row per entry, and facts such as the last run
SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    solver TEXT NOT NULL,
    sample TEXT NOT NULL,        -- JSON [[label, value], ...]; tuple labels as lists
    energy REAL NOT NULL,
    info TEXT NOT NULL,          -- JSON object
    wall_seconds REAL NOT NULL,
    sampleset TEXT,              -- JSON of SampleSet.to_serializable(), or NULL
    created REAL NOT NULL,       -- Unix time
    checksum TEXT                -- entry_checksum(key, solver, sample, energy); NULL: old
);
CREATE INDEX IF NOT EXISTS entries_by_solver ON entries (solver);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
COLUMNS = "key, solver, sample, energy, info, wall_seconds, sampleset, created, checksum"


def decode_row(key, solver, sample, energy, info, wall_seconds, checksum):
    """``(SolveResult, None)`` for a sound row, ``(None, what is wrong)`` otherwise; a row
    without a checksum (written before entries had one) is trusted on its energy alone."""
    try:
        if checksum is not None and checksum != entry_checksum(key, solver, sample, energy):
            return None, "fails its checksum (edited or damaged on disk)"
        pairs = loads(sample)
        decoded = {label_from_json(label): int(value) for label, value in pairs}
        if any(value not in (0, 1) for value in decoded.values()):
            raise ValueError("a sample value is not 0 or 1")
        info = loads(info)
        if not isinstance(info, dict):
            raise ValueError(f"info is a JSON {type(info).__name__}, not an object")
        if not math.isfinite(float(energy)):
            raise ValueError(f"energy {energy!r} is not finite")
        return SolveResult(decoded, float(energy), info, float(wall_seconds)), None
    except (TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        return None, f"is unreadable ({exc})"


MAX_ROW_BYTES = 32 * 2**20
MAX_DEPTH = 64
"""Bounds on a stored JSON value: a row past them is unreadable (a miss), never a crash."""


def loads(text):
    """A cache row's JSON, decoded only when at most :data:`MAX_ROW_BYTES` long and
    :data:`MAX_DEPTH` brackets deep (counted without parsing, so a hostile row cannot
    exhaust the parser's recursion or the memory).

    Example:
        >>> loads('[["w", 0], 1]')
        [['w', 0], 1]
        >>> loads("[" * 100 + "]" * 100)
        Traceback (most recent call last):
        ...
        ValueError: JSON nested 100 deep (at most 64)
    """
    if not isinstance(text, (str, bytes)):
        raise TypeError(f"expected JSON text, got {type(text).__name__}")
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) > MAX_ROW_BYTES:
        raise ValueError(f"JSON of {len(raw)} bytes (at most {MAX_ROW_BYTES})")
    codes = np.frombuffer(raw, dtype=np.uint8)
    steps = np.isin(codes, _OPEN).astype(np.int8) - np.isin(codes, _CLOSE).astype(np.int8)
    depth = int(np.cumsum(steps, dtype=np.int32).max()) if len(steps) else 0
    if depth > MAX_DEPTH:
        raise ValueError(f"JSON nested {depth} deep (at most {MAX_DEPTH})")
    return json.loads(raw)


_OPEN, _CLOSE = np.frombuffer(b"[{", np.uint8), np.frombuffer(b"]}", np.uint8)


def _jsonable(value):
    """``value`` as plain JSON data: numpy to numbers, unknown objects to ``str``,
    credential-like mapping keys dropped."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, Mapping):
        return {
            k if isinstance(k, str) else str(k): _jsonable(v)
            for k, v in value.items()
            if not is_credential(k)
        }
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def plain_info(sampleset: dimod.SampleSet) -> dimod.SampleSet:
    """``sampleset`` with JSON-safe info: dimod's serializer cannot take tuple-labelled
    mappings (a QPU's ``embedding_context`` keyed by ``("w", j)``)."""
    return dimod.SampleSet(
        sampleset.record, sampleset.variables, _jsonable(dict(sampleset.info)), sampleset.vartype
    )


def dumps(value) -> str:
    return json.dumps(_jsonable(value), separators=(",", ":"))
