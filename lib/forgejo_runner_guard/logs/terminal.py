"""Terminal states: what a runner writes when a restart can never help.
Pure: text in, a cause out.

runnerlog.classify() calls these for a line it has parsed; LogScan keeps
the newest such line as Evidence.terminal; decide.py reports it, never
restarts.  The causes, with the lines each runner writes
(tests/fixtures/logrus/terminal/ holds the real bytes):

  UNREGISTERED    the forge no longer knows the runner: re-register it.
                  Gitea's runner v2.1+ `server rejected the runner as
                  unregistered, stopping poller` (error=; then it exits:
                  `Error: runner is no longer registered with the server;
                  please register it again`), and both runners' next start
                  `fail to invoke Declare` with a refusal (Forgejo >= 11:
                  `unauthenticated: unregistered runner`; a stock Gitea:
                  `unknown: rpc error: code = Unauthenticated desc =
                  unregistered runner`), then cobra's `Error: <that>`.
  SECOND_PROCESS  another process holds the runner file (Gitea's runner
                  v3.0+): `another gitea-runner process is already using
                  ".runner"; ...`, then `Error: runner file is already
                  locked by another process`.
  BAD_URL         the forge's address is no URL the runner can use:
                  `Cannot ping the Gitea instance server` / `... Forgejo
                  instance server` (register) or `fail to invoke Declare`
                  with connect-go's `missing scheme` error, or the Forgejo
                  daemon's `Error: invalid configuration: malformed `url`
                  "...": parse "...": invalid URI for request`.

A logrus line counts at error level wherever the runner's own lines are
read; cobra's plain `Error: ...` line only on the runner's own stderr
(LogScan source "stderr"), where no job can write.
"""

import re

UNREGISTERED = "unregistered"
SECOND_PROCESS = "second-process"
BAD_URL = "bad-url"
CAUSES = (UNREGISTERED, SECOND_PROCESS, BAD_URL)

# a line that may be one (bytes, for LogScan's needle search)
NEEDLE = rb"rejected the runner|fail to invoke Declare|another gitea-runner process|Cannot ping the|Error: "
# every line that can be one holds one of these: error level (logfmt, the
# TTY layout), cobra's line
MARKS = (b"level=error", b"ERRO", b"Error: ")

_URL = re.compile(r"missing scheme: use http|invalid URI for request|unsupported protocol scheme"
                  r"|no Host in request URL|malformed `url`|invalid scheme in `url`|\bparse \"")
# the server's refusal as connect-go reports it: its code first, or the grpc
# status a stock Gitea sends inside "unknown" (never "permission denied" of
# a file or a socket)
_REFUSAL = re.compile(r"^(?:unauthenticated|permission_denied):|\bcode = (?:Unauthenticated"
                      r"|PermissionDenied)\b|\bunregistered runner\b")
_PING = ("Cannot ping the Gitea instance server", "Cannot ping the Forgejo instance server")
# the messages logged() judges (the caller reads `error=` only for these)
PREFIXES = ("server rejected the runner as unregistered", "another gitea-runner process is already "
            "using", "fail to invoke Declare") + _PING
_PLAIN = "Error: "
_PLAIN_CAUSES = (
    ("Error: runner is no longer registered with the server", UNREGISTERED),
    ("Error: runner file is already locked by another process", SECOND_PROCESS),
)


def marks(data, start, end):
    """How many MARKS data[start:end] (bytes) holds."""
    return sum(data.count(mark, start, end) for mark in MARKS)


def marked(data, start, end):
    """Does data[start:end] hold any of MARKS?"""
    return any(data.find(mark, start, end) >= 0 for mark in MARKS)


def url_error(detail):
    """True when an error text says the forge's address is no usable URL
    (connect-go's `missing scheme`, net/url's `parse "...": ...` and
    `invalid URI for request`, the Forgejo runner's checks)."""
    return bool(_URL.search(detail or ""))


def refusal(detail):
    """True when an error text is the server refusing the runner."""
    return bool(_REFUSAL.search(detail or ""))


def logged(msg, error):
    """The cause of a runner's own error-level line (its message and its
    `error=` field, "" when none), or None."""
    if msg.startswith("server rejected the runner as unregistered"):
        return UNREGISTERED
    if msg.startswith("another gitea-runner process is already using"):
        return SECOND_PROCESS
    if msg.startswith("fail to invoke Declare"):
        if refusal(error):
            return UNREGISTERED
        return BAD_URL if url_error(error) else None
    if msg.startswith(_PING) and url_error(error):
        return BAD_URL
    return None


def plain(text):
    """The cause of cobra's `Error: <the daemon's error>` line, or None."""
    if not text.startswith(_PLAIN):
        return None
    for prefix, cause in _PLAIN_CAUSES:
        if text.startswith(prefix):
            return cause
    error = text[len(_PLAIN):]
    if refusal(error):
        return UNREGISTERED
    return BAD_URL if url_error(error) else None
