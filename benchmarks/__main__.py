"""The benchmark harness, run from a checkout: ``python -m benchmarks paper|solvers|bounds …``.

It writes ``benchmarks/*.md`` and ``benchmarks/*.json`` (see ``benchmarks/README.md``); the
other studies run as modules of their own (``python -m benchmarks.reach``, …).
"""

from __future__ import annotations

import argparse
import logging
import sys

from annealq.credentials import load_env_file, redact
from annealq.errors import AnnealqError
from benchmarks.harness import add_commands

PROG = "python -m benchmarks"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    add_commands(parser.add_subparsers(dest="bench_command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: warning: %(message)s")
    try:
        load_env_file()
        return args.run(args)
    except (AnnealqError, ValueError, OSError) as exc:
        print(f"{PROG}: error: {' '.join(redact(str(exc)).splitlines())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
