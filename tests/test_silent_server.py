"""A server that accepts connections and never answers holds no run for long: every
request to Leap is bounded by ANNEALQ_CLOUD_TIMEOUT, a cloud solver is one error line,
and the token appears nowhere."""

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

TOKEN = "ZQX-silent-server-canary-0123456789"


@pytest.fixture
def silent_endpoint():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []

    def accept():  # connections are accepted and never answered
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/sapi/v2/"
    server.close()
    for connection in held:
        connection.close()


def test_a_silent_server_is_one_error_line_within_seconds(tmp_path, silent_endpoint):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWAVE_")}
    env.update(
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path),
        DWAVE_API_TOKEN=TOKEN,
        DWAVE_API_ENDPOINT=silent_endpoint,
        ANNEALQ_CLOUD_TIMEOUT="1",
    )
    began = time.monotonic()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "annealq",
            "quantize",
            "--dataset",
            "digits",
            "--bits",
            "1",
            "--solver",
            "hybrid",
            "--no-cache",
            "--quiet",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.monotonic() - began
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("annealq: error: could not reach")
    assert seconds < 60  # ~4 requests of 1 s and the start-up; 190 s before the bound
    assert TOKEN[:12] not in out.stdout + out.stderr


@pytest.mark.parametrize("value", ["0", "abc", "1,2,3", "-5"])
def test_a_bad_timeout_setting_is_one_line(monkeypatch, value):
    from annealq.credentials import request_timeout

    monkeypatch.setenv("ANNEALQ_CLOUD_TIMEOUT", value)
    with pytest.raises(ValueError, match="ANNEALQ_CLOUD_TIMEOUT must be"):
        request_timeout()
