"""What the benchmark harness's commands share: the machine line, atomic writes, the
command line recorded beside each result."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from annealq.files import atomic_write


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def machine() -> str:
    return (
        f"{platform.machine()}, {cpu_count()} cores, {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=1, sort_keys=True))


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda stream: stream.write(text.encode()))


def command_line() -> str:
    return "python -m benchmarks " + " ".join(shlex.quote(a) for a in sys.argv[1:])
