"""Cache keys: a canonical hash of each problem and a key that adds the solver's identity
and the parameters that change its answer (never credentials).

* :func:`bqm_hash` names a BQM by its content;
* :func:`layer_hashes` names each neuron of a layer from its shared form, without building
  BQMs;
* :func:`cache_key` combines a hash with the solver's name and parameters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import dimod
import numpy as np

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


def bqm_hash(bqm: dimod.BinaryQuadraticModel, *, bits: int = HASH_BITS) -> str:
    """A hex SHA-256 of a BQM's content, the same in every process and platform.

    Covers the vartype, the variable labels, and the linear biases, quadratic biases and
    offset rounded to ``bits`` significant bits (see :data:`HASH_BITS`). Variables are
    ordered by the JSON text of their labels and couplers by that order, so neither the
    order in which the BQM was built nor Python's hash seed matter; a coupler whose bias
    rounds to 0 is left out, as it does not change any energy.

    Most of its cost is sorting the couplers and hashing their bytes: small beside
    solving the same BQM.

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
    parts = (
        _HASH_VERSION,
        bqm.vartype.name.encode(),
        str(bits).encode(),
        ("[" + ",".join(texts[k] for k in rank) + "]").encode(),
        linear.tobytes(),
        pair[by_pair].astype("<i8").tobytes(),
        quadratic[keep][by_pair].tobytes(),
        offset.tobytes(),
    )
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
        for row in (lq.scales[i], lq.linear[i], lq.offset[i : i + 1]):
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
    validate_text(bqm_hash, "bqm_hash")
    validate_text(solver_name, "solver_name")
    payload = {
        "version": _KEY_VERSION,
        "bqm": bqm_hash,
        "solver": solver_name,
        "parameters": _key_parameters(parameters or {}),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


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
        raise ValueError(
            f"variable label {label!r} cannot be hashed: labels must be str, "
            "int, float, bool, None or tuples of them"
        ) from None


def label_from_json(value):
    """Undo JSON's tuple -> list (a label is hashable, so never a list)."""
    return tuple(label_from_json(v) for v in value) if isinstance(value, list) else value


def _numpy_scalar(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# One encoder for all labels: json.dumps with options builds a new encoder per call.
_LABEL_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_numpy_scalar)


def is_credential(name) -> bool:
    return any(word in str(name).lower() for word in _CREDENTIAL_WORDS)


def _key_parameters(parameters: Mapping) -> dict:
    if not isinstance(parameters, Mapping):
        raise ValueError(f"parameters must be a mapping, got {type(parameters).__name__}")
    return {
        str(name): _key_value(value, name)
        for name, value in parameters.items()
        if value is not None and not is_credential(name)
    }


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
        return {
            "variables": [texts[k] for k in rank],
            "samples": value.record.sample[:, rank].tolist(),
        }
    if isinstance(value, Mapping):
        return {
            _label_json(k): _key_value(v, name)  # JSON text: "1" and 1 stay apart
            for k, v in value.items()
            if not is_credential(k)
        }
    if isinstance(value, (list, tuple)):
        return [_key_value(v, name) for v in value]
    raise ValueError(
        f"parameter {name!r} has a value of type {type(value).__name__}, which "
        "cannot be part of a cache key; pass numbers, strings, sequences, "
        "mappings, numpy arrays or a SampleSet"
    )


def entry_checksum(key: str, solver: str, sample: str, energy: float) -> str:
    """The checksum a cache entry carries: a hex SHA-256 of its key, solver, sample text
    (as stored) and energy, so a row edited or damaged on disk is told from a good one.

    Example:
        >>> entry_checksum("k", "neal", "[]", 1.5) == entry_checksum("k", "neal", "[]", 1.5)
        True
        >>> entry_checksum("k", "neal", "[]", 1.5) == entry_checksum("k", "neal", "[]", 2.5)
        False
    """
    text = "\0".join((_CHECKSUM_VERSION, key, solver, sample, float(energy).hex()))
    return hashlib.sha256(text.encode()).hexdigest()


_CHECKSUM_VERSION = "annealq-entry-checksum-v1"


def validate_text(value, name: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
