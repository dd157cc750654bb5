"""Start-up CPU time of ``annealq`` commands that should answer at once.

``python -m benchmarks.startup --repeats 7`` runs ``annealq --help`` and ``annealq solvers``
(the console script of the interpreter running this) that many times each, one after the
other, and prints a Markdown table of the median user + system CPU seconds of each child,
with the load average before and after; ``benchmarks/STARTUP.md`` keeps the tables.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

COMMANDS = (["--help"], ["solvers"])


def cpu_seconds(argv: list[str]) -> float:
    """User + system CPU seconds of one run of ``argv`` (its output discarded)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _annealq() -> str:
    beside = Path(sys.executable).with_name("annealq")
    found = str(beside) if beside.exists() else shutil.which("annealq")
    if found is None:
        raise SystemExit("no annealq console script: install the package first")
    return found


def _load() -> str:
    return (
        " ".join(Path("/proc/loadavg").read_text().split()[:3])
        if os.path.exists("/proc/loadavg")
        else "unknown"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    script = _annealq()
    load_before = _load()
    rows = []
    for command in COMMANDS:
        times = [cpu_seconds([script, *command]) for _ in range(args.repeats)]
        rows.append(
            (" ".join(["annealq", *command]), statistics.median(times), min(times), max(times))
        )
    print(
        f"load average before: {load_before}; after: {_load()}; {os.cpu_count()} CPUs; "
        f"{args.repeats} runs each"
    )
    print("\n| command | median CPU s | min | max |\n|---|---|---|---|")
    for name, median, low, high in rows:
        print(f"| `{name}` | {median:.2f} | {low:.2f} | {high:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
