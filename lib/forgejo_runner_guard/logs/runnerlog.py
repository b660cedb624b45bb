"""Reading the runner's log: which lines are fetch errors and job starts.

Pure: bytes in, facts out; no I/O.  Two layers:

* classify(message, tty) judges ONE log line (without Docker's timestamp).
  It is the single place that says what counts as a fetch error;
  failures.failure_class(detail) says what kind of failure one was.
* LogScan streams `docker logs --timestamps` output (or journal entries)
  in chunks and sums it up as an Evidence.  It never holds the log: memory
  is one chunk plus one partial line (capped at MAX_LINE bytes).

What the runners write (the Forgejo runner and Gitea act_runner log with
logrus's TextFormatter on stderr; tests/fixtures/logrus/ holds the real
bytes):

  logfmt  time="2026-06-29T10:00:02Z" level=error msg="failed to fetch task" error="unavailable: ..."
          (at debug, and for Gitea at trace, func="[fetchTasks]" file="[poller.go:199]" follow msg)
          level=error msg="failed to fetch task: deadline exceeded; increase fetch_timeout ..."
          level=warning msg="fetching a task timed out after 30s, ..."          (Gitea, once a streak)
          level=error msg="server rejected the runner as unregistered, ..." (terminal.py's lines)
  TTY     \x1b[31mERRO\x1b[0m[2026-06-29T10:00:02Z] failed to fetch task   \x1b[31merror\x1b[0m="..."
          (when stdout and stderr are a terminal, e.g. Docker's `tty: true`; with
          the caller: ERRO[...][poller.go:199] [fetchTasks] failed to fetch task ...)
  job     level=info msg="task 123 repo is owner/repo https://data.forgejo.org https://forge.azrak.io"

Job output is written by the job logger on stdout (`[wf/job]   | <raw
line>`, at debug and trace; older runners at every level) and relayed by
the reporter at trace on stderr.  A job controls whole physical lines of
stdout, so only the runner's stderr can be trusted without a terminal.  On
stderr every line is the logger's own, so a line's level and the start of
its message are read from the logger's fields, and no relayed text can
count: trace never counts.  In a terminal's stream only a line that
starts with logrus's own colour codes is the runner's; there, and in a
journal that merges stdout and stderr, job output at debug or trace (or
from an old runner at any level) cannot be told apart, and the Evidence
says so (ambiguous).
"""

import dataclasses
import re
from typing import FrozenSet, Optional, Tuple

from . import logfmt, terminal
from .failures import PollModel, failure_class, slow
from .sources import SOURCES, SourceWatch
from .stamps import NS, format_ns, parse_ns, since_ns, to_seconds

FETCH_ERROR = "FETCH_ERROR"
JOB_START = "JOB_START"
TERMINAL = "TERMINAL"
OTHER = "OTHER"

FETCH_PHRASE = "failed to fetch task"
MAX_LINE = 64 * 1024  # a longer line is judged by its first MAX_LINE bytes
RECENT_ERRORS = 5  # counted fetch-error lines kept whole, the newest, as evidence
EVIDENCE_LINE = 1024  # characters of each such line kept

# ------------------------------------------------------------ one line

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# logrus TTY format: LEVEL[time][file:line] [func] message, fields after
# the (padded) message
_TTY = re.compile(r"([A-Z]{4,7})\[[^\]]*\](?:\[[^\]\s]+:\d+\] \[[^\]\s]*\])? ?(.*)", re.S)
# one logfmt pair; a quoted value may run to the end of a truncated line
_ERROR_FIELD = re.compile(r'(?:^|\s)error=(?:"([^"\\]*(?:\\.[^"\\]*)*)(?:"|$)|(\S*))', re.S)
_JOB = re.compile(r"task (\d+) repo is (\S.*)", re.S)

_ERROR_LEVELS = ("error", "erro")
_WARN_LEVELS = ("warning", "warn")
_INFO_LEVELS = ("info",)
# the runner's own message for a failed poll, besides FETCH_PHRASE (Gitea)
_TIMED_OUT = "fetching a task timed out"
# logrus's TTY layout as the runner writes it: the coloured level (1.9:
# 31 error, 33 warning, 36 info, 37 debug and trace; 1.10: 2;36 debug,
# 2;37 trace), the time, the caller when reported, the message
_TTY_OWN = re.compile(
    r"\x1b\[(?:2;)?3[1-7]m([A-Z]{4})\x1b\[0m\[[^\]]*\](?:\[[^\]\s]+:\d+\] \[[^\]\s]*\])? ?(.*)", re.S
)

def _fields(text, tty):
    """-> (level, message, state) of one runner line, or None when the line
    is in no format the runner's own logger writes.  state is None for the
    TTY format (fields follow the message), else where logfmt parsing
    stopped (for _error_field).  tty: the line comes from a terminal's
    stream, where only logrus's coloured layout is the runner's."""
    if tty:
        own = _TTY_OWN.match(text)
        if not own:
            return None
        return own.group(1).lower(), _ANSI.sub("", own.group(2)), None
    layout = _TTY.match(text)
    if layout:
        return layout.group(1).lower(), layout.group(2), None
    fields, pos = logfmt.pairs(text)
    if "level" in fields and "msg" in fields:
        return fields["level"].lower(), fields["msg"], (fields, pos)
    return None


def _error_field(text, msg, state):
    """The `error=` field's value (unescaped), or None."""
    if state is None:
        if "\x1b" in msg:
            msg = _ANSI.sub("", msg)
        match = _ERROR_FIELD.search(msg)
        if not match:
            return None
        return logfmt.unquote(match.group(1)) if match.group(1) is not None else match.group(2)
    fields, pos = state
    return logfmt.pairs(text, pos, fields, all_fields=True)[0].get("error")


def classify(message, tty=False, plain=False):
    """Judge one log line (bytes, without Docker's timestamp prefix).

    tty: the line comes from a terminal's stream (Docker's `tty: true`),
    where a line is the runner's only if it starts with logrus's own
    colour codes; otherwise (stderr, a journal) logfmt and the TTY layout
    are read, ANSI colour codes stripped first.  CR/LF are ignored.
    plain: the line is from the runner's own stderr, where a line in no
    logger's format (cobra's "Error: ...") is the runner's too.

    -> (kind, task_id or cause, detail):

    (FETCH_ERROR, None, error text)
        The runner's logger wrote that a poll failed:
          error level, message "failed to fetch task..." (detail: the
            unescaped `error=` field, else the rest of the message after
            the phrase, e.g. "deadline exceeded; ...");
          warning or error level, "fetching a task timed out..." (Gitea;
            detail: "deadline exceeded: " and the message).
    (TERMINAL, cause, error text or message)
        A state a restart never fixes (terminal.py: unregistered,
        second-process, bad-url): an error-level line, or with plain,
        cobra's "Error: ..." line.
    (JOB_START, task id, "owner/repo https://...")
        info level, message `task <id> repo is ...`.
    (OTHER, None, "")
        Everything else: other messages, other levels (trace never
        counts), job output, lines in no runner format.
    """
    text = message[:MAX_LINE].decode("utf-8", "replace").rstrip("\r\n")
    if not tty and "\x1b" in text:
        text = _ANSI.sub("", text)
    parsed = _fields(text, tty)
    if parsed is None:
        cause = terminal.plain(text) if plain else None
        return (TERMINAL, cause, text[len("Error: "):]) if cause else (OTHER, None, "")
    level, msg, state = parsed
    if level in _ERROR_LEVELS:
        if msg.startswith(FETCH_PHRASE):
            error = _error_field(text, msg, state)
            if error is not None:
                return FETCH_ERROR, None, error
            rest = msg[len(FETCH_PHRASE):].strip()
            return FETCH_ERROR, None, rest[1:].strip() if rest.startswith(":") else rest
        if msg.startswith(terminal.PREFIXES):
            error = _error_field(text, msg, state) or ""
            cause = terminal.logged(msg, error)
            if cause:
                return TERMINAL, cause, error or msg.split("  ")[0].strip()
    if (level in _ERROR_LEVELS or level in _WARN_LEVELS) and msg.startswith(_TIMED_OUT):
        return FETCH_ERROR, None, "deadline exceeded: " + msg.split("  ")[0].strip()
    if level in _INFO_LEVELS:
        job = _JOB.match(msg)
        if job:
            return JOB_START, int(job.group(1)), job.group(2).strip()
    return OTHER, None, ""


# ------------------------------------------------------------ the stream


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What a stretch of runner log says.

    errors               fetch errors with Docker time >= since
    newest_error         epoch seconds of the newest of those, or None
    newest_error_detail  its error text, as shown() ("" when none)
    newest_class         failure_class() of its whole text ("" when none)
    streak_start         epoch seconds of the first failure of the streak
                         the newest failure ends: failures no further apart
                         than the PollModel allows for polls that all failed,
                         with no job start among them (None when none)
    streak_polls         failures in that streak
    last_job_start       epoch seconds of the newest job start seen, or None
    claimed_tasks        task ids of all job starts seen
    lines                lines seen (all of them)
    untimed              fetch-error/job-start lines without a readable
                         Docker time (not counted; non-zero means the
                         input lacked --timestamps or is damaged)
    since                the start of the counted window (epoch seconds)
    source               "stderr", "tty" or "journal" (LogScan's)
    level                "debug" or "trace" when the runner's own lines show
                         it logs at that level, else ""
    ambiguous            "" when every counted line is surely the runner's;
                         else why job output could not be told apart
    recent_errors        the newest counted fetch-error lines (at most
                         RECENT_ERRORS, oldest first; of lines of one time
                         the later is the newer), as the source wrote
                         them with Docker's (or the journal's) time in front,
                         ANSI codes removed, cut at EVIDENCE_LINE characters
    terminal             cause (terminal.CAUSES) of the newest terminal line
                         with time >= since ("" none); terminal_at its time,
                         terminal_detail its error text (or message) as shown(),
                         terminal_line the line as recent_errors keeps one
    """

    errors: int = 0
    newest_error: Optional[float] = None
    newest_error_detail: str = ""
    newest_class: str = ""
    streak_start: Optional[float] = None
    streak_polls: int = 0
    last_job_start: Optional[float] = None
    claimed_tasks: FrozenSet[int] = frozenset()
    lines: int = 0
    untimed: int = 0
    since: Optional[float] = None
    source: str = "stderr"
    level: str = ""
    ambiguous: str = ""
    recent_errors: Tuple[str, ...] = ()
    terminal: str = ""
    terminal_at: Optional[float] = None
    terminal_detail: str = ""
    terminal_line: str = ""


# Fast path for floods: a fetch error in the canonical forms, found for a
# whole block by one regex in C (it starts at the newline before the line,
# so the line's start is Docker's, never a job's).  Every line it matches
# is one classify() calls FETCH_ERROR (tests check this); when a block has
# any other line with a needle in it, only a few such lines, a job start,
# failures too far apart for one streak, or times that go back, the block
# goes through classify() line by line instead.
_FAST_ERROR = {
    False: re.compile(
        rb"\n(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) "
        rb'(?:(?:time="[^"\\\n]*" |time=[^ "\\\n]* )?level=error msg="failed to fetch task'
        rb"|(?:\x1b\[[0-9;]*m)?ERROR?(?:\x1b\[0m)?\[[^\]\n]*\](?:\[[^\]\s]+:\d+\] \[[^\]\s]*\])? failed to fetch task)"
    ),
    True: re.compile(
        rb"\n(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) "
        rb"\x1b\[31mERRO\x1b\[0m\[[^\]\n]*\](?:\[[^\]\s]+:\d+\] \[[^\]\s]*\])? failed to fetch task"
    ),
}
_FAST_MIN = 16  # fewer candidate lines in a block: classify them one by one
_WINDOW = 16 * 1024  # bytes of whole lines scanned at a time (cache-sized)
_FETCH_NEEDLE = b"fetch task"
# the needles: a fetch error, Gitea's timeout ("fetching a task timed out"),
# a job start, a terminal line (terminal.NEEDLE)
NEEDLES = re.compile(rb"fetch task|fetching a task| repo is |" + terminal.NEEDLE)
_JOB_NEEDLE = b" repo is "


class LogScan:
    """Stream `docker logs --timestamps` output into an Evidence.

        scan = LogScan(since, source="stderr", model=PollModel(2, 30))
        for chunk in pipe: scan.feed(chunk)   # split anywhere
        evidence = scan.close()

    source: what the bytes are, which decides whose lines they can be:
      "stderr"   the runner's stderr alone (Docker without a TTY): every
                 line is the logger's own;
      "tty"      a terminal's stream (Docker's `tty: true`): stdout and
                 stderr merged; only logrus's coloured lines are the runner's;
      "journal"  a journal merging stdout and stderr (entries through add()).
    model: the PollModel that draws the streaks (see Evidence).

    Only lines containing a needle ("fetch task", Gitea's two failure
    phrases, " repo is ") are parsed, in order; the rest are counted
    (chunk.count) and skipped in C.  `fast=False` disables the block regex
    (tests compare both paths).
    """

    def __init__(self, since, fast=True, source="stderr", model=None):
        if source not in SOURCES:
            raise ValueError("LogScan source must be one of %s: %r" % (", ".join(SOURCES), source))
        self.since = since
        if since is None:  # count every line
            self._since_ns, self._since_stamp = -(10 ** 30), b""
        else:
            self._since_ns = since_ns(since)
            self._since_stamp = format_ns(self._since_ns)
        self._fast = fast
        self._source = source
        self._tty = source == "tty"
        self._plain = source == "stderr"  # cobra's plain lines are the runner's
        self._fast_error = _FAST_ERROR[self._tty]
        model = model or PollModel()
        self._bounds = (int(model.bound(False) * NS), int(model.bound(True) * NS))
        self._carry = b""
        self._lines = 0
        self._errors = 0
        self._newest = None  # ns
        self._detail_line = None  # from the fast path: the line to read the detail from
        self._detail_text = ""  # else the detail itself
        self._streak = None  # ns of the streak's first failure
        self._polls = 0
        self._job = None  # ns
        self._claims = set()
        self._untimed = 0
        self._watch = SourceWatch(source)  # the runner's level, job output, in a merged source
        self._recent = []  # (ns, line) of counted fetch errors, trimmed to the newest
        self._held = None  # the newest fast block (data, start, end): its tail, read late
        self._terminal = None  # (ns, cause, detail, line) of the newest terminal line
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
            self._lines += 1
            self._watch.see(b"\n" + line, 0, len(line) + 1)
            self._one(line)
            start = first + 1
        last = chunk.rfind(b"\n")
        # cache-sized windows of whole lines: the few passes over each
        # window (count, find, regex) then read it from the CPU cache
        while start <= last:
            stop = chunk.rfind(b"\n", start, start + _WINDOW) + 1
            if stop <= start:  # a line longer than the window
                stop = chunk.find(b"\n", start, last + 1) + 1
            lines = chunk.count(b"\n", start, stop)
            self._lines += lines
            self._block(chunk, start, stop, lines)
            start = stop
        self._carry = chunk[last + 1 : last + 1 + MAX_LINE]  # the carried line was judged above

    def add(self, ns, message):
        """One log line whose time the source gives apart from the text (the
        journal's __REALTIME_TIMESTAMP): ns, integer epoch nanoseconds (or
        None: unknown); message, the line's bytes without any time prefix.
        Judged by classify(), counted as feed() counts.  Do not mix with
        feed() in one scan."""
        if self._result is not None:
            raise ValueError("LogScan.add after close")
        self._lines += 1
        self._watch.see(b"\n" + message, 0, len(message) + 1)
        if not NEEDLES.search(message):
            return
        kind, task, detail = classify(message, self._tty, self._plain)
        if kind != OTHER:
            self._take(kind, task, detail, ns, lambda: format_ns(ns) + b" " + message)

    def close(self):
        """End of input: judge the last line (if it had no newline) and
        return the Evidence."""
        if self._result is None:
            self._flush()
            if self._carry:
                self._lines += 1
                self._watch.see(b"\n" + self._carry, 0, len(self._carry) + 1)
                self._one(self._carry)
            detail = self._detail_text
            if self._detail_line is not None:
                detail = _judge(self._detail_line, self._tty)[2]
            newest = self._newest is not None
            ns, cause, cause_detail, line = self._terminal or (None, "", "", b"")
            self._result = Evidence(
                errors=self._errors,
                newest_error=to_seconds(self._newest) if newest else None,
                newest_error_detail=shown(detail),
                newest_class=failure_class(detail) if newest else "",
                streak_start=None if self._streak is None else to_seconds(self._streak),
                streak_polls=self._polls,
                last_job_start=None if self._job is None else to_seconds(self._job),
                claimed_tasks=frozenset(self._claims),
                lines=self._lines,
                untimed=self._untimed,
                since=self.since,
                source=self._source,
                level=self._watch.level,
                ambiguous=self._watch.ambiguity(),
                recent_errors=tuple(evidence_text(line) for _, line in _newest(self._recent)),
                terminal=cause,
                terminal_at=None if ns is None else to_seconds(ns),
                terminal_detail=shown(cause_detail),
                terminal_line=evidence_text(line),
            )
        return self._result

    # -- internals

    def _block(self, data, start, end, lines):
        """Complete lines data[start:end] (end just after a newline; start
        is 0 or just after a newline), `lines` of them."""
        self._watch.see(data, start, end)
        candidates = data.count(_FETCH_NEEDLE, start, end)
        find = data.find
        others = find(_JOB_NEEDLE, start, end) >= 0 or find(b"fetching a task", start, end) >= 0
        if candidates >= _FAST_MIN and self._fast and not others:
            begin = start
            if begin == 0:  # the regex needs the newline before a line
                begin = data.find(b"\n", 0, end) + 1
                self._lines_with(data, 0, begin)
                candidates = data.count(_FETCH_NEEDLE, begin, end)
                lines -= 1
            stamps = self._fast_error.findall(data, begin - 1, end) if candidates else ()
            # unless every line is one of them, no other line may be an error
            # (a terminal line): each of them holds one mark
            if (len(stamps) != candidates
                    or (candidates != lines and terminal.marks(data, begin, end) != len(stamps))
                    or (stamps and not self._fast_errors(data, begin, end, stamps))):
                self._lines_with(data, begin, end)
        elif candidates or others or terminal.marked(data, start, end):
            self._lines_with(data, start, end)

    def _fast_errors(self, data, start, end, stamps):
        """Count a block of fetch errors the block regex found, when they
        continue one streak (False: judge the block line by line)."""
        if stamps != sorted(stamps):  # times going back: line by line decides
            return False
        key = self._since_stamp
        if stamps[0] < key:
            stamps = [s for s in stamps if s >= key]
            if not stamps:
                return True
        top = stamps[-1]
        first, last = parse_ns(stamps[0]), parse_ns(top)
        fast_bound = self._bounds[0]
        if first is None or last is None or last - first > fast_bound:
            return False
        if self._newest is not None and (first < self._newest or first - self._newest > fast_bound):
            return False
        if self._job is not None and self._job > first:  # a job start after them: line by line
            return False
        if self._newest is None or (self._job is not None and self._job > self._newest):
            self._streak, self._polls = first, 0
        self._errors += len(stamps)
        self._polls += len(stamps)
        self._newest = last
        # its last lines are read only if no later block has enough of them
        if len(stamps) < RECENT_ERRORS:
            self._flush()
        self._held = (data, start, end)
        # the detail of the last line in this block carrying that stamp
        pos = end
        while True:
            pos = data.rfind(top + b" ", start, pos)
            if pos < 0:
                return True
            # start - 1 is a newline: the regex checks this is a fetch error;
            # its detail is read once, at close()
            if data[pos - 1] == 10 and self._fast_error.match(data, pos - 1):
                line_end = min(data.find(b"\n", pos, end), pos + MAX_LINE)
                self._detail_line = data[pos:line_end]
                return True

    def _flush(self):
        """Keep the held fast block's last lines now (before any later one)."""
        if self._held is not None:
            held, self._held = self._held, None
            self._keep_tail(*held)

    def _keep_tail(self, data, start, end):
        """Keep the last fetch errors of a fast block (data[start - 1] is a
        newline): its last few lines, walked back one by one."""
        pos, kept = end - 1, []
        while len(kept) < RECENT_ERRORS and pos >= start:
            newline = data.rfind(b"\n", start - 1, pos)
            match = self._fast_error.match(data, newline) if newline >= 0 else None
            if match and match.group(1) >= self._since_stamp:
                kept.append((parse_ns(match.group(1)), data[newline + 1 : pos]))
            pos = newline
        for ns, line in reversed(kept):  # in log order
            self._keep(ns, line)

    def _keep(self, ns, line):
        """One counted fetch error's line, for Evidence.recent_errors; kept
        in log order (a held block's lines first), so that of lines of one
        time the later ones are the newer, as for newest_error_detail."""
        self._flush()
        self._recent.append((ns, line[: 4 * EVIDENCE_LINE]))
        if len(self._recent) > 4 * RECENT_ERRORS:
            self._recent = _newest(self._recent)

    def _lines_with(self, data, start, end):
        """classify(), in order, every line of data[start:end] containing a
        needle."""
        match = NEEDLES.search(data, start, end)
        while match:
            pos = match.start()
            line_start = data.rfind(b"\n", start, pos) + 1 or start
            line_end = data.find(b"\n", pos, end)
            if line_end < 0:
                line_end = end
            self._one(data[line_start : min(line_end, line_start + MAX_LINE)], True)
            match = NEEDLES.search(data, line_end, end)

    def _one(self, line, has_needle=False):
        """One complete line (Docker stamp, space, message), at most
        MAX_LINE bytes; has_needle: it is known to hold a needle."""
        if not has_needle and not NEEDLES.search(line):
            return
        if b"\\" not in line and b"\x1b" not in line:
            # cheap necessary conditions (exact without escapes and ANSI
            # codes): a failure is logged at error or warning level, a job
            # start's message says "task "; relayed job output mostly fails here
            lower = line.lower()
            if (b"erro" not in lower and b"warn" not in lower
                    and (_JOB_NEEDLE not in line or b"task " not in line)):
                return
        kind, task, detail, ns = _judge(line, self._tty, self._plain)
        if kind != OTHER:
            self._take(kind, task, detail, ns, lambda: line)

    def _take(self, kind, task, detail, ns, line):
        """Count one classified line (not OTHER) of time ns; line(): its
        bytes, kept for recent_errors or as the newest terminal line."""
        if ns is None:
            self._untimed += 1
        elif kind == JOB_START:
            self._claims.add(task)
            if self._job is None or ns >= self._job:
                self._job = ns
        elif ns < self._since_ns:
            return
        elif kind == TERMINAL:
            if self._terminal is None or ns >= self._terminal[0]:
                self._terminal = (ns, task, detail, line()[:4 * EVIDENCE_LINE])
        else:
            self._errors += 1
            if self._newest is None or ns >= self._newest:
                newest = self._newest
                if (newest is None or ns - newest > self._bounds[slow(detail)]
                        or (self._job is not None and self._job > newest)):
                    self._streak, self._polls = ns, 0
                self._polls += 1
                self._newest, self._detail_line, self._detail_text = ns, None, detail
            self._keep(ns, line())


def _newest(kept):
    """The newest RECENT_ERRORS of (ns, line) in log order, oldest first
    (a stable sort: of one time, the later line is the newer)."""
    return sorted(kept, key=lambda entry: entry[0])[-RECENT_ERRORS:]


def _judge(line, tty, plain=False):
    """One line with Docker's prefix -> (kind, task_id, detail, ns or None)."""
    stamp, _, message = line.partition(b" ")
    kind, task, detail = classify(message, tty, plain)
    return kind, task, detail, (parse_ns(stamp) if kind != OTHER else None)


def evidence_text(line):
    """A kept line as text: decoded, then as shown()."""
    return shown(line.decode("utf-8", "replace"))


def shown(text):
    """Text of the log as a report shows it, on one line: ANSI codes and
    other control characters (C0 but tabs, DEL, C1) removed, at most
    EVIDENCE_LINE characters."""
    text = _ANSI.sub("", text)
    text = "".join(ch for ch in text if " " <= ch < "\x7f" or ch > "\x9f" or ch == "\t").rstrip()
    return text[:EVIDENCE_LINE]


def scan(data, since, fast=True, source="stderr", model=None):
    """Evidence of a whole log held in memory (tests, small inputs)."""
    scanner = LogScan(since, fast=fast, source=source, model=model)
    scanner.feed(data)
    return scanner.close()
