"""Which log source can tell the runner's own lines from a job's.  Pure.

A source is what runnerlog.LogScan reads:

  "stderr"   the runner's stderr alone (Docker without a TTY): every line
             is the logger's own, whatever a job prints;
  "tty"      a terminal's stream (Docker's `tty: true`): stdout and stderr
             merged; only logrus's coloured lines are the runner's;
  "journal"  a journal that merges a service's stdout and stderr.

In the two merged sources, job output at debug or trace (or from a runner
older than 5.0, at any level) cannot be told apart from the runner's
lines: SourceWatch notes the runner's level and any job-logger lines it
sees, and ambiguity() says so, once per check.
"""

import re

SOURCES = ("stderr", "tty", "journal")

_LEVEL_NEEDLES = {
    "journal": ((b"level=trace", "trace"), (b"level=debug", "debug")),
    "tty": ((b"TRAC\x1b[0m[", "trace"), (b"DEBU\x1b[0m[", "debug")),
}
_STAMP = rb"(?:\d{4}-\d\d-\d\dT[\d:.]+Z )?"  # Docker's, when fed with it
_JOB_OUTPUT = {"journal": re.compile(rb"(?:^|\n)" + _STAMP + rb"(?:\*DRYRUN\* )?\[[^\]\n]+\] "),
               "tty": re.compile(rb"(?:^|\n)" + _STAMP + rb"\x1b\[\d+m(?:\||\[)")}


def ambiguity(source, level, job_output):
    """Why a source cannot tell job output from the runner's lines, or ""."""
    if source == "stderr":
        return ""
    where = "a TTY stream" if source == "tty" else "a journal that merges stdout and stderr"
    if level:
        return "%s at log level %s: job output there cannot be told from the runner's lines; " \
               "set log.level to info" % (where, level)
    if job_output:
        return "%s with job output in it (a runner older than 5.0 prints it at every level): " \
               "it cannot be told from the runner's lines" % where
    return ""


class SourceWatch:
    """What a merged source has shown so far: the runner's level ("debug",
    "trace" once seen) and whether job-logger lines were in it."""

    def __init__(self, source):
        self.source = source
        self.level = ""
        self.job_output = False

    def see(self, data, start, end):
        """Note the level and job-logger lines in data[start:end] (whole
        lines; start is 0 or just after a newline)."""
        if self.source == "stderr" or self.level == "trace":
            return
        for needle, level in _LEVEL_NEEDLES[self.source]:
            if data.find(needle, start, end) >= 0:
                if level == "trace" or not self.level:
                    self.level = level
                break
        if not self.job_output and _JOB_OUTPUT[self.source].search(data, max(0, start - 1), end):
            self.job_output = True

    def ambiguity(self):
        return ambiguity(self.source, self.level, self.job_output)
