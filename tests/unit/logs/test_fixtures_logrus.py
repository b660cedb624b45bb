"""runnerlog over the bytes the runners really write (tests/fixtures/logrus/,
made by `make fixtures` with Debian's logrus; see generate.py there): every
line's ground truth, in every configuration (Forgejo, Gitea, a legacy
runner; info, debug, trace, warn; text and TTY), through classify() and
through LogScan as the watchdog reads each source."""

import os

import pytest

from forgejo_runner_guard.logs import runnerlog
from forgejo_runner_guard.logs.failures import failure_class
from forgejo_runner_guard.logs.runnerlog import FETCH_ERROR, JOB_START, OTHER, TERMINAL, LogScan, classify

from forgejo_runner_guard.logs import stamps
from helpers.logrus import (CONFIGS, HERE, TEXT, TTY, ambiguous, docker_logs, flavour_level,
                            physical_lines, stream_lines, truth)

def test_every_configuration_is_there():
    assert len(TEXT) == len(TTY) == 12
    for config in TEXT:
        for ext in (".stdout", ".stderr"):
            assert os.path.exists(os.path.join(HERE, config + ext))


def test_stdout_carries_job_output_only_where_runners_print_it():
    for config in TEXT:
        flavour, level = flavour_level(config)
        rows = [r for r in truth(config) if r[0] == "stdout"]
        with open(os.path.join(HERE, config + ".stdout"), "rb") as handle:
            lines = physical_lines(handle.read())
        assert len(lines) == len(rows)
        printed = flavour == "legacy" or level in ("debug", "trace")
        assert bool(lines) is printed, config
        if printed:
            # the reason stdout is never read: a job's line there reads as the runner's
            fooled = [line for line in lines if classify(line)[0] != OTHER]
            assert len(fooled) >= 3, config


# What the generator logs (gen/poller.go, gen/runner.go): every detail a
# fetch error or a job start of the fixtures may have, exactly.
DETAILS = {
    "unavailable: read tcp 10.1.0.5:51234->203.0.113.7:443: read: connection reset by peer",
    "unavailable: unexpected EOF",
    "unavailable: dial tcp: lookup forge.azrak.io on 127.0.0.11:53: no such host",
    "unavailable: HTTP status 502 Bad Gateway",
    "unavailable: HTTP status 429 Too Many Requests",
    "unknown: HTTP status 500 Internal Server Error",
    'unknown: http2: server sent GOAWAY and closed the connection; LastStreamID=1, ErrCode=NO_ERROR, debug=""',
    "internal: pick task: CreateTaskForRunner: resource does not exist",
    "unknown: rpc error: code = Internal desc = pick task: database is locked",
    "permission_denied: runner is disabled",
    "unauthenticated: unregistered runner",
    "deadline exceeded; increase fetch_timeout if this error is persistent",
    "deadline exceeded: fetching a task timed out after 30s, raise runner.fetch_timeout if this persists",
}
JOB_DETAIL = "ops/site https://data.forgejo.org https://forge.azrak.io"


@pytest.mark.parametrize("config", CONFIGS)
def test_classify_matches_the_ground_truth(config):
    tty = config.endswith("-tty")
    for (stream, stamp, level, kind, cls, note), line in stream_lines(config):
        got, task, detail = classify(line, tty)
        if kind == OTHER and got != OTHER and ambiguous(config):
            # a job printing logrus's own colour codes on a terminal: the
            # source is flagged ambiguous (below); nothing else may slip
            assert note == "job-raw" and line.startswith(b"\x1b[31mERRO\x1b[0m["), line
            continue
        assert got == kind, (config, line)
        if kind == FETCH_ERROR:
            assert level in ("error", "warning"), line  # trace never counts
            assert failure_class(detail) == cls, (line, detail)
            assert detail in DETAILS, (line, detail)  # the whole text, no padding, no colour
        if kind == JOB_START:
            assert (task, detail) == (31, JOB_DETAIL), line
        if kind == TERMINAL:
            assert task == cls, (config, line)  # Gitea's poller: unregistered
        if got == OTHER:
            assert (task, detail) == (None, ""), line


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("fast", [True, False])
def test_scan_counts_exactly_the_runners_own_errors(config, fast):
    pairs = stream_lines(config)
    source = "tty" if config.endswith("-tty") else "stderr"
    evidence = runnerlog.scan(docker_logs(pairs), since=None, fast=fast, source=source)
    want = [row for row, _ in pairs if row[3] == FETCH_ERROR]
    imitations = [row for row, line in pairs if row[3] == OTHER and row[5] == "job-raw"
                  and line.startswith(b"\x1b[31mERRO\x1b[0m[")]
    expected = len(want) + (len(imitations) if ambiguous(config) else 0)
    assert evidence.errors == expected
    # at warn the runner does not log a job's start
    assert evidence.claimed_tasks == (frozenset() if flavour_level(config)[1] == "warn" else frozenset({31}))
    assert bool(evidence.ambiguous) is ambiguous(config), evidence.ambiguous
    if source == "stderr":
        assert evidence.level == ""  # never needed: stderr is the runner's alone


@pytest.mark.parametrize("config", TEXT)
def test_journal_merging_both_streams_is_flagged_when_it_cannot_tell(config):
    """A journal (StandardOutput=journal) gets stdout and stderr in the
    order written: without job output in it, the count is exact; with it
    (debug, trace, an old runner), the check says the source is ambiguous."""
    flavour, level = flavour_level(config)
    rows = truth(config)
    streams = {}
    for name in ("stdout", "stderr"):
        with open(os.path.join(HERE, "%s.%s" % (config, name)), "rb") as handle:
            streams[name] = iter(physical_lines(handle.read()))
    scan = LogScan(None, source="journal")
    for stream, stamp, *_ in rows:
        scan.add(stamps.parse_ns(stamp), next(streams[stream]))
    evidence = scan.close()
    own = sum(1 for r in rows if r[0] == "stderr" and r[3] == FETCH_ERROR)
    mixed = flavour == "legacy" or level in ("debug", "trace")
    assert bool(evidence.ambiguous) is mixed, (config, evidence.ambiguous)
    if mixed:
        assert evidence.errors >= own
        assert ("log level %s" % level in evidence.ambiguous) is (level in ("debug", "trace"))
    else:
        assert evidence.errors == own


@pytest.mark.parametrize("config", TEXT)
def test_newest_failure_and_its_class(config):
    pairs = stream_lines(config)
    evidence = runnerlog.scan(docker_logs(pairs), since=None)
    last = [row for row, _ in pairs if row[3] == FETCH_ERROR][-1]
    assert stamps.format_ns(int(round(evidence.newest_error * 1e9))) == last[1]
    assert evidence.newest_class == last[4]


@pytest.mark.parametrize("name, tty", [("escapes-text.stderr", False), ("escapes-tty.tty", True)])
def test_escaped_error_texts_come_back_exactly(name, tty):
    """logrus quotes an error text with %q (Go's strconv.Quote): each
    escape it writes (\\a..\\v, \\xNN, \\uNNNN, \\UNNNNNNNN, \\", \\\\) is
    undone, and the detail is the text the runner had (escapes.expect, the
    same texts as Go's JSON)."""
    import json

    with open(os.path.join(HERE, "escapes.expect"), encoding="utf-8") as handle:
        expected = [json.loads(line) for line in handle]
    with open(os.path.join(HERE, name), "rb") as handle:
        lines = handle.read().split(b"\n")
    assert lines.pop() == b"" and len(lines) == len(expected) == 7
    assert [classify(line, tty) for line in lines] == [(FETCH_ERROR, None, text) for text in expected]
    # and through the scan, as Docker would give them (one every 2 s from 10:00:00)
    data = b"".join(b"%s %s\n" % (stamps.format_ns((1782727200 + 2 * i) * 10 ** 9), line)
                    for i, line in enumerate(lines))
    for fast in (True, False):
        evidence = runnerlog.scan(data, since=None, fast=fast, source="tty" if tty else "stderr")
        assert (evidence.errors, evidence.newest_error_detail) == (7, expected[-1])
