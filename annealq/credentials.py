"""D-Wave Leap credentials: from the environment, a ``.env`` file, or the cloud client's
own config file — never from arguments, and never printed, logged, cached or reported.

The token is the standard ``DWAVE_API_TOKEN``; dwave-cloud-client resolves it
(keyword > environment > config file). annealq only ever asks *whether* one is configured.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import urllib.parse
from pathlib import Path

ENV_FILE_VARIABLE = "ANNEALQ_ENV_FILE"

# Fail fast with no network: the client's defaults (60 s timeout, 10 retries) can hold a
# call for ~11 minutes against a silent server (docs/design.md §4). Connect timeouts are short;
# reads are longer because uploading a large BQM to the hybrid solver takes a while.
REQUEST_TIMEOUT = (5.0, 15.0)
HTTP_RETRY_TOTAL = 1
TIMEOUT_VARIABLE = "ANNEALQ_CLOUD_TIMEOUT"  # "READ" or "CONNECT,READ" seconds
# the .env file the token was read from and the token read (only while it is still the one
# in use does an error name that file)
_env_file_token: list[str] = []
_raw_tokens: set[str] = set()  # tokens as read, before clean_token stripped them


def load_env_file(path: str | os.PathLike | None = None) -> Path | None:
    """Load ``.env`` variables that are not already set; return the file read, if any.

    The file is ``path``, else ``$ANNEALQ_ENV_FILE``, else ``.env`` in the working
    directory. Variables already in the environment win.
    """
    from dotenv import load_dotenv

    candidate = Path(path or os.environ.get(ENV_FILE_VARIABLE) or ".env")
    if not candidate.is_file():
        clean_token()
        return None
    had_token = bool(os.environ.get("DWAVE_API_TOKEN"))
    load_dotenv(candidate, override=False)
    if not had_token and os.environ.get("DWAVE_API_TOKEN"):
        _env_file_token[:] = [str(candidate.resolve()), os.environ["DWAVE_API_TOKEN"]]
    clean_token()
    return candidate


def token_source() -> str:
    """Where the token in use comes from, for error messages (never the token itself)."""
    if os.environ.get("DWAVE_API_TOKEN"):
        if _env_file_token and os.environ["DWAVE_API_TOKEN"] in (
            _env_file_token[1],
            _cleaned(_env_file_token[1]),
        ):
            return f"DWAVE_API_TOKEN in the .env file {_env_file_token[0]}"
        return "the DWAVE_API_TOKEN environment variable"
    return "the dwave-cloud-client config file (dwave config inspect)"


def token_configured() -> bool:
    """Whether dwave-cloud-client finds a token (environment or config file). Offline, fast."""
    clean_token()
    if os.environ.get("DWAVE_API_TOKEN"):
        return True
    try:
        from dwave.cloud.config import load_config

        return bool(load_config().get("token"))
    except Exception:  # an unreadable config file means no usable token
        return False


def cloud_options() -> dict:
    """Keyword arguments that make cloud samplers fail fast instead of hanging: every
    request bounded by :func:`request_timeout`, one retry."""
    return {"request_timeout": request_timeout(), "http_retry_total": HTTP_RETRY_TOTAL}


def request_timeout() -> tuple[float, float]:
    """The connect and read timeouts of every request to Leap, in seconds:
    ``$ANNEALQ_CLOUD_TIMEOUT`` (``READ`` or ``CONNECT,READ``), else ``REQUEST_TIMEOUT``.

    Example:
        >>> os.environ[TIMEOUT_VARIABLE] = "2"
        >>> request_timeout()
        (2.0, 2.0)
        >>> del os.environ[TIMEOUT_VARIABLE]
    """
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return REQUEST_TIMEOUT
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(0 < v <= 3600 for v in values):
        raise ValueError(
            f"{TIMEOUT_VARIABLE} must be READ or CONNECT,READ seconds "
            f"(each above 0 and at most 3600), got {text!r}"
        )
    connect, read = (min(values[0], REQUEST_TIMEOUT[0]), values[0]) if len(values) == 1 else values
    return float(connect), float(read)


def redact(text: str) -> str:
    """``text`` with every form of the configured token replaced by ``<redacted>``.

    Forms: the token as read (before :func:`clean_token` stripped it) and as used, each
    raw, ``repr``/JSON-escaped, URL-encoded, base64 and hex; and any run of
    :data:`MIN_REDACTED` or more characters of one of those forms, so a truncated or
    partly escaped copy in an exception's text goes too.

    Example:
        >>> import os
        >>> os.environ["DWAVE_API_TOKEN"] = "ABC-0123456789abcdef"
        >>> redact("token 'ABC-0123456789abcdef\\r' rejected; prefix ABC-01234567")
        "token '<redacted>\\r' rejected; prefix <redacted>"
        >>> del os.environ["DWAVE_API_TOKEN"]
    """
    pieces = _token_pieces(tuple(sorted(_known_tokens())))
    if not pieces or not text:
        return text
    covered = bytearray(len(text))
    for piece in pieces:
        start = text.find(piece)
        while start >= 0:
            covered[start : start + len(piece)] = b"\x01" * len(piece)
            start = text.find(piece, start + 1)
    if not any(covered):
        return text
    out, i = [], 0
    while i < len(text):
        if covered[i]:
            while i < len(text) and covered[i]:
                i += 1
            out.append("<redacted>")
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def contains_token(data: bytes | str) -> bool:
    """Whether ``data`` holds any form of the configured token that :func:`redact`
    removes (for a last check on files before they are written)."""
    pieces = _token_pieces(tuple(sorted(_known_tokens())))
    if isinstance(data, str):
        return any(piece in data for piece in pieces)
    return any(piece.encode("utf-8", "surrogatepass") in data for piece in pieces)


MIN_REDACTED = 8  # a run of this many characters of a token is redacted


def _known_tokens() -> set[str]:
    tokens = set(_raw_tokens)
    token = os.environ.get("DWAVE_API_TOKEN")
    if not token:
        try:
            from dwave.cloud.config import load_config

            token = load_config().get("token")
        except Exception:
            token = None
    if token:
        tokens.add(token)
        tokens.add(_cleaned(token))
    return {t for t in tokens if t}


@functools.lru_cache(maxsize=8)
def _token_pieces(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """Every form of ``tokens`` as a set of strings to blank out: whole short forms, and
    each window of MIN_REDACTED characters of a longer form (windows overlap, so any longer
    run of a form is covered)."""
    forms: set[str] = set()
    for token in tokens:
        raw = token.encode("utf-8", "surrogatepass")
        forms.update(
            {
                token,
                repr(token)[1:-1],
                json.dumps(token)[1:-1],
                token.encode("unicode_escape").decode("ascii"),
                urllib.parse.quote(token, safe=""),
                urllib.parse.quote_plus(token),
                base64.b64encode(raw).decode("ascii").rstrip("="),
                base64.urlsafe_b64encode(raw).decode("ascii").rstrip("="),
                raw.hex(),
                raw.hex().upper(),
            }
        )
    pieces: set[str] = set()
    for form in forms:
        if len(form) <= MIN_REDACTED:
            pieces.add(form)
        else:
            pieces.update(form[i : i + MIN_REDACTED] for i in range(len(form) - MIN_REDACTED + 1))
    return tuple(sorted(pieces, key=len, reverse=True))


def _cleaned(token: str) -> str:
    """The token without whitespace or control characters (a token has neither)."""
    return "".join(ch for ch in token if ch.isprintable() and not ch.isspace())


def clean_token(source: str | None = None) -> None:
    """Strip whitespace and control characters from ``$DWAVE_API_TOKEN`` where it is read
    (a ``.env`` saved on Windows, a pasted newline), with a warning naming where it came
    from, never the value. The value as read is remembered, so :func:`redact` removes it
    too."""
    token = os.environ.get("DWAVE_API_TOKEN")
    if token is None:
        return
    cleaned = _cleaned(token)
    if cleaned == token:
        return
    _raw_tokens.add(token)
    _token_pieces.cache_clear()
    if cleaned:
        os.environ["DWAVE_API_TOKEN"] = cleaned
    else:
        del os.environ["DWAVE_API_TOKEN"]
    logging.getLogger("annealq").warning(
        "the D-Wave API token from %s held whitespace or control characters; they were removed",
        source or token_source(),
    )


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every form of the token from a record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def auth_message(what: str) -> str:
    """The one line for a rejected token: where it came from, never the token."""
    return redact(
        f"Leap rejected the D-Wave API token while {what} (the token comes from "
        f"{token_source()}); check it in the Leap dashboard"
    )
