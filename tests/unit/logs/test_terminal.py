"""Terminal states (logs/terminal.py) and a log's last lines (logs/tail.py)
over the bytes the runners really write (tests/fixtures/logrus/terminal/,
made by `make fixtures`: gen/terminal.go with Debian's logrus and cobra),
through classify() and LogScan as the watchdog reads each source."""

import calendar
import json

import pytest

from forgejo_runner_guard.logs import runnerlog, tail, terminal
from forgejo_runner_guard.logs.runnerlog import FETCH_ERROR, OTHER, TERMINAL, LogScan, classify
from forgejo_runner_guard.logs import stamps
from helpers.logrus import HERE, SCENARIOS, docker_logs, stream_lines, truth

T0 = calendar.timegm((2026, 6, 29, 10, 0, 0, 0, 0, 0))

# scenario -> the cause its log ends in (its newest terminal line)
ENDS = {
    "gitea-unregistered": "unregistered",
    "gitea-stock-unregistered": "",  # a stock Gitea: refused fetch errors, the runner polls on
    "gitea-unregistered-declare": "unregistered",
    "gitea-stock-declare": "unregistered",
    "forgejo-unregistered-declare": "unregistered",
    "gitea-second-process": "second-process",
    "gitea-bad-url-register": "bad-url",
    "forgejo-bad-url-register": "bad-url",
    "gitea-bad-url-declare": "bad-url",
    "forgejo-bad-url": "bad-url",
}


def scenario(config):
    return config.split("/", 1)[1].rsplit("-", 1)[0]


def test_every_scenario_is_there():
    assert sorted({scenario(c) for c in SCENARIOS}) == sorted(ENDS)
    assert len(SCENARIOS) == 2 * len(ENDS)


@pytest.mark.parametrize("config", SCENARIOS)
def test_classify_matches_the_ground_truth(config):
    """Each line as the truth says; cobra's plain line only on the
    runner's own stderr (plain=True), never in a terminal's stream."""
    tty = config.endswith("-tty")
    for (stream, stamp, level, kind, cls, note), line in stream_lines(config):
        got, cause, detail = classify(line, tty, plain=not tty)
        if note == "plain" and tty:
            assert got == OTHER, line
            continue
        assert got == kind, (config, line)
        if kind == TERMINAL:
            assert cause == cls and detail, (line, cause, detail)
            assert classify(line, tty)[0] == (OTHER if note == "plain" else TERMINAL)
        if kind == FETCH_ERROR:
            assert cls == "refused" and terminal.refusal(detail), detail


@pytest.mark.parametrize("config", SCENARIOS)
@pytest.mark.parametrize("fast", [True, False])
def test_scan_finds_the_newest_terminal_line(config, fast):
    pairs = stream_lines(config)
    source = "tty" if config.endswith("-tty") else "stderr"
    evidence = runnerlog.scan(docker_logs(pairs), since=None, fast=fast, source=source)
    rows = [(row, line) for row, line in pairs if row[3] == TERMINAL
            and (source == "stderr" or row[5] != "plain")]
    assert evidence.terminal == (rows[-1][0][4] if rows else "")
    if source == "stderr":
        assert evidence.terminal == ENDS[scenario(config)]
    assert evidence.errors == sum(1 for row, _ in pairs if row[3] == FETCH_ERROR)
    if rows:
        row, line = rows[-1]
        assert evidence.terminal_at == stamps.to_seconds(stamps.parse_ns(row[1]))
        assert evidence.terminal_line == runnerlog.evidence_text(row[1] + b" " + line)
        assert evidence.terminal_line.startswith(row[1].decode())
    else:
        assert (evidence.terminal_at, evidence.terminal_detail, evidence.terminal_line) == \
            (None, "", "")


def test_the_details_are_the_runners_errors():
    def ends(config):
        pairs = stream_lines("terminal/%s-text" % config)
        return runnerlog.scan(docker_logs(pairs), since=None).terminal_detail

    assert ends("gitea-unregistered") == \
        "runner is no longer registered with the server; please register it again"
    assert ends("gitea-stock-declare") == \
        "unknown: rpc error: code = Unauthenticated desc = unregistered runner"
    assert ends("gitea-second-process") == "runner file is already locked by another process"
    assert ends("forgejo-bad-url") == ('invalid configuration: malformed `url` "forge.azrak.io": '
                                       'parse "forge.azrak.io": invalid URI for request')
    assert ends("gitea-bad-url-register") == (
        'unavailable: URL "forge.azrak.io/api/actions/ping.v1.PingService/Ping" missing scheme: '
        'use http:// or https:// (unlike grpc-go)')
    tty = stream_lines("terminal/gitea-second-process-tty")
    assert runnerlog.scan(docker_logs(tty), since=None, source="tty").terminal_detail == \
        'another gitea-runner process is already using ".runner"; each runner process needs ' \
        'its own runner file (runner.file)'


@pytest.mark.parametrize("config", [c for c in SCENARIOS if c.endswith("-text")])
def test_a_journal_reads_only_the_loggers_lines(config):
    """A journal merges stdout and stderr: cobra's plain line is not
    trusted there (a job's output could be it); the logrus lines are."""
    rows = truth(config)
    with open(HERE + "/%s.stderr" % config, "rb") as handle:
        lines = handle.read().split(b"\n")[:-1]
    scan = LogScan(None, source="journal")
    for row, line in zip([r for r in rows if r[0] == "stderr"], lines):
        scan.add(stamps.parse_ns(row[1]), line)
    evidence = scan.close()
    logged = [r for r in rows if r[3] == TERMINAL and r[5] != "plain"]
    assert evidence.terminal == (logged[-1][4] if logged else "")


# ------------------------------------------------------------ the rules


def test_marks_are_counted_in_the_range_only():
    """LogScan's block test: the marks (error level, cobra's line) inside
    data[start:end], none before or after it."""
    data = b"level=error ERRO x\nError: boom level=error\nERRO tail"
    assert terminal.marks(data, 0, len(data)) == 5
    assert terminal.marks(data, 12, data.index(b"\nERRO tail")) == 3  # ERRO, Error:, level=error
    assert terminal.marks(data, 13, 40) == 1  # "Error: " only: the cut ERRO and level=error are not
    assert terminal.marks(b"no marks here", 0, 13) == 0


def test_marked_looks_in_the_range_only():
    data = b"ERRO[t] x\nplain line\nError: boom"
    assert terminal.marked(data, 0, 9)  # a mark at the very start
    assert not terminal.marked(data, 1, data.index(b"Error"))  # cut before and after
    assert terminal.marked(data, 10, len(data))
    assert not terminal.marked(b"level=info msg=x", 0, 16)


@pytest.mark.parametrize("detail, url", [
    ('unavailable: URL "x/api" missing scheme: use http:// or https:// (unlike grpc-go)', True),
    ('malformed `url` "x": parse "x": invalid URI for request', True),
    ('unavailable: Post "ftp://x/api": unsupported protocol scheme "ftp"', True),
    ('unavailable: parse "https://a b/api": invalid character " " in host name', True),
    ("unavailable: dial tcp 10.1.0.10:443: connect: connection refused", False),
    ('unavailable: Post "https://forge/api": EOF', False),
    ("", False),
])
def test_url_error(detail, url):
    assert terminal.url_error(detail) is url


@pytest.mark.parametrize("detail, refusal", [
    ("unauthenticated: unregistered runner", True),
    ("permission_denied: runner is disabled", True),
    ("unknown: rpc error: code = Unauthenticated desc = unregistered runner", True),
    ("unknown: rpc error: code = PermissionDenied desc = x", True),
    ("open /data/.runner: permission denied", False),  # a file, not the server
    ("unavailable: dial unix /var/run/docker.sock: connect: permission denied", False),
    ("unavailable: unexpected EOF", False),
])
def test_refusal_is_the_servers_only(detail, refusal):
    assert terminal.refusal(detail) is refusal


@pytest.mark.parametrize("msg, error, cause", [
    ("fail to invoke Declare", "unavailable: dial tcp: connection refused", None),  # forge down
    ("fail to invoke Declare", "permission_denied: runner is disabled", "unregistered"),
    ("Cannot ping the Gitea instance server", "unavailable: unexpected EOF", None),
    ("Cannot ping the Forgejo instance server", 'parse "a b": invalid URI for request', "bad-url"),
    ("failed to run task", "exit status 1", None),
])
def test_logged(msg, error, cause):
    assert terminal.logged(msg, error) == cause


@pytest.mark.parametrize("text, cause", [
    ("Error: runner is no longer registered with the server; please register it again",
     "unregistered"),
    ("Error: runner file is already locked by another process", "second-process"),
    ("Error: open .runner: permission denied", None),
    ("Error: unknown command \"deamon\" for \"gitea-runner\"", None),
    ("Error: unauthenticated: unregistered runner", "unregistered"),
    ("runner file is already locked by another process", None),
])
def test_plain(text, cause):
    assert terminal.plain(text) == cause


def test_a_job_cannot_fake_a_terminal_line():
    """Job output relayed at info or trace, or on a TTY without logrus's
    colours, never reads as one."""
    for line in (b'time="t" level=info msg="fail to invoke Declare" error="unauthenticated: x"',
                 b'time="t" level=trace msg="Error: runner file is already locked by another process"',
                 b"ERRO[2026-06-29T10:00:00Z] another gitea-runner process is already using x",
                 b"Error: runner file is already locked by another process"):
        assert classify(line, tty=True, plain=False)[0] == OTHER, line
    assert classify(b"Error: runner file is already locked by another process")[0] == OTHER


def stamp(sec):
    return stamps.format_ns((T0 + sec) * 10 ** 9)


def error(sec):
    return stamp(sec) + b' time="t" level=error msg="failed to fetch task" error="unavailable: EOF"\n'


DECLARE = b' time="t" level=error msg="fail to invoke Declare" error="unauthenticated: unregistered runner"\n'


@pytest.mark.parametrize("fast", [True, False])
def test_a_terminal_line_in_a_flood_is_found(fast):
    """The block regex counts a flood of fetch errors at once; a terminal
    line in the same block (an error-level line of another message) makes
    it judge the block line by line."""
    flood = b"".join(error(i) for i in range(40))
    data = flood + stamp(40) + DECLARE + b"".join(error(41 + i) for i in range(40))
    evidence = runnerlog.scan(data, since=None, fast=fast)
    assert (evidence.errors, evidence.terminal, evidence.terminal_at) == (80, "unregistered", T0 + 40)
    data = flood + stamp(40) + b" Error: runner file is already locked by another process\n" + flood
    assert runnerlog.scan(data, since=None, fast=fast).terminal == "second-process"
    # a pure flood: no other line
    assert runnerlog.scan(flood, since=None, fast=fast).terminal == ""


def test_a_terminal_line_before_the_window_is_not_seen():
    data = stamp(0) + DECLARE + error(10)
    assert runnerlog.scan(data, since=T0 + 5).terminal == ""
    assert runnerlog.scan(data, since=T0).terminal == "unregistered"



def test_a_terminal_line_without_an_error_field_gives_its_message():
    """logrus's TTY layout pads the message and puts the fields after it,
    two spaces on: with no `error=` the detail is the message alone."""
    message = 'another gitea-runner process is already using ".runner"; each runner process needs ' \
              'its own runner file (runner.file)'
    line = ("\x1b[31mERRO\x1b[0m[2026-06-29T10:00:00Z] " + message
            + '  \x1b[31mfile\x1b[0m=".runner"').encode()
    assert classify(line, tty=True) == (TERMINAL, "second-process", message)


def test_of_terminal_lines_of_one_time_the_later_is_the_newest():
    data = (stamp(0) + b' time="t" level=error msg="another gitea-runner process is already using x"\n'
            + stamp(0) + DECLARE)
    evidence = runnerlog.scan(data, since=None)
    assert (evidence.terminal, evidence.terminal_at) == ("unregistered", T0)


def test_the_terminal_line_kept_is_cut_before_it_is_cleaned():
    """Of a terminal line at most 4 * EVIDENCE_LINE bytes are kept (as of a
    fetch error's), control characters removed only then: a line padded
    with them shows what came before them."""
    line = (stamp(0) + b" Error: unauthenticated: unregistered runner" + b"\a" * 4100 + b" after\n")
    evidence = runnerlog.scan(line, since=None)
    assert evidence.terminal == "unregistered"
    assert evidence.terminal_line == "2026-06-29T10:00:00.000000000Z Error: unauthenticated: " \
        "unregistered runner"


# ------------------------------------------------------------ tails


def test_tail_of_a_crash_loops_stream():
    """The last lines of several runs (Docker's time in front): the cause
    found, the last SHOWN kept."""
    config = "terminal/gitea-unregistered-declare-text"
    run = docker_logs(stream_lines(config))
    got = tail.of_stream(run * 4, "stderr")
    assert (got.cause, got.detail) == ("unregistered", "unauthenticated: unregistered runner")
    assert len(got.lines) == tail.SHOWN
    assert got.lines[-1].endswith(" Error: unauthenticated: unregistered runner")
    assert got.lines[-1].startswith("2026-06-29T10:00:00.310000000Z")
    tty = tail.of_stream(docker_logs(stream_lines("terminal/gitea-unregistered-declare-tty")), "tty")
    assert tty.cause == "unregistered" and not any("\r" in line for line in tty.lines)
    assert tail.of_stream(b"", "stderr") == tail.Tail()
    assert tail.of_stream(error(1), "stderr").lines == (error(1).decode().rstrip("\n"),)


def test_tail_of_journal_entries():
    rows = [r for r in truth("terminal/gitea-second-process-text") if r[0] == "stderr"]
    with open(HERE + "/terminal/gitea-second-process-text.stderr",
              "rb") as handle:
        lines = handle.read().split(b"\n")[:-1]
    data = b"".join(json.dumps({"__REALTIME_TIMESTAMP": str(stamps.parse_ns(r[1]) // 1000),
                                "MESSAGE": line.decode()}).encode() + b"\n"
                    for r, line in zip(rows, lines)) + b"not json\n"
    got = tail.of_journal(data)
    assert got.cause == "second-process"  # the logrus line: cobra's is not trusted in a journal
    assert got.lines[-1] == "2026-06-29T10:00:00.020000000Z Error: runner file is already " \
        "locked by another process"
    assert len(got.lines) == 3


def test_tail_of_a_terminals_stream_trusts_only_logrus_lines():
    """In a terminal's stream (source "tty") cobra's plain line and an
    uncoloured error line may be a job's: no cause; on stderr they are the
    runner's."""
    for line in (b" Error: runner file is already locked by another process\n",
                 b' time="t" level=error msg="another gitea-runner process is already using x"\n'):
        assert tail.of_stream(stamp(0) + line, "tty").cause == ""
        assert tail.of_stream(stamp(0) + line, "stderr").cause == "second-process"


def test_tail_of_journal_trusts_no_plain_line_and_skips_what_is_no_entry():
    """A journal merges stdout and stderr: cobra's plain line alone is no
    cause.  A line that is no entry is left out wherever it is, and only
    the last run (from `since`) is judged."""
    def entry(sec, message):
        return json.dumps({"__REALTIME_TIMESTAMP": str((T0 + sec) * 10 ** 6),
                           "MESSAGE": message}).encode() + b"\n"
    plain = entry(0, "Error: runner file is already locked by another process")
    got = tail.of_journal(plain)
    assert (got.cause, got.lines) == ("", ("2026-06-29T10:00:00.000000000Z Error: runner file is "
                                           "already locked by another process",))
    declare = entry(0, DECLARE.strip().decode())
    data = b"not json\n" + declare + b"{}\n" + entry(10, "boom")
    got = tail.of_journal(data)
    assert (got.cause, got.detail) == ("unregistered", "unauthenticated: unregistered runner")
    assert got.lines == ("2026-06-29T10:00:00.000000000Z" + DECLARE.decode().rstrip("\n"),
                         "2026-06-29T10:00:10.000000000Z boom")
    assert tail.of_journal(data, since=T0 + 5).cause == ""
    assert tail.of_journal(data, since=T0).cause == "unregistered"


def test_tail_of_entries_without_a_time_shows_the_message_alone():
    got = tail.of_entries([(None, b"boom"), (stamps.parse_ns(stamp(1)), b"bang")])
    assert got.lines == ("boom", "2026-06-29T10:00:01.000000000Z bang")


def test_the_tail_buffer_is_bounded():
    buffer = tail.Buffer()
    assert buffer.data == b""
    buffer.feed(bytearray(b"ab"))
    assert buffer.data == b"ab"
    for _ in range(100):
        buffer.feed(b"x" * 10000)
    assert len(buffer.data) == tail.MAX_BYTES


def test_the_cause_comes_from_the_last_run_only():
    """A crash loop's tail may reach back into an earlier run; its cause
    is read from the last run (from its start) only, its lines shown all."""
    earlier = stamp(0) + DECLARE
    last = stamp(10) + b" boom\n"
    got = tail.of_stream(earlier + last, "stderr", since=T0 + 8)
    assert (got.cause, got.lines) == ("", (earlier.decode().strip(), last.decode().strip()))
    assert tail.of_stream(earlier + last, "stderr", since=T0).cause == "unregistered"
    assert tail.of_stream(earlier + last, "stderr").cause == "unregistered"
    entries = [(stamps.parse_ns(stamp(0)), DECLARE.strip()), (stamps.parse_ns(stamp(10)), b"boom")]
    assert tail.of_entries(entries, since=T0 + 8).cause == ""
    assert tail.of_entries(entries, since=T0 + 0).cause == "unregistered"


def test_a_stock_gitea_that_no_longer_knows_the_runner_is_refused_not_restarted():
    """Against a stock Gitea the poller's own check never fires (500
    `unknown`): the runner polls on, backing off to fetch_interval_max,
    every poll refused.  Its real line, at the capped cadence for 4
    minutes: the polling rule holds and the refusal decides: refused, no
    restart; before `sustain` it is not called wedged either."""
    from forgejo_runner_guard.config.config import RunnerConfig
    from forgejo_runner_guard.logs.failures import poll_model
    from forgejo_runner_guard.watchdog.decide import decide, exit_status

    [(row, line)] = [(r, l) for r, l in stream_lines("terminal/gitea-stock-unregistered-text")
                     if r[3] == FETCH_ERROR][-1:]
    cfg = RunnerConfig(flavour="gitea", fetch_interval=2.0, fetch_interval_max=5.0,
                       fetch_timeout=5.0)
    times = [T0 + 5 * k for k in range(49)]  # 0 .. 240 s, one every 5 s
    data = b"".join(stamps.format_ns(t * 10 ** 9) + b" " + line + b"\n" for t in times)
    evidence = runnerlog.scan(data, since=T0 - 60, model=poll_model(cfg))
    assert (evidence.errors, evidence.terminal, evidence.newest_class) == (49, "", "refused")
    d = decide(evidence, T0 + 241, cfg, [], [])
    assert (d.kind, d.restart, d.rule, exit_status(d)) == ("refused", False, "polling+threshold", 1)
    early = runnerlog.scan(data[:data.index(stamps.format_ns((T0 + 60) * 10 ** 9))], since=T0 - 60,
                           model=poll_model(cfg))
    assert decide(early, T0 + 56, cfg, [], []).kind == "healthy"
