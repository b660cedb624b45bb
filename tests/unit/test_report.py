"""Log lines: plain on a terminal or file, syslog priorities on the journal."""

import io
import os

import pytest

from forgejo_runner_guard import report
from forgejo_runner_guard.report import human
from forgejo_runner_guard.cli import run


def journal_env(handle):
    st = os.fstat(handle.fileno())
    return {"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)}


def test_plain_lines_carry_program_and_level():
    out = io.StringIO()
    rep = report.Reporter("prog", stream=out, journal=False)
    rep.error("e1")
    rep.warning("w1")
    rep.info("i1")
    rep.debug("d1")
    assert out.getvalue() == "prog: error: e1\nprog: warning: w1\nprog: i1\n"


def test_verbosity_levels():
    out = io.StringIO()
    quiet = report.Reporter("p", verbosity=-1, stream=out, journal=False)
    quiet.info("hidden")
    quiet.warning("shown")
    verbose = report.Reporter("p", verbosity=1, stream=out, journal=False)
    verbose.debug("detail")
    assert out.getvalue() == "p: warning: shown\np: detail\n"


def test_journal_stream_detected_only_for_the_same_inode(tmp_path):
    with open(tmp_path / "a", "w") as a, open(tmp_path / "b", "w") as b:
        assert report.stream_is_journal(a, journal_env(a))
        assert not report.stream_is_journal(b, journal_env(a))
        assert not report.stream_is_journal(a, {})
        assert not report.stream_is_journal(a, {"JOURNAL_STREAM": "garbage"})


def test_journal_lines_get_priorities(tmp_path, monkeypatch):
    with open(tmp_path / "journal", "w") as stream:
        monkeypatch.setenv("JOURNAL_STREAM", journal_env(stream)["JOURNAL_STREAM"])
        rep = report.Reporter("prog", stream=stream)
        rep.error("bad\nsecond line")
        rep.warning("careful")
        rep.info("fine")
    assert (tmp_path / "journal").read_text() == "<3>bad\n<3>second line\n<4>careful\n<6>fine\n"


def test_run_maps_expected_errors_to_one_line_and_exit_code(capsys):
    def body(argv, reporter):
        raise report.UsageError("--pin x: not an address")

    assert run("prog", body, []) == report.EXIT_USAGE
    err = capsys.readouterr().err
    assert err == "prog: error: --pin x: not an address\n"


def test_run_interrupt_is_130_without_traceback(capsys):
    def body(argv, reporter):
        raise KeyboardInterrupt

    assert run("prog", body, []) == 130
    assert "Traceback" not in capsys.readouterr().err


def test_json_to_an_unwritable_stdout_is_one_line_and_exit_1(tmp_path):
    import subprocess
    import sys

    from helpers.tools import ROOT, tool_env

    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    conf = tmp_path / "g.conf"
    conf.write_text("[reconcile]\nhosts_file = %s\nlock_file = %s/lock\nstate_dir = %s/st\n"
                    % (hosts, tmp_path, tmp_path))
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, ROOT + "/bin/optimus-boot-reconcile", "--config", str(conf), "--check", "--json"],
            stdout=full, stderr=subprocess.PIPE, text=True, env=tool_env(), timeout=60)
    assert result.returncode == report.EXIT_FAILURE, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "optimus-boot-reconcile: error: cannot write the JSON document to stdout: No space left on device")
    assert "Traceback" not in result.stderr
    assert hosts.read_text() == "127.0.0.1 localhost\n"


@pytest.mark.parametrize(
    "seconds,text",
    [(0, "0s"), (2.4, "2s"), (59, "59s"), (60, "1m"), (240, "4m"), (571, "9m31s"), (3600, "1h"),
     (3900, "1h05m"), (-5, "0s")],
)
def test_human(seconds, text):
    assert human(seconds) == text


def test_human_hours_without_minutes():
    assert [human(s) for s in (3630, 7199, 7200)] == ["1h", "1h59m", "2h"]
