"""Prometheus text format for node_exporter's textfile collector.

One file for all runners, rewritten whole by every run that is not a dry
run (safewrite.atomic_write: the collector never reads half a file).
Point --metrics-file (or metrics_file in guard.conf) into the collector's
directory, e.g. /var/lib/prometheus/node-exporter/forgejo-runner-watchdog.prom.

    forgejo_runner_watchdog_up{container}                     1 checked, 0 could not check
    forgejo_runner_watchdog_fetch_errors{container}           errors in the window
    forgejo_runner_watchdog_threshold{container}              the threshold
    forgejo_runner_watchdog_wedged{container}                 1 wedged (restarted or not)
    forgejo_runner_watchdog_forge_unreachable{container}      1 wedged, and its forge did not
                                                              answer Ping (not restarted)
    forgejo_runner_watchdog_forge_status{container,status}    with a forge token: 1 for what the
                                                              forge says (offline, idle, active;
                                                              unknown: no runner list; error: its
                                                              API failed), 0 for the others
    forgejo_runner_watchdog_forge_jobs_waiting{container}     jobs it could take the forge lists
                                                              as waiting
    forgejo_runner_watchdog_forge_oldest_wait_seconds{container}  the longest of their waits (0: none)
    forgejo_runner_watchdog_restarts_total{container}         restarts ever made (counter)
    forgejo_runner_watchdog_last_check_timestamp_seconds{container}
    forgejo_runner_watchdog_last_restart_timestamp_seconds{container}   0 when never
"""

import dataclasses
from typing import Optional

from ..system import safewrite
from ..report import GuardError, why

PREFIX = "forgejo_runner_watchdog_"

_METRICS = (
    ("up", "gauge", "1 when the last check could read the runner's state and logs, else 0."),
    ("fetch_errors", "gauge", "Fetch errors the runner logged in the watchdog's window."),
    ("threshold", "gauge", "Fetch errors in the window at which the runner counts as wedged."),
    ("wedged", "gauge", "1 when the last check found the runner wedged, else 0."),
    ("forge_unreachable", "gauge",
     "1 when the last check found the forge unreachable (its Ping failed), else 0."),
    ("forge_status", "gauge", "1 for what the forge's API says of the runner (offline, idle, active; "
     "unknown: the forge lists no runners; error: the API failed), 0 for the other statuses."),
    ("forge_jobs_waiting", "gauge", "Jobs the runner could take that the forge lists as waiting."),
    ("forge_oldest_wait_seconds", "gauge",
     "How long the longest-waiting of those jobs has been seen waiting (0: none)."),
    ("restarts_total", "counter", "Restarts the watchdog has made of this runner."),
    ("last_check_timestamp_seconds", "gauge", "When the watchdog last checked the runner."),
    ("last_restart_timestamp_seconds", "gauge",
     "When the watchdog last restarted the runner (0: never)."),
)


@dataclasses.dataclass(frozen=True)
class Sample:
    """The figures of one runner at one check."""

    container: str
    up: bool
    fetch_errors: Optional[int]
    threshold: int
    wedged: Optional[bool]
    restarts_total: int
    last_check: float
    last_restart: Optional[float]
    forge_unreachable: Optional[bool] = None
    forge_status: Optional[str] = None  # FORGE_STATUSES; None: no forge token
    forge_jobs_waiting: Optional[int] = None
    forge_oldest_wait: Optional[float] = None


FORGE_STATUSES = ("offline", "idle", "active", "unknown", "error")


def escape(value):
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def render(samples):
    """Samples -> the text of the file (str)."""
    lines = []
    for name, kind, text in _METRICS:
        values = []
        for s in samples:
            if name == "forge_status":
                values.extend(_state_set(name, s.container, s.forge_status, FORGE_STATUSES))
                continue
            value = {
                "up": s.up,
                "fetch_errors": s.fetch_errors,
                "threshold": s.threshold,
                "wedged": s.wedged,
                "forge_unreachable": s.forge_unreachable,
                "forge_jobs_waiting": s.forge_jobs_waiting,
                "forge_oldest_wait_seconds": s.forge_oldest_wait,
                "restarts_total": s.restarts_total,
                "last_check_timestamp_seconds": s.last_check,
                "last_restart_timestamp_seconds": s.last_restart or 0,
            }[name]
            if value is None:
                continue  # unknown (the check failed): no sample rather than a false one
            values.append('%s%s{container="%s"} %s' % (PREFIX, name, escape(s.container), _number(value)))
        if values:
            lines.append("# HELP %s%s %s" % (PREFIX, name, text))
            lines.append("# TYPE %s%s %s" % (PREFIX, name, kind))
            lines.extend(values)
    return "\n".join(lines) + "\n"


def _state_set(name, container, current, states):
    """One sample per state, 1 for the current one (none when unknown)."""
    if current is None:
        return []
    return ['%s%s{container="%s",status="%s"} %s' % (PREFIX, name, escape(container), state,
                                                    "1" if state == current else "0")
            for state in states]


def write(path, samples):
    """Write the file atomically; GuardError (exit 1) when it cannot."""
    try:
        safewrite.atomic_write(path, render(samples).encode("utf-8"), 0o644)
    except OSError as exc:
        raise GuardError("cannot write the metrics file %s: %s"
                         % (path, why(exc)))
    return path

