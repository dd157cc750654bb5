"""HTTP routing of the Leap emulator: the SAPI REST routes the client uses.

Every route lives under ``/sapi/v2/``. Responses carry the media type (and
format version) the client asked for in ``Accept``, because the client
validates ``Content-Type`` of every successful response.
"""

from __future__ import annotations

import http.server
import json
import logging
import re
import socket
import zlib
from typing import Optional
from urllib.parse import parse_qs, urlsplit

import orjson

from annealq.testing.leap.uploads import UploadError

__all__ = ["SapiHandler", "API_PREFIX"]

logger = logging.getLogger(__name__)

API_PREFIX = "/sapi/v2/"
_DEFAULT_VERSION = "3.0.0"
_MAX_LONG_POLL_S = 60.0

# (method, path regex, handler name, fault scope)
_ROUTES = [
    ("GET", r"solvers/remote", "list_solvers", "solvers"),
    ("GET", r"solvers/remote/(?P<name>[^/]+)", "get_solver", "solvers"),
    ("POST", r"problems", "submit", "submit"),
    ("GET", r"problems", "poll", "poll"),
    ("DELETE", r"problems", "cancel_many", "cancel"),
    ("GET", r"problems/(?P<pid>[^/]+)", "get_problem", "answer"),
    ("DELETE", r"problems/(?P<pid>[^/]+)", "cancel_one", "cancel"),
    ("GET", r"problems/(?P<pid>[^/]+)/answer", "get_answer", "answer"),
    ("GET", r"problems/(?P<pid>[^/]+)/answer/data", "get_answer_data", "answer"),
    ("GET", r"problems/(?P<pid>[^/]+)/messages", "get_messages", "answer"),
    ("POST", r"bqm/multipart", "upload_initiate", "upload"),
    ("PUT", r"bqm/multipart/(?P<uid>[^/]+)/part/(?P<part>\d+)", "upload_part", "upload"),
    ("GET", r"bqm/multipart/(?P<uid>[^/]+)/status", "upload_status", "upload"),
    ("POST", r"bqm/multipart/(?P<uid>[^/]+)/combine", "upload_combine", "upload"),
]
_COMPILED = [(m, re.compile(p + r"/?$"), h, s) for m, p, h, s in _ROUTES]


class _HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _read_chunked(rfile) -> bytes:
    # requests streams file-like bodies of unknown length chunked
    body = []
    while True:
        size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline().strip():
                pass  # trailers
            return b"".join(body)
        body.append(rfile.read(size))
        rfile.readline()  # CRLF after each chunk


class SapiHandler(http.server.BaseHTTPRequestHandler):
    """Request handler; the server object carries ``emulator``."""

    # one request per connection keeps shutdown simple: no idle keep-alives
    protocol_version = "HTTP/1.0"
    server_version = "annealq-LeapEmulator/1.0"

    def log_message(self, format, *args):  # noqa: A002 (stdlib signature)
        logger.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # -- plumbing ---------------------------------------------------------

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raw = _read_chunked(self.rfile)
        else:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "").lower()
        if encoding == "deflate":
            raw = zlib.decompress(raw)
        elif encoding == "gzip":
            raw = zlib.decompress(raw, 16 + zlib.MAX_WBITS)
        return raw

    def _json_body(self):
        try:
            return orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            raise _HttpError(400, "request body is not valid JSON") from None

    def _route(self, method: str, path: str):
        for route_method, pattern, handler, scope in _COMPILED:
            match = pattern.match(path)
            if match and route_method == method:
                return getattr(self, "_" + handler), match.groupdict(), scope
        raise _HttpError(404, f"no route for {method} {API_PREFIX}{path}")

    def _dispatch(self, method: str) -> None:
        emulator = self.server.emulator
        emulator._count_request()
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        try:
            self.body = self._body()
            emulator.injector.delay()
            if not emulator._token_ok(self.headers.get("X-Auth-Token")):
                raise _HttpError(401, "Invalid token or access denied.")
            if not url.path.startswith(API_PREFIX):
                raise _HttpError(404, f"SAPI lives under {API_PREFIX}")
            handler, args, scope = self._route(method, url.path[len(API_PREFIX) :])
            fault = emulator.injector.http_fault(scope)
            if fault is not None:
                return self._inject(fault)
            status, payload = handler(**args)
        except (_HttpError, UploadError) as exc:
            return self._send_error(exc.status, str(exc))
        if isinstance(payload, bytes):  # a binary answer (nonlinear states file)
            return self._send(status, payload, "application/octet-stream")
        self._send_json(status, payload)

    def _inject(self, fault: str) -> None:
        spec = self.server.emulator.injector.spec
        if fault == "drop":
            # close the socket without a response, like a lost connection
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif fault == "http429":
            self._send_error(
                429, "Too many requests (emulated fault).", {"Retry-After": str(spec.retry_after)}
            )
        else:
            self._send_error(spec.status_5xx, "Service unavailable (emulated fault).")

    def _content_type(self) -> str:
        # echo the requested vendor media type, with a version it accepts
        accept = self.headers.get("Accept", "")
        media, _, params = accept.partition(";")
        media = media.strip()
        if not media.startswith("application/vnd.dwave."):
            return "application/json"
        version = _DEFAULT_VERSION
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip() == "version" and value.strip():
                version = value.strip().strip('"')
        return f"{media}; version={version}"

    def _send(
        self, status: int, body: bytes, content_type: str, headers: Optional[dict] = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        # keep the client's on-disk solver cache out of the picture
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload) -> None:
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        self._send(status, body, self._content_type())

    def _send_error(self, status: int, message: str, headers=None) -> None:
        if status == 401:
            self.server.emulator.injector.count_auth_failure()
        body = json.dumps({"error_code": status, "error_msg": message}).encode()
        self._send(status, body, "application/json", headers)

    # -- solvers ----------------------------------------------------------

    def _filter(self) -> Optional[str]:
        values = self.query.get("filter")
        return values[0] if values else None

    def _list_solvers(self):
        emulator = self.server.emulator
        return 200, [emulator._solver_view(d, self._filter()) for d in emulator.catalog.all()]

    def _get_solver(self, name):
        emulator = self.server.emulator
        data = emulator.catalog.get(name)
        if data is None:
            raise _HttpError(404, f"Solver {name!r} not found")
        return 200, emulator._solver_view(data, self._filter())

    # -- problems ---------------------------------------------------------

    def _submit(self):
        jobs = self._json_body()
        if isinstance(jobs, dict):
            jobs = [jobs]
        if not isinstance(jobs, list):
            raise _HttpError(400, "expected a list of problems")
        store = self.server.emulator.store
        return 200, [store.submit(job) for job in jobs]

    def _poll(self):
        store = self.server.emulator.store
        ids = [i for v in self.query.get("id", []) for i in v.split(",") if i]
        if not ids:
            return 200, store.list_recent()
        wait = float(self.query.get("timeout", ["0"])[0] or 0)
        return 200, store.statuses(ids, wait=min(max(wait, 0.0), _MAX_LONG_POLL_S))

    def _problem(self, pid):
        problem = self.server.emulator.store.get(pid)
        if problem is None:
            raise _HttpError(404, "Problem not found")
        return problem

    def _get_problem(self, pid):
        return 200, self._problem(pid).status_message(with_answer=True)

    def _get_answer(self, pid):
        problem = self._problem(pid)
        if problem.answer is None or problem.status != "COMPLETED":
            raise _HttpError(404, f"Problem is {problem.status}; no answer")
        return 200, problem.answer

    def _get_answer_data(self, pid):
        problem = self._problem(pid)
        if problem.answer_data is None or problem.status != "COMPLETED":
            raise _HttpError(404, f"Problem is {problem.status}; no answer data")
        return 200, problem.answer_data

    def _get_messages(self, pid):
        self._problem(pid)
        return 200, []

    def _cancel_many(self):
        ids = self._json_body()
        if not isinstance(ids, list):
            raise _HttpError(400, "expected a list of problem ids")
        return 200, self.server.emulator.store.cancel([str(i) for i in ids])

    def _cancel_one(self, pid):
        (result,) = self.server.emulator.store.cancel([pid])
        if "error_code" in result:
            raise _HttpError(result["error_code"], result["error_msg"])
        return 200, result

    # -- uploads ----------------------------------------------------------

    def _upload_initiate(self):
        body = self._json_body() or {}
        return 200, self.server.emulator.store.uploads.initiate(body.get("size"))

    def _upload_part(self, uid, part):
        uploads = self.server.emulator.store.uploads
        return 200, uploads.put_part(uid, int(part), self.body, self.headers.get("Content-MD5"))

    def _upload_status(self, uid):
        return 200, self.server.emulator.store.uploads.status(uid)

    def _upload_combine(self, uid):
        body = self._json_body() or {}
        return 200, self.server.emulator.store.uploads.combine(uid, body.get("checksum"))
