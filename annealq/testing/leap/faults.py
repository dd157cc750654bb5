"""Fault injection for the Leap emulator.

A :class:`FaultSpec` says which failures the emulator injects; a
:class:`FaultInjector` draws them from a seeded RNG (so a test run is
reproducible) and counts what it injected.

Two ways to ask for a fault:

* a probability (``http429=0.1``): every eligible request draws from the RNG;
* a count (``http429_count=2``): exactly the first N eligible requests get the
  fault, no randomness involved. Counts are tried before probabilities.

The string form used by the CLI is a comma-separated list of ``key=value``
pairs, e.g. ``"latency=0.05,http429=0.1,retry_after=1,drop_count=1,seed=0"``.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from typing import Mapping, Optional, Union

__all__ = ["FaultSpec", "FaultInjector", "parse_faults", "ROUTE_KINDS"]

#: Request kinds a fault scope can name. ``submit`` is ``POST /problems/``,
#: ``poll`` the status query ``GET /problems/?id=...``, ``answer`` the
#: per-problem ``GET /problems/<id>/...`` routes, ``cancel`` the DELETEs,
#: ``upload`` the ``/bqm/multipart`` routes and ``solvers`` the solver listing.
ROUTE_KINDS = ("submit", "poll", "answer", "cancel", "upload", "solvers")

# HTTP faults, in the order they are tried on a request
_HTTP_FAULTS = ("http429", "http5xx", "drop")


@dataclasses.dataclass
class FaultSpec:
    """What faults to inject, and how often.

    Attributes:
        latency: Seconds added before every response (all routes).
        http429: Probability an eligible request gets ``429 Too Many Requests``.
        http429_count: The first N eligible requests get a 429.
        retry_after: Value of the ``Retry-After`` header sent with a 429, in
            whole seconds (HTTP allows only integer delay-seconds).
        http5xx: Probability an eligible request gets ``503``/``500``-class
            error (see ``status_5xx``).
        http5xx_count: The first N eligible requests get a 5xx.
        status_5xx: The 5xx status code to send (default 503).
        drop: Probability an eligible request's connection is closed without
            any response.
        drop_count: The first N eligible requests are dropped.
        never_finish: Probability a submitted problem never completes (it
            stays ``IN_PROGRESS`` until cancelled).
        never_finish_count: The first N submitted problems never complete.
        scope: Request kinds the HTTP faults apply to (see ``ROUTE_KINDS``,
            or ``"all"``). Default: only problem submission, the request the
            fault tests care about; a scope of ``all`` makes even the solver
            listing fail.
        seed: RNG seed for the probabilistic faults.
        token: If set, the only accepted API token (others get 401). Kept
            here too so the CLI can set it through the fault string.
    """

    latency: float = 0.0
    http429: float = 0.0
    http429_count: int = 0
    retry_after: int = 1
    http5xx: float = 0.0
    http5xx_count: int = 0
    status_5xx: int = 503
    drop: float = 0.0
    drop_count: int = 0
    never_finish: float = 0.0
    never_finish_count: int = 0
    scope: tuple = ("submit",)
    seed: int = 0
    token: Optional[str] = None

    def __post_init__(self):
        if isinstance(self.scope, str):
            self.scope = _parse_scope(self.scope)
        else:
            self.scope = tuple(self.scope)
        unknown = set(self.scope) - set(ROUTE_KINDS)
        if unknown:
            raise ValueError(f"unknown fault scope(s): {sorted(unknown)}")
        for name in ("http429", "http5xx", "drop", "never_finish"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        if int(self.retry_after) != self.retry_after:
            raise ValueError("retry_after must be whole seconds (HTTP Retry-After)")
        self.retry_after = int(self.retry_after)
        if self.latency < 0 or self.retry_after < 0:
            raise ValueError("latency and retry_after must be non-negative")
        if not 500 <= self.status_5xx < 600:
            raise ValueError("status_5xx must be a 5xx status code")


def _parse_scope(text: str) -> tuple:
    """Parse ``"submit+poll"`` (or ``"all"``) into a tuple of route kinds."""
    parts = [p.strip() for p in text.replace("|", "+").split("+") if p.strip()]
    if parts == ["all"]:
        return ROUTE_KINDS
    return tuple(parts)


def _convert(field: dataclasses.Field, raw: str):
    """Convert one ``key=value`` string value to the field's type."""
    if field.name == "scope":
        return _parse_scope(raw)
    if field.name == "token":
        return raw
    if field.type in ("int", int):
        return int(raw)
    return float(raw)


def parse_faults(spec: Union[None, str, Mapping, FaultSpec]) -> FaultSpec:
    """Build a :class:`FaultSpec` from a string, a mapping, or ``None``.

    Args:
        spec: ``None`` (no faults), a :class:`FaultSpec` (returned as is), a
            mapping of field names to values, or a comma-separated
            ``key=value`` string as accepted by the CLI.

    Returns:
        The fault specification.

    Raises:
        ValueError: On an unknown key or a malformed/out-of-range value.
    """
    if spec is None:
        return FaultSpec()
    if isinstance(spec, FaultSpec):
        return spec
    fields = {f.name: f for f in dataclasses.fields(FaultSpec)}
    if isinstance(spec, Mapping):
        unknown = set(spec) - set(fields)
        if unknown:
            raise ValueError(f"unknown fault key(s): {sorted(unknown)}")
        return FaultSpec(**spec)
    values = {}
    for item in str(spec).split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in fields:
            raise ValueError(
                f"bad fault item {item!r}; expected one of {sorted(fields)} as key=value"
            )
        try:
            values[key] = _convert(fields[key], raw.strip())
        except ValueError as exc:
            raise ValueError(f"bad value in fault item {item!r}: {exc}") from None
    return FaultSpec(**values)


class FaultInjector:
    """Draws faults according to a :class:`FaultSpec`, thread-safely.

    Args:
        spec: The fault specification.
    """

    def __init__(self, spec: FaultSpec):
        self.spec = spec
        self._rng = random.Random(spec.seed)
        self._lock = threading.Lock()
        # counted faults still to hand out
        self._remaining = {
            "http429": spec.http429_count,
            "http5xx": spec.http5xx_count,
            "drop": spec.drop_count,
            "never_finish": spec.never_finish_count,
        }
        self.injected = {name: 0 for name in ("latency", *_HTTP_FAULTS, "never_finish", "http401")}

    def _draw(self, name: str) -> bool:
        # caller holds the lock; counts first so count-mode tests never
        # depend on the RNG
        if self._remaining[name] > 0:
            self._remaining[name] -= 1
            return True
        probability = getattr(self.spec, name)
        return probability > 0 and self._rng.random() < probability

    def http_fault(self, kind: str) -> Optional[str]:
        """Decide whether a request of route ``kind`` fails.

        Args:
            kind: One of :data:`ROUTE_KINDS`.

        Returns:
            ``'http429'``, ``'http5xx'``, ``'drop'`` or ``None``.
        """
        if kind not in self.spec.scope:
            return None
        with self._lock:
            for name in _HTTP_FAULTS:
                if self._draw(name):
                    self.injected[name] += 1
                    return name
        return None

    def never_finish(self) -> bool:
        """Decide whether a newly submitted problem never completes."""
        with self._lock:
            hit = self._draw("never_finish")
            if hit:
                self.injected["never_finish"] += 1
            return hit

    def delay(self) -> None:
        """Sleep the configured latency (if any) and count the delayed response."""
        if self.spec.latency > 0:
            with self._lock:
                self.injected["latency"] += 1
            time.sleep(self.spec.latency)

    def count_auth_failure(self) -> None:
        """Count a request rejected for a wrong token."""
        with self._lock:
            self.injected["http401"] += 1

    def snapshot(self) -> dict:
        """Return a copy of the injected-fault counters."""
        with self._lock:
            return dict(self.injected)
