"""--json prints one document on stdout whatever happens: a usage or
configuration error, a failure before the run's own document, --notify-test,
--check-config.  Both tools, as real subprocesses, without Docker."""

import json

import pytest
from helpers.tools import one_line, run_tool, write_conf

NOWHERE = {"DOCKER_HOST": "unix:///nonexistent/frg-test/docker.sock"}
RECONCILE, WATCHDOG = "optimus-boot-reconcile", "forgejo-runner-watchdog"


@pytest.fixture
def confs(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    good = write_conf(tmp_path / "good.conf", {
        "reconcile": {"hosts_file": tmp_path / "hosts", "lock_file": tmp_path / "lock",
                      "state_dir": state},
        "watchdog": {"state_dir": state}})
    bad = write_conf(tmp_path / "bad.conf", {"watchdog": {"treshold": 40}})
    notify = write_conf(tmp_path / "notify.conf", {
        "notify": {"command.ok": "true", "command.bad": "false"},
        "watchdog": {"state_dir": state}})
    return {"good": good, "bad": bad, "notify": notify, "missing": str(tmp_path / "missing.conf"),
            "tmp": str(tmp_path)}


ERRORS = [
    # (tool, arguments, exit status, the error line's text after "error: ")
    (RECONCILE, ["--bogus"], 2, "unrecognized arguments: --bogus (see --help)"),
    (RECONCILE, ["--check", "--diff"], 2,
     "argument --diff: not allowed with argument --check (see --help)"),
    (RECONCILE, ["--pin", "x"], 2, "--pin 'x': expected NAME=ADDRESS"),
    (RECONCILE, ["--config", "{missing}"], 2, "{missing}: no such configuration file"),
    (RECONCILE, ["--config", "{good}", "--hosts-file", "{tmp}/no/hosts"], 1,
     None),  # a failure: the run's own document, with its error (tested in test_reconcile_cli)
    (WATCHDOG, ["--bogus"], 2, "unrecognized arguments: --bogus (see --help)"),
    (WATCHDOG, ["--threshold", "0"], 2,
     "argument --threshold: must be at least 1: '0' (see --help)"),
    (WATCHDOG, ["--config", "{bad}"], 2,
     "{bad}:2: [watchdog] treshold: unknown key (known: "),
    (WATCHDOG, ["--config", "{good}", "--notify-test"], 2,
     "--notify-test: no command in [notify] of the configuration"),
    (WATCHDOG, ["--config", "{good}", "--state-dir", "{tmp}/no/state", "--dry-run"], 1,
     "cannot open lock file {tmp}/no/state/watchdog.lock: directory {tmp}/no/state does not "
     "exist"),
]


@pytest.mark.parametrize("tool, args, status, error", ERRORS)
def test_an_error_prints_one_document(confs, tool, args, status, error):
    args = [a.format(**confs) for a in args]
    proc = run_tool(tool, *args, "--json", env=NOWHERE)
    assert proc.returncode == status, proc.stderr
    doc = json.loads(proc.stdout)  # exactly one document
    line = one_line(proc)
    assert doc["error"] == line.split(": error: ", 1)[1]
    if error is not None:
        assert doc == {"error": doc["error"], "exit_status": status}
        assert doc["error"].startswith(error.format(**confs)), doc


def test_an_abbreviated_json_option_counts_and_a_lone_dash_dash_ends_options(confs):
    proc = run_tool(WATCHDOG, "--bogus", "--js")
    assert proc.returncode == 2 and json.loads(proc.stdout)["exit_status"] == 2
    proc = run_tool(RECONCILE, "--", "--json")
    assert proc.returncode == 2 and proc.stdout == ""


def test_notify_test_prints_one_document(confs):
    proc = run_tool(WATCHDOG, "--config", confs["notify"], "--notify-test", "--json")
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout) == {
        "event": "test", "dry_run": False, "exit_status": 1, "commands": [
            {"command": "command.bad", "argv": ["false"], "sent": False,
             "error": "exit status 1"},
            {"command": "command.ok", "argv": ["true"], "sent": True, "error": None}]}
    proc = run_tool(WATCHDOG, "--config", confs["notify"], "--notify-test", "--json", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "event": "test", "dry_run": True, "exit_status": 0, "commands": [
            {"command": "command.bad", "argv": ["false"], "sent": False, "error": None},
            {"command": "command.ok", "argv": ["true"], "sent": False, "error": None}]}


@pytest.mark.parametrize("tool", [RECONCILE, WATCHDOG])
def test_check_config_prints_one_document_when_it_fails(confs, tool):
    proc = run_tool(tool, "--config", confs["bad"], "--check-config", "--json")
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc == {"valid": False, "files": [], "warnings": [], "exit_status": 2,
                   "error": one_line(proc).split(": error: ", 1)[1]}
    assert doc["error"].startswith("%s:2: [watchdog] treshold: unknown key" % confs["bad"])
    proc = run_tool(tool, "--config", confs["good"], "--check-config", "--json", "--dry-run"
                    if tool == WATCHDOG else "--check")
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"] == "--check-config does not go with %s" % (
        "--dry-run" if tool == WATCHDOG else "--check")
