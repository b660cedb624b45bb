"""A signal (SIGTERM, SIGINT, SIGHUP) ends a run after its clean-up: a
notify command it started (in a session of its own, so the signal never
reaches it by itself) is killed and reaped, a temporary file is never left
behind, and the tool then dies by the same signal, as by default.  Real
subprocesses, real signals."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers.tools import ROOT, tool_env, write_conf

RECONCILE, WATCHDOG = "optimus-boot-reconcile", "forgejo-runner-watchdog"


def _start(tool, *args, env=None):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "bin", tool), *args],
                            env=tool_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for(predicate, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def _gone(pid):
    """The process is gone (or a zombie nobody will run again)."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.fixture
def site(tmp_path):
    """A drifting hosts file and a notify command that records its pid and
    sleeps, as a slow ntfy would."""
    hosts = tmp_path / "hosts"
    hosts.write_text("203.0.113.7 forge.azrak.io\n")
    (tmp_path / "state").mkdir()
    command = tmp_path / "notify-slow"
    command.write_text("#!/bin/sh\necho $$ > %s/child.pid\nexec sleep 60\n" % tmp_path)
    command.chmod(0o755)
    conf = write_conf(tmp_path / "guard.conf", {
        "reconcile": {"hosts_file": hosts, "lock_file": tmp_path / "lock",
                      "state_dir": tmp_path / "state"},
        "watchdog": {"state_dir": tmp_path / "state"},
        "notify": {"command": command, "timeout": "5m"}})
    return tmp_path, conf


@pytest.mark.parametrize("tool, args, signum", [
    (RECONCILE, ["--check", "--json"], signal.SIGTERM),
    (RECONCILE, ["--check"], signal.SIGINT),
    (WATCHDOG, ["--notify-test", "--json"], signal.SIGTERM),
    (WATCHDOG, ["--notify-test"], signal.SIGHUP),
])
def test_a_signal_ends_the_notify_command_it_started(site, tool, args, signum):
    tmp_path, conf = site
    pidfile = tmp_path / "child.pid"
    proc = _start(tool, "--config", conf, *args)
    child = None
    try:
        _wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
        child = int(pidfile.read_text())
        assert not _gone(child)  # the slow command runs, in a session of its own
        assert os.getsid(child) != os.getsid(proc.pid)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == -signum, err  # it died by the signal, as by default
        assert err.splitlines()[-1] == "%s: error: interrupted by %s: stopped, what it had " \
            "started ended" % (tool, signal.Signals(signum).name), err
        assert "Traceback" not in err
        _wait_for(lambda: _gone(child), 5)  # killed, not orphaned
        if "--json" in args:
            json.loads(out)  # one document, whole
    finally:
        proc.kill()
        if child is not None and not _gone(child):
            os.kill(child, signal.SIGKILL)  # what a failed run left: not the test's to leave


def test_a_signal_during_a_write_leaves_no_temporary_file(tmp_path):
    """A 50 MB hosts file being replaced: SIGTERM while the temporary file
    is complete and not yet renamed (the test hook holds it there 5 s).
    The write is finished first, then the run ends: the file is the new
    one, whole, and no temporary file is left."""
    hosts = tmp_path / "hosts"
    line = b"0.0.0.0 " + b" ".join(b"ad%d.example" % i for i in range(20)) + b"\n"
    hosts.write_bytes(line * (50 * 2 ** 20 // len(line)))
    old = hosts.read_bytes()
    conf = write_conf(tmp_path / "guard.conf", {"reconcile": {
        "hosts_file": hosts, "lock_file": tmp_path / "lock", "state_dir": tmp_path}})
    proc = _start(RECONCILE, "--config", conf, env={"FRG_TEST_FAIL": "pause"})
    try:
        temps = lambda: [n for n in os.listdir(tmp_path) if n.startswith(".frg-tmp.")]  # noqa: E731
        _wait_for(lambda: temps() and os.path.getsize(tmp_path / temps()[0]) > len(old))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGTERM, err
    assert temps() == []
    new = hosts.read_bytes()
    assert new == old + b"10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\n"
    assert err.splitlines()[-1].endswith("error: interrupted by SIGTERM: stopped, what it had "
                                         "started ended"), err
    # the lock was let go: the next run finds the file in sync at once
    again = subprocess.run([sys.executable, os.path.join(ROOT, "bin", RECONCILE), "--config",
                            conf, "--check"], env=tool_env(), capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stderr
