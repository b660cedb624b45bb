"""SIGTERM, SIGINT and SIGHUP end a run the way a failure does.

By default SIGTERM kills the process at once: a notify command it started
(in a session of its own) runs on, orphaned, and a temporary file being
written stays behind until the next run.  handling() makes each of these
signals raise Interrupted in the main thread instead, so the run unwinds
through its own clean-up: the backends and the notify commands kill and
reap what they started, a temporary file is removed, the locks are let go.
The first signal is the one: later ones are ignored while the run cleans up
(a run that must die at once gets SIGKILL).  cli.run() reports it and ends
the process by the same signal, as the default would have.

deferred(): a block a signal must not cut in half (a write, a rename and
its directory's fsync, an in-place rewrite): the signal waits, and is
raised when the block ends.
"""

import contextlib
import os
import signal
import sys

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

_state = {"depth": 0, "pending": None}


class Interrupted(BaseException):
    """A signal ends the run (a BaseException, as KeyboardInterrupt: no
    `except Exception` swallows it)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self):
        return signal.Signals(self.signum).name


def _handler(signum, frame):
    for number in SIGNALS:  # one signal ends the run; the clean-up is not cut short
        signal.signal(number, signal.SIG_IGN)
    if _state["depth"]:
        _state["pending"] = signum
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def handling():
    """Within: SIGNALS raise Interrupted (the previous handlers come back
    after).  Only the main thread can set handlers: elsewhere, nothing."""
    try:
        previous = {number: signal.signal(number, _handler) for number in SIGNALS}
    except ValueError:  # not the main thread
        yield
        return
    _state["pending"] = None
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class deferred:
    """A block no signal cuts in half: one that arrives within waits and is
    raised at the block's end (unless the block ends in an error, which
    then ends the run itself)."""

    def __enter__(self):
        _state["depth"] += 1
        return self

    def __exit__(self, kind, value, traceback):
        _state["depth"] -= 1
        pending = _state["pending"]
        if not _state["depth"] and pending is not None and kind is None:
            _state["pending"] = None
            raise Interrupted(pending)
        return False


def die(signum):
    """End this process by `signum` with its default action (so a service
    manager sees the signal, not an exit status), once what was written
    to stdout and stderr is flushed.  Returns only if the signal does not
    end the process."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
    os.kill(os.getpid(), signum)
