"""Restart a runner container and confirm it: the steps the watchdog and
`optimus-boot-reconcile --refresh-stale` share.

The caller has already decided (job guard: decide.blocking_jobs; budget:
decide.budget_check) and holds the run lock (state.run_lock), so the two
tools never both restart a runner.  Here:

    docker restart      EngineUnreachable / ContainerMissing: it surely did
                        not happen, nothing is recorded; any other failure
                        (a timeout...) may have restarted it, so it is
                        recorded: the budget must see it
    record              in the restart history (state.json), via a callback
    confirm             poll `docker inspect` until the container runs with
                        a start time newer than before, within `timeout`

No decisions here and no output: the result says what happened.
"""

import dataclasses
import time
from typing import List, Optional

from . import docker
from .report import GuardError


@dataclasses.dataclass
class Restarted:
    restarted: bool  # confirmed: running with a new start time
    new_started_at: Optional[float] = None
    errors: List[str] = dataclasses.field(default_factory=list)  # first is the main one

    @property
    def error(self):
        return self.errors[0] if self.errors else None


def record_restart(st, name, when=None):
    """Record a restart of runner `name` in state `st` and save it.
    -> None, or the error message when the state file cannot be written."""
    st.record(name, time.time() if when is None else when)
    try:
        st.save()
    except GuardError as exc:
        return str(exc)
    return None


def _stamp(seconds):
    if seconds is None:
        return "never"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def restart_container(engine, container, old_started_at, record, timeout, poll=0.1):
    """docker restart CONTAINER, record(), confirm.  record() -> error str or None.
    -> Restarted."""
    result = Restarted(False)

    def note(error):
        if error:
            result.errors.append(error)

    try:
        engine.restart(container)
    except (docker.EngineUnreachable, docker.ContainerMissing) as exc:
        note("restart failed: %s" % exc)
        return result
    except docker.DockerError as exc:
        note("restart failed: %s" % exc)
        note(record())  # it may have happened: the budget must see it
        return result
    note(record())
    deadline = time.monotonic() + timeout
    while True:
        try:
            now_state = engine.inspect(container)
        except docker.DockerError as exc:
            note("restarted, but cannot confirm it: %s" % exc)
            return result
        new = now_state.started_at
        if now_state.running and new and (old_started_at is None or new > old_started_at):
            result.restarted = True
            result.new_started_at = new
            return result
        if time.monotonic() >= deadline:
            note("restart failed: %s is %s, start time %s (before: %s)"
                 % (container, now_state.status or "not running", _stamp(new),
                    _stamp(old_started_at)))
            return result
        time.sleep(poll)
