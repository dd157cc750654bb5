"""The ``annealq`` command line.

A command's module is loaded when that command runs (``annealq --help`` and
``annealq solvers`` start without torch or the Leap emulator): each subparser names its
runner as ``"module:function"``, resolved by :func:`_runner`.
"""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
from pathlib import Path

from annealq.cli_parser import build_parser
from annealq.credentials import RedactingFilter, load_env_file, redact
from annealq.errors import AnnealqError
from annealq.interrupts import deferred_interrupts

_BENCH_HINT = (
    "the benchmarks run from a checkout of the repository: "
    "python -m benchmarks paper|solvers|bounds ... (see benchmarks/README.md)"
)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["leap-emulator"]:  # the emulator parses its own options
        return _runner("annealq.testing.leap.emulator:main")(argv[1:])
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # -h (0), or one "annealq: error:" line already printed (2)
        return exc.code if isinstance(exc.code, int) else 2
    except KeyboardInterrupt:
        print("annealq: interrupted", file=sys.stderr)
        return 130
    _configure_logging()
    try:
        load_env_file()
        return _runner(args.run)(args)
    except (AnnealqError, ValueError, OSError) as exc:
        message = " ".join(redact(str(exc)).splitlines()) or type(exc).__name__
        print(f"annealq: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # solved neurons are cached: a rerun resumes
        print("annealq: interrupted", file=sys.stderr)
        return 130


def _runner(target: str):
    """The function ``"module:function"`` names, its module imported now."""
    module, _, function = target.partition(":")
    with deferred_interrupts():  # the command's modules: torch, the Ocean stack
        return getattr(importlib.import_module(module), function)


def _bench(argv) -> int:
    """``annealq bench …`` runs ``python -m benchmarks …`` when this is a checkout (the
    harness is not part of the installed package), else says how to."""
    root = _checkout()
    if root is None:
        print(f"annealq: error: {_BENCH_HINT}", file=sys.stderr)
        return 2
    path = os.pathsep.join(filter(None, (str(root), os.environ.get("PYTHONPATH"))))
    command = [sys.executable, "-m", "benchmarks", *argv]
    return subprocess.run(command, env={**os.environ, "PYTHONPATH": path}).returncode


def _checkout() -> Path | None:
    """The repository this runs from (the working folder, or the one an editable install
    points at), if it holds the benchmark harness."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (root / "benchmarks" / "__main__.py").is_file() and (root / "annealq").is_dir():
            return root
    return None


def _configure_logging() -> None:
    # annealq's own warnings only: third-party loggers (urllib3's retries, the cloud
    # client) stay quiet; their failures reach the user as annealq's error message.
    logger = logging.getLogger("annealq")
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("annealq: warning: %(message)s"))
        handler.addFilter(RedactingFilter())
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


class _StderrHandler(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment, not the one of its creation (``main``
    may run many times in one process, as in the tests)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass
