"""A runner that is not running normally: what its container's or unit's
state is, for the watchdog's report.  Pure: a state in, a Condition out;
None for a runner running normally, which its log judges.  The watchdog
never restarts a runner in any Condition (decide.decide_held()).

Docker and Podman (State.Status; Docker's State.Running is also true
while a container is paused or restarting):

  running      normally: judged by its log; but a run younger than
               CRASH_RUN after the engine's restart policy restarted it
               (RestartCount > 0) is a CRASH_LOOP caught between crashes
  restarting   CRASH_LOOP: Docker waits to start it again (its back-off
               doubles from 100 ms to 1 min while each run is short)
  stopped      with RestartCount > 0: CRASH_LOOP (Podman between the runs
               of its restart policy); else STOPPED
  paused       PAUSED: the operator's pause is not undone
  created, exited, dead, removing, and any other word: STOPPED

systemd (ActiveState (SubState), FreezerState, NRestarts):

  active (running)       normally, unless frozen or freezing: PAUSED
  activating (auto-restart), and the other *auto-restart* sub-states:
                         CRASH_LOOP (Restart= waits RestartSec= to start it)
  failed after NRestarts > 0 (or Result start-limit-hit): a CRASH_LOOP
                         that systemd ended (its start limit)
  inactive, failed, activating, deactivating, reloading, active (exited),
  and any other: STOPPED (not judged until it runs)
"""

from typing import NamedTuple, Optional

CRASH_LOOP = "crash-loop"
PAUSED = "paused"
STOPPED = "stopped"
CRASH_RUN = 10.0  # seconds: Docker doubles its back-off after a run shorter than this

_AUTO_RESTART = ("auto-restart", "auto-restart-queued", "dead-before-auto-restart",
                 "failed-before-auto-restart")
_FROZEN = ("frozen", "freezing")
_OFF = ("inactive", "failed")  # states that stay until someone starts the unit


class Condition(NamedTuple):
    """kind          CRASH_LOOP, PAUSED or STOPPED
    phrase        what it is, e.g. "container forgejo_runner is in a crash
                  loop (restarting, 7 restarts by its restart policy)"
    advice        what to do about it
    status        the engine's or systemd's words: "restarting",
                  "inactive (dead)"
    restart_count restarts by the engine's restart policy (RestartCount) or
                  systemd's Restart= (NRestarts); None when unknown
    tail          logs.tail.Tail of its log (set by the backend), or None"""

    kind: str
    phrase: str
    advice: str
    status: str
    restart_count: Optional[int] = None
    tail: object = None


def _restarts(count):
    return "%d restart%s" % (count, "" if count == 1 else "s")


def of_container(state, container, now, program="docker"):
    """A ContainerState (system/engines.py) of `container` at epoch
    seconds `now` -> Condition, or None when it runs normally.  program:
    the CLI named in the advice (docker or podman)."""
    status, count = state.status or "", state.restart_count
    what = "container %s" % container
    loop = "%s is in a crash loop (%%s, %s by its restart policy)" % (what, _restarts(count))
    advice = ("not restarted by the watchdog; `%s logs %s` says why it exits, `%s update "
              "--restart=no %s` ends the loop" % (program, container, program, container))
    if status == "running":
        age = None if state.started_at is None else now - state.started_at
        if count > 0 and age is not None and age < CRASH_RUN:
            return Condition(CRASH_LOOP, loop % ("running for %.0fs" % max(age, 0.0)), advice,
                             status, count)
        return None
    if status == "restarting" or (status == "stopped" and count > 0):
        return Condition(CRASH_LOOP, loop % status, advice, status, count)
    if status == "paused":
        return Condition(PAUSED, "%s is paused" % what,
                         "not restarted (the pause is not undone); `%s unpause %s` when it "
                         "should run again" % (program, container), status, count)
    after = ", %s by its restart policy" % _restarts(count) if count else ""
    return Condition(STOPPED, "%s is not running (%s, exit code %d%s)"
                     % (what, status or "stopped", state.exit_code, after), "start it", status,
                     count)


def of_unit(unit):
    """A UnitState (system/systemctl.py) -> Condition, or None when it
    runs normally."""
    status, count = unit.status, unit.n_restarts
    what = "unit %s" % unit.name
    if unit.running and unit.sub_state == "running":
        if unit.freezer in _FROZEN:
            return Condition(PAUSED, "%s is frozen (%s)" % (what, unit.freezer),
                             "not restarted (the freeze is not undone); `systemctl thaw %s` when "
                             "it should run again" % unit.name, status, count)
        return None
    ended = unit.active_state == "failed" and (bool(count) or unit.result == "start-limit-hit")
    if unit.sub_state in _AUTO_RESTART or ended:
        return Condition(CRASH_LOOP, "%s is in a crash loop (%s, %s by Restart=%s)"
                         % (what, status, _restarts(count or 0),
                            ", ended by its start limit" if ended else ""),
                         "not restarted by the watchdog; `journalctl -u %s` says why it exits%s"
                         % (unit.name, ", then `systemctl reset-failed %s`" % unit.name
                            if ended else ""), status, count)
    advice = "start it" if unit.active_state in _OFF else "not judged until it runs"
    return Condition(STOPPED, "%s is %s" % (what, status), advice, status, count)
