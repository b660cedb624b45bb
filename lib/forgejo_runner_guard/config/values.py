"""The values guard.conf and the command line take: durations, counts
(each with its bounds, BOUNDS), paths, pins, words, journal matches,
URLs, command lines and event names.  Pure: text in, a value or a ValueError
naming what is wrong out; config.py adds the file, line and key.
"""

import re

from ..report import UsageError

_DURATION = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

# The bounds of every count and duration (settings and options alike),
# ones an operator would find reasonable; documented in guard.conf and the
# man pages.  key -> (least, most); durations in seconds, 0.0 as the least
# meaning "more than zero".
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
BOUNDS = {
    "threshold": (1, 10000),  # errors in the window (at one poll every 2 s: 5.5 h)
    "max_restarts": (0, 60),  # per hour
    "window": (0.0, DAY),
    "recent": (0.0, DAY),
    "cooldown": (None, DAY),  # 0 allowed: no cooldown
    "docker_timeout": (0.0, HOUR),
    "probe_timeout": (0.0, 5 * MINUTE),
    "sustain": (0.0, DAY),
    "fetch_interval": (0.0, HOUR),
    "fetch_timeout": (0.0, HOUR),
    "fetch_interval_max": (0.0, HOUR),
    "notify_timeout": (0.0, HOUR),
    "stop_timeout": (None, HOUR),  # 0: kill at once
    "ping_timeout": (0.0, MINUTE),  # the forge's Ping, all attempts
    "queue_wait": (0.0, DAY),
}
def duration_text(seconds):
    """86400 -> '1d', 300 -> '5m', 90 -> '90s' (the largest whole unit)."""
    for unit in "dhm":
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return "%d%s" % (seconds // _UNITS[unit], unit)
    return "%gs" % seconds


def parse_duration(text, bounds=(None, None)):
    """'90', '90s', '5m', '1h', '1d' -> seconds (float); ValueError otherwise.

    bounds: (least, most) seconds, None for no bound; a least of 0.0 means
    "more than zero"."""
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError("not a duration (use e.g. 90, 90s, 5m, 1h): %r" % text)
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    least, most = bounds
    if least == 0.0 and seconds <= 0:
        raise ValueError("must be more than zero: %r" % text)
    if seconds < 0:
        raise ValueError("must not be negative: %r" % text)
    if most is not None and seconds > most:
        raise ValueError("must be at most %s: %r" % (duration_text(most), text))
    return seconds


def parse_count(text, minimum=0, maximum=None):
    """A whole number from minimum to maximum (None: no upper bound);
    ValueError otherwise, naming the bound that was crossed."""
    value = (text or "").strip()
    if not re.fullmatch(r"[+-]?\d+", value):
        raise ValueError("not a whole number: %r" % text)
    digits = value.lstrip("+-").lstrip("0")
    if maximum is not None and not value.startswith("-") and len(digits) > len(str(maximum)):
        raise ValueError("must be at most %d: %r" % (maximum, text))  # before int(): any length
    number = int(value)
    if number < minimum:
        raise ValueError("must be at least %d: %r" % (minimum, text))
    if maximum is not None and number > maximum:
        raise ValueError("must be at most %d: %r" % (maximum, text))
    return number


def parse_pins(text):
    """Lines of 'NAME ADDRESS' -> list of (name, address) strings.

    Blank lines are skipped.  Names and addresses are checked by the
    hosts-file module's rules (ValueError naming the bad value), so a bad
    pin in the file is reported with its file and line.
    """
    pins = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2:
            raise ValueError("expected 'NAME ADDRESS', got %r" % line)
        pins.append((fields[0], fields[1]))
    from .pinrules import normalize_pins, special_name  # only here: the watchdog reads no pins

    try:
        normalize_pins(pins)
    except UsageError as exc:
        raise ValueError(str(exc))
    for name, _ in pins:
        if special_name(name):
            raise ValueError("%s: a pin would switch off the stock lines that map it (pin it "
                             "only by hand: --pin %s=ADDRESS --force)" % (special_name(name), name))
    return pins


def parse_words(text):
    return tuple((text or "").split())


_MATCH = re.compile(r"^[A-Z0-9_]+=\S+$")


def parse_matches(text):
    """journalctl matches: FIELD=VALUE words (SYSLOG_IDENTIFIER=forgejo-runner,
    _SYSTEMD_UNIT=forgejo-runner.service, CONTAINER_NAME=forgejo_runner)."""
    words = parse_words(text)
    for word in words:
        if not _MATCH.match(word):
            raise ValueError("not a journal match FIELD=VALUE (e.g. "
                             "SYSLOG_IDENTIFIER=forgejo-runner): %r" % word)
    return words


def parse_path(text):
    value = (text or "").strip()
    if not value:
        raise ValueError("empty path")
    if not value.startswith("/"):
        raise ValueError("not an absolute path: %r" % value)
    return value


def parse_optional_path(text):
    return parse_path(text) if (text or "").strip() else None


def parse_url(text):
    """A forge's URL: http:// or https:// and a host (`forge =`); '' for
    an empty value.  ValueError otherwise."""
    from urllib.parse import urlsplit

    value = (text or "").strip()
    if not value:
        return ""
    try:
        parts = urlsplit(value)
        parts.port  # ValueError for a port that is not one
    except ValueError as exc:
        raise ValueError("not a URL (%s): %r" % (exc, text))
    if parts.scheme not in ("http", "https") or not parts.hostname or len(value.split()) != 1:
        raise ValueError("not an http:// or https:// URL with a host: %r" % text)
    return value


# forge_scope: where the forge lists the runner (forge/api.py)
SCOPES = ("repo", "org", "user", "admin")
_FORGE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")  # the forges' user, org and repo names


def parse_scope(text):
    """forge_scope: 'repo OWNER/REPO', 'org ORG', 'user' or 'admin' ->
    ('repo', 'OWNER/REPO'), ('org', 'ORG'), ('user',), ('admin',); () when
    empty (the forge is not asked)."""
    words = parse_words(text)
    if not words:
        return ()
    kind, args = words[0], words[1:]
    want = {"repo": "OWNER/REPO", "org": "ORG"}.get(kind)
    if kind not in SCOPES:
        raise ValueError("must be 'repo OWNER/REPO', 'org ORG', 'user' or 'admin': %r" % text)
    if want is None:
        if args:
            raise ValueError("%s takes nothing after it: %r" % (kind, text))
        return (kind,)
    parts = args[0].split("/") if len(args) == 1 else []
    if len(parts) != (2 if kind == "repo" else 1) or not all(_FORGE_NAME.match(p) for p in parts):
        raise ValueError("expected '%s %s': %r" % (kind, want, text))
    return (kind, args[0])


def parse_argv(text):
    """A command line split into words as a shell would (shlex; no shell
    runs it): a tuple, empty for an empty value."""
    import shlex

    try:
        return tuple(shlex.split(text or "", comments=False))
    except ValueError as exc:  # an unbalanced quote
        raise ValueError("cannot split into words: %s: %r" % (exc, text))


# The events the tools notify ([notify] events = ...; notify.py sends them).
RESTARTED = "restarted"
RESTART_FAILED = "restart-failed"
REFUSED = "refused"
SERVER_ERROR = "server-error"
BUDGET_EXHAUSTED = "budget-exhausted"
MISCONFIGURED = "misconfigured"
CRASH_LOOP = "crash-loop"
FORGE_UNREACHABLE = "forge-unreachable"
RECOVERED = "recovered"
STALE_PIN = "stale-pin"
PIN_DRIFT = "pin-drift"
TEST = "test"
EVENTS = (RESTARTED, RESTART_FAILED, REFUSED, MISCONFIGURED, SERVER_ERROR, CRASH_LOOP,
          BUDGET_EXHAUSTED, FORGE_UNREACHABLE, RECOVERED, STALE_PIN, PIN_DRIFT)


def parse_events(text):
    """Event names (EVENTS) a [notify] command is run for; none:
    every event."""
    words = parse_words(text)
    if not words:
        return ()
    for word in words:
        if word not in EVENTS:
            raise ValueError("unknown event %r (known: %s)" % (word, ", ".join(EVENTS)))
    return tuple(dict.fromkeys(words))
