"""Docker's log times: RFC 3339 stamps <-> exact integer nanoseconds.
Pure; used by runnerlog's scanner and the backends' parsing of inspect.
"""

import calendar
import re
import time

# Docker prefixes each line with RFC 3339 nanosecond UTC time and a space:
# "2026-06-29T10:00:02.123456789Z ".  Internally times are integer
# nanoseconds (exact); the float epoch seconds handed out are
# to_seconds(ns), the same formula everywhere, so that a `since` computed
# by parse_time() from a timestamp counts the line with that timestamp.

NS = 10 ** 9
_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?\d*(Z|z|[+-]\d\d:?\d\d)$"
)
_seconds_cache = {}


def to_seconds(ns):
    """Integer nanoseconds -> float epoch seconds."""
    return ns // NS + (ns % NS) / 1e9


def parse_ns(stamp):
    """b'2026-06-29T10:00:02.123456789Z' -> integer epoch nanoseconds, or
    None.  The fixed-width form Docker writes is parsed from slices with
    the seconds part cached; anything else goes through a regex."""
    if len(stamp) == 30 and stamp[19:20] == b"." and stamp[29:30] == b"Z":
        head = stamp[:19]
        secs = _seconds_cache.get(head)
        if secs is None:
            secs = _epoch(head.decode("ascii", "replace") + "Z")
            if secs is None:
                return None
            if len(_seconds_cache) > 4096:
                _seconds_cache.clear()
            _seconds_cache[head] = secs
        frac = stamp[20:29]
        if not frac.isdigit():
            return None
        return secs * NS + int(frac)
    text = stamp.decode("ascii", "replace") if isinstance(stamp, bytes) else stamp
    match = _TIME.match(text.strip())
    if not match:
        return None
    secs = _epoch(text.strip())
    if secs is None:
        return None
    frac = match.group(7) or ""
    return secs * NS + int((frac + "000000000")[:9])


def _epoch(text):
    """Whole epoch seconds of an RFC 3339 time (fraction ignored)."""
    match = _TIME.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        secs = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    zone = match.group(8)
    if zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        secs -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return secs


def parse_time(stamp):
    """RFC 3339 time (str or bytes, e.g. Docker's StartedAt or a log
    prefix) -> float epoch seconds, or None when it is not one."""
    if isinstance(stamp, str):
        stamp = stamp.encode("ascii", "replace")
    ns = parse_ns(stamp.strip())
    return None if ns is None else to_seconds(ns)


def since_ns(since):
    """The smallest integer ns whose to_seconds() is >= since: a line with
    time t (ns) counts exactly when to_seconds(t) >= since."""
    guess = int(since) * NS + int(round((since - int(since)) * 1e9))
    lo, hi = guess - 10 ** 6, guess + 10 ** 6
    while to_seconds(lo) >= since:
        lo -= 10 ** 6
    while to_seconds(hi) < since:
        hi += 10 ** 6
    while hi - lo > 1:  # invariant: to_seconds(lo) < since <= to_seconds(hi)
        mid = (lo + hi) // 2
        if to_seconds(mid) >= since:
            hi = mid
        else:
            lo = mid
    return hi


def format_ns(ns):
    """Integer ns -> Docker's fixed-width stamp (bytes); orders like time."""
    secs, frac = divmod(ns, NS)  # formatting only: no clock is read
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%09dZ" % frac).encode()


# ------------------------------------------------------------ the window

START_MARGIN = 2.0  # Docker records StartedAt a little after the process starts


def window_start(now, window, started_at, previous_finished_at, margin=START_MARGIN):
    """Where counting starts: the later of now - window and
    started_at - margin (the container's current run; the margin covers
    Docker recording StartedAt after the first lines), but never before
    previous_finished_at (errors of the run before the last restart are
    never counted again).  started_at / previous_finished_at may be None
    (unknown / never finished)."""
    start = now - window
    if started_at is not None:
        start = max(start, started_at - margin)
    if previous_finished_at is not None:
        start = max(start, previous_finished_at)
    return start
