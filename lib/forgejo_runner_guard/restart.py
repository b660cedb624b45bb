"""Restart a runner and confirm it: the steps the watchdog (every backend)
and `optimus-boot-reconcile --refresh-stale` share.

The caller has already decided (job guard: jobguard.py; budget:
decide.budget_check) and holds the run lock (state.run_lock), so the two
tools never both restart a runner.  Here:

    restart             target.begin(): docker restart / systemctl restart.
                        An error of target.NOT_DONE (engine or systemd
                        unreachable, container or unit missing): it surely
                        did not happen, nothing is recorded; any other
                        GuardError (a timeout...) may have restarted it, so
                        it is recorded: the budget must see it
    record              in the restart history (state.json), via a callback
    confirm             poll target.look() until target.confirmed(state):
                        a container with a start time newer than before, a
                        unit with a new invocation id; within `timeout`

A target is the backend's object for one runner: begin(), look(),
confirmed(state), stuck(state) (the message when it is not confirmed in
time) and NOT_DONE.  No decisions here and no output: the result says
what happened.
"""

import time

from .report import GuardError


class Restarted:
    """What restart() did."""

    def __init__(self):
        self.restarted = False  # confirmed: running again, as a new run
        self.state = None  # the backend's state of the new run, once confirmed
        self.errors = []  # first is the main one

    @property
    def error(self):
        return self.errors[0] if self.errors else None

    @property
    def new_started_at(self):
        """Epoch seconds of the new run's start (None until confirmed)."""
        return None if self.state is None else self.state.started_at

    def note(self, error):
        if error:
            self.errors.append(error)


def stamp(seconds):
    """Epoch seconds -> 2026-06-29T10:00:02Z, or "never"."""
    if seconds is None:
        return "never"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def record_restart(history, name, when=None):
    """Record a restart of runner `name` in the restart history (a
    state.State) and save it.  -> None, or the error message when the
    state file cannot be written."""
    history.record(name, time.time() if when is None else when)
    try:
        history.save()
    except GuardError as exc:
        return str(exc)
    return None


def restart(target, record, timeout, poll=0.1):
    """Restart, record(), confirm.  record() -> error str or None.
    -> Restarted."""
    result = Restarted()
    try:
        target.begin()
    except target.NOT_DONE as exc:
        result.note("restart failed: %s" % exc)
        return result
    except GuardError as exc:
        result.note("restart failed: %s" % exc)
        result.note(record())  # it may have happened: the budget must see it
        return result
    result.note(record())
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = target.look()
        except GuardError as exc:
            result.note("restarted, but cannot confirm it: %s" % exc)
            return result
        if target.confirmed(state):
            result.restarted = True
            result.state = state
            return result
        if time.monotonic() >= deadline:
            result.note(target.stuck(state))
            return result
        time.sleep(poll)
