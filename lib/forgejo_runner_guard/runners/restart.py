"""Restart a runner and confirm it: the steps the watchdog (every backend)
and `optimus-boot-reconcile --refresh-stale` share.

The caller has already decided (job guard: jobs.py; budget:
decide.budget_check) and holds the run lock (state.run_lock), so the two
tools never both restart a runner.  Here:

    record              the restart in the restart history (state.json),
                        written before anything happens (Record.reserve):
                        a restart that cannot be recorded is never made,
                        whatever the disk does (a full file system, a
                        state.json that is a directory or unreadable); the
                        runner is then not restarted (Restarted.held), an
                        error naming the file.  So the budget always sees
                        every restart, and the watchdog never loops
    restart             target.begin(): docker restart -t STOP_TIMEOUT /
                        systemctl restart: SIGTERM, and the runner's
                        stop_timeout to drain its jobs before a SIGKILL.
                        An error of target.NOT_DONE (engine or systemd
                        unreachable, container or unit missing): it surely
                        did not happen, its record is taken back
                        (Record.cancel); any other GuardError (a
                        timeout...) may have restarted it: the record stays
    confirm             poll target.look() until target.confirmed(state):
                        a container with a start time newer than before, a
                        unit with a new invocation id; within `timeout`;
                        then target.killed(state): the message when the old
                        run did not stop by itself in time (an error: exit 1)

A target is the backend's object for one runner: begin(), look(),
confirmed(state), killed(state), stuck(state) (the message when it is
not confirmed in time) and NOT_DONE.  No decisions here and no output: the result says
what happened.
"""

import time

from ..report import GuardError, human


class Restarted:
    """What restart() did."""

    def __init__(self):
        self.restarted = False  # confirmed: running again, as a new run
        self.state = None  # the backend's state of the new run, once confirmed
        self.errors = []  # first is the main one
        self.held = False  # not restarted: the restart could not be recorded first

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


def killed_message(what, began, stopped_at, stop_timeout, setting="stop_timeout"):
    """A target's killed(): the report of a runner killed at the end of
    its grace period, or None when it stopped by itself in time.  The
    engine (systemd) sends SIGKILL stop_timeout after the SIGTERM, which
    comes after `began` (epoch seconds, taken before the restart call):
    an old run that stopped (`stopped_at`) stop_timeout or more after
    `began` was killed.  `setting`: what gives it longer."""
    if began is None or stopped_at is None or stopped_at < began + stop_timeout:
        return None
    return ("restarted, but %s did not stop within %s of SIGTERM: it was killed "
            "(SIGKILL) %s after the restart began, and any job it was still running "
            "with it (give it a longer %s, at least the runner's shutdown_timeout)"
            % (what, human(stop_timeout), human(stopped_at - began), setting))


FORGE_VIEW_REQUESTS = 3  # the forge's REST view: its version, the runner list, the job list


def lock_bound(timeout, runners):
    """How long a run waits for another's run lock (state.run_lock): three
    calls' time, plus the longest ping_timeout (the other run may be asking
    the forge: verify = ping), plus, with a forge token, one more call and
    the forge's REST view (FORGE_VIEW_REQUESTS requests of at most
    ping_timeout each), plus the longest stop_timeout, since it may be
    restarting a runner that drains that long."""
    ping = max((r.ping_timeout for r in runners if r.verify == "ping"), default=0.0)
    view = max((r.ping_timeout for r in runners if r.forge_token_file), default=None)
    calls = 3 if view is None else 4
    view = 0.0 if view is None else FORGE_VIEW_REQUESTS * view
    return (max(10.0, calls * timeout) + ping + view
            + max((r.stop_timeout for r in runners), default=0.0))


class Record:
    """One runner's restart in the restart history (a state.State), saved
    before the restart is made."""

    def __init__(self, history, name):
        self.history = history
        self.name = name
        self.when = None

    def reserve(self, when=None):
        """Record the restart about to be made and save the history.
        -> None, or why it cannot be recorded (then nothing is recorded)."""
        if self.history.unreadable is not None:
            return "the restart history cannot be read: %s" % self.history.unreadable
        self.when = time.time() if when is None else when
        self.history.record(self.name, self.when)
        try:
            self.history.save()
        except GuardError as exc:
            self.history.unrecord(self.name, self.when)
            self.when = None
            return str(exc)
        return None

    def cancel(self):
        """The restart surely did not happen: take its record back.
        -> None, or the error message when the history cannot be saved."""
        self.history.unrecord(self.name, self.when)
        try:
            self.history.save()
        except GuardError as exc:
            return "%s: the restart budget counts one restart that did not happen" % exc
        return None


def restart(target, record, timeout, poll=0.1):
    """Record (a Record), restart, confirm.  -> Restarted."""
    result = Restarted()
    error = record.reserve()
    if error is not None:
        result.held = True
        result.note("a restart that cannot be recorded first is never made: %s" % error)
        return result
    try:
        target.begin()
    except target.NOT_DONE as exc:
        result.note("restart failed: %s" % exc)
        result.note(record.cancel())
        return result
    except GuardError as exc:
        result.note("restart failed, it may have happened (counted in the restart budget): %s"
                    % exc)
        return result
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
            result.note(target.killed(state))  # did not drain in time: someone must look
            return result
        if time.monotonic() >= deadline:
            result.note(target.stuck(state))
            return result
        time.sleep(poll)


# ------------------------------------------------------------ the budget

HOUR = 3600.0
COOLDOWN_SLACK = 30.0  # a 5-minute timer must not stretch a 10m cooldown to 15m
CLOCK_SKEW = 60.0  # a restart time up to this far ahead of now counts as "just now"


def budget_check(history, now, cooldown, max_restarts, slack=COOLDOWN_SLACK):
    """None when a restart is allowed now, else the reason it is not (step 6).

    history        epoch seconds of this runner's earlier restarts
    cooldown       no restart while the last one is less than
                   cooldown - slack seconds ago: with cooldown 10m a restart
                   9m30s (or later) after the last one is allowed, 9m29s
                   is not, so a 5-minute timer gets the 10-minute pace
    max_restarts   at most this many restarts within any hour: refused
                   while max_restarts restarts lie less than 3600 s ago
                   (no slack here: the cap is a hard limit; 0 disables
                   restarting)

    A restart time more than 60 s in the future (the clock was set back)
    is ignored rather than blocking restarts until the clock catches up;
    up to 60 s ahead counts as "just now".
    """
    times = [min(t, now) for t in history if t <= now + CLOCK_SKEW]
    if times:
        ago = now - max(times)
        if ago < cooldown - slack:
            return "cooldown: last restart %s ago (cooldown %s)" % (human(ago), human(cooldown))
    last_hour = [t for t in times if now - t < HOUR]
    if len(last_hour) >= max_restarts:
        if max_restarts == 0:
            return "restarts disabled (max-restarts 0)"
        return "hourly cap: %d restart%s in the last hour (max %d)" % (
            len(last_hour),
            "" if len(last_hour) == 1 else "s",
            max_restarts,
        )
    return None
