"""The systemd backend, and the only place that runs `systemctl` and
`journalctl`, through `sh`.

For a runner installed as a systemd service (backend = systemd): the
unit's state (`systemctl show`), its log (`journalctl -o json`), and a
restart (`systemctl restart`).  The same rules as the docker and podman
CLIs (engines.py): every call runs through calls.py with _bg=True and
_tty_out=False (sh 1.14 would open a pty), a watch thread kills it at its
deadline (a log stream: `timeout` seconds without output, STREAM_CAP
times `timeout` in all), and every failure is a SystemdError (a
GuardError, exit 1) with one line.

The log is the journal of the unit's CURRENT invocation only:

    journalctl --output=json --output-fields=MESSAGE --all --since=@T \\
        _SYSTEMD_UNIT=UNIT _SYSTEMD_INVOCATION_ID=ID

Times come from the journal (__REALTIME_TIMESTAMP, microseconds, taken by
journald when the line arrived), and a line of an earlier run carries
another invocation id: no start-time margin, no previous-stop bound.
journalscan.JournalScan turns each entry into (time, message bytes) for
runnerlog.LogScan.add(), which judges it with runnerlog.classify().
stderr stays apart from the JSON stream (journalctl's own messages).

The backend (class Backend, see backends/__init__.py): systemctl show,
then the journal of the unit's current invocation since the window's
start; the job guard is the job containers on the host's Docker engine
(or, without one, the log) and the jobs without a container, children of
the runner's daemon in the unit's cgroup (hostjobs.py); a restart is
`systemctl restart`, confirmed by a new invocation id.  Measured costs: bench/README.md.
"""

import dataclasses
import os
import re
import time
from typing import Optional

from .. import calls, jobguard, restart, runnerlog
from ..journalscan import JournalScan
from ..report import GuardError, why
from ..restart import stamp


# What `systemctl show` is asked for.  ExecMainStartTimestamp: when the
# current run's main process started; InactiveEnterTimestamp: when the unit
# last stopped (the end of the run before it).
PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "Result",
    "InvocationID",
    "MainPID",
    "ExecMainStartTimestamp",
    "InactiveEnterTimestamp",
    "StandardOutput",
    "StandardError",
    "TimeoutStopUSec",
    "ControlGroup",
)
# Where a unit's stderr reaches the journal
JOURNAL_OUTPUTS = ("journal", "journal+console", "syslog", "syslog+console")

_UNIT = re.compile(r"^[A-Za-z0-9:_.\\@-]+$")


class SystemdError(GuardError):
    """A systemctl or journalctl call failed; the message is one line (exit 1)."""


class ManagerUnreachable(SystemdError):
    pass


class UnitMissing(SystemdError):
    pass


class SystemdTimeout(SystemdError):
    pass


class JournalUnreadable(SystemdError):
    pass


def _command(name):
    """sh's command for systemctl / journalctl (calls.command)."""
    return calls.command(name, SystemdError, lambda: ManagerUnreachable(
        "%s: command not found (the systemd backend needs systemd)" % name))


def check_unit_name(unit):
    """The unit name, or SystemdError when it cannot be one."""
    if not unit or unit.startswith("-") or not _UNIT.match(unit):
        raise SystemdError("not a unit name: %r" % unit)
    return unit


# ------------------------------------------------------------ times

_SHOW_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))? UTC$")


def parse_show_time(text):
    """`systemctl show --timestamp=us+utc` time ("Thu 2026-06-29
    10:00:02.123456 UTC") -> epoch seconds; None when empty or unknown."""
    match = _SHOW_TIME.search((text or "").strip())
    if not match:
        return None
    import calendar

    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    secs = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return secs + int(((match.group(7) or "") + "000000")[:6]) / 1e6


# ------------------------------------------------------------ results


@dataclasses.dataclass(frozen=True)
class UnitState:
    """What `systemctl show` says about one unit."""

    name: str  # the unit's full name (Id), e.g. forgejo-runner.service
    load_state: str  # loaded, not-found, masked, ...
    active_state: str  # active, inactive, failed, activating, ...
    sub_state: str  # running, dead, auto-restart, ...
    result: str
    invocation_id: str  # of the current (or last) run; "" when never started
    main_pid: int
    started_at: Optional[float]  # epoch seconds the current run's main process started
    stopped_at: Optional[float]  # epoch seconds the unit last became inactive
    std_error: str  # where its stderr goes (StandardError, inherit resolved)
    timeout_stop: Optional[float] = None  # TimeoutStopSec (seconds); None: infinity/unknown
    cgroup: str = ""  # ControlGroup: its processes (for jobs without a container)

    @property
    def running(self):
        return self.active_state == "active" and bool(self.invocation_id)

    @property
    def to_journal(self):
        return self.std_error in JOURNAL_OUTPUTS

    @property
    def status(self):
        return "%s (%s)" % (self.active_state or "unknown", self.sub_state or "unknown")


def parse_show(text, unit):
    """`systemctl show -p ...` output -> UnitState; UnitMissing for a unit
    systemd does not know."""
    props = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and key not in props:
            props[key] = value.strip()
    if "LoadState" not in props or "ActiveState" not in props:
        raise SystemdError("systemctl show %s: unexpected output" % unit)
    load = props["LoadState"]
    name = props.get("Id") or unit
    if load in ("not-found", "bad-setting", "error", "masked"):
        raise UnitMissing("unit %s is %s (systemd cannot run it)" % (name, load)
                          if load != "not-found" else "unit %s does not exist" % name)
    err = props.get("StandardError", "")
    if err in ("", "inherit"):
        err = props.get("StandardOutput", "")
    try:
        pid = int(props.get("MainPID") or 0)
    except ValueError:
        pid = 0
    return UnitState(
        name=name,
        load_state=load,
        active_state=props["ActiveState"],
        sub_state=props.get("SubState", ""),
        result=props.get("Result", ""),
        invocation_id=props.get("InvocationID", ""),
        main_pid=pid,
        started_at=parse_show_time(props.get("ExecMainStartTimestamp")),
        stopped_at=parse_show_time(props.get("InactiveEnterTimestamp")),
        std_error=err,
        timeout_stop=parse_timespan(props.get("TimeoutStopUSec")),
        cgroup=props.get("ControlGroup", ""),
    )


_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d|w|M|y)")
_SPAN_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1, "min": 60, "h": 3600, "d": 86400,
               "w": 7 * 86400, "M": 2629800, "y": 31557600}


def parse_timespan(text):
    """A time span as `systemctl show` prints it ("1min 30s", "10min",
    "500ms", "infinity") -> seconds; None for infinity or what is not one."""
    text = (text or "").strip()
    if not text or text == "infinity":
        return None
    total, end = 0.0, 0
    for match in _SPAN.finditer(text):
        if text[end:match.start()].strip():
            return None
        total += float(match.group(1)) * _SPAN_UNITS[match.group(2)]
        end = match.end()
    if end == 0 or text[end:].strip():
        return None
    return total


# ------------------------------------------------------------ calls


def _one_line(text):
    lines = [" ".join(ln.split()) for ln in (text or "").splitlines() if ln.strip()]
    return "; ".join(lines[:2])


def _error(program, what, unit, message, exit_code):
    """Map a failed systemctl/journalctl to a SystemdError with one line."""
    low = message.lower()
    if (
        "not been booted with systemd" in low
        or "failed to connect to bus" in low
        or "failed to get d-bus connection" in low
        or "transport endpoint is not connected" in low
    ):
        return ManagerUnreachable("systemd unreachable (%s %s): %s" % (program, what, message))
    if "not found" in low and "unit" in low:
        return UnitMissing("unit %s does not exist (%s)" % (unit, message))
    if program == "journalctl" and (
        "insufficient permissions" in low or "no journal files" in low or "permission denied" in low
    ):
        return JournalUnreadable("cannot read the journal of %s: %s" % (unit, message))
    return SystemdError(
        "%s %s %s failed (exit status %s): %s"
        % (program, what, unit, exit_code, message or "no message")
    )


class Call(calls.Call):
    """One systemctl/journalctl run in the background; result() waits."""

    def __init__(self, program, what, unit, args, timeout, on_chunk=None, parse=None):
        self.program = program
        self.what = what
        self.unit = unit
        super().__init__(_command(program), args, timeout, on_chunk=on_chunk, parse=parse,
                         _env=_environment())

    def launch_error(self, exc):
        return SystemdError("cannot run %s: %s" % (self.program, why(exc)))

    def timed_out(self, reason):
        return SystemdTimeout("%s %s %s timed out (%s): killed it"
                              % (self.program, self.what, self.unit, reason))

    def failed(self, exit_code):
        message = _one_line(self.text("stderr")) or _one_line(self.text("stdout"))
        return _error(self.program, self.what, self.unit, message, exit_code)


def _environment():
    """The caller's environment, with systemctl's pager and colours off and
    times in UTC (the parser reads UTC)."""
    env = dict(os.environ)
    env.update(SYSTEMD_PAGER="", SYSTEMD_COLORS="0", SYSTEMD_LESS="", TZ="UTC", LC_ALL="C.UTF-8")
    return env


class Systemd(calls.Calls):
    """systemctl/journalctl calls with one timeout (seconds) for each."""

    call_class = Call

    def begin_show(self, unit):
        check_unit_name(unit)
        return self._start(
            "systemctl", "show", unit,
            ["show", "--timestamp=us+utc", "-p", ",".join(PROPERTIES), "--", unit],
            self.timeout, parse=lambda call: parse_show(call.text("stdout"), unit),
        )

    def show(self, unit):
        return self.begin_show(unit).result()

    def begin_journal(self, unit, invocation_id, since, on_chunk):
        """Stream the journal of one invocation of `unit` (its full name)
        from `since` (epoch seconds, or None) as JSON lines to
        on_chunk(bytes), from sh's reader thread."""
        check_unit_name(unit)
        if not re.match(r"^[0-9a-f]{32}$", invocation_id or ""):
            raise SystemdError("unit %s: no invocation id (%r)" % (unit, invocation_id))
        return self.begin_entries(unit, ["_SYSTEMD_UNIT=" + unit,
                                         "_SYSTEMD_INVOCATION_ID=" + invocation_id],
                                  since, on_chunk)

    def begin_entries(self, what, matches, since, on_chunk, last=False):
        """Stream the journal entries that `matches` (FIELD=VALUE words,
        journalctl's matches: one field given twice is either value) pick,
        from `since` (or only the newest one: last=True), as JSON lines.
        `what` names them in messages."""
        args = ["--no-pager", "--all", "--output=json", "--output-fields=MESSAGE"]
        if last:
            args += ["--quiet", "--lines=1"]
        if since is not None:
            args.append("--since=@%.6f" % (int(max(0.0, since) * 1e6) / 1e6))
        args += list(matches)
        return self._start("journalctl", "log of", what, args, self.timeout, on_chunk=on_chunk)

    def journal(self, unit, invocation_id, since, on_chunk):
        return self.begin_journal(unit, invocation_id, since, on_chunk).result()

    def any_entry(self, what, matches):
        """Does the journal hold any entry these matches pick?"""
        seen = []
        self.begin_entries(what, matches, None, seen.append, last=True).result()
        return any(chunk.strip() for chunk in seen)

    def restart(self, unit, stop_timeout):
        """systemctl restart: systemd sends SIGTERM and waits the unit's own
        TimeoutStopSec before SIGKILL; the call may take `stop_timeout`
        (the longer of that and the runner's stop_timeout) and its own
        timeout more."""
        check_unit_name(unit)
        self._start("systemctl", "restart", unit, ["restart", "--", unit],
                    self.timeout + stop_timeout).result()


# ------------------------------------------------------------ the backend


def read_evidence(c, read, reporter):
    """c.evidence from the journal: read(since, feed) streams the entries
    (from one second before c.since: the scanner draws the exact line)
    through JournalScan into runnerlog.LogScan.  -> the JournalScan."""
    from .. import decide

    journal = JournalScan(runnerlog.LogScan(c.since, source="journal",
                                            model=decide.poll_model(c.cfg)))
    read(c.since - 1.0, journal.feed)
    c.evidence = journal.close()
    if journal.bad:
        reporter.warning("%s: %d journal entries unreadable, ignored" % (c.name, journal.bad))
    reporter.debug("%s: %d journal entries, %d fetch errors since %s"
                   % (c.name, c.evidence.lines, c.evidence.errors, stamp(c.since)))
    return journal


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

    def __init__(self, timeout):
        self.timeout = timeout
        self.manager = Systemd(timeout)

    @staticmethod
    def target(cfg):
        return cfg.unit

    @staticmethod
    def describe(c):
        new = c.restart.state if c.restart is not None else None
        return {"container": None, "unit": c.cfg.unit,
                "invocation_id": c.state.invocation_id if c.state is not None else None,
                "new_invocation_id": new.invocation_id if new is not None else None}

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
        from .. import decide

        c.state = unit = self.manager.show(c.cfg.unit)
        if not unit.running:
            c.fail("unit %s is %s: start it; the watchdog only restarts a running runner"
                   % (unit.name, unit.status))
            return
        if not unit.to_journal:
            c.fail("cannot read the logs of %s: its stderr goes to %s, not the journal; "
                   "use StandardError=journal" % (unit.name, unit.std_error or "nowhere"))
            return
        c.since = decide.window_start(now, c.cfg.window, unit.started_at, None, margin=0.0)
        reporter.debug("%s: unit %s, %s, invocation %s, started %s, last stopped %s, "
                       "counting from %s" % (c.name, unit.name, unit.status, unit.invocation_id,
                                             stamp(unit.started_at), stamp(unit.stopped_at),
                                             stamp(c.since)))
        read_evidence(c, lambda since, feed: self.manager.journal(
            unit.name, unit.invocation_id, since, feed), reporter)

    def guard_jobs(self, checks, claims, reporter):
        """The job containers on the host's Docker engine; without an
        engine, the log (a job start after the newest fetch error already
        makes the runner "recovered", so a wedged runner runs none)."""
        from .. import engines as cli, proctree

        engines = cli.Engines(self.timeout)
        try:
            for engine, group in engines.groups(checks):
                jobguard.guard(group, engine, claims, reporter,
                               no_engine=cli.EngineUnreachable)
        finally:
            engines.close()
        # jobs without a container: live children of the daemon in the unit's cgroup
        jobguard.guard_host(checks, lambda c: proctree.cgroup(c.state.cgroup) if c.state.cgroup
                            else [], reporter)

    def restart(self, c, record, timeout, reporter):
        """systemctl restart, record it, confirm the unit is active with a
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
