"""What a failed poll says: its class (can a restart help?), whether it
waited out a timeout, a short name for reports, and the polling model
that tells a streak of failed polls from failures with working polls
between them.  Pure: text and numbers in, facts out.

runnerlog.classify() finds the failures in a log; decide.py judges them.
"""

import dataclasses
import re

_REFUSED = re.compile(r"unauthenticated|permission[ _]?denied|unregistered runner", re.I)


def refused(detail):
    """True when a fetch error says the server refuses this runner: a
    restart cannot help, it must be re-registered.  Matches
    `unauthenticated`, `permission_denied` (also `PermissionDenied`,
    `permission denied`) and `unregistered runner` in any letter case."""
    return bool(_REFUSED.search(detail or ""))


TRANSPORT = "transport"
SERVER = "server"
REFUSED = "refused"
_SERVER = re.compile(r"internal:|unknown: rpc error: code = Internal\b")
_SLOW = re.compile(r"deadline exceeded|timed out|timeout", re.I)


def failure_class(detail):
    """What a failed poll's error text says about a restart:

    REFUSED    the server refuses the runner (refused(): unauthenticated,
               permission_denied, unregistered runner): re-register it;
    SERVER     the forge's own error (`internal: ...`, `unknown: rpc
               error: code = Internal ...`): a restart cannot help;
    TRANSPORT  everything else: `unavailable` (refused, reset, EOF, DNS,
               TLS, HTTP 502/503/504/429), deadline exceeded, `unknown`
               with an HTTP status or a network error: a restart can help.
    """
    if refused(detail):
        return REFUSED
    if _SERVER.match(detail or ""):
        return SERVER
    return TRANSPORT


def slow(detail):
    """True when the failed poll waited out a timeout (deadline exceeded,
    timed out, i/o timeout): it took up to fetch_timeout, not an instant."""
    return bool(_SLOW.search(detail or ""))


def failure_label(detail):
    """A short name for a failure, for reports: 'deadline exceeded',
    'connection reset', 'unexpected EOF', 'DNS failure', 'HTTP 502',
    'connection refused', else the error's code ('unavailable')."""
    detail = detail or ""
    if slow(detail):
        return "deadline exceeded"
    for needle, label in _LABELS:
        if needle in detail:
            return label
    status = re.search(r"HTTP status (\d{3})", detail)
    if status:
        return "HTTP " + status.group(1)
    return detail.split(":", 1)[0].strip() or "failure"


_LABELS = (
    ("unregistered runner", "unregistered runner"),
    ("connection reset", "connection reset"),
    ("connection refused", "connection refused"),
    ("EOF", "unexpected EOF"),
    ("no such host", "DNS failure"),
    ("lookup ", "DNS failure"),
    ("certificate", "TLS failure"),
    ("tls:", "TLS failure"),
)


@dataclasses.dataclass(frozen=True)
class PollModel:
    """How often a runner polls when every poll fails, for LogScan's
    streaks and decide's "recent".

    interval  seconds between the starts of two polls at most: Forgejo's
              fetch_interval; Gitea's backoff cap fetch_interval_max (its
              +-20 % jitter is in `spread`)
    timeout   fetch_timeout: a poll that ran into it took this long
    spread    a poll is due within interval * spread (1.5: a poll that was
              not logged, i.e. succeeded, leaves a gap of 2 intervals, or
              1.6 with Gitea's jitter; one interval with jitter is 1.2)

    bound(slow) is the longest gap between two failed polls with no
    successful poll between them: interval * spread, plus timeout when the
    later failure waited out a timeout.
    """

    interval: float = 2.0
    timeout: float = 30.0
    spread: float = 1.5

    def bound(self, slow_failure):
        return self.interval * self.spread + (self.timeout if slow_failure else 0.0)


def poll_model(cfg):
    """The runner's polling model from its settings: Forgejo polls every
    fetch_interval; Gitea backs off to fetch_interval_max (+-20 %
    jitter) and, as an idle runner backs off too, may be there from the
    first failure."""
    interval = cfg.fetch_interval
    if cfg.flavour == "gitea":
        interval = max(interval, cfg.fetch_interval_max)
    return PollModel(interval=interval, timeout=cfg.fetch_timeout)
