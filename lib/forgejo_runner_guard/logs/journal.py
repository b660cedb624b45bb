"""The journal as log lines: `journalctl --output=json` entries into a
runnerlog.LogScan.  Pure: bytes in, Evidence out; no I/O.  Used by the
systemd backend and by container runners whose log is the journal
(runners/backends/journal.py).

In journal JSON a MESSAGE that is not printable UTF-8 (invalid bytes, ANSI
colour codes) is an array of byte values, and a field present twice is an
array of values: both are handled.  Times come from the journal
(__REALTIME_TIMESTAMP, microseconds, taken by journald when the line
arrived), never from the text.
"""

import json
import re

from . import runnerlog

MAX_ENTRY = 1024 * 1024  # a longer JSON line (one journal entry) is skipped


# An entry may matter when it holds one of runnerlog's needles, shows the
# runner's level (debug, trace) or starts its MESSAGE with a job logger's
# "[wf/job] " (sources.SourceWatch), or gives MESSAGE as an array (bytes
# that are not printable UTF-8, e.g. colour codes; or a repeated field).
_MAY_MATTER = re.compile(
    runnerlog.NEEDLES.pattern
    + rb'|level=(?:debug|trace)|"MESSAGE"\s*:\s*(?:\[|"(?:\*DRYRUN\* )?\[)'
)


def _message_bytes(value):
    """A MESSAGE value of journal JSON -> list of bytes (one per value)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value.encode("utf-8", "surrogateescape")]
    if isinstance(value, list):
        if all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in value):
            return [bytes(value)]  # one value that is not printable UTF-8
        out = []
        for item in value:  # the field appears more than once
            if isinstance(item, (str, list)):
                out.extend(_message_bytes(item))
            else:
                raise ValueError("MESSAGE item %r" % (item,))
        return out
    raise ValueError("MESSAGE %r" % (value,))


def entry_lines(line):
    """One line of `journalctl -o json` -> (ns or None, [message bytes]).
    ValueError when it is not a journal entry."""
    doc = json.loads(line.decode("utf-8", "surrogateescape") if isinstance(line, bytes) else line)
    if not isinstance(doc, dict):
        raise ValueError("not an object")
    stamp = doc.get("__REALTIME_TIMESTAMP")
    ns = int(stamp) * 1000 if isinstance(stamp, str) and stamp.isdigit() else None
    return ns, _message_bytes(doc.get("MESSAGE"))


class JournalScan:
    """Stream `journalctl -o json` output into a runnerlog.LogScan.

        scan = runnerlog.LogScan(since)
        journal = JournalScan(scan)
        for chunk in pipe: journal.feed(chunk)   # split anywhere
        evidence = journal.close()

    Each entry becomes scan.add(ns, message): its time is the journal's
    __REALTIME_TIMESTAMP, never the text.  Only entries that may matter are
    parsed as JSON (_MAY_MATTER); the rest are counted.  Lines that are not journal entries are counted
    in `bad`, and an entry longer than MAX_ENTRY is skipped (also `bad`).

    journald stamps every line of one read from a stream with the same
    microsecond: 150 errors and the job start after them can share one
    time.  Their order in the journal is what tells which came first, so
    an entry stamped no later than the one before it in the same
    microsecond is taken as 1 us after it (times stay within a few
    microseconds of the journal's; a job start logged after the errors is
    after them; the Evidence's float seconds resolve about 0.5 us).
    """

    def __init__(self, scan):
        self.scan = scan
        self.bad = 0
        self.entries = 0
        self._last = None  # ns of the previous timed entry (after _order)
        self._ties = 0  # how many entries before it were moved on by _order
        self._carry = b""
        self._skipping = False

    def feed(self, chunk):
        if not chunk:
            return
        if not isinstance(chunk, bytes):
            chunk = bytes(chunk)
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                self._keep(chunk[start:])
                return
            if not self._skipping:
                if self._carry:
                    self._keep(chunk[start:end])
                    line, self._carry = self._carry, b""
                    if not self._skipping:
                        self._entry(line)
                elif end - start > MAX_ENTRY:
                    self.bad += 1
                else:
                    self._entry(chunk[start:end])
            self._skipping = False  # a line ended
            start = end + 1

    def _keep(self, part):
        if self._skipping:
            return
        if len(self._carry) + len(part) > MAX_ENTRY:
            self._carry = b""
            self._skipping = True  # until the end of this line
            self.bad += 1
            return
        self._carry += part

    def _entry(self, line):
        if not line.strip():
            return
        self.entries += 1
        if not _MAY_MATTER.search(line):
            if not line.lstrip().startswith(b"{"):
                self.bad += 1
                return
            self.scan.add(None, b"")  # an entry that cannot matter: counted only
            return
        try:
            ns, messages = entry_lines(line)
        except ValueError:
            self.bad += 1
            return
        ns = self._order(ns)
        if not messages:
            self.scan.add(ns, b"")
        for message in messages:
            self.scan.add(ns, message)

    def _order(self, ns):
        """ns, or 1 us after the previous entry when journald gave it the
        same microsecond (or it is one such tie later)."""
        last = self._last
        if ns is not None and last is not None and last - 1000 * self._ties <= ns <= last:
            self._ties += 1
            ns = last + 1000
        else:
            self._ties = 0
        if ns is not None:
            self._last = ns
        return ns

    def close(self):
        if self._carry and not self._skipping:
            line, self._carry = self._carry, b""
            self._entry(line)
        return self.scan.close()


def scan_journal(data, since):
    """Evidence of a whole `journalctl -o json` text held in memory (tests)."""
    journal = JournalScan(runnerlog.LogScan(since, source="journal"))
    journal.feed(data)
    return journal.close()
