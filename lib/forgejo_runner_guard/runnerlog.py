"""Reading the runner's log: which lines are fetch errors and job starts.

Pure: bytes in, facts out; no I/O.  Two layers:

* classify(message) judges ONE log line (without Docker's timestamp).  It
  is the single place that says what counts as a fetch error.
* LogScan streams `docker logs --timestamps` output in chunks and sums it
  up as an Evidence.  It never holds the log: memory is one chunk plus one
  partial line (capped at MAX_LINE bytes).

Formats (the Forgejo runner and Gitea act_runner log with logrus):

  logfmt  time="2026-06-29T10:00:02Z" level=error msg="failed to fetch task" error="unavailable: ..."
          (at level debug, func="[fetchTask]" file="[poller.go:95]" follow msg)
          level=error msg="failed to fetch task: deadline exceeded; increase fetch_timeout ..."
  TTY     ERRO[2026-06-29T10:00:02Z] failed to fetch task      error="..."
          (with `tty: true`; possibly wrapped in ANSI colour codes)
  job     level=info msg="task 123 repo is owner/repo https://data.forgejo.org https://forge.azrak.io"
          INFO[...] task 123 repo is owner/repo ...

Job output the runner relays (`level=info msg="[ci/build]   | failed to
fetch task"`, `INFO[...] [ci/build] | ERRO[...] failed to fetch task`) is
never a fetch error: the level and the start of the message are read from
the runner's own fields, so no job can restart the runner by printing text.
"""

import calendar
import dataclasses
import re
import time
from typing import FrozenSet, Optional, Tuple

FETCH_ERROR = "FETCH_ERROR"
JOB_START = "JOB_START"
OTHER = "OTHER"

FETCH_PHRASE = "failed to fetch task"
MAX_LINE = 64 * 1024  # a longer line is judged by its first MAX_LINE bytes
RECENT_ERRORS = 5  # counted fetch-error lines kept whole, the newest, as evidence
EVIDENCE_LINE = 1024  # characters of each such line kept

# ------------------------------------------------------------ one line

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# logrus TTY format: LEVEL[time] message, fields after the (padded) message
_TTY = re.compile(r"([A-Z]{4,7})\[[^\]]*\] ?(.*)", re.S)
# one logfmt pair; a quoted value may run to the end of a truncated line
_PAIR = re.compile(r'\s*([A-Za-z_][\w.\-]*)=(?:"([^"\\]*(?:\\.[^"\\]*)*)(?:"|$)|([^\s"]*))', re.S)
_ERROR_FIELD = re.compile(r'(?:^|\s)error=(?:"([^"\\]*(?:\\.[^"\\]*)*)(?:"|$)|(\S*))', re.S)
_JOB = re.compile(r"task (\d+) repo is (\S.*)", re.S)
_ESCAPE = re.compile(r'\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)', re.S)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}

_ERROR_LEVELS = ("error", "erro")
_INFO_LEVELS = ("info",)


def _unescape_one(match):
    code = match.group(1)
    if code[0] in "xuU" and len(code) > 1:
        return chr(int(code[1:], 16))
    if len(code) == 3:
        return chr(int(code, 8))
    return _SIMPLE_ESCAPES.get(code, code)


def unquote(value):
    """Undo Go's %q escaping (logrus quotes values with it)."""
    if "\\" not in value:
        return value
    return _ESCAPE.sub(_unescape_one, value)


def _logfmt(text, pos=0, fields=None, all_fields=False):
    """Leading key=value pairs of `text` from `pos` -> (fields, end).

    The first of a key wins.  Stops at the first thing that is not a pair,
    so a message's content can never be read as a field of the line; and,
    unless all_fields, as soon as `level` and `msg` are known."""
    fields = {} if fields is None else fields
    end = len(text)
    while pos < end:
        match = _PAIR.match(text, pos)
        if not match or match.end() == pos:
            break
        key, quoted, bare = match.groups()
        if key not in fields:
            fields[key] = unquote(quoted) if quoted is not None else bare
        pos = match.end()
        if not all_fields and "level" in fields and "msg" in fields:
            break
    return fields, pos


def _fields(text):
    """-> (level, message, state) of one runner line, or None when the line
    is in no format the runner's own logger writes.  state is None for the
    TTY format (fields follow the message), else where logfmt parsing
    stopped (for _error_field)."""
    tty = _TTY.match(text)
    if tty:
        return tty.group(1).lower(), tty.group(2), None
    fields, pos = _logfmt(text)
    if "level" in fields and "msg" in fields:
        return fields["level"].lower(), fields["msg"], (fields, pos)
    return None


def _error_field(text, msg, state):
    """The `error=` field's value (unescaped), or None."""
    if state is None:
        match = _ERROR_FIELD.search(msg)
        if not match:
            return None
        return unquote(match.group(1)) if match.group(1) is not None else match.group(2)
    fields, pos = state
    return _logfmt(text, pos, fields, all_fields=True)[0].get("error")


def classify(message):
    """Judge one log line (bytes, without Docker's timestamp prefix).

    -> (kind, task_id, detail):

    (FETCH_ERROR, None, error text)
        The runner's own logger wrote it at error level and its message
        starts with "failed to fetch task": logfmt `level=error
        msg="failed to fetch task..."` or TTY `ERRO[...] failed to fetch
        task...` (ANSI colour codes are stripped first, CR/LF ignored).
        detail is the unescaped `error=` field, else the rest of the
        message after the phrase ("deadline exceeded; ...").
    (JOB_START, task id, "owner/repo https://...")
        info level, message `task <id> repo is ...`.
    (OTHER, None, "")
        Everything else: other messages, other levels, relayed job output
        (its message starts with "[workflow/job]", whatever it contains),
        lines in no runner format.
    """
    text = message[:MAX_LINE].decode("utf-8", "replace").rstrip("\r\n")
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    parsed = _fields(text)
    if parsed is None:
        return OTHER, None, ""
    level, msg, state = parsed
    if level in _ERROR_LEVELS and msg.startswith(FETCH_PHRASE):
        error = _error_field(text, msg, state)
        if error is not None:
            return FETCH_ERROR, None, error
        rest = msg[len(FETCH_PHRASE):].strip()
        return FETCH_ERROR, None, rest[1:].strip() if rest.startswith(":") else rest
    if level in _INFO_LEVELS:
        job = _JOB.match(msg)
        if job:
            return JOB_START, int(job.group(1)), job.group(2).strip()
    return OTHER, None, ""


_REFUSED = re.compile(r"unauthenticated|permission[ _]?denied|unregistered runner", re.I)


def refused(detail):
    """True when a fetch error says the server refuses this runner: a
    restart cannot help, it must be re-registered.  Matches
    `unauthenticated`, `permission_denied` (also `PermissionDenied`,
    `permission denied`) and `unregistered runner` in any letter case."""
    return bool(_REFUSED.search(detail or ""))


# ------------------------------------------------------------ Docker times

# Docker prefixes each line with RFC 3339 nanosecond UTC time and a space:
# "2026-06-29T10:00:02.123456789Z ".  Internally times are integer
# nanoseconds (exact); the float epoch seconds handed out are
# to_seconds(ns), the same formula everywhere, so that a `since` computed
# by parse_time() from a timestamp counts the line with that timestamp.

_NS = 10 ** 9
_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?\d*(Z|z|[+-]\d\d:?\d\d)$"
)
_seconds_cache = {}


def to_seconds(ns):
    """Integer nanoseconds -> float epoch seconds."""
    return ns // _NS + (ns % _NS) / 1e9


def _ns(stamp):
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
        return secs * _NS + int(frac)
    text = stamp.decode("ascii", "replace") if isinstance(stamp, bytes) else stamp
    match = _TIME.match(text.strip())
    if not match:
        return None
    secs = _epoch(text.strip())
    if secs is None:
        return None
    frac = match.group(7) or ""
    return secs * _NS + int((frac + "000000000")[:9])


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
    ns = _ns(stamp.strip())
    return None if ns is None else to_seconds(ns)


def _since_ns(since):
    """The smallest integer ns whose to_seconds() is >= since: a line with
    time t (ns) counts exactly when to_seconds(t) >= since."""
    guess = int(since) * _NS + int(round((since - int(since)) * 1e9))
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


def _stamp(ns):
    """Integer ns -> Docker's fixed-width stamp (bytes); orders like time."""
    secs, frac = divmod(ns, _NS)  # formatting only: no clock is read
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%09dZ" % frac).encode()


# ------------------------------------------------------------ the stream


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What a stretch of runner log says.

    errors               fetch errors with Docker time >= since
    newest_error         epoch seconds of the newest of those, or None
    newest_error_detail  its error text ("" when none)
    last_job_start       epoch seconds of the newest job start seen, or None
    claimed_tasks        task ids of all job starts seen
    lines                lines seen (all of them)
    untimed              fetch-error/job-start lines without a readable
                         Docker time (not counted; non-zero means the
                         input lacked --timestamps or is damaged)
    since                the start of the counted window (epoch seconds)
    recent_errors        the newest counted fetch-error lines (at most
                         RECENT_ERRORS, oldest first), as the source wrote
                         them with Docker's (or the journal's) time in front,
                         ANSI codes removed, cut at EVIDENCE_LINE characters
    """

    errors: int = 0
    newest_error: Optional[float] = None
    newest_error_detail: str = ""
    last_job_start: Optional[float] = None
    claimed_tasks: FrozenSet[int] = frozenset()
    lines: int = 0
    untimed: int = 0
    since: Optional[float] = None
    recent_errors: Tuple[str, ...] = ()


def merge(*evidences):
    """Combine the Evidence of separately scanned streams (stdout, stderr)
    of the same window: counts add up, newest wins, claims unite."""
    errors = sum(e.errors for e in evidences)
    newest = [e for e in evidences if e.newest_error is not None]
    top = max(newest, key=lambda e: e.newest_error) if newest else None
    starts = [e.last_job_start for e in evidences if e.last_job_start is not None]
    sinces = [e.since for e in evidences if e.since is not None]
    return Evidence(
        errors=errors,
        newest_error=top.newest_error if top else None,
        newest_error_detail=top.newest_error_detail if top else "",
        last_job_start=max(starts) if starts else None,
        claimed_tasks=frozenset().union(*(e.claimed_tasks for e in evidences)),
        lines=sum(e.lines for e in evidences),
        untimed=sum(e.untimed for e in evidences),
        since=min(sinces) if sinces else None,
        recent_errors=tuple(sorted(line for e in evidences
                                   for line in e.recent_errors)[-RECENT_ERRORS:]),
    )


# Fast path for floods: a fetch error in the canonical forms, found for a
# whole block by one regex in C (it starts at the newline before the line,
# so the line's start is Docker's, never a job's).  Every line it matches
# is one classify() calls FETCH_ERROR (tests check this); when a block has
# any other line with "fetch task" in it, or only a few such lines, the
# block goes through classify() line by line instead.
_FAST_ERROR = re.compile(
    rb"\n(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) "
    rb'(?:(?:time="[^"\\\n]*" |time=[^ "\\\n]* )?level=error msg="failed to fetch task'
    rb"|(?:\x1b\[[0-9;]*m)?ERROR?(?:\x1b\[0m)?\[[^\]\n]*\] failed to fetch task)"
)
_FAST_MIN = 16  # fewer candidate lines in a block: classify them one by one
_WINDOW = 16 * 1024  # bytes of whole lines scanned at a time (cache-sized)
_FETCH_NEEDLE = b"fetch task"
_JOB_NEEDLE = b" repo is "


def _judge(line):
    """One line with Docker's prefix -> (kind, task_id, detail, ns or None)."""
    stamp, _, message = line.partition(b" ")
    kind, task, detail = classify(message)
    return kind, task, detail, (_ns(stamp) if kind != OTHER else None)


class LogScan:
    """Stream `docker logs --timestamps` output into an Evidence.

        scan = LogScan(since)
        for chunk in pipe: scan.feed(chunk)   # split anywhere
        evidence = scan.close()

    Only lines containing "fetch task" or " repo is " are parsed; the rest
    are counted (chunk.count) and skipped in C.  `fast=False` disables the
    block regex (tests compare both paths).
    """

    def __init__(self, since, fast=True):
        self.since = since
        if since is None:  # count every line
            self._since_ns, self._since_stamp = -(10 ** 30), b""
        else:
            self._since_ns = _since_ns(since)
            self._since_stamp = _stamp(self._since_ns)
        self._fast = fast
        self._carry = b""
        self._lines = 0
        self._errors = 0
        self._newest = None  # ns
        self._detail = ""  # or, from the fast path, the line to read it from
        self._job = None  # ns
        self._claims = set()
        self._untimed = 0
        self._recent = []  # (ns, line) of counted fetch errors, trimmed to the newest
        self._held = None  # the newest fast block (data, start, end): its tail, read late
        self._result = None

    # -- feeding

    def feed(self, chunk):
        if self._result is not None:
            raise ValueError("LogScan.feed after close")
        if not chunk:
            return
        if not isinstance(chunk, bytes):
            chunk = bytes(chunk)
        first = chunk.find(b"\n")
        if first < 0:
            if len(self._carry) < MAX_LINE:
                self._carry += chunk[: MAX_LINE - len(self._carry)]
            return
        start = 0
        if self._carry:
            line = (self._carry + chunk[: min(first, MAX_LINE)])[:MAX_LINE]
            self._carry = b""
            self._lines += 1
            self._one(line, None)
            start = first + 1
        last = chunk.rfind(b"\n")
        # cache-sized windows of whole lines: the few passes over each
        # window (count, find, regex) then read it from the CPU cache
        while start <= last:
            stop = chunk.rfind(b"\n", start, start + _WINDOW) + 1
            if stop <= start:  # a line longer than the window
                stop = chunk.find(b"\n", start, last + 1) + 1
            self._lines += chunk.count(b"\n", start, stop)
            self._block(chunk, start, stop)
            start = stop
        self._carry = chunk[last + 1 : last + 1 + MAX_LINE]

    def add(self, ns, message):
        """One log line whose time the source gives apart from the text (the
        journal's __REALTIME_TIMESTAMP): ns, integer epoch nanoseconds (or
        None: unknown); message, the line's bytes without any time prefix.
        Judged by classify(), counted as feed() counts; lines may come in
        any order.  Do not mix with feed() in one scan."""
        if self._result is not None:
            raise ValueError("LogScan.add after close")
        self._lines += 1
        if _FETCH_NEEDLE not in message and _JOB_NEEDLE not in message:
            return
        kind, task, detail = classify(message)
        if kind != OTHER:
            self._take(kind, task, detail, ns)
        if kind == FETCH_ERROR and ns is not None and ns >= self._since_ns:
            self._keep(ns, _stamp(ns) + b" " + message)

    def close(self):
        """End of input: judge the last line (if it had no newline) and
        return the Evidence."""
        if self._result is None:
            if self._held is not None:
                self._keep_tail(*self._held)
                self._held = None
            if self._carry:
                self._lines += 1
                self._one(self._carry, None)
                self._carry = b""
            self._result = Evidence(
                errors=self._errors,
                newest_error=None if self._newest is None else to_seconds(self._newest),
                newest_error_detail=self._detail if isinstance(self._detail, str) else _judge(self._detail)[2],
                last_job_start=None if self._job is None else to_seconds(self._job),
                claimed_tasks=frozenset(self._claims),
                lines=self._lines,
                untimed=self._untimed,
                since=self.since,
                recent_errors=tuple(_evidence_text(line) for _, line in
                                    sorted(self._recent)[-RECENT_ERRORS:]),
            )
        return self._result

    # -- internals

    def _block(self, data, start, end):
        """Complete lines data[start:end] (end just after a newline; start
        is 0 or just after a newline)."""
        candidates = data.count(_FETCH_NEEDLE, start, end)
        if candidates >= _FAST_MIN and self._fast:
            begin = start
            if begin == 0:  # the regex needs the newline before a line
                begin = data.find(b"\n", 0, end) + 1
                self._lines_with(data, 0, begin, _FETCH_NEEDLE, FETCH_ERROR)
                candidates = data.count(_FETCH_NEEDLE, begin, end)
            stamps = _FAST_ERROR.findall(data, begin - 1, end) if candidates else ()
            if len(stamps) == candidates:
                if stamps:
                    self._fast_errors(data, begin, end, stamps)
            else:
                self._lines_with(data, begin, end, _FETCH_NEEDLE, FETCH_ERROR)
        elif candidates:
            self._lines_with(data, start, end, _FETCH_NEEDLE, FETCH_ERROR)
        if data.find(_JOB_NEEDLE, start, end) >= 0:
            self._lines_with(data, start, end, _JOB_NEEDLE, JOB_START)

    def _fast_errors(self, data, start, end, stamps):
        key = self._since_stamp
        if min(stamps) < key:
            stamps = [s for s in stamps if s >= key]
            if not stamps:
                return
        self._errors += len(stamps)
        top = max(stamps)
        ns = _ns(top)
        # its last lines are read only if no later block has enough of them
        if self._held is not None and len(stamps) < RECENT_ERRORS:
            self._keep_tail(*self._held)
        self._held = (data, start, end)
        if ns is None or (self._newest is not None and ns < self._newest):
            return
        # the detail of the last line in this block carrying that stamp
        pos = end
        while True:
            pos = data.rfind(top + b" ", start, pos)
            if pos < 0:
                return
            # start - 1 is a newline: the regex checks this is a fetch error;
            # its detail is read once, at close()
            if data[pos - 1] == 10 and _FAST_ERROR.match(data, pos - 1):
                line_end = min(data.find(b"\n", pos, end), pos + MAX_LINE)
                self._newest, self._detail = ns, data[pos:line_end]
                return

    def _keep_tail(self, data, start, end):
        """Keep the last fetch errors of a fast block (data[start - 1] is a
        newline): its last few lines, walked back one by one."""
        pos, kept = end - 1, 0
        while kept < RECENT_ERRORS and pos >= start:
            newline = data.rfind(b"\n", start - 1, pos)
            match = _FAST_ERROR.match(data, newline) if newline >= 0 else None
            if match and match.group(1) >= self._since_stamp:
                self._keep(_ns(match.group(1)), data[newline + 1 : pos])
                kept += 1
            pos = newline

    def _keep(self, ns, line):
        """One counted fetch error's line, for Evidence.recent_errors."""
        self._recent.append((ns, line[: 4 * EVIDENCE_LINE]))
        if len(self._recent) > 4 * RECENT_ERRORS:
            self._recent = sorted(self._recent)[-RECENT_ERRORS:]

    def _lines_with(self, data, start, end, needle, want):
        """classify() every line of data[start:end] containing needle."""
        pos = data.find(needle, start, end)
        while pos >= 0:
            line_start = data.rfind(b"\n", start, pos) + 1 or start
            line_end = data.find(b"\n", pos, end)
            self._one(data[line_start : min(line_end, line_start + MAX_LINE)], want)
            pos = data.find(needle, line_end, end)

    def _one(self, line, want):
        """One complete line (Docker stamp, space, message), at most
        MAX_LINE bytes; want: the only kind to take from it (or None)."""
        if _FETCH_NEEDLE not in line and _JOB_NEEDLE not in line:
            return
        if want is not None and b"\\" not in line and b"\x1b" not in line:
            # cheap necessary conditions (exact without escapes and ANSI
            # codes): an error level is spelt "erro" in any case, a job
            # start message says "task "; relayed job output mostly fails here
            if want == FETCH_ERROR and b"erro" not in line.lower():
                return
            if want == JOB_START and b"task " not in line:
                return
        kind, task, detail, ns = _judge(line)
        if kind == OTHER or (want is not None and kind != want):
            return
        self._take(kind, task, detail, ns)
        if kind == FETCH_ERROR and ns is not None and ns >= self._since_ns:
            self._keep(ns, line)

    def _take(self, kind, task, detail, ns):
        """Count one classified line (FETCH_ERROR or JOB_START) of time ns."""
        if ns is None:
            self._untimed += 1
            return
        if kind == FETCH_ERROR:
            if ns >= self._since_ns:
                self._errors += 1
                if self._newest is None or ns >= self._newest:
                    self._newest, self._detail = ns, detail
        else:
            self._claims.add(task)
            if self._job is None or ns >= self._job:
                self._job = ns


def _evidence_text(line):
    """A kept line as text: decoded, ANSI codes and other control
    characters but tabs removed, at most EVIDENCE_LINE characters."""
    text = _ANSI.sub("", line.decode("utf-8", "replace"))
    text = "".join(ch for ch in text if ch >= " " or ch == "\t").rstrip()
    return text[:EVIDENCE_LINE]


def scan(data, since, fast=True):
    """Evidence of a whole log held in memory (tests, small inputs)."""
    scanner = LogScan(since, fast=fast)
    scanner.feed(data)
    return scanner.close()
