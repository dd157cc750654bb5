"""What the ``qpu`` and ``hybrid`` solvers share: failure classes of dwave-cloud-client, and
packing several neurons' BQMs into one problem with disjoint labels and back.

Example:
    >>> import dimod
    >>> a = dimod.BQM({"x": 1.0}, {}, 0.5, "BINARY")
    >>> b = dimod.BQM({"x": -1.0, "y": 2.0}, {("x", "y"): -3.0}, 0.0, "BINARY")
    >>> packed, labels = combine([a, b])
    >>> sorted(packed.variables), labels
    ([0, 1, 2], [[0], [1, 2]])
    >>> sampleset = dimod.ExactSolver().sample(packed)
    >>> [(s, float(e)) for s, e in split(sampleset, [a, b], labels)]
    [({'x': 0}, 0.5), ({'x': 1, 'y': 1}, -2.0)]
"""

from __future__ import annotations

import time

import dimod
import numpy as np

from annealq.credentials import token_configured
from annealq.errors import ProblemTooLargeError
from solvers import missing_package

TRANSIENT_CODES = (429, *range(500, 600))


def classify(exc: BaseException) -> tuple[str, float | None]:
    """The cloud executor's reading of a dwave-cloud-client (or requests) failure."""
    import requests
    from dwave.cloud import exceptions as cloud
    from dwave.cloud.api import exceptions as api

    if isinstance(exc, (cloud.SolverAuthenticationError, api.ResourceAuthenticationError)):
        return "auth", None
    if isinstance(exc, ProblemTooLargeError):
        return "failed", None
    if getattr(exc, "error_code", None) in TRANSIENT_CODES:
        return "transient", _retry_after(exc)
    if isinstance(
        exc,
        (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            cloud.Timeout,
            cloud.PollingTimeout,
            cloud.SolverFailureError,
            cloud.ProblemUploadError,
            # a malformed answer (a read racing the client's decoding is
            # read again first: see resolve)
            cloud.InvalidAPIResponseError,
            cloud.SolverOfflineError,
            api.InternalServerError,
            TimeoutError,
            ConnectionError,
        ),
    ):
        return "transient", None
    if isinstance(exc, (TypeError, ValueError, KeyError, AttributeError)):
        return "fatal", None
    return "failed", None


def resolve(sampleset, *, attempts: int = 200, pause: float = 0.01) -> None:
    """``sampleset.resolve()``, reading an answer again while the client is still decoding it.

    dwave-cloud-client's poller thread marks a hybrid problem done, decodes its answer and
    only then records the decoded sample set; a read in between finds neither and raises
    ``InvalidAPIResponseError`` ("Active variables not present"). The answer is there, so
    it is read again (dimod keeps the future until a resolve succeeds) instead of the
    problem being submitted, and billed, a second time. Seen in CI under load."""
    from dwave.cloud.exceptions import InvalidAPIResponseError

    for attempt in range(attempts):
        try:
            sampleset.resolve()
            return
        except InvalidAPIResponseError:
            if attempt == attempts - 1:
                raise
            time.sleep(pause)


def cancel(sampleset) -> None:
    """Ask Leap to cancel the problem behind an unresolved sample set (best effort: dimod
    keeps the client's future as ``_future`` until the set is resolved)."""
    future = getattr(sampleset, "_future", None)
    try:
        if future is not None:
            future.cancel()
    except Exception:  # cancelling is a courtesy; the executor has moved on
        pass


def leap_unavailable() -> str | None:
    """Why the Leap solvers cannot run here (``None`` when they can): cheap and offline."""
    missing = missing_package("dwave.system", "dwave-system")
    if missing:
        return missing
    if not token_configured():
        return "no D-Wave API token configured (set DWAVE_API_TOKEN in the environment or .env)"
    return None


def file_size(bqm: dimod.BinaryQuadraticModel) -> int:
    """The bytes of the file the client uploads for ``bqm`` (dimod's BQM file format)."""
    with bqm.to_file() as file:
        return file.seek(0, 2)


def qp_size(num_qubits: int, couplings: int) -> int:
    """The bytes of a QPU problem's ``qp`` encoding (base64 doubles): one linear bias per
    qubit of the chip and one per coupling, at least one per logical interaction."""
    return 4 * -(-8 * num_qubits // 3) + 4 * -(-8 * couplings // 3)


def _retry_after(exc) -> float | None:
    response = getattr(exc, "response", None)
    value = None if response is None else response.headers.get("Retry-After")
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None


def combine(bqms) -> tuple[dimod.BinaryQuadraticModel, list[list[int]]]:
    """One BQM holding ``bqms`` side by side on integer labels; and each one's labels, in
    the order of its variables.

    Built from the BQMs' numpy vectors in one call (a neuron's BQM holds ~300k couplers, so
    adding them one by one would dominate a packed layer's time)."""
    linear, rows, cols, values, labels, offset, start = [], [], [], [], [], 0.0, 0
    for bqm in bqms:
        lin, (row, col, value), off = bqm.to_numpy_vectors(list(bqm.variables))
        linear.append(lin)
        rows.append(row.astype(np.int64) + start)
        cols.append(col.astype(np.int64) + start)
        values.append(value)
        offset += off
        labels.append(list(range(start, start + bqm.num_variables)))
        start += bqm.num_variables
    packed = dimod.BinaryQuadraticModel.from_numpy_vectors(
        np.concatenate(linear),
        (np.concatenate(rows), np.concatenate(cols), np.concatenate(values)),
        offset,
        bqms[0].vartype,
    )
    return packed, labels


def split(sampleset: dimod.SampleSet, bqms, labels) -> list[tuple[dict, float]]:
    """Each BQM's best sample among ``sampleset``'s rows (read by label) and its energy,
    recomputed exactly from that BQM."""
    order = {v: c for c, v in enumerate(sampleset.variables)}
    rows = sampleset.record.sample
    answers = []
    for bqm, own in zip(bqms, labels):
        block = rows[:, [order[v] for v in own]]
        energies = bqm.energies((block, list(bqm.variables)))
        best = int(np.argmin(energies))
        answers.append((dict(zip(bqm.variables, block[best].tolist())), float(energies[best])))
    return answers


def sizes(bqm) -> tuple[int, int]:
    """``(variables, biases)`` of a BQM as solver limits count them."""
    return bqm.num_variables, bqm.num_variables + bqm.num_interactions
