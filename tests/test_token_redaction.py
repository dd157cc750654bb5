"""The D-Wave token never leaves annealq in any form: stripped where it is read, redacted
raw, escaped, URL-encoded, base64, hex and as any run of 8+ of its characters, and no
output file is ever written with it inside."""

import base64
import json
import logging
import os
import subprocess
import sys
import urllib.parse

import pytest

from annealq import credentials
from annealq.files import OutputError, atomic_write

TOKEN = "ZQX-0123456789abcdefCANARY"  # token-shaped: letters, digits, a dash


def _forms(token: str) -> list[str]:
    """The forms a leaked token takes, computed here independently of annealq."""
    raw = token.encode()
    return [
        token,
        repr(token)[1:-1],
        json.dumps(token)[1:-1],
        urllib.parse.quote(token),
        base64.b64encode(raw).decode().rstrip("="),
        raw.hex(),
        token[:10],
        token[-9:],
    ]


def _leaks(text: str, token: str = TOKEN) -> list[str]:
    return [form for form in _forms(token) if form in text]


@pytest.fixture
def token(no_token, monkeypatch):
    monkeypatch.setenv("DWAVE_API_TOKEN", TOKEN)
    credentials._token_pieces.cache_clear()
    yield TOKEN
    credentials._raw_tokens.clear()
    credentials._token_pieces.cache_clear()


def test_every_form_and_any_long_run_is_redacted(token):
    for form in _forms(TOKEN) + [TOKEN + "\\r", urllib.parse.quote_plus(TOKEN)]:
        text = f"error: header value {form!r} rejected"
        assert not _leaks(credentials.redact(text)), form
    assert credentials.redact("nothing secret here: ZQX-01") == "nothing secret here: ZQX-01"


def test_a_token_with_a_carriage_return_is_stripped_with_a_warning(token, monkeypatch, caplog):
    monkeypatch.setenv("DWAVE_API_TOKEN", TOKEN + "\r\n")
    with caplog.at_level(logging.WARNING, logger="annealq"):
        assert credentials.token_configured()
    assert os.environ["DWAVE_API_TOKEN"] == TOKEN
    assert "DWAVE_API_TOKEN environment variable" in caplog.text and not _leaks(caplog.text)
    # the value as read is remembered: its escaped form (as in an HTTP library's message)
    # is redacted too
    message = f"Invalid header value: {(TOKEN + chr(13))!r}"
    assert not _leaks(credentials.redact(message), TOKEN + "\r")


def test_log_records_are_redacted_by_the_cli_filter(token):
    record = logging.LogRecord(
        "annealq.x", logging.WARNING, __file__, 1, "failed with %r", (TOKEN + "\r",), None
    )
    credentials.RedactingFilter().filter(record)
    assert not _leaks(record.getMessage())


def test_no_file_is_written_with_the_token_inside(token, tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old")
    for payload in (TOKEN.encode(), base64.b64encode(TOKEN.encode())):
        with pytest.raises(OutputError, match="would contain the D-Wave API token"):
            atomic_write(path, lambda stream, data=payload: stream.write(b"x" + data))
    assert path.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["report.json"]


def _annealq(tmp_path, *args, env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("DWAVE_")}
    base.update({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), **env})
    return subprocess.run(
        [sys.executable, "-m", "annealq", *args],
        cwd=tmp_path,
        env=base,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _everything_written(folder) -> str:
    return "".join(
        p.read_bytes().decode("latin-1")
        for p in folder.rglob("*")
        if p.is_file() and p.name != ".env"
    )


@pytest.mark.parametrize("solver", ["auto", "hybrid"])
def test_a_token_with_a_trailing_return_leaks_nowhere_with_leap_unreachable(tmp_path, solver):
    # A .env saved on Windows; an endpoint where nothing listens: 'auto' falls back to neal
    # (exit 0, report and model written), 'hybrid' is one error line (exit 2).
    (tmp_path / ".env").write_bytes(f"DWAVE_API_TOKEN={TOKEN}\r\n".encode())
    env = {
        "DWAVE_API_TOKEN": TOKEN + "\r",
        "DWAVE_API_ENDPOINT": "http://127.0.0.1:9/sapi/v2/",
        "ANNEALQ_CLOUD_TIMEOUT": "2",
    }
    out = _annealq(
        tmp_path,
        "quantize",
        "--dataset",
        "digits",
        "--bits",
        "1",
        "--solver",
        solver,
        "--calibration",
        "200",
        "--report",
        "r.json",
        "--out",
        "m.pt",
        "--quiet",
        env=env,
    )
    assert out.returncode == (0 if solver == "auto" else 2), out.stderr
    assert "Traceback" not in out.stderr
    seen = out.stdout + out.stderr + _everything_written(tmp_path)
    assert not _leaks(seen) and not _leaks(seen, TOKEN + "\r")
