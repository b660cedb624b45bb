"""The last lines of a runner's log, for a runner that is not running
normally (a crash loop, a stopped container or unit): what they say and a
few of them to show.  Pure: bytes in, a Tail out.

The backend asks for the last TAIL_LINES lines (`docker logs --timestamps
--tail`, `journalctl --lines`), of the stream the runner's log is on
(stderr without a TTY; the TTY's one stream; the journal), whatever run
they come from: a crash-looping runner's current run is a second long.
Those of its last run (from `since`: its last start) are judged as LogScan
judges a window (runnerlog.classify: only the runner's own lines), so a
cause (terminal.py) is found the same way and never in an earlier run;
the last SHOWN of them all are kept as text (time in front, ANSI codes
and control characters removed, each cut at runnerlog.EVIDENCE_LINE).
"""

from typing import NamedTuple, Tuple

from . import runnerlog
from .journal import entry_lines
from .stamps import format_ns

TAIL_LINES = 20  # lines asked for
SHOWN = 5  # of them kept to show
MAX_BYTES = 256 * 1024  # of the tail kept (each line at most runnerlog.MAX_LINE)


class Tail(NamedTuple):
    lines: Tuple[str, ...] = ()  # the last SHOWN lines, oldest first
    cause: str = ""  # terminal.CAUSES of the newest terminal line, "" when none
    detail: str = ""  # its error text (or message)


class Buffer:
    """The tail's bytes as they stream in (feed(chunk)), the last MAX_BYTES
    of them kept."""

    def __init__(self):
        self.data = b""

    def feed(self, chunk):
        self.data = (self.data + bytes(chunk))[-MAX_BYTES:]


def of_stream(data, source, since=None):
    """`docker logs --timestamps --tail N` of the runner's stream (Docker's
    time, a space, the line) -> Tail; source as LogScan's ("stderr",
    "tty"); since: epoch seconds of the last run's start (None: all)."""
    lines = [line for line in data.split(b"\n") if line.strip()][-TAIL_LINES:]
    scan = runnerlog.LogScan(since, source=source)
    scan.feed(b"".join(line + b"\n" for line in lines))
    return _tail(scan.close(), lines)


def of_journal(data, since=None):
    """`journalctl --output=json --lines=N` (the newest entries, oldest
    first) -> Tail; a line that is no entry is left out."""
    entries = []
    for line in data.splitlines():
        try:
            ns, messages = entry_lines(line)
        except ValueError:
            continue
        entries += [(ns, message) for message in messages]
    return of_entries(entries, since)


def of_entries(entries, since=None):
    """[(ns or None, message bytes)] of the journal's last entries, oldest
    first -> Tail."""
    entries = list(entries)[-TAIL_LINES:]
    scan = runnerlog.LogScan(since, source="journal")
    for ns, message in entries:
        scan.add(ns, message)
    return _tail(scan.close(), [(format_ns(ns) + b" " if ns is not None else b"") + message
                                for ns, message in entries])


def _tail(evidence, lines):
    shown = tuple(filter(None, (runnerlog.evidence_text(line) for line in lines[-SHOWN:])))
    return Tail(shown, evidence.terminal, evidence.terminal_detail)
