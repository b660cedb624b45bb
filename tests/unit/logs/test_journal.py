"""logs/journal: `journalctl -o json` entries into a LogScan.

Pure unit tests (no journal, no systemd): they run on Python 3.9 too.
The lines are what systemd 252's journalctl prints (helpers/journal.py)."""

import json

import pytest

from helpers.journal import entry, journal, sec
from forgejo_runner_guard.logs import failures, runnerlog, stamps
from forgejo_runner_guard.logs import journal as journal_mod

T0 = 1782727200  # 2026-06-29T10:00:00Z
ERROR = 'time="2026-06-29T10:00:02Z" level=error msg="failed to fetch task" error="unavailable: unexpected EOF"'
REFUSED = ('time="2026-06-29T10:00:02Z" level=error msg="failed to fetch task" '
           'error="unknown: rpc error: code = Unauthenticated desc = unregistered runner"')
TTY = b'\x1b[31mERRO\x1b[0m[2026-06-29T10:00:02Z] failed to fetch task      \x1b[31merror\x1b[0m="unavailable: unexpected EOF"'
JOB = 'time="2026-06-29T10:00:02Z" level=info msg="task 42 repo is owner/repo https://data.forgejo.org https://forge.azrak.io"'
INJECT = 'time="2026-06-29T10:00:02Z" level=info msg="[ci/build]   | failed to fetch task"'
INFO = 'time="2026-06-29T10:00:02Z" level=info msg="[poller 0] launched"'


# ------------------------------------------------------------ one entry


def test_entry_lines_string_bytes_and_repeated_field():
    assert journal_mod.entry_lines(entry(sec(T0), ERROR)) == (T0 * 10 ** 9, [ERROR.encode()])
    ns, messages = journal_mod.entry_lines(entry(sec(T0) + 7, TTY))
    assert ns == T0 * 10 ** 9 + 7000 and messages == [TTY]
    assert b"[27," in entry(sec(T0), TTY)  # really the array form
    bad = b"runner \xff said"
    assert journal_mod.entry_lines(entry(1, bad))[1] == [bad]
    # a field present twice: an array of values, each a string or a byte array
    two = json.dumps({"__REALTIME_TIMESTAMP": "1", "MESSAGE": [ERROR, list(b"x\xffy")]})
    assert journal_mod.entry_lines(two.encode())[1] == [ERROR.encode(), b"x\xffy"]
    # no MESSAGE, no time
    assert journal_mod.entry_lines(b'{"__REALTIME_TIMESTAMP":"12"}') == (12000, [])
    assert journal_mod.entry_lines(b'{"MESSAGE":"m"}') == (None, [b"m"])


@pytest.mark.parametrize("line", [b"[1,2]", b'{"MESSAGE":5}', b'{"MESSAGE":[300]}', b"{", b'{"MESSAGE":[{}]}'])
def test_entry_lines_rejects_what_is_not_an_entry(line):
    with pytest.raises(ValueError):
        journal_mod.entry_lines(line)


# ------------------------------------------------------------ the stream


def test_journal_scan_counts_fetch_errors_in_every_format_and_nothing_else():
    data = journal(
        entry(sec(T0 + 1), INFO),
        entry(sec(T0 + 2), ERROR),
        entry(sec(T0 + 3), TTY),  # ANSI codes: a byte array in JSON
        entry(sec(T0 + 4), INJECT),  # job output: never counts
        entry(sec(T0 + 5), 'level=debug msg="failed to fetch task"'),
        entry(sec(T0 + 6), ERROR, compact=False),  # spaces around ":" too
        entry(sec(T0 + 7), REFUSED),
    )
    ev = journal_mod.scan_journal(data, T0)
    assert ev.errors == 4
    assert ev.newest_error == T0 + 7
    assert failures.refused(ev.newest_error_detail)
    assert ev.lines == 7 and ev.untimed == 0 and ev.last_job_start is None


def test_journal_scan_times_come_from_the_journal_not_the_text():
    # The text says 10:00:02; the journal says an hour later: the journal wins.
    ev = journal_mod.scan_journal(journal(entry(sec(T0 + 3600), ERROR)), T0 + 3000)
    assert ev.errors == 1 and ev.newest_error == T0 + 3600
    ev = journal_mod.scan_journal(journal(entry(sec(T0 + 60), ERROR)), T0 + 3000)
    assert ev.errors == 0 and ev.newest_error is None


def test_journal_scan_window_edge_to_the_microsecond():
    since = T0 + 100.25
    data = journal(entry(sec(since) - 1, ERROR), entry(sec(since), ERROR), entry(sec(since) + 1, ERROR))
    assert journal_mod.scan_journal(data, since).errors == 2


def test_journal_scan_job_starts_and_claims():
    data = journal(entry(sec(T0 + 1), ERROR), entry(sec(T0 + 2), JOB))
    ev = journal_mod.scan_journal(data, T0)
    assert ev.claimed_tasks == frozenset({42})
    assert ev.last_job_start == T0 + 2 > ev.newest_error


def test_journal_scan_entry_without_time_is_untimed_not_counted():
    data = journal(b'{"MESSAGE":%s}' % json.dumps(ERROR).encode())
    ev = journal_mod.scan_journal(data, T0)
    assert ev.errors == 0 and ev.untimed == 1


def test_journal_scan_split_anywhere_gives_the_same_evidence():
    data = journal(*[entry(sec(T0 + i), (ERROR, TTY, INFO, JOB, INJECT)[i % 5]) for i in range(60)])
    whole = journal_mod.scan_journal(data, T0 + 10)
    assert whole.errors == 20  # ERROR and TTY from second 10 on
    for size in (1, 2, 3, 7, 64, 1000, len(data)):
        scan = journal_mod.JournalScan(runnerlog.LogScan(T0 + 10, source="journal"))
        for i in range(0, len(data), size):
            scan.feed(data[i:i + size])
        assert scan.close() == whole, size
        assert scan.bad == 0 and scan.entries == 60


def test_journal_scan_without_final_newline():
    ev = journal_mod.scan_journal(entry(sec(T0), ERROR), T0)
    assert ev.errors == 1


def test_journal_scan_counts_bad_lines_and_skips_an_overlong_entry(monkeypatch):
    monkeypatch.setattr(journal_mod, "MAX_ENTRY", 400)
    long_line = entry(sec(T0), ERROR + " " + "x" * 1000)
    data = journal(b"-- not json --", b'{"MESSAGE": "fetch task', long_line, entry(sec(T0 + 1), ERROR))
    for size in (5, len(data)):
        scan = journal_mod.JournalScan(runnerlog.LogScan(T0, source="journal"))
        for i in range(0, len(data), size):
            scan.feed(data[i:i + size])
        ev = scan.close()
        assert ev.errors == 1 and scan.bad == 3, size


def test_journal_scan_agrees_with_the_docker_scanner():
    # The same lines, as `docker logs --timestamps` would give them.
    messages = [ERROR, INFO, JOB, ERROR, INJECT, TTY.decode(), REFUSED]
    times = [T0 + i * 1.5 for i in range(len(messages))]
    docker_text = b"".join(
        stamps.format_ns(int(round(t * 1e9))) + b" " + m.encode() + b"\n" for t, m in zip(times, messages))
    data = journal(*[entry(sec(t), m.encode()) for t, m in zip(times, messages)])
    assert journal_mod.scan_journal(data, T0 + 1) == runnerlog.scan(docker_text, T0 + 1, source="journal")


def test_journal_order_breaks_ties_within_a_microsecond():
    # journald stamps all lines of one read with one time: the job start
    # logged after 150 errors is after them, by the journal's order.
    same = sec(T0 + 5)
    ev = journal_mod.scan_journal(journal(*([entry(same, ERROR)] * 150 + [entry(same, JOB)])), T0)
    assert ev.errors == 150 and ev.last_job_start > ev.newest_error
    # each tie moves on by one microsecond: times stay close to the journal's
    assert ev.newest_error == stamps.to_seconds(same * 1000 + 149 * 1000)
    assert ev.last_job_start == stamps.to_seconds(same * 1000 + 150 * 1000)
    ev = journal_mod.scan_journal(journal(entry(same, JOB), entry(same, ERROR)), T0)
    assert ev.last_job_start < ev.newest_error
    # a later microsecond is taken as it is
    ev = journal_mod.scan_journal(journal(entry(same, ERROR), entry(same, ERROR), entry(same + 50, JOB)), T0)
    assert ev.last_job_start == stamps.to_seconds((same + 50) * 1000)


# ------------------------------------------------------------ what the journal's prefilter must let through

GITEA_UNREGISTERED = ('time="2026-06-29T10:00:02Z" level=error msg="server rejected the runner as '
                      'unregistered, stopping poller" error="unauthenticated: unregistered runner"')
DEBUG = 'time="2026-06-29T10:00:02Z" level=debug msg="fetching tasks"'
JOB_OUTPUT = "[ci/build]   | hello"


def test_journal_counts_gitea_failure_lines_not_only_fetch_task():
    ev = journal_mod.scan_journal(journal(entry(sec(T0 + 1), GITEA_UNREGISTERED)), T0)
    assert ev.terminal == "unregistered" and ev.terminal_at == T0 + 1, ev
    assert ev.errors == 0 and failures.refused(ev.terminal_detail), ev


def test_journal_sees_the_runners_debug_level_and_job_output():
    ev = journal_mod.scan_journal(journal(entry(sec(T0 + 1), DEBUG)), T0)
    assert ev.level == "debug" and "log level debug" in ev.ambiguous, ev
    ev = journal_mod.scan_journal(journal(entry(sec(T0 + 1), JOB_OUTPUT), entry(sec(T0 + 2), INFO)), T0)
    assert "job output" in ev.ambiguous, ev
    ev = journal_mod.scan_journal(journal(entry(sec(T0 + 1), INFO)), T0)
    assert ev.ambiguous == "" and ev.lines == 1, ev


# ------------------------------------------------------------ every branch, exactly


def test_entry_lines_of_text_and_of_bytes_that_are_not_utf8():
    assert journal_mod.entry_lines('{"MESSAGE":"m","__REALTIME_TIMESTAMP":"5"}') == (5000, [b"m"])
    # a raw byte that is not UTF-8 inside a JSON string comes back as it was
    assert journal_mod.entry_lines(b'{"MESSAGE":"a\xffb"}') == (None, [b"a\xffb"])
    assert journal_mod.entry_lines(b'{"MESSAGE":[0,65,255]}') == (None, [b"\x00A\xff"])
    assert journal_mod.entry_lines(b'{"MESSAGE":[]}') == (None, [b""])
    assert journal_mod.entry_lines(b'{"MESSAGE":null,"__REALTIME_TIMESTAMP":12}') == (None, [])
    assert journal_mod.entry_lines(b'{"__REALTIME_TIMESTAMP":"12a"}') == (None, [])


@pytest.mark.parametrize("line, message", [
    (b"[1,2]", "not an object"),
    (b'{"MESSAGE":5}', "MESSAGE 5"),
    (b'{"MESSAGE":{"a":1}}', "MESSAGE {'a': 1}"),
    (b'{"MESSAGE":[256]}', "MESSAGE item 256"),
    (b'{"MESSAGE":[-1]}', "MESSAGE item -1"),
    (b'{"MESSAGE":[true]}', "MESSAGE item True"),
    (b'{"MESSAGE":["a",5]}', "MESSAGE item 5"),
    (b'{"MESSAGE":[[1.5]]}', "MESSAGE item 1.5"),
])
def test_entry_lines_says_what_is_wrong(line, message):
    with pytest.raises(ValueError) as info:
        journal_mod.entry_lines(line)
    assert str(info.value) == message


def times(*entries_at):
    """The journal times (us) of entries, error lines except a job start at
    the end -> the job start's time after _order (seconds)."""
    entries = [entry(t, ERROR) for t in entries_at[:-1]] + [entry(entries_at[-1], JOB)]
    return journal_mod.scan_journal(journal(*entries), None).last_job_start


def test_ties_move_on_by_a_microsecond_and_only_ties():
    t = sec(T0 + 5)
    us = stamps.to_seconds
    assert times(t, t - 1) == us((t - 1) * 1000)  # one us earlier, no tie before: as it is
    assert times(t, t, t) == us((t + 2) * 1000)  # the third of one us: 2 us on
    assert times(t, t, t, t - 1) == us((t - 1) * 1000)  # an earlier us than the ties: as it is
    assert times(t, t + 5, t + 4) == us((t + 4) * 1000)  # a tie ended: no more moving on
    # 1001 entries of one microsecond, then one a microsecond before them
    assert times(*([t] * 1001 + [t - 1])) == us((t - 1) * 1000)


def test_an_entry_of_exactly_max_entry_bytes_is_read(monkeypatch):
    line = entry(sec(T0 + 1), ERROR)
    monkeypatch.setattr(journal_mod, "MAX_ENTRY", len(line))
    for size in (len(line) + 1, 7):  # whole, and in pieces (the carry)
        scan = journal_mod.JournalScan(runnerlog.LogScan(T0, source="journal"))
        data = journal(line, entry(sec(T0 + 2), ERROR + " " + "x" * 10))
        for i in range(0, len(data), size):
            scan.feed(memoryview(data[i:i + size]))
        assert (scan.close().errors, scan.bad, scan.entries) == (1, 1, 1), size


def test_what_cannot_matter_is_counted_and_what_is_no_entry_is_bad():
    data = journal(b'  {"MESSAGE":"hello"}', b"not json", b"[1]", b"", b'{"OTHER":"fetch task","__REALTIME_'
                   b'TIMESTAMP":"5"}', b'{"MESSAGE":"fetch task",', entry(sec(T0 + 1), ERROR))
    scan = journal_mod.JournalScan(runnerlog.LogScan(T0, source="journal"))
    scan.feed(bytearray(data))
    evidence = scan.close()
    # entries: all but the empty line; bad: the two that are no JSON object and the broken one
    assert (scan.entries, scan.bad, evidence.lines, evidence.errors) == (6, 3, 3, 1)
    assert scan.close() == evidence and scan.bad == 3  # closing again changes nothing
    last = journal_mod.JournalScan(runnerlog.LogScan(T0, source="journal"))
    last.feed(entry(sec(T0 + 1), ERROR) + b"\n" + entry(sec(T0 + 2), ERROR))  # no newline at the end
    assert last.close().errors == 2 and last.close().errors == 2 and (last.bad, last.entries) == (0, 2)
