"""The :class:`LeapEmulator` object and its command-line entry point."""

from __future__ import annotations

import argparse
import http.server
import json
import logging
import signal
import threading
from typing import Mapping, Optional, Sequence, Union

from annealq.testing.leap.faults import FaultInjector, FaultSpec, parse_faults
from annealq.testing.leap.problems import ProblemStore
from annealq.testing.leap.server import API_PREFIX, SapiHandler
from annealq.testing.leap.solvers import EMULATION_LABEL, SolverCatalog, apply_filter

__all__ = ["LeapEmulator", "main", "DEFAULT_TOKEN"]

#: Token handed out when the emulator accepts any token; deliberately not
#: shaped like a real D-Wave API token.
DEFAULT_TOKEN = "emulator-token"
_HOST = "127.0.0.1"

logger = logging.getLogger(__name__)


def _normalize_slots(slots: Union[int, Mapping], qpu_slots: int) -> dict:
    # the nonlinear solver ('nl') has as many slots as the hybrid BQM solver by default
    if isinstance(slots, Mapping):
        result = {"hybrid": 4, "qpu": qpu_slots}
        result.update({k: int(v) for k, v in slots.items()})
        result.setdefault("nl", result["hybrid"])
    else:
        result = {"hybrid": int(slots), "qpu": int(qpu_slots), "nl": int(slots)}
    if set(result) != {"hybrid", "qpu", "nl"} or min(result.values()) < 1:
        raise ValueError(
            f"slots must be positive counts for 'hybrid', 'qpu' and 'nl', got {result}"
        )
    return result


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # a client that hangs up mid-response (e.g. closing during a long
        # poll) is routine here; keep it out of stderr
        logger.debug("request from %s failed", client_address, exc_info=True)


class LeapEmulator:
    """A local SAPI (Leap) server answering problems classically.

    Point the real dwave-cloud-client (and so ``DWaveSampler``,
    ``DWaveCliqueSampler``, ``LeapHybridSampler``) at :attr:`endpoint` with
    :attr:`token`. Answers come from simulated annealing, not quantum
    hardware, and say so in their info/timing (``"emulation"``).

    Args:
        time_scale: Emulated service time (hybrid ``time_limit``, QPU access
            time) is divided by this to get the wall time a problem holds a
            slot; ``1000`` makes a 3 s hybrid problem take 3 ms.
        faults: Fault specification: ``None``, a :class:`FaultSpec`, a
            mapping, or a ``"key=value,..."`` string (see :func:`parse_faults`).
        slots: Concurrent service slots for the hybrid solvers (an int), or a
            mapping ``{'hybrid': n, 'qpu': m, 'nl': k}`` (``nl``, the nonlinear
            solver, defaults to the hybrid count).
        qpu_slots: Slots of the QPU when ``slots`` is an int (a QPU runs one
            problem at a time).
        token: The only accepted API token; ``None`` accepts any token (and
            the fault string's ``token=`` key is used if given).
        port: TCP port on 127.0.0.1; ``0`` picks a free one.
        pegasus_m: Pegasus size of the emulated QPU (16: Advantage-like).
        nl_limits: Overrides of the nonlinear solver's published limits
            (``maximum_state_size``, ``maximum_decision_state_size``,
            ``maximum_number_of_nodes``, in bytes and nodes), e.g. small ones to
            make a client split a layer.
    """

    def __init__(
        self,
        time_scale: float = 1.0,
        faults: Union[None, str, Mapping, FaultSpec] = None,
        slots: Union[int, Mapping] = 4,
        token: Optional[str] = None,
        port: int = 0,
        qpu_slots: int = 1,
        pegasus_m: int = 16,
        nl_limits: Optional[Mapping] = None,
    ):
        if not time_scale > 0:
            raise ValueError("time_scale must be positive")
        spec = parse_faults(faults)
        self._required_token = token if token is not None else spec.token
        self.injector = FaultInjector(spec)
        self.catalog = SolverCatalog(pegasus_m, nl_limits=nl_limits)
        self.store = ProblemStore(
            self.catalog, self.injector, time_scale, _normalize_slots(slots, qpu_slots)
        )
        self._requests = 0
        self._lock = threading.Lock()
        self._closed = False
        self._server = _Server((_HOST, port), SapiHandler)
        self._server.emulator = self
        self.store.endpoint = self.endpoint  # nonlinear answers are fetched from a URL
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="leap-emulator-http",
            daemon=True,
        )
        self._thread.start()

    # -- public API -------------------------------------------------------

    @property
    def address(self) -> tuple:
        """``(host, port)`` the server listens on."""
        return self._server.server_address[:2]

    @property
    def endpoint(self) -> str:
        """SAPI endpoint URL, e.g. ``http://127.0.0.1:PORT/sapi/v2/``."""
        host, port = self.address
        return f"http://{host}:{port}{API_PREFIX}"

    @property
    def token(self) -> str:
        """A token the emulator accepts."""
        return self._required_token or DEFAULT_TOKEN

    def stats(self) -> dict:
        """Return counters: problems, billed seconds per solver, faults, peaks.

        Returns:
            A dict with ``problems_submitted``, ``problems_completed``,
            ``problems_cancelled``, ``problems_failed``, ``billed_seconds``
            (solver name to unscaled seconds), ``in_service`` and
            ``max_concurrent`` (per solver kind), ``faults`` (injected fault
            counts, 401s included) and ``requests`` (HTTP requests seen).
        """
        stats = self.store.stats()
        stats["faults"] = self.injector.snapshot()
        with self._lock:
            stats["requests"] = self._requests
        return stats

    def close(self) -> None:
        """Stop serving, release long polls and free the port (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.store.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> "LeapEmulator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LeapEmulator(endpoint={self.endpoint!r}, {EMULATION_LABEL})"

    # -- used by the request handler -------------------------------------

    def _count_request(self) -> None:
        with self._lock:
            self._requests += 1

    def _token_ok(self, token: Optional[str]) -> bool:
        if self._required_token is None:
            return bool(token)
        return token == self._required_token

    def _solver_view(self, data: dict, filter_spec: Optional[str]) -> dict:
        return apply_filter(data, filter_spec)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="annealq leap-emulator",
        description="Local Leap (SAPI) emulator: classical answers, not quantum hardware.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="divide emulated service times by this (default 1)",
    )
    parser.add_argument(
        "--faults",
        default=None,
        help="fault spec, e.g. 'latency=0.05,http429=0.1,retry_after=1,seed=0'",
    )
    parser.add_argument("--slots", type=int, default=4, help="hybrid service slots (default 4)")
    parser.add_argument("--qpu-slots", type=int, default=1, help="QPU service slots (default 1)")
    parser.add_argument("--token", default=None, help="only accept this API token")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the emulator until interrupted (Ctrl-C), then print its :meth:`stats` line.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        Process exit status.
    """
    args = _parser().parse_args(argv)
    try:
        emulator = LeapEmulator(
            time_scale=args.time_scale,
            faults=args.faults,
            slots=args.slots,
            qpu_slots=args.qpu_slots,
            token=args.token,
            port=args.port,
        )
    except (ValueError, OSError) as exc:
        print(f"leap-emulator: {exc}")
        return 2
    # the handler is in place before the endpoint is printed, so a Ctrl-C that follows the
    # endpoint line always ends the wait below (and nothing else) cleanly
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        with emulator:
            print(
                f"Leap emulator (classical emulation, not quantum hardware) at {emulator.endpoint}",
                flush=True,
            )
            print(f"token: {emulator.token}", flush=True)
            while not stop.wait(0.2):
                pass
            # what was served, on one line (problems, billed seconds, injected faults)
            print(f"stats: {json.dumps(emulator.stats(), sort_keys=True)}", flush=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    return 0
