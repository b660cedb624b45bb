"""The only place that runs `systemctl` and `journalctl`, through `sh`.

For the systemd backend (runners/backends/systemd.py) and the journal
reading of both journal-backed backends (runners/backends/journal.py):
a unit's state (`systemctl show`), journal entries (`journalctl -o json`)
and a restart (`systemctl restart`).  The same rules as the docker and
podman CLIs (engines.py): every call runs through calls.py with _bg=True
and _tty_out=False (sh 1.14 would open a pty), a watch thread kills it at
its deadline (a log stream: `timeout` seconds without output, STREAM_CAP
times `timeout` in all), and every failure is a SystemdError (a
GuardError, exit 1) with one line.

The log of a unit is the journal of its CURRENT invocation only:

    journalctl --output=json --output-fields=MESSAGE --all --since=@T \\
        _SYSTEMD_UNIT=UNIT _SYSTEMD_INVOCATION_ID=ID

stderr stays apart from the JSON stream (journalctl's own messages).
"""

import dataclasses
import os
import re
from typing import Optional

from . import calls
from ..report import GuardError, why


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
    "FreezerState",
    "NRestarts",
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
    freezer: str = ""  # FreezerState: running, freezing, frozen, thawing ("" unknown)
    n_restarts: Optional[int] = None  # NRestarts: restarts by its Restart= (None unknown)

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
        freezer=props.get("FreezerState", ""),
        n_restarts=int(props["NRestarts"]) if props.get("NRestarts", "").isdigit() else None,
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

    def begin_entries(self, what, matches, since, on_chunk, last=0):
        """Stream the journal entries that `matches` (FIELD=VALUE words,
        journalctl's matches: one field given twice is either value) pick,
        from `since` (or only the newest `last` of them), as JSON lines.
        `what` names them in messages."""
        args = ["--no-pager", "--all", "--output=json", "--output-fields=MESSAGE"]
        if last:
            args += ["--quiet", "--lines=%d" % last]
        if since is not None:
            args.append("--since=@%.6f" % (int(max(0.0, since) * 1e6) / 1e6))
        args += list(matches)
        return self._start("journalctl", "log of", what, args, self.timeout, on_chunk=on_chunk)

    def journal(self, unit, invocation_id, since, on_chunk):
        return self.begin_journal(unit, invocation_id, since, on_chunk).result()

    def any_entry(self, what, matches):
        """Does the journal hold any entry these matches pick?"""
        seen = []
        self.begin_entries(what, matches, None, seen.append, last=1).result()
        return any(chunk.strip() for chunk in seen)

    def restart(self, unit, stop_timeout):
        """systemctl restart: systemd sends SIGTERM and waits the unit's own
        TimeoutStopSec before SIGKILL; the call may take `stop_timeout`
        (the longer of that and the runner's stop_timeout) and its own
        timeout more."""
        check_unit_name(unit)
        self._start("systemctl", "restart", unit, ["restart", "--", unit],
                    self.timeout + stop_timeout).result()


