"""D-Wave Leap credentials: from the environment, a ``.env`` file, or the cloud client's
own config file — never from arguments, and never printed, logged, cached or reported.

The token is the standard ``DWAVE_API_TOKEN``; dwave-cloud-client resolves it
(keyword > environment > config file). annealq only ever asks *whether* one is configured.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_FILE_VARIABLE = "ANNEALQ_ENV_FILE"

# Fail fast with no network: the client's defaults (60 s timeout, 10 retries) can hold a
# call for ~11 minutes against a silent server (docs/design.md §4). Connect timeouts are short;
# reads are longer because uploading a large BQM to the hybrid solver takes a while.
REQUEST_TIMEOUT = (5.0, 60.0)
HTTP_RETRY_TOTAL = 2
_env_file_token: list[str] = []  # the .env file the token was read from, if it was


def load_env_file(path: str | os.PathLike | None = None) -> Path | None:
    """Load ``.env`` variables that are not already set; return the file read, if any.

    The file is ``path``, else ``$ANNEALQ_ENV_FILE``, else ``.env`` in the working
    directory. Variables already in the environment win.
    """
    from dotenv import load_dotenv

    candidate = Path(path or os.environ.get(ENV_FILE_VARIABLE) or ".env")
    if not candidate.is_file():
        return None
    had_token = bool(os.environ.get("DWAVE_API_TOKEN"))
    load_dotenv(candidate, override=False)
    if not had_token and os.environ.get("DWAVE_API_TOKEN"):
        _env_file_token[:] = [str(candidate.resolve())]
    return candidate


def token_source() -> str:
    """Where the token in use comes from, for error messages (never the token itself)."""
    if os.environ.get("DWAVE_API_TOKEN"):
        if _env_file_token:
            return f"DWAVE_API_TOKEN in the .env file {_env_file_token[0]}"
        return "the DWAVE_API_TOKEN environment variable"
    return "the dwave-cloud-client config file (dwave config inspect)"


def token_configured() -> bool:
    """Whether dwave-cloud-client finds a token (environment or config file). Offline, fast."""
    if os.environ.get("DWAVE_API_TOKEN"):
        return True
    try:
        from dwave.cloud.config import load_config

        return bool(load_config().get("token"))
    except Exception:  # an unreadable config file means no usable token
        return False


def cloud_options() -> dict:
    """Keyword arguments that make cloud samplers fail fast instead of hanging."""
    return {"request_timeout": REQUEST_TIMEOUT, "http_retry_total": HTTP_RETRY_TOTAL}


def redact(text: str) -> str:
    """``text`` with the configured token (if any) replaced, for messages built from
    exceptions raised by the cloud client."""
    token = os.environ.get("DWAVE_API_TOKEN")
    if not token:
        try:
            from dwave.cloud.config import load_config

            token = load_config().get("token")
        except Exception:
            token = None
    return text.replace(token, "<redacted>") if token else text


def auth_message(what: str) -> str:
    """The one line for a rejected token: where it came from, never the token."""
    return redact(f"Leap rejected the D-Wave API token while {what} (the token comes from "
                  f"{token_source()}); check it in the Leap dashboard")
