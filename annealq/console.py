"""The ``annealq`` command's entry point, light on purpose: importing the command line
pulls in torch and the Ocean stack (seconds), and a Ctrl-C during those seconds must end
in one line and exit 130 like one during a run. An interrupt that lands inside a module's
import can leave it half-initialised (a later import then fails with an unrelated
error), so a Ctrl-C while they load is only noted, and acted on once they have loaded.

Example:
    >>> main(["--frobnicate"])
    2
"""

from __future__ import annotations

import signal
import sys
import threading


def main(argv=None) -> int:
    """Run ``annealq`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    interrupted: list = []
    deferred = (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if deferred:
        signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    try:
        from annealq.cli import main as run  # the heavy part: torch, the Ocean stack
    finally:
        if deferred:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if interrupted:
            raise KeyboardInterrupt
        return run(argv)
    except KeyboardInterrupt:
        print("annealq: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
