"""sources: which log source can tell the runner's own lines from a job's,
and what SourceWatch notes in a merged one (the runner's level, job-logger
lines), over the runners' real bytes (tests/fixtures/logrus/).

Pure unit tests (no Docker): they run on Python 3.9 too."""

import os

import pytest

from helpers.logrus import HERE, physical_lines
from forgejo_runner_guard.logs import sources
from forgejo_runner_guard.logs.sources import SourceWatch

TTY_LEVEL = "a TTY stream at log level %s: job output there cannot be told from the runner's lines; " \
            "set log.level to info"
JOURNAL_LEVEL = "a journal that merges stdout and stderr at log level %s: job output there cannot be " \
                "told from the runner's lines; set log.level to info"
TTY_JOBS = "a TTY stream with job output in it (a runner older than 5.0 prints it at every level): " \
           "it cannot be told from the runner's lines"
JOURNAL_JOBS = "a journal that merges stdout and stderr with job output in it (a runner older than 5.0 " \
               "prints it at every level): it cannot be told from the runner's lines"


@pytest.mark.parametrize("source, level, job_output, why", [
    ("stderr", "trace", True, ""),  # every line is the logger's own
    ("tty", "debug", True, TTY_LEVEL % "debug"),
    ("tty", "trace", False, TTY_LEVEL % "trace"),
    ("journal", "debug", False, JOURNAL_LEVEL % "debug"),
    ("tty", "", True, TTY_JOBS),
    ("journal", "", True, JOURNAL_JOBS),
    ("tty", "", False, ""),
    ("journal", "", False, ""),
])
def test_ambiguity_says_exactly_why(source, level, job_output, why):
    assert sources.ambiguity(source, level, job_output) == why
    watch = SourceWatch(source)
    watch.level, watch.job_output = level, job_output
    assert watch.ambiguity() == why


def read(name):
    with open(os.path.join(HERE, name), "rb") as handle:
        return handle.read()


@pytest.mark.parametrize("config, level, job_output", [
    ("forgejo-info-tty", "", False),
    ("forgejo-warn-tty", "", False),
    ("forgejo-debug-tty", "debug", True),
    ("forgejo-trace-tty", "trace", None),  # once at trace, job output no longer matters
    ("gitea-info-tty", "", False),
    ("gitea-debug-tty", "debug", True),
    ("gitea-trace-tty", "trace", None),
    ("legacy-info-tty", "", True),  # an old runner prints job output at every level
    ("legacy-warn-tty", "", True),
])
def test_a_tty_stream_of_a_real_runner(config, level, job_output):
    """What the watch notes in a runner's TTY stream (real bytes), seen
    whole, line by line, or from any line on (start just after a newline)."""
    data = read(config + ".tty")
    why = sources.ambiguity("tty", level, job_output)
    assert bool(why) is (level != "" or job_output is not False)
    whole = SourceWatch("tty")
    whole.see(data, 0, len(data))
    by_line = SourceWatch("tty")
    for line in physical_lines(data):
        by_line.see(b"\n" + line, 0, len(line) + 1)
    # the same bytes after a first line that shows nothing: start is past it
    head = b"\x1b[36mINFO\x1b[0m[2026-06-29T10:00:00Z] hello\r\n"
    late = SourceWatch("tty")
    late.see(head + data, len(head), len(head) + len(data))
    for watch in (whole, by_line, late):
        assert (watch.level, watch.ambiguity()) == (level, why)
        if job_output is not None:
            assert watch.job_output is job_output


def test_the_stderr_source_notes_nothing():
    watch = SourceWatch("stderr")
    data = read("legacy-trace-tty.tty") + read("forgejo-trace-text.stderr")
    watch.see(data, 0, len(data))
    assert (watch.level, watch.job_output, watch.ambiguity()) == ("", False, "")


def test_trace_wins_and_stays():
    debug, trace = b'time="t" level=debug msg="a"\n', b'time="t" level=trace msg="b"\n'
    watch = SourceWatch("journal")
    watch.see(debug, 0, len(debug))
    assert watch.level == "debug"
    watch.see(debug, 0, len(debug))
    assert watch.level == "debug"
    watch.see(trace, 0, len(trace))
    assert watch.level == "trace"
    watch.see(debug, 0, len(debug))
    assert watch.level == "trace"  # never back
    both = SourceWatch("journal")
    both.see(debug + trace, 0, len(debug + trace))
    assert both.level == "trace"
    reverse = SourceWatch("journal")
    reverse.see(trace + debug, 0, len(trace + debug))
    assert reverse.level == "trace"


def test_only_the_lines_between_start_and_end_are_seen():
    job = b"[ci/build]   | hello\n"
    debug = b'time="t" level=debug msg="a"\n'
    data = job + debug + b"x\n"
    watch = SourceWatch("journal")
    watch.see(data, len(job) + len(debug), len(data))  # neither is in data[start:end]
    assert (watch.level, watch.job_output) == ("", False)
    watch.see(data, 0, len(job) - 1)  # the job line, without its newline
    assert (watch.level, watch.job_output) == ("", True)
    watch.see(data, len(job), len(job) + len(debug))
    assert watch.level == "debug"
    first = SourceWatch("journal")
    first.see(job, 0, len(job))  # a job line at the very start of the data
    assert first.job_output
    before = SourceWatch("journal")
    before.see(debug + job, 0, len(debug) - 1)  # a job line after `end` is not seen
    assert (before.level, before.job_output) == ("debug", False)
    at_zero = SourceWatch("journal")
    at_zero.see(b"level=debug msg=x\n", 0, 18)  # a needle at the very start
    assert at_zero.level == "debug"


@pytest.mark.parametrize("line, job", [
    (b"[ci/build]   | hello", True),
    (b"*DRYRUN* [ci/build]   | hello", True),
    (b"2026-06-29T10:00:02.123456789Z [ci/build] | hello", True),
    (b"2026-06-29T10:00:02.123456789Z *DRYRUN* [ci/build] x", True),
    (b'time="t" level=info msg="[ci/build] | hello"', False),
    (b"[ci/build]hello", False),
    (b"[] x", False),
    (b"  [ci/build] x", False),
])
def test_job_logger_lines_in_the_journal(line, job):
    watch = SourceWatch("journal")
    data = b"first line\n" + line + b"\n"
    watch.see(data, 0, len(data))
    assert watch.job_output is job


@pytest.mark.parametrize("line, job", [
    (b"\x1b[34m[ci/build] \x1b[0mhello\r", True),
    (b"\x1b[34m|\x1b[0m hello\r", True),
    (b"2026-06-29T10:01:01.020000000Z \x1b[34m|\x1b[0m hello\r", True),
    (b"\x1b[36mINFO\x1b[0m[2026-06-29T10:00:00Z] [ci/build] | x\r", False),
    (b"\x1b[34mx\x1b[0m\r", False),
])
def test_job_logger_lines_in_a_tty(line, job):
    watch = SourceWatch("tty")
    data = b"first line\r\n" + line + b"\n"
    watch.see(data, 0, len(data))
    assert watch.job_output is job


def test_every_source_has_its_needles():
    assert sources.SOURCES == ("stderr", "tty", "journal")
    for source in sources.SOURCES[1:]:
        watch = SourceWatch(source)
        assert (watch.source, watch.level, watch.job_output) == (source, "", False)
