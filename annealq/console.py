"""The ``annealq`` command's entry point, light on purpose: importing the command line
pulls in torch and the Ocean stack (seconds), and a Ctrl-C during those seconds must end
in one line and exit 130 like one during a run, not in an import traceback.

Example:
    >>> main(["--frobnicate"])
    2
"""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    """Run ``annealq`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    try:
        from annealq.cli import main as run  # the heavy part, under the handler below

        return run(argv)
    except KeyboardInterrupt:
        print("annealq: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
