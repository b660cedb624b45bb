"""Exit codes, expected errors and log lines shared by both commands.

Every expected failure is a GuardError carrying its exit status; the
command layer turns it into one line on stderr, never a traceback.
Log lines go to stderr; when stderr is the journal (systemd sets
JOURNAL_STREAM to the device:inode of the stream it connected) each line
is prefixed with its syslog priority (<3> error, <4> warning, <6> info,
<7> debug) so the journal records the level.
"""

import os
import sys
import time

EXIT_OK = 0
EXIT_FAILURE = 1  # runtime failure: cannot read/lock/write, Docker unreachable, ...
EXIT_USAGE = 2  # bad command line or configuration; nothing was changed
EXIT_DRIFT = 3  # --check / --diff found something to change
EXIT_PROBE = 4  # --probe: a pinned address failed its probe

ERROR, WARNING, INFO, DEBUG = 3, 4, 6, 7


def combine(*statuses):
    """One exit status from several, for both commands: 2 (usage) beats 1
    (a failure) beats 3 (drift) beats 4 (a failed probe) beats 0."""
    rank = {EXIT_OK: 0, EXIT_PROBE: 1, EXIT_DRIFT: 2, EXIT_FAILURE: 3}
    return max(statuses, key=lambda s: (rank.get(s, 4), s))


class GuardError(Exception):
    """An expected failure: reported as one line, exits with exit_code."""

    exit_code = EXIT_FAILURE

    def __init__(self, message, exit_code=None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(GuardError):
    """Bad command line or configuration (exit 2)."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A configuration file is wrong; the message names file, line and key."""


def why(exc):
    """The short reason of an OSError ("No such file or directory"), or the
    exception's text for anything else: what follows a colon in a message."""
    return getattr(exc, "strerror", None) or str(exc)


def stream_is_journal(stream, environ=None):
    """True when `stream` is the journal stream systemd connected us to."""
    environ = os.environ if environ is None else environ
    value = environ.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        dev, ino = (int(part) for part in value.split(":", 1))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


class Reporter:
    """Writes log lines to stderr.

    verbosity: -1 quiet (warnings and errors only), 0 normal (plus one
    summary line per run or per runner), 1 verbose (plus debug detail).
    """

    def __init__(self, prog, verbosity=0, stream=None, journal=None):
        self.prog = prog
        self.verbosity = verbosity
        self.stream = sys.stderr if stream is None else stream
        self.journal = stream_is_journal(self.stream) if journal is None else journal

    def log(self, priority, message):
        threshold = {-1: WARNING, 0: INFO}.get(self.verbosity, DEBUG)
        if priority > threshold:
            return
        for line in str(message).splitlines() or [""]:
            if self.journal:
                text = "<%d>%s\n" % (priority, line)
            else:
                label = {ERROR: "error: ", WARNING: "warning: "}.get(priority, "")
                text = "%s: %s%s\n" % (self.prog, label, line)
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed stderr must not turn a good run into a crash

    def error(self, message):
        self.log(ERROR, message)

    def warning(self, message):
        self.log(WARNING, message)

    def info(self, message):
        self.log(INFO, message)

    def debug(self, message):
        self.log(DEBUG, message)


_printed = []  # the JSON documents this process has printed: --json prints one


def json_printed():
    """Has this process printed its JSON document (print_json)?"""
    return bool(_printed)


def print_json(document, stream=None):
    """One JSON document on stdout (or `stream`), keys sorted for diffs."""
    import json  # only here: a run without --json never pays for it

    _printed.append(True)  # printed or failed: never a second one
    write_stdout(json.dumps(document, indent=2, sort_keys=True) + "\n", "the JSON document",
                 stream)


def write_stdout(data, what=None, stream=None):
    """Write `data` (str, or bytes: through the binary buffer) to stdout (or
    `stream`) and flush it.  A stdout that cannot take it (a full device,
    a closed descriptor, an I/O error) is GuardError (exit 1): "cannot
    write [WHAT ]to stdout: REASON", one line; what could not be written is
    dropped, so the interpreter's last flush cannot fail again.  A
    closed pipe (the reader is gone, `| head`) is BrokenPipeError, which
    cli.run() ends quietly with exit 1."""
    stream = sys.stdout if stream is None else stream
    try:
        if stream is None:
            raise ValueError("it is closed")
        binary = isinstance(data, (bytes, memoryview))  # a view: a piece of a file, not copied
        if binary and getattr(stream, "buffer", None) is not None:
            stream.flush()  # what the text layer holds goes first
            stream.buffer.write(data)
            stream.buffer.flush()
        else:
            stream.write(bytes(data).decode("utf-8", "replace") if binary else data)
            stream.flush()
    except (OSError, ValueError) as exc:
        _discard(stream)
        if isinstance(exc, BrokenPipeError):
            raise
        reason = "it is closed" if isinstance(exc, ValueError) else why(exc)
        raise GuardError("cannot write %sto stdout: %s" % (what + " " if what else "", reason)) \
            from None


def _discard(stream):
    """Point `stream`'s descriptor at /dev/null: what is still buffered in
    it goes nowhere instead of failing at exit (exit status 120)."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.dup2(fd, stream.fileno())
        finally:
            os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass  # closed, or not a file: nothing is buffered for a descriptor


# ------------------------------------------------------------ times as text


def human(seconds):
    """A short plain duration: 45s, 4m, 9m31s, 2h, 1h05m."""
    seconds = int(round(max(0.0, seconds)))
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        minutes, secs = divmod(seconds, 60)
        return "%dm" % minutes if not secs else "%dm%02ds" % (minutes, secs)
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return "%dh" % hours if not minutes else "%dh%02dm" % (hours, minutes)


def stamp(seconds):
    """Epoch seconds -> 2026-06-29T10:00:02Z, or "never"."""
    if seconds is None:
        return "never"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
