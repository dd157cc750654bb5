"""The ``annealq`` command's entry point, light on purpose: importing the command line
pulls in torch and the Ocean stack (seconds), and a Ctrl-C during those seconds must end
in one line and exit 130 like one during a run. An interrupt that lands inside a module's
import can leave it half-initialised (a later import then fails with an unrelated
error), so a Ctrl-C while they load is only noted, and acted on once they have loaded.
(:mod:`annealq.interrupts`; the command's own modules load the same way.)

Example:
    >>> main(["--frobnicate"])
    2
"""

from __future__ import annotations

import sys

from annealq.interrupts import deferred_interrupts


def main(argv=None) -> int:
    """Run ``annealq`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    try:
        with deferred_interrupts():
            from annealq.cli import main as run  # the argument parser and its helpers
        return run(argv)
    except KeyboardInterrupt:
        print("annealq: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
