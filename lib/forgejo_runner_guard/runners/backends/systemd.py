"""The systemd backend: a runner installed as a systemd service
(backend = systemd, unit = NAME).

systemctl show (system/systemctl.py runs systemctl and journalctl), then
the journal of the unit's current invocation since the window's start
(journal.read_evidence): times come from the journal (__REALTIME_TIMESTAMP,
microseconds, taken by journald when the line arrived), and a line of an
earlier run carries another invocation id: no start-time margin, no
previous-stop bound.  The job guard is the job containers on the host's
Docker engine (or, without one, the log) and the jobs without a
container, children of the runner's daemon in the unit's cgroup
(hostjobs.py); a restart is `systemctl restart`, confirmed by a new
invocation id.  Measured costs: bench/README.md.
"""

import time

from .. import condition, jobs, restart
from ...logs.stamps import window_start
from ...report import GuardError, stamp
from ...system import systemctl
from ...system.systemctl import ManagerUnreachable, Systemd, UnitMissing, check_unit_name
from .journal import read_evidence, read_tail


# ------------------------------------------------------------ the backend


def _parse_launch(call, unit):
    """ExecStart lines and WorkingDirectory= -> registration.Launch (argv
    None when ExecStart is not one simple command)."""
    from .. import registration  # only --runners and the Ping of a wedged runner ask

    execs, workdir = [], "/"
    for line in call.text("stdout").splitlines():
        key, _, value = line.partition("=")
        if key == "ExecStart":
            execs.append(value)
        elif key == "WorkingDirectory" and value.startswith("/"):
            workdir = value
    argv = registration.execstart_argv("\n".join(execs))
    reason = None if argv is not None else (
        "ExecStart of %s is not one simple command (%d command(s), or quoting): cannot read "
        "the config it names" % (unit, len(execs)))
    return registration.Launch(argv, workdir, None, "ExecStart of %s" % unit, reason)


class UnitRestart:
    """The restart target (restart.py) of one unit: systemctl restart,
    confirmed by an active unit with a new invocation id."""

    NOT_DONE = (ManagerUnreachable, UnitMissing)

    def __init__(self, manager, unit, old_invocation_id, stop_timeout, timeout_stop):
        self.manager = manager
        self.unit = unit
        self.old_invocation_id = old_invocation_id
        self.stop_timeout = stop_timeout  # the runner's: how long the call may wait
        self.timeout_stop = timeout_stop  # the unit's TimeoutStopSec (None: infinity)
        self.began = None

    def begin(self):
        self.began = time.time()
        self.manager.restart(self.unit, max(self.stop_timeout, self.timeout_stop or 0.0))

    def killed(self, unit):
        """The unit's TimeoutStopSec governs: a run that became inactive
        that long or more after the restart began was killed."""
        if self.timeout_stop is None:
            return None
        return restart.killed_message(self.unit, self.began, unit.stopped_at, self.timeout_stop,
                                      "TimeoutStopSec=")

    def look(self):
        return self.manager.show(self.unit)

    def confirmed(self, unit):
        return unit.running and unit.invocation_id != self.old_invocation_id

    def stuck(self, unit):
        return ("restart failed: %s is %s, invocation %s (before: %s)"
                % (unit.name, unit.status, unit.invocation_id or "none", self.old_invocation_id))


class Backend:
    """Runners installed as a systemd service (backend = systemd)."""

    EARLY = False  # the journal read needs the unit's invocation id first
    CONTAINER = False  # the runner reads the host's own /etc/hosts

    def __init__(self, timeout):
        self.timeout = timeout
        self.manager = Systemd(timeout)

    @staticmethod
    def target(cfg):
        return cfg.unit

    @staticmethod
    def describe(c):
        new = c.restart.state if c.restart is not None else None
        state = c.state
        return {"container": None, "unit": c.cfg.unit,
                "invocation_id": state.invocation_id if state is not None else None,
                "new_invocation_id": new.invocation_id if new is not None else None,
                "runner_state": state.status if state is not None else None,
                "restart_count": state.n_restarts if state is not None else None}

    @staticmethod
    def begin_launch(cfg, timeout):
        """systemctl show -p ExecStart -p WorkingDirectory of the unit."""
        check_unit_name(cfg.unit)
        return systemctl.Call("systemctl", "show", cfg.unit,
                              ["show", "-p", "ExecStart", "-p", "WorkingDirectory", "--",
                               cfg.unit],
                              timeout, parse=lambda call: _parse_launch(call, cfg.unit))

    def begin(self, checks, now):
        pass

    def gather(self, checks, now, reporter):
        """systemctl show, then the journal of the unit's current
        invocation since the window's start, streamed through JournalScan
        into runnerlog.LogScan.  Times come from the journal and only the
        current invocation is read, so no start margin and no
        previous-stop bound are needed."""
        try:
            for c in checks:
                try:
                    self._read(c, now, reporter)
                except GuardError as exc:
                    c.fail(str(exc))
        finally:
            self.manager.close()

    def _read(self, c, now, reporter):
        c.state = unit = self.manager.show(c.cfg.unit)
        c.held = condition.of_unit(unit)
        if c.held is not None:
            # the journal's times are taken after the main process started
            c.held = read_tail(c, self.manager, ("_SYSTEMD_UNIT=" + unit.name,), unit.started_at,
                               reporter)
            return
        if not unit.to_journal:
            c.fail("cannot read the logs of %s: its stderr goes to %s, not the journal; "
                   "use StandardError=journal" % (unit.name, unit.std_error or "nowhere"))
            return
        c.since = window_start(now, c.cfg.window, unit.started_at, None, margin=0.0)
        reporter.debug("%s: unit %s, %s, invocation %s, started %s, last stopped %s, "
                       "counting from %s" % (c.name, unit.name, unit.status, unit.invocation_id,
                                             stamp(unit.started_at), stamp(unit.stopped_at),
                                             stamp(c.since)))
        read_evidence(c, lambda since, feed: self.manager.journal(
            unit.name, unit.invocation_id, since, feed), reporter)

    def guard_jobs(self, checks, claims, reporter, runners=frozenset()):
        """The job containers on the host's Docker engine; without an
        engine, the log (a job start after the newest fetch error already
        makes the runner "recovered", so a wedged runner runs none)."""
        from ...system import engines as cli, proctree

        engines = cli.Engines(self.timeout)
        try:
            for engine, group in engines.groups(checks):
                jobs.guard(group, engine, claims, reporter,
                               no_engine=cli.EngineUnreachable, runners=runners)
        finally:
            engines.close()
        # jobs without a container: live children of the daemon in the unit's cgroup
        jobs.guard_host(checks, lambda c: proctree.cgroup(c.state.cgroup) if c.state.cgroup
                            else [], reporter)

    def restart(self, c, record, timeout, reporter):
        """Record it, systemctl restart, confirm the unit is active with a
        new invocation id."""
        unit = c.state
        if unit.timeout_stop is not None and unit.timeout_stop < c.cfg.stop_timeout:
            reporter.warning("%s: unit %s stops with TimeoutStopSec=%gs, shorter than the "
                             "runner's stop_timeout (%gs): systemd kills it sooner (set "
                             "TimeoutStopSec= in a drop-in)" % (c.name, unit.name,
                                                                unit.timeout_stop,
                                                                c.cfg.stop_timeout))
        try:
            done = restart.restart(UnitRestart(self.manager, unit.name, unit.invocation_id,
                                               c.cfg.stop_timeout, unit.timeout_stop),
                                   record, timeout)
        finally:
            self.manager.close()
        c.restarted_by(done)
        if done.restarted:
            reporter.debug("%s: running again since %s, invocation %s"
                           % (c.name, stamp(done.new_started_at), done.state.invocation_id))

    def close(self):
        self.manager.close()
