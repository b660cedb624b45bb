"""runnerlog: what counts as a fetch error, and the streaming scan.

Pure unit tests (no Docker): they run on Python 3.9 too."""

import calendar
import os
import tracemalloc

import pytest
from hypothesis import given, settings, strategies as st

from helpers.tools import FIXTURES
from forgejo_runner_guard.logs import logfmt, runnerlog, stamps
from forgejo_runner_guard.logs.runnerlog import (
    FETCH_ERROR,
    JOB_START,
    OTHER,
    TERMINAL,
    Evidence,
    LogScan,
    classify,
    scan,
)
from forgejo_runner_guard.logs.failures import refused
from forgejo_runner_guard.logs.stamps import parse_time

T0 = calendar.timegm((2026, 6, 29, 10, 0, 0, 0, 0, 0))  # 2026-06-29T10:00:00Z
RESET = "unavailable: read tcp 10.1.0.5:51234->203.0.113.7:443: read: connection reset by peer"
DEADLINE = "deadline exceeded; increase fetch_timeout if this error is persistent"
UNREG = "unknown: rpc error: code = Unauthenticated desc = unregistered runner"
ERRO = "\x1b[31mERRO\x1b[0m"
INFO = "\x1b[36mINFO\x1b[0m"
TS = "2026-06-29T10:00:02Z"


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as handle:
        return handle.read()


def stamp(sec, ns=0):
    """Docker's prefix for T0 + sec seconds + ns nanoseconds."""
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(T0 + sec)) + ".%09dZ" % ns


def error_line(sec, ns=0, text="unavailable: unexpected EOF"):
    return '%s time="%s" level=error msg="failed to fetch task" error="%s"\n' % (stamp(sec, ns), TS, text)


def job_line(sec, task, ns=0):
    return '%s time="%s" level=info msg="task %d repo is o/r https://data.forgejo.org https://f"\n' % (
        stamp(sec, ns), TS, task)


# ------------------------------------------------------------ classify

FETCH_LINES = [
    # (line, detail) -- every format of the issue
    ('time="%s" level=error msg="failed to fetch task" error="%s"' % (TS, RESET), RESET),
    ('time="%s" level=error msg="failed to fetch task" error="unavailable: unexpected EOF"' % TS,
     "unavailable: unexpected EOF"),
    ('time="%s" level=error msg="failed to fetch task" error="unavailable: dial tcp 203.0.113.7:443: '
     'connect: connection refused"' % TS, "unavailable: dial tcp 203.0.113.7:443: connect: connection refused"),
    ('time="%s" level=error msg="failed to fetch task" error="unavailable: 502 Bad Gateway"' % TS,
     "unavailable: 502 Bad Gateway"),
    ('time="%s" level=error msg="failed to fetch task" error="%s"' % (TS, UNREG), UNREG),
    # level debug: func/file follow msg
    ('time="%s" level=error msg="failed to fetch task" func="[fetchTask]" file="[poller.go:95]" error="%s"'
     % (TS, RESET), RESET),
    # newer runners: no error field
    ('time="%s" level=error msg="failed to fetch task: %s"' % (TS, DEADLINE), DEADLINE),
    # unquoted time, no time at all, bare error value
    ("time=%s level=error msg=\"failed to fetch task\" error=EOF" % TS, "EOF"),
    ('level=error msg="failed to fetch task" error="x"', "x"),
    # Go %q escapes in the error field are undone
    (r'level=error msg="failed to fetch task" error="bad \"gateway\" \\ tab\there \u00e9"',
     'bad "gateway" \\ tab\there \u00e9'),
    # TTY format, with and without colours, truncated and full level name
    ("ERRO[%s] failed to fetch task                          error=\"%s\"" % (TS, RESET), RESET),
    ('%s[%s] failed to fetch task                          \x1b[31merror\x1b[0m="%s"' % (ERRO, TS, RESET), RESET),
    ("%s[%s] failed to fetch task: %s" % (ERRO, TS, DEADLINE), DEADLINE),
    ("ERROR[%s] failed to fetch task   error=EOF" % TS, "EOF"),
    ("ERRO[0002] failed to fetch task   error=\"unavailable: EOF\"", "unavailable: EOF"),
    ("ERRO[%s] failed to fetch task" % TS, ""),
]


@pytest.mark.parametrize("text,detail", FETCH_LINES)
@pytest.mark.parametrize("ending", ["", "\n", "\r\n", "\r"])
def test_fetch_errors_in_every_format(text, detail, ending):
    assert classify((text + ending).encode()) == (FETCH_ERROR, None, detail)


NOT_FETCH_ERRORS = [
    # relayed job output: whatever it says, it is info/debug level
    'time="%s" level=info msg="[ci/build]   | failed to fetch task"' % TS,
    'time="%s" level=info msg="[ci/build]   | time=\\"%s\\" level=error msg=\\"failed to fetch task\\""' % (TS, TS),
    'time="%s" level=debug msg="[ci/build]   | ERRO[0004] failed to fetch task"' % TS,
    "INFO[%s] [ci/build] | ERRO[%s] failed to fetch task" % (TS, TS),
    "%s[%s] [ci/build] | %s[%s] failed to fetch task error=x" % (INFO, TS, ERRO, TS),
    'INFO[%s] [ci/build] | time="%s" level=error msg="failed to fetch task"' % (TS, TS),
    "DEBU[%s] failed to fetch task" % TS,
    # other levels
    'time="%s" level=warning msg="failed to fetch task" error="x"' % TS,
    'time="%s" level=info msg="failed to fetch task" error="x"' % TS,
    "WARN[%s] failed to fetch task error=x" % TS,
    "INFO[%s] failed to fetch task" % TS,
    # error level, but the message does not start with the phrase
    'time="%s" level=error msg="job 3: failed to fetch task log" error="x"' % TS,
    'time="%s" level=error msg=" failed to fetch task"' % TS,
    "ERRO[%s] cannot ping the docker daemon: failed to fetch task" % TS,
    # fields only in the message, or not the runner's format at all
    'time="%s" msg="failed to fetch task level=error"' % TS,
    'time="%s" level=error error="failed to fetch task"' % TS,
    "failed to fetch task",
    "level=error failed to fetch task",
    '+ echo level=error msg="failed to fetch task"',
    "  ERRO[%s] failed to fetch task" % TS,
    "",
    "\r\n",
]


@pytest.mark.parametrize("text", NOT_FETCH_ERRORS)
def test_injected_and_other_lines_never_count(text):
    assert classify(text.encode())[0] != FETCH_ERROR


JOB_LINES = [
    ('time="%s" level=info msg="task 123 repo is owner/repo https://data.forgejo.org https://forge.azrak.io"' % TS,
     123),
    ("INFO[%s] task 77 repo is owner/repo https://data.forgejo.org https://forge.azrak.io   " % TS, 77),
    ("%s[%s] task 9 repo is a/b https://x https://y\r" % (INFO, TS), 9),
]


@pytest.mark.parametrize("text,task", JOB_LINES)
def test_job_start(text, task):
    kind, task_id, detail = classify(text.encode())
    assert (kind, task_id) == (JOB_START, task)
    assert detail.startswith(("owner/repo https://", "a/b https://"))


@pytest.mark.parametrize(
    "text",
    [
        'time="%s" level=info msg="[ci/build]   | task 5 repo is o/r https://a https://b"' % TS,
        'time="%s" level=debug msg="task 5 repo is o/r https://a https://b"' % TS,
        'time="%s" level=error msg="task 5 repo is o/r https://a https://b"' % TS,
        "INFO[%s] [ci/build] | task 5 repo is o/r https://a" % TS,
        'time="%s" level=info msg="task x repo is o/r"' % TS,
        'time="%s" level=info msg="task 5 repo is "' % TS,
    ],
)
def test_not_a_job_start(text):
    assert classify(text.encode())[0] == OTHER


def test_classify_survives_garbage():
    for raw in (b"\xff\xfe level=error", b"\x1b[", b'level=error msg="failed to fetch task\\', b"=" * 100,
                b'level=error msg="failed to fetch task', b"ERRO[" + b"x" * 10000):
        kind, _, _ = classify(raw)
        assert kind in (FETCH_ERROR, OTHER)
    # a line cut short inside the msg quotes (Docker splits lines at 16 KiB) still counts
    assert classify(b'level=error msg="failed to fetch task" error="unavailable: une')[0] == FETCH_ERROR


# ------------------------------------------------------------ refused


@pytest.mark.parametrize(
    "detail,expected",
    [
        (UNREG, True),
        ("unauthenticated: runner token invalid", True),
        ("UNAUTHENTICATED", True),
        ("permission_denied: runner disabled", True),
        ("PERMISSION_DENIED", True),
        ("rpc error: code = PermissionDenied desc = no", True),
        ("Permission denied", True),
        ("Unregistered Runner", True),
        (RESET, False),
        ("unavailable: unexpected EOF", False),
        (DEADLINE, False),
        ("authenticated fine", False),
        ("", False),
        (None, False),
    ],
)
def test_refused(detail, expected):
    assert refused(detail) is expected


# ------------------------------------------------------------ time


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2026-06-29T10:00:02.123456789Z", T0 + 2.123456789),
        ("2026-06-29T10:00:02.5Z", T0 + 2.5),
        ("2026-06-29T10:00:02Z", T0 + 2.0),
        ("2026-06-29T12:00:02.25+02:00", T0 + 2.25),
        ("2026-06-29T09:30:02-00:30", T0 + 2.0),
        (b"2026-06-29T10:00:02.000000001Z", T0 + 2.000000001),
        ("1970-01-01T00:00:00Z", 0.0),
    ],
)
def test_parse_time(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", "2026-06-29 10:00", "2026-06-29T10:00:02"])
def test_parse_time_rejects(text):
    assert parse_time(text) is None


def test_parse_time_agrees_with_fast_path():
    for ns in (0, 1, 999999999, 123456789, 500000000):
        text = stamp(2, ns)
        assert parse_time(text) == T0 + 2 + ns / 1e9
        assert parse_time(text) == parse_time(text.encode())


# ------------------------------------------------------------ the scan


def test_scan_logfmt_fixture():
    evidence = scan(fixture("docker-logs-logfmt.txt"), since=T0)
    assert evidence.errors == 45
    assert evidence.lines == 53
    assert evidence.claimed_tasks == frozenset({4711})
    assert evidence.last_job_start == T0 + 3
    assert evidence.newest_error == runnerlog.to_seconds((T0 + 60 + 44 * 2) * 10 ** 9 + 123456789)
    assert evidence.newest_error_detail == RESET
    assert evidence.untimed == 0
    assert evidence.since == T0


def test_scan_tty_fixture():
    evidence = scan(fixture("docker-logs-tty.txt"), since=T0)
    assert evidence.errors == 45
    assert evidence.lines == 49
    assert evidence.claimed_tasks == frozenset({815})
    assert evidence.newest_error == T0 + 60 + 44 * 2
    assert evidence.newest_error_detail == RESET


@pytest.mark.parametrize("name", ["docker-logs-logfmt.txt", "docker-logs-tty.txt"])
def test_scan_counts_only_since(name):
    data = fixture(name)
    # the burst runs from T0+60 every 2 s: since T0+100 leaves 45 - 20 errors
    late = scan(data, since=T0 + 100)
    assert late.errors == 25
    # job starts before `since` are still claims
    assert late.claimed_tasks and late.last_job_start == T0 + 3
    nothing = scan(data, since=T0 + 3600)
    assert (nothing.errors, nothing.newest_error, nothing.newest_error_detail) == (0, None, "")
    assert scan(data, since=None).errors == 45


def test_window_edge_is_inclusive():
    """A line counts when its time (as a float, which resolves about 0.25 us
    today) is >= since; since taken from a stamp counts that stamp's line."""
    data = (error_line(10, 500) + error_line(20, 0)).encode()
    for fast in (True, False):
        assert scan(data, since=parse_time(stamp(10, 500)), fast=fast).errors == 2
        assert scan(data, since=parse_time(stamp(10, 1500)), fast=fast).errors == 1
        assert scan(data, since=parse_time(stamp(20, 0)), fast=fast).errors == 1
        assert scan(data, since=T0 + 20.000001, fast=fast).errors == 0
        assert scan(data, since=T0 + 10 - 1e-6, fast=fast).errors == 2


def test_window_edge_inclusive_on_the_fast_path(mocker):
    # 40 lines 20 ms apart (one streak) in one block take the block regex
    # (the first line of the chunk aside); the edge must not move
    data = "".join(error_line(1, i * 20 * 10 ** 6 + 7) for i in range(40)).encode()
    spy = mocker.spy(LogScan, "_fast_errors")
    for edge in (0, 1, 2, 17, 39):
        since = stamps.to_seconds(stamps.parse_ns(stamp(1, edge * 20 * 10 ** 6 + 7).encode()))
        assert scan(data, since, fast=True).errors == 40 - edge
        assert scan(data, since + 1e-6, fast=True).errors == 39 - edge
        assert scan(data, since, fast=True) == scan(data, since, fast=False)
    assert spy.spy_return_list == [True] * 15  # three fast scans an edge, each one block


def test_newest_is_the_latest_time_not_the_last_line():
    data = (error_line(30, text="late") + error_line(10, text="early")).encode()
    evidence = scan(data, since=T0)
    assert (evidence.newest_error, evidence.newest_error_detail) == (T0 + 30, "late")


def test_equal_times_take_the_later_line():
    data = (error_line(30, text="first") + error_line(30, text="second")).encode()
    assert scan(data, T0).newest_error_detail == "second"
    many = "".join(error_line(30, text="n%d" % i) for i in range(40)).encode()
    assert scan(many, T0, fast=True).newest_error_detail == "n39"
    assert scan(many, T0, fast=False).newest_error_detail == "n39"


def test_job_start_newest_and_claims():
    data = (job_line(5, 1) + error_line(6) + job_line(50, 2) + job_line(7, 3)).encode()
    evidence = scan(data, since=T0)
    assert evidence.claimed_tasks == frozenset({1, 2, 3})
    assert evidence.last_job_start == T0 + 50
    assert evidence.errors == 1


def test_lines_without_docker_time_are_untimed():
    data = b'time="x" level=error msg="failed to fetch task" error="y"\n' + error_line(5).encode()
    data += b'garbage level=error msg="failed to fetch task"\n'
    data += b'2026-99-29T10:00:02.000000000Z level=error msg="failed to fetch task"\n'
    data += b"plain line\n"
    evidence = scan(data, since=T0)
    assert (evidence.errors, evidence.untimed, evidence.lines) == (1, 3, 5)


def test_last_line_without_newline_counts_at_close():
    data = (error_line(1) + error_line(2)).rstrip("\n").encode()
    scanner = LogScan(T0)
    scanner.feed(data)
    evidence = scanner.close()
    assert (evidence.errors, evidence.lines) == (2, 2)
    assert scanner.close() is evidence  # idempotent
    with pytest.raises(ValueError):
        scanner.feed(b"more\n")


def test_empty_input():
    evidence = scan(b"", since=T0)
    assert evidence == Evidence(since=T0)
    scanner = LogScan(T0)
    scanner.feed(b"")
    scanner.feed(bytearray(error_line(3).encode()))
    assert scanner.close().errors == 1


def test_every_split_point_gives_the_same_evidence():
    # every kind of line of both fixtures: starts, a job start, relayed job
    # output, errors in logfmt and the TTY layout (CR LF), the last cut short
    data = fixture("docker-logs-logfmt.txt")[:1500] + fixture("docker-logs-tty.txt")[:1200]
    whole = scan(data, since=T0)
    assert (whole.errors, whole.claimed_tasks, whole.lines) == (6, frozenset({4711, 815}), 18)
    for cut in range(len(data) + 1):
        scanner = LogScan(T0)
        scanner.feed(data[:cut])
        scanner.feed(data[cut:])
        assert scanner.close() == whole, cut


def test_byte_by_byte_feeding():
    data = fixture("docker-logs-tty.txt")
    scanner = LogScan(T0)
    for i in range(len(data)):
        scanner.feed(data[i : i + 1])
    assert scanner.close() == scan(data, T0)


def test_fast_and_slow_paths_agree_on_fixtures():
    for name in ("docker-logs-logfmt.txt", "docker-logs-tty.txt"):
        data = fixture(name)
        for since in (None, T0, T0 + 61, T0 + 100.000005):
            assert scan(data, since, fast=True) == scan(data, since, fast=False)


def test_fast_path_is_taken_and_bails_out_on_injection(mocker):
    burst = "".join(error_line(i) for i in range(40))
    spy = mocker.spy(LogScan, "_fast_errors")
    assert scan(burst.encode(), T0).errors == 40
    assert spy.call_count == 1
    # one injected line in the block: the whole block is judged line by line
    injected = burst + '%s time="%s" level=info msg="[ci/x] | failed to fetch task"\n' % (stamp(50), TS)
    spy.reset_mock()
    assert scan(injected.encode(), T0).errors == 40
    assert spy.call_count == 0


def test_long_line_is_capped_and_memory_stays_flat():
    scanner = LogScan(T0)
    head = error_line(1).rstrip("\n").encode()
    scanner.feed(head)
    for _ in range(200):  # a 12.8 MB line
        scanner.feed(b"x" * 65536)
        assert len(scanner._carry) <= runnerlog.MAX_LINE
    scanner.feed(b"\n" + error_line(2).encode())
    evidence = scanner.close()
    assert (evidence.errors, evidence.lines) == (2, 2)


def test_memory_does_not_grow_with_the_log():
    chunk = "".join(error_line(i % 50, i) for i in range(2000)).encode()  # ~0.25 MB, a wedged runner
    chunk += "".join(job_line(i, i) for i in range(20)).encode()
    scanner = LogScan(T0)
    scanner.feed(chunk)  # warm caches
    tracemalloc.start()
    try:
        for _ in range(40):  # 80,000 more lines
            scanner.feed(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    evidence = scanner.close()
    assert evidence.errors == 41 * 2000
    assert peak < 3 * len(chunk), peak


# ------------------------------------------------------------ properties

POOL = [
    error_line(1, 5),
    error_line(2, 6, RESET),
    error_line(3, 7, UNREG),
    error_line(99, 1, "newest"),
    '%s time="%s" level=error msg="failed to fetch task" func="[fetchTask]" file="[poller.go:95]" error="d"\n'
    % (stamp(4), TS),
    '%s time="%s" level=error msg="failed to fetch task: %s"\n' % (stamp(5), TS, DEADLINE),
    '%s %s[%s] failed to fetch task         \x1b[31merror\x1b[0m="unavailable: EOF"\r\n' % (stamp(6), ERRO, TS),
    "%s ERRO[%s] failed to fetch task: %s\r\n" % (stamp(7), TS, DEADLINE),
    '%s time="%s" level=info msg="[ci/build]   | failed to fetch task"\n' % (stamp(8), TS),
    "%s %s[%s] [ci/build] | %s[%s] failed to fetch task\r\n" % (stamp(9), INFO, TS, ERRO, TS),
    '%s time="%s" level=info msg="[ci/build] caf\u00e9 \U0001f680 \u65e5\u672c"\n' % (stamp(10), TS),
    job_line(11, 42),
    job_line(12, 43),
    "%s %s[%s] task 44 repo is o/r https://a https://b\r\n" % (stamp(13), INFO, TS),
    '%s time="%s" level=info msg="[ci/x] | task 45 repo is o/r https://a"\n' % (stamp(14), TS),
    'no stamp level=error msg="failed to fetch task"\n',
    '%s time="%s" level=info msg="[ci/x] | \\"q\\" failed to fetch task repo is"\n' % (stamp(16), TS),
    '%s time="%s" level=ERROR msg="failed to fetch task" error="upper"\n' % (stamp(17), TS),
    '%s time="%s" level=info msg="\\x74ask 46 repo is o/r https://a"\n' % (stamp(18), TS),
    '%s time="%s" level=\x1b[1merror\x1b[0m msg="failed to fetch task"\n' % (stamp(19), TS),
    "%s\n" % stamp(15),
    "\n",
    error_line(-30, 0, "before since"),
]
LOGS = st.lists(st.sampled_from(POOL), max_size=80).map(lambda lines: "".join(lines).encode("utf-8"))


@settings(max_examples=300, deadline=None)
@given(data=LOGS, cuts=st.lists(st.integers(min_value=0, max_value=10 ** 6), max_size=12),
       tail=st.booleans(), window=st.sampled_from([1, 60, 250, 1000, 16384]))
def test_property_any_split_same_evidence(data, cuts, tail, window):
    """Feeding a log split anywhere, scanned in windows of any size, gives
    the Evidence of feeding it whole, and the fast path agrees."""
    if tail:
        data = data.rstrip(b"\n")  # a last line without newline
    whole = scan(data, since=T0)
    saved = runnerlog._WINDOW
    runnerlog._WINDOW = window
    try:
        assert scan(data, since=T0, fast=False) == whole
        assert scan(data, since=T0) == whole
        points = sorted({c % (len(data) + 1) for c in cuts})
        scanner = LogScan(T0)
        previous = 0
        for point in points + [len(data)]:
            scanner.feed(data[previous:point])
            previous = point
        assert scanner.close() == whole
    finally:
        runnerlog._WINDOW = saved


def test_big_chunks_are_scanned_in_windows():
    burst = "".join(error_line(i % 100, i) for i in range(3000))  # ~0.4 MB
    data = (fixture("docker-logs-logfmt.txt").decode() + burst + "x" * 40000 + "\n" + job_line(200, 5)).encode()
    evidence = scan(data, since=T0)
    assert (evidence.errors, evidence.lines) == (45 + 3000, 53 + 3000 + 2)
    assert evidence.claimed_tasks == frozenset({4711, 5})
    assert evidence == scan(data, since=T0, fast=False)


@settings(max_examples=200, deadline=None)
@given(data=LOGS)
def test_property_counts_match_classify(data):
    """The scan counts exactly the lines classify() calls fetch errors
    (timed, since T0) -- the reference model, line by line."""
    errors = untimed = 0
    claims = set()
    for raw in data.split(b"\n"):
        stamp_, _, message = raw.partition(b" ")
        kind, task, _ = classify(message)
        if kind == OTHER:
            continue
        when = parse_time(stamp_)
        if when is None:
            untimed += 1
        elif kind == FETCH_ERROR and when >= T0:
            errors += 1
        elif kind == JOB_START:
            claims.add(task)
    evidence = scan(data, since=T0)
    assert (evidence.errors, evidence.untimed, evidence.claimed_tasks) == (errors, untimed, frozenset(claims))


FRAGMENTS = st.sampled_from(
    ['time="%s" ' % TS, "time=%s " % TS, 'time="a\\" ', "level=error ", "level=info ", 'msg="failed to fetch task',
     '"', "\\", " ", "ERRO", "ERROR", "INFO", "\x1b[31m", "\x1b[0m", "[", "]", "] ", "failed to fetch task",
     " error=", "x", "\r", "=", ": deadline", "ERRO\x1b[0m", "[poller.go:199] [fetchTasks] ", "[p.go:1] ",
     "\x1b[2;37m", "TRAC", "level=warning ", 'msg="fetching a task timed out', "\n"]
)


@settings(max_examples=500, deadline=None)
@given(parts=st.lists(FRAGMENTS, max_size=10))
def test_property_fast_regex_only_matches_fetch_errors(parts):
    """Every line the block regex takes is one classify() calls a fetch
    error: the fast path can never count what the slow path would not."""
    message = "".join(parts).encode()
    line = b"\n" + stamp(1).encode() + b" " + message
    for tty in (False, True):
        if runnerlog._FAST_ERROR[tty].match(line):
            assert classify(message.split(b"\n")[0], tty)[0] == FETCH_ERROR, (tty, message)


def test_journal_level_is_the_most_verbose_seen():
    scanner = LogScan(T0, source="journal")
    scanner.add(int(T0 * 1e9), b'time="x" level=debug msg="a"')
    scanner.add(int(T0 * 1e9) + 1, b'time="x" level=trace msg="b"')
    evidence = scanner.close()
    assert evidence.level == "trace" and "log level trace" in evidence.ambiguous
    clean = LogScan(T0, source="journal")
    clean.add(int(T0 * 1e9), b'time="x" level=info msg="[poller 0] launched"')
    assert clean.close().ambiguous == ""
    legacy = LogScan(T0, source="journal")
    legacy.add(int(T0 * 1e9), b"[ci/build]   | hello")
    assert "job output" in legacy.close().ambiguous


def test_unknown_source_is_refused():
    with pytest.raises(ValueError) as info:
        LogScan(T0, source="stdout")
    assert str(info.value) == "LogScan source must be one of stderr, tty, journal: 'stdout'"


@pytest.mark.parametrize("detail, cls, label", [
    ("unavailable: read tcp 1.2.3.4:5->6.7.8.9:443: read: connection reset by peer", "transport", "connection reset"),
    ("unavailable: unexpected EOF", "transport", "unexpected EOF"),
    ("unavailable: dial tcp: lookup forge.azrak.io on 127.0.0.11:53: no such host", "transport", "DNS failure"),
    ("unavailable: HTTP status 502 Bad Gateway", "transport", "HTTP 502"),
    ("unknown: HTTP status 500 Internal Server Error", "transport", "HTTP 500"),
    ("deadline exceeded; increase fetch_timeout if this error is persistent", "transport", "deadline exceeded"),
    ("deadline exceeded: fetching a task timed out after 30s", "transport", "deadline exceeded"),
    ("internal: pick task: CreateTaskForRunner: resource does not exist", "server", "internal"),
    ("unknown: rpc error: code = Internal desc = boom", "server", "unknown"),
    ("unknown: rpc error: code = Unauthenticated desc = unregistered runner", "refused", "unregistered runner"),
    ("unauthenticated: unregistered runner", "refused", "unregistered runner"),
    ("permission_denied: runner is disabled", "refused", "permission_denied"),
])
def test_failure_class_and_label(detail, cls, label):
    from forgejo_runner_guard.logs.failures import failure_class, failure_label

    assert (failure_class(detail), failure_label(detail)) == (cls, label)


@pytest.mark.parametrize("line, tty, kind", [
    (b'\x1b[31mERRO\x1b[0m[2026-06-29T10:00:02Z][poller.go:199] [fetchTasks] failed to fetch task  '
     b'\x1b[31merror\x1b[0m="unavailable: unexpected EOF"\r', True, FETCH_ERROR),
    (b'ERRO[2026-06-29T10:00:02Z] failed to fetch task  error="unavailable: unexpected EOF"\r', True, OTHER),
    (b'level=error msg="failed to fetch task"', True, OTHER),
    (b'\x1b[2;37mTRAC\x1b[0m[2026-06-29T10:00:02Z][reporter.go:1] [Fire] failed to fetch task', True, OTHER),
    (b'time="t" level=warning msg="fetching a task timed out after 30s, raise runner.fetch_timeout if '
     b'this persists"', False, FETCH_ERROR),
    (b'time="t" level=trace msg="failed to fetch task: deadline exceeded"', False, OTHER),
    (b'time="t" level=error msg="server rejected the runner as unregistered, stopping poller" '
     b'func="[fetchTask]" file="[poller.go:9]" error="unauthenticated: unregistered runner"', False, TERMINAL),
])
def test_classify_by_stream_kind(line, tty, kind):
    assert classify(line, tty)[0] == kind


# ------------------------------------------------------------ edges the mutation run found untested


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("since", [T0 + 100, T0 + 100.5, T0 + 100.25])
def test_the_first_counted_nanosecond_is_the_window_edge(fast, since):
    """A line stamped at the first nanosecond the window counts (the first
    whose time, as a float, is >= since) counts; one a nanosecond earlier
    does not, on the block (fast) path and line by line alike."""
    edge = stamps.since_ns(since)
    assert runnerlog.to_seconds(edge) >= since > runnerlog.to_seconds(edge - 1)
    sec, ns = divmod(edge - T0 * 10 ** 9, 10 ** 9)
    before = divmod(edge - 1 - T0 * 10 ** 9, 10 ** 9)
    for early, late in ((20, 20), (1, 1), (20, 1)):
        data = (error_line(*before, text="early") * early + error_line(sec, ns, text="edge") * late)
        evidence = scan(data.encode(), since=since, fast=fast)
        assert evidence.errors == late, (early, late)
        assert evidence.newest_error == runnerlog.to_seconds(edge)
        assert evidence.newest_error_detail == "edge"
        assert [line.rsplit('"', 2)[1] for line in evidence.recent_errors] == ["edge"] * min(late, 5)


@pytest.mark.parametrize("line, expected", [
    ('level=info level=error msg="failed to fetch task"', (OTHER, None, "")),
    ('level=error msg="hello" msg="failed to fetch task"', (OTHER, None, "")),
    ('level=error msg="failed to fetch task" error="first" error="second"',
     (FETCH_ERROR, None, "first")),
    ('level=error level=info msg="failed to fetch task" error="x"', (FETCH_ERROR, None, "x")),
])
def test_the_first_of_a_duplicated_logfmt_key_wins(line, expected):
    assert classify(('time="%s" ' % TS + line).encode()) == expected


@pytest.mark.parametrize("line, expected", [
    ('level=error error="early" msg="failed to fetch task"', (FETCH_ERROR, None, "early")),
    ('msg="failed to fetch task" level=error error="late"', (FETCH_ERROR, None, "late")),
    ('msg="failed to fetch task: EOF" func="[f]" level=error', (FETCH_ERROR, None, "EOF")),
    ('error="x" msg="task 3 repo is o/r" level=info', (JOB_START, 3, "o/r")),
])
def test_logfmt_fields_in_any_order(line, expected):
    """logrus writes time, level, msg, then the rest; the parser reads the
    leading pairs in any order, an error field before msg too."""
    assert classify(('time="%s" ' % TS + line).encode()) == expected


@pytest.mark.parametrize("line", [
    "\x1b[31mERRO\x1b[0m[x] failed to fetch task   \x1b\x1b[0m[31merror\x1b[0m=\"boom\"",
    "ERRO[x] failed to fetch task   \x1b\x1b[0m[31merror=\"boom\"",
])
@pytest.mark.parametrize("tty", [True, False])
def test_colour_codes_nested_in_one_another_are_all_removed(line, tty):
    """Removing one colour code can join the bytes around it into another:
    the error field is read once none is left."""
    if tty and not line.startswith("\x1b"):
        return
    assert classify(line.encode(), tty) == (FETCH_ERROR, None, "boom")


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("count", [1, 20])
def test_uncoloured_tty_error_lines_pass_the_case_insensitive_prefilter(fast, count):
    lines = "".join("%s ERRO[0002] failed to fetch task                        error=\"boom %d\"\n"
                    % (stamp(sec), sec) for sec in range(count))
    evidence = scan(lines.encode(), since=T0, fast=fast)
    assert (evidence.errors, evidence.newest_error_detail) == (count, "boom %d" % (count - 1))
    assert evidence.newest_error == T0 + count - 1


@pytest.mark.parametrize("fast", [True, False])
def test_warning_level_fetch_lines_count_nothing_on_either_path(fast):
    warn = "".join('%s time="%s" level=warning msg="failed to fetch task" error="x"\n'
                   % (stamp(sec), TS) for sec in range(20))
    tty = "".join("%s WARN[0002] failed to fetch task error=x\n" % stamp(sec) for sec in range(20))
    for data in (warn, tty, warn + tty):
        evidence = scan(data.encode(), since=T0, fast=fast)
        assert (evidence.errors, evidence.newest_error, evidence.newest_error_detail) == (0, None, "")
    mixed = scan((warn + "".join(error_line(30 + sec) for sec in range(20))).encode(), since=T0,
                 fast=fast)
    assert (mixed.errors, mixed.newest_error) == (20, T0 + 49)


@pytest.mark.parametrize("text, valid", [
    ("2026-12-31T23:59:59Z", True), ("2026-01-01T00:00:00z", True), ("2026-06-30T23:59:60Z", True),
    ("2026-06-31T00:00:00Z", True),  # the day is checked against 31 only, as before
    ("2026-00-01T00:00:00Z", False), ("2026-13-01T00:00:00Z", False), ("2026-01-32T00:00:00Z", False),
    ("2026-01-00T00:00:00Z", False), ("2026-01-01T24:00:00Z", False), ("2026-01-01T00:60:00Z", False),
    ("2026-01-01T00:00:61Z", False), ("2026-01-01T00:00:00Zé", False), ("é", False),
])
def test_parse_time_ranges(text, valid):
    assert (parse_time(text) is not None) == valid


def test_parse_time_values_at_the_edges():
    assert parse_time("2026-12-31T23:59:59Z") == calendar.timegm((2026, 12, 31, 23, 59, 59, 0, 0, 0))
    assert parse_time("2026-01-01T00:00:00z") == calendar.timegm((2026, 1, 1, 0, 0, 0, 0, 0, 0))


def test_add_judges_lines_whose_time_comes_apart():
    """LogScan.add (the journal's way): lines in any order, time given
    apart (integer ns, or None: untimed), counted like feed()."""
    since_ns = stamps.since_ns(T0 + 100)  # the first nanosecond counted
    scanner = LogScan(T0 + 100)
    err = b'time="%s" level=error msg="failed to fetch task" error="e%d"'
    scanner.add(since_ns + 5, err % (TS.encode(), 1))
    scanner.add(since_ns - 1, err % (TS.encode(), 2))  # before the window: not counted
    scanner.add(since_ns, err % (TS.encode(), 3))  # the edge counts
    scanner.add(None, err % (TS.encode(), 4))  # untimed
    scanner.add(since_ns + 9, b'time="x" level=info msg="task 42 repo is o/r https://a https://b"')
    scanner.add(since_ns + 7, b'time="x" level=info msg="task 41 repo is o/r https://a https://b"')
    scanner.add(since_ns + 8, b"level=info msg=hello")
    scanner.add(since_ns + 6, b'level=warning msg="failed to fetch task"')
    evidence = scanner.close()
    fields = ("errors", "newest_error", "newest_error_detail", "last_job_start", "claimed_tasks",
              "lines", "untimed", "since")
    assert {f: getattr(evidence, f) for f in fields} == dict(
        errors=2, newest_error=runnerlog.to_seconds(since_ns + 5), newest_error_detail="e1",
        last_job_start=runnerlog.to_seconds(since_ns + 9), claimed_tasks=frozenset({41, 42}),
        lines=8, untimed=1, since=T0 + 100)
    # the kept lines: the counted ones, the edge's too, in time, each with its time in front
    assert [line.rsplit('"', 2)[1] for line in evidence.recent_errors] == ["e3", "e1"]
    assert evidence.recent_errors[0].startswith(stamps.format_ns(since_ns).decode() + " time=")
    with pytest.raises(ValueError) as info:
        scanner.add(since_ns, err % (TS.encode(), 5))
    assert str(info.value) == "LogScan.add after close"
    with pytest.raises(ValueError) as info:
        scanner.feed(b"x\n")
    assert str(info.value) == "LogScan.feed after close"


def test_add_sees_the_level_at_a_lines_very_end():
    scanner = LogScan(T0, source="journal")
    scanner.add(T0 * 10 ** 9, b'time="x" msg="fetching" level=debug')
    assert scanner.close().level == "debug"


def test_add_judges_as_the_source_says():
    """add() on a TTY source: only logrus's coloured lines are the runner's."""
    scanner = LogScan(T0, source="tty")
    scanner.add((T0 + 1) * 10 ** 9, b'level=error msg="failed to fetch task" error="plain"')
    scanner.add((T0 + 2) * 10 ** 9, b'\x1b[31mERRO\x1b[0m[x] failed to fetch task   \x1b[31merror\x1b[0m="own"')
    evidence = scanner.close()
    assert (evidence.errors, evidence.newest_error_detail, evidence.lines) == (1, "own", 2)


@pytest.mark.parametrize("source, cause", [("stderr", "second-process"), ("tty", ""), ("journal", "")])
def test_add_judges_a_line_as_feed_does(source, cause):
    """A line whose time comes apart is judged as the same line fed with
    Docker's time: cobra's plain line is the runner's on its own stderr
    only."""
    line = b"Error: runner file is already locked by another process"
    added = LogScan(T0, source=source)
    added.add((T0 + 1) * 10 ** 9, line)
    fed = LogScan(T0, source=source)
    fed.feed(stamp(1).encode() + b" " + line + b"\n")
    assert added.close().terminal == fed.close().terminal == cause


# ------------------------------------------------------------ the evidence lines kept (Evidence.recent_errors)


def _line(second, text="unexpected EOF", fmt="logfmt"):
    stamp = "2026-06-29T10:00:%02d.000000000Z" % second
    if fmt == "tty":
        return '%s \x1b[31mERRO\x1b[0m[2026-06-29T10:00:%02dZ] failed to fetch task    ' \
               '\x1b[31merror\x1b[0m="unavailable: %s"\n' % (stamp, second, text)
    return '%s time="2026-06-29T10:00:%02dZ" level=error msg="failed to fetch task" ' \
           'error="unavailable: %s"\n' % (stamp, second, text)


def test_evidence_keeps_the_newest_counted_fetch_error_lines():
    since = stamps.parse_time("2026-06-29T10:00:05Z")
    data = "".join(_line(s, "n%d" % s) for s in range(0, 40)).encode()
    data += b'2026-06-29T10:00:50.000000000Z time="x" level=info msg="task 3 repo is o/r"\n'
    for fast in (True, False):
        ev = runnerlog.scan(data, since, fast=fast)
        assert ev.errors == 35
        assert ev.recent_errors == tuple(_line(s, "n%d" % s).rstrip("\n") for s in range(35, 40))
    # fewer than five, all before `since` but one, and the tty format's colours removed
    data = (_line(1) + _line(2, fmt="tty") + _line(7, "late", fmt="tty")).encode()
    ev = runnerlog.scan(data, stamps.parse_time("2026-06-29T10:00:02Z"))
    assert ev.recent_errors == (
        '2026-06-29T10:00:02.000000000Z ERRO[2026-06-29T10:00:02Z] failed to fetch task    '
        'error="unavailable: unexpected EOF"',
        '2026-06-29T10:00:07.000000000Z ERRO[2026-06-29T10:00:07Z] failed to fetch task    '
        'error="unavailable: late"')


@pytest.mark.parametrize("raw, text", [
    (b"a\tb", "a\tb"),  # tabs stay
    (b"a\x07b\x00c\x7fd\r\ne", "abcde"),  # other control characters go, DEL too
    ("~\x7f\x80a\x85b\x9b31mc\x9f\xa0d".encode(), "~ab31mc\xa0d"),  # DEL and C1 (NEL, CSI, APC)
    # go; U+00A0 stays
    (b"\x1b[31mERRO\x1b[0m x \x1b[1m", "ERRO x"),  # colour codes go
    (b"  lead and trail  \r", "  lead and trail"),  # only the end is stripped
    (b"caf\xc3\xa9 \xff", "caf\u00e9 \ufffd"),  # bytes that are not UTF-8: U+FFFD
    (b"x" * 1500, "x" * 1024),
    (b"\x07" * 100 + b"y" * 2000, "y" * 1024),
])
def test_a_kept_line_as_text(raw, text):
    stamp_ = stamp(5).encode()
    scanner = LogScan(T0, source="journal")
    scanner.add(stamps.parse_ns(stamp_), b'level=error msg="failed to fetch task" ' + raw)
    want = (stamp_.decode() + ' level=error msg="failed to fetch task" ' + text)[:runnerlog.EVIDENCE_LINE]
    assert scanner.close().recent_errors == (want,)


def test_the_kept_lines_are_bounded():
    """At most 4 * RECENT_ERRORS lines of at most 4 * EVIDENCE_LINE bytes
    are held while scanning, whatever the log."""
    scanner = LogScan(T0)
    line = error_line(1, 0, "y" * 20000).encode()
    for i in range(200):
        scanner.feed(error_line(1, i, "n%d" % i).encode() if i % 7 else line)
        assert len(scanner._recent) <= 4 * runnerlog.RECENT_ERRORS
        assert max(len(kept) for _, kept in scanner._recent) <= 4 * runnerlog.EVIDENCE_LINE
    assert scanner.close().errors == 200


def test_evidence_from_the_journal_and_bounded():
    scan = runnerlog.LogScan(None)
    base = stamps.parse_time("2026-06-29T10:00:00Z")
    for n in range(2000):  # any order; a long line is cut
        ns = (int(base) + n % 100) * 10 ** 9
        scan.add(ns, b'level=error msg="failed to fetch task" error="' + b"x" * 5000 + b'"')
    ev = scan.close()
    assert ev.errors == 2000 and len(ev.recent_errors) == runnerlog.RECENT_ERRORS
    assert all(len(line) == runnerlog.EVIDENCE_LINE for line in ev.recent_errors)
    assert ev.recent_errors[-1].startswith("2026-06-29T10:01:39.000000000Z level=error")


@pytest.mark.parametrize("tail", [0, 1, 2, 7])
@pytest.mark.parametrize("chunk", [4096, 64 * 1024, 1 << 20])
def test_evidence_the_same_on_the_fast_and_the_slow_path(tail, chunk):
    """A flood (the fast path, block by block), then `tail` stragglers
    among info lines: the newest five are the same either way."""
    def stamp(i):
        return "2026-06-29T10:%02d:%02d.%09dZ" % (i // 60000, i // 1000 % 60, i % 1000 * 1000)

    flood = "".join('%s level=error msg="failed to fetch task" error="n%d"\n' % (stamp(i), i)
                    for i in range(3000))
    info = "".join('%s level=info msg="poll %d"\n' % (stamp(3000 + i), i) for i in range(400))
    stragglers = "".join('%s level=error msg="failed to fetch task" error="s%d"\n'
                         % (stamp(4000 + i), i) for i in range(tail))
    data = (flood + info + stragglers).encode()
    since = stamps.parse_time(stamp(2990))
    results = []
    for fast in (True, False):
        scan = runnerlog.LogScan(since, fast=fast)
        for start in range(0, len(data), chunk):
            scan.feed(data[start : start + chunk])
        results.append(scan.close())
    assert results[0] == results[1]
    want = ['error="n%d"' % i for i in range(2990, 3000)] + ['error="s%d"' % i for i in range(tail)]
    assert [line.rsplit(" ", 1)[1] for line in results[0].recent_errors] == want[-5:]


# ------------------------------------------------------------ Go's escapes (logrus quotes with %q)


@pytest.mark.parametrize("quoted, text", [
    ("plain", "plain"),
    (r"\a\b\f\n\r\t\v", "\a\b\f\n\r\t\v"),
    (r"\"q\" \\", '"q" \\'),
    (r"\x00\x1b\x7F\xAb", "\x00\x1b\x7f\xab"),
    (r"\u00e9\u200B", "\u00e9\u200b"),
    (r"\U0001f680\U0010FFFF", "\U0001f680\U0010ffff"),
    # octal, as Go's strconv.Unquote reads it (Quote itself never writes one)
    (r"\101\102\103 \000\177 \377", "ABC \x00\x7f \xff"),
    (r"\1010", "A0"),  # three digits at most
    # not an escape Go knows: the character itself (no digits after \x, \u, \U, or too few)
    (r"\q \x \xZZ \u12 \U1234567 \8", "q x xZZ u12 U1234567 8"),
    (r"\'", "'"),
])
def test_unquote_undoes_gos_escapes(quoted, text):
    assert logfmt.unquote(quoted) == text
    line = 'level=error msg="failed to fetch task" error="%s"' % quoted
    assert classify(line.encode()) == (FETCH_ERROR, None, text)
    assert classify(('ERRO[0002] failed to fetch task    error="%s"' % quoted).encode()) == \
        (FETCH_ERROR, None, text)


# ------------------------------------------------------------ classify: every branch, exactly


@pytest.mark.parametrize("line, tty, expected", [
    # a bare error value to the end of the line; no space after the phrase's colon
    ('level=error msg="failed to fetch task" error=EX', False, (FETCH_ERROR, None, "EX")),
    ('level=error msg="failed to fetch task:EOF"', False, (FETCH_ERROR, None, "EOF")),
    ('level=error msg="failed to fetch task EOF"', False, (FETCH_ERROR, None, "EOF")),
    ("ERRO[0002] failed to fetch task:  EOF  ", False, (FETCH_ERROR, None, "EOF")),
    # Gitea's unregistered runner: a terminal state (logs/terminal.py), its
    # error field the detail, else the message itself
    ('level=error msg="server rejected the runner as unregistered, stopping poller" '
     'error="unauthenticated: runner token invalid"', False,
     (TERMINAL, "unregistered", "unauthenticated: runner token invalid")),
    ('level=error msg="server rejected the runner as unregistered, stopping poller"', False,
     (TERMINAL, "unregistered", "server rejected the runner as unregistered, stopping poller")),
    ('level=warning msg="server rejected the runner as unregistered" error="x"', False, (OTHER, None, "")),
    # Gitea's timed-out poll: at warning or error level, the message before the fields
    ('level=warning msg="fetching a task timed out after 30s" error="x"', False,
     (FETCH_ERROR, None, "deadline exceeded: fetching a task timed out after 30s")),
    ('level=error msg="fetching a task timed out after 5s"', False,
     (FETCH_ERROR, None, "deadline exceeded: fetching a task timed out after 5s")),
    ("WARN[0040] fetching a task timed out                   error=x field=y", False,
     (FETCH_ERROR, None, "deadline exceeded: fetching a task timed out")),
    ("\x1b[33mWARN\x1b[0m[2026-06-29T10:00:40Z] fetching a task timed out after 30s \r", True,
     (FETCH_ERROR, None, "deadline exceeded: fetching a task timed out after 30s")),
    ('level=info msg="fetching a task timed out after 30s"', False, (OTHER, None, "")),
    ('level=debug msg="fetching a task timed out after 30s"', False, (OTHER, None, "")),
    # a job start: its task id and the rest, stripped of the TTY layout's padding
    ("\x1b[36mINFO\x1b[0m[2026-06-29T10:01:00Z] task 31 repo is ops/site https://a https://b   \r", True,
     (JOB_START, 31, "ops/site https://a https://b")),
    ('level=info msg="task 7 repo is o/r https://a https://b" func="[run]"', False,
     (JOB_START, 7, "o/r https://a https://b")),
    ('level=warning msg="task 7 repo is o/r https://a https://b"', False, (OTHER, None, "")),
    # the level in capitals, logrus's full level names
    ('level=ERROR msg="failed to fetch task" error="x"', False, (FETCH_ERROR, None, "x")),
    ("ERROR[0002] failed to fetch task error=x", False, (FETCH_ERROR, None, "x")),
    ('level=WARNING msg="fetching a task timed out"', False,
     (FETCH_ERROR, None, "deadline exceeded: fetching a task timed out")),
    ("WARNING[0002] fetching a task timed out", False,
     (FETCH_ERROR, None, "deadline exceeded: fetching a task timed out")),
])
def test_classify_each_message_exactly(line, tty, expected):
    assert classify(line.encode(), tty) == expected


@pytest.mark.parametrize("line, tty, expected", [
    # Docker cuts a long line at 16 KiB: the cut may fall inside the quotes
    ('level=error msg="failed to fetch task" error="cut here  ', False, (FETCH_ERROR, None, "cut here  ")),
    ('level=error msg="failed to fetch task" error="x"\r\n', False, (FETCH_ERROR, None, "x")),
    # the runner's lines start with its own fields: not after a carriage return
    ("\rERRO[0002] failed to fetch task error=x", False, (OTHER, None, "")),
    ("\r\x1b[31mERRO\x1b[0m[x] failed to fetch task \x1b[31merror\x1b[0m=x", True, (OTHER, None, "")),
])
def test_only_the_lines_end_is_trimmed(line, tty, expected):
    assert classify(line.encode(), tty) == expected


# ------------------------------------------------------------ what a flood costs (the fast path is taken)

HELLO = '%s time="%s" level=info msg="hello"\n' % (stamp(0), TS)


@pytest.mark.parametrize("count, head, calls", [
    (40, "", 2),  # the chunk's first line by classify(), the rest by the block regex; the detail at close
    (40, HELLO, 1),  # a first line without a needle: only the detail
    (16, HELLO, 1),  # _FAST_MIN lines are a flood
    (15, HELLO, 15),  # fewer: line by line
])
def test_a_flood_is_counted_by_the_block_regex(mocker, count, head, calls):
    """The fast path's contract, in classify() calls: a flood of fetch
    errors in one streak is counted by the block regex, classify() reads
    only the newest line's detail (and the chunk's first line)."""
    burst = head + "".join(error_line(1, i, "e%d" % i) for i in range(count))
    spy = mocker.spy(runnerlog, "classify")
    evidence = scan(burst.encode(), T0)
    assert (evidence.errors, evidence.newest_error_detail, spy.call_count) == (count, "e%d" % (count - 1), calls)
    assert evidence.streak_polls == count and evidence.newest_error == runnerlog.to_seconds(
        (T0 + 1) * 10 ** 9 + count - 1)


DISK = '%s time="%s" level=error msg="disk almost full"\n' % (stamp(0), TS)  # a mark, no needle
REJECTED = '%s time="%s" level=info msg="the server rejected the runner: a warning"\n' % (stamp(0), TS)


def _errors(first, count, text="unavailable: unexpected EOF"):
    return "".join(error_line(1, i, text) for i in range(first, first + count))


@pytest.mark.parametrize("parts, errors, calls", [
    # a flood from the chunk's first byte whose errors hold a mark of their own
    ([_errors(0, 40, "unknown: Error: 502 Bad Gateway")], 40, 2),
    # a mark on the chunk's first line, read apart from the flood's block
    ([DISK + HELLO + _errors(0, 40)], 40, 1),
    # a mark in a later window: not this block's
    ([HELLO + _errors(0, 20) + HELLO, _errors(20, 20)], 40, 1),
    # no failure at all: a needle without an error level in a window without a mark
    ([DISK + HELLO * 3, REJECTED], 0, 0),
    ([REJECTED + HELLO * 3, DISK], 0, 0),
])
def test_marks_are_looked_for_in_their_own_block_only(mocker, parts, errors, calls):
    """The block regex counts a flood unless its block (one window of the
    chunk) holds an error-level line it did not match; marks before the
    block or after it, or in the errors' own text, change nothing."""
    spy = mocker.spy(runnerlog, "classify")
    saved = runnerlog._WINDOW
    runnerlog._WINDOW = len(parts[0])
    try:
        evidence = scan("".join(parts).encode(), None)
    finally:
        runnerlog._WINDOW = saved
    assert (evidence.errors, evidence.terminal, spy.call_count) == (errors, "", calls)


def test_line_by_line_costs_a_classify_each_and_relayed_phrases_none(mocker):
    burst = HELLO + "".join(error_line(1, i, "e%d" % i) for i in range(40))
    spy = mocker.spy(runnerlog, "classify")
    scanner = LogScan(T0)  # the fast path by default
    scanner.feed(burst.encode())
    assert scanner.close().errors == 40 and spy.call_count == 1
    spy.reset_mock()
    assert scan(burst.encode(), T0, fast=False).errors == 40
    assert spy.call_count == 40
    # job output that names the phrase, at info level: skipped before classify()
    spy.reset_mock()
    relayed = HELLO + "".join('%s time="%s" level=info msg="[ci/b] | failed to fetch task %d"\n'
                              % (stamp(1, i), TS, i) for i in range(20))
    assert scan(relayed.encode(), T0).errors == 0
    assert spy.call_count == 0


@pytest.mark.parametrize("other", [
    '%s time="%s" level=info msg="task 5 repo is o/r https://a https://b"\n',
    '%s time="%s" level=warning msg="fetching a task timed out after 30s"\n',
    '%s time="%s" level=info msg="the server rejected the runner a while ago"\n',
])
@pytest.mark.parametrize("last", [False, True])
def test_a_line_of_another_kind_costs_only_its_own_window(mocker, other, last):
    """A job start (or Gitea's failure lines) in the first (or the last)
    window sends that window line by line, not the flood's other windows."""
    flood = "".join(error_line(1, i, "e%d" % i) for i in range(1000))
    first = other % (stamp(0 if not last else 2), TS)
    burst = HELLO + (flood + first if last else first + flood)
    spy = mocker.spy(runnerlog, "classify")
    saved = runnerlog._WINDOW
    runnerlog._WINDOW = 2500  # 18 lines
    try:
        evidence = scan(burst.encode(), T0)
    finally:
        runnerlog._WINDOW = saved
    assert (evidence.errors - ("timed out" in first)) == 1000
    assert spy.call_count < 3 * runnerlog._FAST_MIN


def test_a_line_without_a_needle_is_never_read_however_it_is_fed():
    """The phrase escaped (\\x20 for its space) has no needle in its bytes:
    not read as a whole line, nor as one carried from a chunk before."""
    line = '%s time="%s" level=error msg="failed to fetch\\x20task"\n' % (stamp(1), TS)
    data = (HELLO + line + HELLO).encode()
    for cut in range(len(HELLO), len(HELLO) + len(line) + 1):
        scanner = LogScan(T0)
        scanner.feed(data[:cut])
        scanner.feed(data[cut:])
        assert scanner.close().errors == 0, cut
    assert classify(line.split(" ", 1)[1].encode())[0] == FETCH_ERROR  # what reading it would say


def test_a_line_longer_than_the_window_leaves_the_windows_after_it(mocker):
    long_line = '%s time="%s" level=info msg="%s"\n' % (stamp(0), TS, "z" * 3000)
    job = '%s time="%s" level=info msg="task 5 repo is o/r https://a https://b"\n' % (stamp(20), TS)
    burst = HELLO + long_line + "".join(error_line(1, i, "e%d" % i) for i in range(1000)) + job
    spy = mocker.spy(runnerlog, "classify")
    saved = runnerlog._WINDOW
    runnerlog._WINDOW = 2500
    try:
        evidence = scan(burst.encode(), T0)
    finally:
        runnerlog._WINDOW = saved
    assert (evidence.errors, evidence.claimed_tasks) == (1000, frozenset({5}))
    assert spy.call_count < 3 * runnerlog._FAST_MIN


@pytest.mark.parametrize("cut", [None, 40, runnerlog.MAX_LINE - 3, runnerlog.MAX_LINE + 2])
@pytest.mark.parametrize("newline", [True, False])
@pytest.mark.parametrize("past", [0, 1])
def test_a_line_longer_than_max_line_is_judged_on_its_first_max_line_bytes(cut, newline, past):
    """Whole, split inside it, or read at close: a line is judged on its
    first MAX_LINE bytes, here an error field cut short by the cap: a
    refusal that ends at the cap counts, one a byte past it does not."""
    head = '%s time="%s" level=error msg="failed to fetch task" error="unknown: ' % (stamp(1), TS)
    refusal = " unregistered runner"
    line = (head + "x" * (runnerlog.MAX_LINE + past - len(head) - len(refusal)) + refusal + 'y"').encode()
    assert line.index(refusal.encode()) + len(refusal) == runnerlog.MAX_LINE + past
    data = HELLO.encode() + line + (b"\n" if newline else b"")
    scanner = LogScan(T0)
    for piece in ((data,) if cut is None else (data[:len(HELLO) + cut], data[len(HELLO) + cut:])):
        scanner.feed(piece)
    evidence = scanner.close()
    assert (evidence.errors, evidence.lines) == (1, 2)
    assert evidence.newest_class == ("refused", "transport")[past]
    assert evidence.newest_error_detail == ("unknown: " + "x" * 2000)[:runnerlog.EVIDENCE_LINE]


def test_a_flood_before_the_window_costs_nothing(mocker):
    burst = HELLO + "".join(error_line(1, i, "e%d" % i) for i in range(40))
    spy = mocker.spy(runnerlog, "classify")
    evidence = scan(burst.encode(), T0 + 60)
    assert (evidence.errors, evidence.newest_error, evidence.recent_errors, spy.call_count) == (0, None, (), 0)


@pytest.mark.parametrize("window", [16 * 1024, 4096, 2500])  # 2500: 18 lines
def test_a_long_flood_is_counted_block_by_block(mocker, window):
    burst = HELLO + "".join(error_line(i // 100, i, "e%d" % i) for i in range(1000))  # 10 s, 100 a second
    spy = mocker.spy(runnerlog, "classify")
    saved = runnerlog._WINDOW
    runnerlog._WINDOW = window
    try:
        evidence = scan(burst.encode(), T0)
    finally:
        runnerlog._WINDOW = saved
    assert (evidence.errors, evidence.streak_polls, evidence.newest_error_detail) == (1000, 1000, "e999")
    assert spy.call_count < runnerlog._FAST_MIN  # at most the last block, if it is short
    assert [line.rsplit('"', 2)[1] for line in evidence.recent_errors] == ["e995", "e996", "e997", "e998", "e999"]


def test_an_error_text_is_shown_on_one_line_and_classified_whole():
    """logrus quotes the error (%q): what the forge answered can hold
    escapes of control characters; a report shows it on one line, at most
    EVIDENCE_LINE characters, while its class is read from the whole."""
    from forgejo_runner_guard.logs import failures, terminal

    quoted = r"unknown: \x1b[2J\r\nX\x7f\u0085" + "y" * 1500 + " code = Unauthenticated desc = x"
    raw = "unknown: \x1b[2J\r\nX\x7f\x85" + "y" * 1500 + " code = Unauthenticated desc = x"
    line = '%s time="%s" level=error msg="failed to fetch task" error="%s"\n' % (stamp(2), TS, quoted)
    evidence = scan(line.encode(), T0)
    assert evidence.errors == 1
    assert evidence.newest_error_detail == ("unknown: X" + "y" * 1500)[:runnerlog.EVIDENCE_LINE]
    # the refusal at the end, past what is shown, still counts
    assert evidence.newest_class == failures.failure_class(raw) == failures.REFUSED
    assert failures.failure_class(evidence.newest_error_detail) == failures.TRANSPORT
    refusal = r"unauthenticated: unregistered runner\x1b[2J\r\nrm -rf \x9b31m" + "z" * 2000
    line = '%s time="%s" level=error msg="fail to invoke Declare" error="%s"\n' % (stamp(3), TS, refusal)
    evidence = scan(line.encode(), T0)
    assert evidence.terminal == terminal.UNREGISTERED
    assert evidence.terminal_detail == ("unauthenticated: unregistered runnerrm -rf 31m" + "z" * 2000)[
        :runnerlog.EVIDENCE_LINE]
