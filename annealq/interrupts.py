"""Ctrl-C while modules load: noted, and raised once they have loaded.

An interrupt that lands inside a module's import can leave it half-initialised (a later
import then fails with an unrelated error). On CPython before 3.14 there is a second
reason: a KeyboardInterrupt that escapes Python code a C extension runs while it loads
(torch does) marks the interpreter as interrupted for good, and it then ends by killing
itself with SIGINT although the interrupt was caught and reported.

Example:
    >>> with deferred_interrupts():
    ...     import json
    >>> json.dumps([1])
    '[1]'
"""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def deferred_interrupts():
    """Load modules with a Ctrl-C noted instead of raised inside them; raise it as
    ``KeyboardInterrupt`` once they have loaded. Off the main thread, or under a handler
    other than Python's default, it changes nothing."""
    interrupted: list = []
    deferred = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if deferred:
        signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    try:
        yield
    finally:
        if deferred:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    if interrupted:
        raise KeyboardInterrupt
