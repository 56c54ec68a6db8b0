"""How ``python -m bench`` ends on outside events: SIGTERM, and OS errors (disk full, I/O, too-long paths).

SIGTERM (``kill``, a batch scheduler, ``docker stop``) takes the same path as Ctrl-C: it raises
KeyboardInterrupt in the main thread, so the run stops between two statements, finished runs stay,
the unfinished one leaves only a temp dir (removed by the next write), and the CLI prints its
"interrupted" line; the exit code is 143 (128 + SIGTERM) instead of Ctrl-C's 130.
"""

from __future__ import annotations

import contextlib
import signal
import threading

EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class _Terminated(KeyboardInterrupt):
    """KeyboardInterrupt raised by the SIGTERM handler (the CLI tells it apart only for the exit code)."""


def _raise_terminated(signum, frame):
    raise _Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While active (main thread only), SIGTERM raises KeyboardInterrupt; the old handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupt_exit_code(e: KeyboardInterrupt) -> int:
    return EXIT_TERMINATED if isinstance(e, _Terminated) else EXIT_INTERRUPTED
