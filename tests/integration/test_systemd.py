"""systemd.py without systemd: `systemctl show` parsing, error mapping, the
journal streamed through sh, and the call machinery's deadline (against a
stand-in journalctl that hangs); the journal-JSON reader itself:
tests/unit/logs/test_journal.py.  Under a real systemd: test_package.py
(the systemd backend of the watchdog, in the booted container).
"""

import os
import stat
import time

import pytest

from helpers.journal import entry, journal, sec
from forgejo_runner_guard.system import calls
from forgejo_runner_guard.logs import runnerlog
from forgejo_runner_guard.logs import journal as journal_mod
from forgejo_runner_guard.system import systemctl
from forgejo_runner_guard.report import GuardError

T0 = 1782727200  # 2026-06-29T10:00:00Z
ERROR = 'time="2026-06-29T10:00:02Z" level=error msg="failed to fetch task" error="unavailable: unexpected EOF"'


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
