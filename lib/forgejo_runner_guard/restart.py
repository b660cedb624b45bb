"""Restart a runner and confirm it: the steps the watchdog (both backends)
and `optimus-boot-reconcile --refresh-stale` share.

The caller has already decided (job guard: decide.blocking_jobs; budget:
decide.budget_check) and holds the run lock (state.run_lock), so the two
tools never both restart a runner.  Here:

    restart             docker restart / systemctl restart.  Engine (or
                        systemd) unreachable, container (or unit) missing:
                        it surely did not happen, nothing is recorded; any
                        other failure (a timeout...) may have restarted it,
                        so it is recorded: the budget must see it
    record              in the restart history (state.json), via a callback
    confirm             poll until it runs again: a container with a start
                        time newer than before, a unit with a new
                        invocation id; within `timeout`

No decisions here and no output: the result says what happened.
"""

import time

from .report import GuardError


class Restarted:
    """What restart_container / restart_unit did."""

    def __init__(self):
        self.restarted = False  # confirmed: running again, as a new run
        self.new_started_at = None  # epoch seconds of the new run's start
        self.new_invocation_id = None  # systemd: the new run's invocation id
        self.errors = []  # first is the main one

    @property
    def error(self):
        return self.errors[0] if self.errors else None


def stamp(seconds):
    """Epoch seconds -> 2026-06-29T10:00:02Z, or "never"."""
    if seconds is None:
        return "never"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def record_restart(st, name, when=None):
    """Record a restart of runner `name` in state `st` and save it.
    -> None, or the error message when the state file cannot be written."""
    st.record(name, time.time() if when is None else when)
    try:
        st.save()
    except GuardError as exc:
        return str(exc)
    return None


def _restart(begin, not_done, failure, record, look, confirmed, stuck, timeout, poll):
    """The steps.  begin(): the restart call; an exception of `not_done`
    means it surely did not happen, any other of `failure` that it may
    have.  look() -> the state now (raises `failure`); confirmed(state),
    stuck(state) -> the message when it is not confirmed in time.
    -> (Restarted, the confirmed state or None)."""
    result = Restarted()

    def note(error):
        if error:
            result.errors.append(error)

    try:
        begin()
    except not_done as exc:
        note("restart failed: %s" % exc)
        return result, None
    except failure as exc:
        note("restart failed: %s" % exc)
        note(record())  # it may have happened: the budget must see it
        return result, None
    note(record())
    deadline = time.monotonic() + timeout
    while True:
        try:
            now_state = look()
        except failure as exc:
            note("restarted, but cannot confirm it: %s" % exc)
            return result, None
        if confirmed(now_state):
            result.restarted = True
            result.new_started_at = now_state.started_at
            return result, now_state
        if time.monotonic() >= deadline:
            note(stuck(now_state))
            return result, None
        time.sleep(poll)


def restart_container(engine, container, old_started_at, record, timeout, poll=0.1):
    """docker restart CONTAINER, record(), confirm it runs with a start time
    newer than old_started_at.  engine: a docker.Docker; record() -> error
    str or None.  -> Restarted."""
    from . import docker

    def confirmed(st):
        new = st.started_at
        return bool(st.running and new and (old_started_at is None or new > old_started_at))

    def stuck(st):
        return ("restart failed: %s is %s, start time %s (before: %s)"
                % (container, st.status or "not running", stamp(st.started_at),
                   stamp(old_started_at)))

    result, _ = _restart(lambda: engine.restart(container),
                         (docker.EngineUnreachable, docker.ContainerMissing), docker.DockerError,
                         record, lambda: engine.inspect(container), confirmed, stuck,
                         timeout, poll)
    return result


def restart_unit(manager, unit, old_invocation_id, record, timeout, poll=0.1):
    """systemctl restart UNIT, record(), confirm it is active with an
    invocation id other than old_invocation_id.  manager: a
    systemd.Systemd; record() -> error str or None.  -> Restarted."""
    from . import systemd

    def stuck(st):
        return ("restart failed: %s is %s, invocation %s (before: %s)"
                % (st.name, st.status, st.invocation_id or "none", old_invocation_id))

    result, new = _restart(lambda: manager.restart(unit),
                           (systemd.ManagerUnreachable, systemd.UnitMissing), GuardError,
                           record, lambda: manager.show(unit),
                           lambda st: st.running and st.invocation_id != old_invocation_id,
                           stuck, timeout, poll)
    if new is not None:
        result.new_invocation_id = new.invocation_id
    return result
