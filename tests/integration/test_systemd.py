"""systemd.py without systemd: the journal-JSON adapter, `systemctl show`
parsing, error mapping, and the call machinery's deadline (against a
stand-in journalctl that hangs).  Under a real systemd: test_package.py
(the systemd backend of the watchdog, in the booted container).
"""

import json
import os
import stat
import time

import pytest

from forgejo_runner_guard.system import calls
from forgejo_runner_guard.logs import failures, runnerlog, stamps
from forgejo_runner_guard.logs import journal as journal_mod
from forgejo_runner_guard.system import systemctl
from forgejo_runner_guard.report import GuardError

T0 = 1782727200  # 2026-06-29T10:00:00Z
ERROR = 'time="2026-06-29T10:00:02Z" level=error msg="failed to fetch task" error="unavailable: unexpected EOF"'
REFUSED = ('time="2026-06-29T10:00:02Z" level=error msg="failed to fetch task" '
           'error="unknown: rpc error: code = Unauthenticated desc = unregistered runner"')
TTY = b'\x1b[31mERRO\x1b[0m[2026-06-29T10:00:02Z] failed to fetch task      \x1b[31merror\x1b[0m="unavailable: unexpected EOF"'
JOB = 'time="2026-06-29T10:00:02Z" level=info msg="task 42 repo is owner/repo https://data.forgejo.org https://forge.azrak.io"'
INJECT = 'time="2026-06-29T10:00:02Z" level=info msg="[ci/build]   | failed to fetch task"'
INFO = 'time="2026-06-29T10:00:02Z" level=info msg="[poller 0] launched"'


def entry(usec, message, compact=True, **extra):
    """One line of `journalctl -o json --output-fields=MESSAGE` (as systemd
    252 prints it: a byte array for a MESSAGE that is not printable UTF-8)."""
    if isinstance(message, bytes):
        try:
            text = message.decode("utf-8")
            printable = all(c >= " " or c == "\t" for c in text)
        except UnicodeDecodeError:
            printable = False
        message = text if printable else list(message)
    doc = {"__CURSOR": "s=1;i=%x" % usec, "__REALTIME_TIMESTAMP": str(usec),
           "__MONOTONIC_TIMESTAMP": "5", "_BOOT_ID": "b" * 32, "MESSAGE": message}
    doc.update(extra)
    if compact:
        return json.dumps(doc, separators=(",", ":")).encode()
    return json.dumps(doc).encode()


def journal(*entries):
    return b"".join(e + b"\n" for e in entries)


def sec(seconds):
    return int(seconds * 1e6)


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


# ------------------------------------------------------------ systemctl show

SHOW = """\
Id=forgejo-runner.service
LoadState=loaded
ActiveState=active
SubState=running
Result=success
InvocationID=653aab686d904056887a129153381f82
MainPID=51
ExecMainStartTimestamp=Mon 2026-06-29 10:00:02.123456 UTC
InactiveEnterTimestamp=
StandardOutput=journal
StandardError=inherit
"""


def test_parse_show():
    st = systemctl.parse_show(SHOW, "forgejo-runner")
    assert st.name == "forgejo-runner.service" and st.running and st.to_journal
    assert st.invocation_id == "653aab686d904056887a129153381f82" and st.main_pid == 51
    assert st.started_at == pytest.approx(T0 + 2.123456, abs=1e-6)
    assert st.stopped_at is None
    assert st.status == "active (running)"


@pytest.mark.parametrize("change, running, to_journal", [
    ("ActiveState=failed", False, True),
    ("InvocationID=", False, True),
    ("StandardError=append:/var/log/runner.log", True, False),
    ("StandardError=journal+console", True, True),
])
def test_parse_show_states(change, running, to_journal):
    key = change.split("=")[0]
    text = "\n".join(line for line in SHOW.splitlines() if not line.startswith(key + "=")) + "\n" + change
    st = systemctl.parse_show(text, "forgejo-runner.service")
    assert (st.running, st.to_journal) == (running, to_journal)


@pytest.mark.parametrize("load", ["not-found", "masked", "bad-setting"])
def test_parse_show_unit_missing(load):
    with pytest.raises(systemctl.UnitMissing) as err:
        systemctl.parse_show(SHOW.replace("LoadState=loaded", "LoadState=" + load), "x.service")
    assert "forgejo-runner.service" in str(err.value) and "\n" not in str(err.value)


def test_parse_show_garbage():
    with pytest.raises(systemctl.SystemdError):
        systemctl.parse_show("Failed to whatever\n", "x.service")


def test_parse_show_time():
    assert systemctl.parse_show_time("Mon 2026-06-29 10:00:02 UTC") == T0 + 2
    assert systemctl.parse_show_time("") is None
    assert systemctl.parse_show_time("n/a") is None


@pytest.mark.parametrize("text, seconds", [
    ("1min 30s", 90.0), ("10min", 600.0), ("500ms", 0.5), ("1h 5min", 3900.0), ("2s 250ms", 2.25),
    ("infinity", None), ("", None), ("soon", None), ("5min later", None),
])
def test_parse_timespan(text, seconds):
    # TimeoutStopUSec as `systemctl show` prints it (format_timespan)
    assert systemctl.parse_timespan(text) == seconds


def test_parse_show_timeout_stop():
    assert systemctl.parse_show(SHOW + "TimeoutStopUSec=1min 30s\n", "x").timeout_stop == 90.0
    assert systemctl.parse_show(SHOW + "TimeoutStopUSec=infinity\n", "x").timeout_stop is None


def test_killed_message_only_when_the_grace_period_ran_out():
    from forgejo_runner_guard.runners import restart

    assert restart.killed_message("r", 100.0, 109.99, 10) is None
    assert restart.killed_message("r", 100.0, None, 10) is None
    assert restart.killed_message("r", None, 200.0, 10) is None
    text = restart.killed_message("r", 100.0, 110.2, 10)
    assert text.startswith("restarted, but r did not stop within 10s of SIGTERM: it was "
                           "killed (SIGKILL) 10s after the restart began")


def test_error_mapping_is_one_line_and_typed():
    cases = [
        ("System has not been booted with systemd as init system (PID 1). Can't operate.", systemctl.ManagerUnreachable),
        ("Failed to connect to bus: No such file or directory", systemctl.ManagerUnreachable),
        ("Failed to restart nosuch.service: Unit nosuch.service not found.", systemctl.UnitMissing),
        ("Job for x.service failed because the control process exited with error code.", systemctl.SystemdError),
    ]
    for message, kind in cases:
        err = systemctl._error("systemctl", "restart", "x.service", message, 1)
        assert type(err) is kind and "\n" not in str(err), message
    err = systemctl._error("journalctl", "log of", "x.service",
                         "No journal files were opened due to insufficient permissions.", 1)
    assert isinstance(err, systemctl.JournalUnreadable)
    assert systemctl._one_line("a\n\n  b  c\nd\n") == "a; b c"


@pytest.mark.parametrize("name", ["", "-x.service", "a b.service", "x.service;rm"])
def test_unit_names_checked(name):
    with pytest.raises(systemctl.SystemdError):
        systemctl.check_unit_name(name)


# ------------------------------------------------------------ calls, through sh


@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    """A PATH directory for stand-in systemctl/journalctl scripts."""
    monkeypatch.setenv("PATH", "%s:%s" % (tmp_path, os.environ.get("PATH", "")))
    monkeypatch.setattr(calls, "_commands", {})

    def make(name, script):
        path = tmp_path / name
        path.write_text("#!/bin/sh\n" + script)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)

    return make


def test_journal_streams_through_sh_in_chunks(fake_bin, tmp_path):
    data = journal(*[entry(sec(T0 + i), ERROR) for i in range(3000)])
    (tmp_path / "journal.json").write_bytes(data)
    fake_bin("journalctl", 'echo "$@" >%s/args; cat %s/journal.json\n' % (tmp_path, tmp_path))
    scan = journal_mod.JournalScan(runnerlog.LogScan(T0 + 1000, source="journal"))
    systemctl.Systemd(5).journal("forgejo-runner.service", "a" * 32, T0 + 1000, scan.feed)
    assert scan.close().errors == 2000
    args = (tmp_path / "args").read_text().split()
    assert "--output=json" in args and "--all" in args and "--since=@%d.000000" % (T0 + 1000) in args
    assert "_SYSTEMD_INVOCATION_ID=" + "a" * 32 in args and "_SYSTEMD_UNIT=forgejo-runner.service" in args


def test_hanging_journalctl_is_killed_at_its_deadline(fake_bin):
    fake_bin("journalctl", "exec sleep 30\n")
    start = time.monotonic()
    with pytest.raises(systemctl.SystemdTimeout) as err:
        systemctl.Systemd(0.5).journal("forgejo-runner.service", "a" * 32, None, lambda chunk: None)
    assert time.monotonic() - start < 3
    assert "timed out" in str(err.value) and "\n" not in str(err.value)


def test_show_and_restart_through_sh(fake_bin):
    fake_bin("systemctl", 'if [ "$1" = show ]; then cat <<EOF\n%sEOF\nelse echo "Failed to restart $3: Unit $3 not found." >&2; exit 5; fi\n' % SHOW)
    manager = systemctl.Systemd(5)
    assert manager.show("forgejo-runner.service").invocation_id == "653aab686d904056887a129153381f82"
    with pytest.raises(systemctl.UnitMissing) as err:
        manager.restart("nosuch.service", 10)
    assert "nosuch.service" in str(err.value)
    assert isinstance(err.value, GuardError) and err.value.exit_code == 1


def test_no_systemctl_is_one_line(fake_bin, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(systemctl.ManagerUnreachable) as err:
        systemctl.Systemd(1).show("forgejo-runner.service")
    assert "systemctl: command not found" in str(err.value)


def test_journal_order_breaks_ties_within_a_microsecond():
    # journald stamps all lines of one read with one time: the job start
    # logged after 150 errors is after them, by the journal's order.
    same = sec(T0 + 5)
    ev = journal_mod.scan_journal(journal(*([entry(same, ERROR)] * 150 + [entry(same, JOB)])), T0)
    assert ev.errors == 150 and ev.last_job_start > ev.newest_error
    # each tie moves on by one microsecond: times stay close to the journal's
    assert ev.newest_error == pytest.approx(T0 + 5 + 149e-6, abs=1e-6)
    assert ev.last_job_start == pytest.approx(T0 + 5 + 150e-6, abs=1e-6)
    ev = journal_mod.scan_journal(journal(entry(same, JOB), entry(same, ERROR)), T0)
    assert ev.last_job_start < ev.newest_error
    # a later microsecond is taken as it is
    ev = journal_mod.scan_journal(journal(entry(same, ERROR), entry(same, ERROR), entry(same + 50, JOB)), T0)
    assert ev.last_job_start == pytest.approx(T0 + 5 + 50e-6, abs=1e-6)


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
