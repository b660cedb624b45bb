"""Both tools with a stdout that cannot be written: a full device (made
here with mknod c 1 7, never the real /dev/full) or a closed descriptor
(`>&-`).  Every option that prints on stdout (--help, --version, --list,
--diff, --json, --check-config --json) ends with one line naming what
could not be written and why, exit 1, never a traceback nor the text on
stderr instead."""

import os
import stat
import subprocess
import sys

import pytest
from helpers.tools import ROOT, tool_env

RECONCILE = "optimus-boot-reconcile"
WATCHDOG = "forgejo-runner-watchdog"
NOWHERE = {"DOCKER_HOST": "unix:///nonexistent/frg-test/docker.sock"}
PIN = "10.1.0.10 forge.azrak.io # forgejo-runner-guard pin\n"


def run(tool, args, stdout, env=None):
    """Run bin/TOOL with fd 1 on `stdout` (a path) or closed (None)."""
    command = ["sh", "-c", 'f="$1"; shift; exec "$@" ' + ('>&-' if stdout is None else '>"$f"'),
               "sh", stdout or "", sys.executable, os.path.join(ROOT, "bin", tool), *args]
    return subprocess.run(command, env=tool_env(env), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=60)


CASES = [
    (RECONCILE, ["--help"], "the help", []),
    (RECONCILE, ["--version"], "the version", []),
    (RECONCILE, ["--list", "--hosts-file", "{hosts}"], "the list of pins", []),
    (RECONCILE, ["--diff", "--pin", "git.example.org=10.1.0.11", "--hosts-file", "{hosts}"],
     "the diff", []),
    (RECONCILE, ["--json", "--check", "--hosts-file", "{hosts}"], "the JSON document",
     ["{tool}: {hosts}: in sync: forge.azrak.io -> 10.1.0.10 present"]),
    (RECONCILE, ["--check-config", "--json", "--config", "{conf}"], "the JSON document", []),
    (WATCHDOG, ["--help"], "the help", []),
    (WATCHDOG, ["--version"], "the version", []),
    (WATCHDOG, ["--check-config", "--json", "--config", "{conf}"], "the JSON document", []),
    (WATCHDOG, ["--json", "--dry-run", "--container", "x"], "the JSON document",
     ["{tool}: error: x: Docker engine unreachable at unix:///nonexistent/frg-test/docker.sock: "
      "Cannot connect to the Docker daemon at unix:///nonexistent/frg-test/docker.sock. Is the "
      "docker daemon running?"]),
]


@pytest.mark.parametrize("closed", [False, True], ids=["full device", "closed"])
@pytest.mark.parametrize("tool, args, what, before", CASES,
                         ids=["%s %s" % (c[0].split("-")[0], c[1][0]) for c in CASES])
def test_a_stdout_that_cannot_be_written_is_one_line_exit_1(tmp_path, tool, args, what, before,
                                                             closed):
    full = str(tmp_path / "full")
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    hosts = tmp_path / "hosts"
    hosts.write_text(PIN)
    conf = tmp_path / "guard.conf"
    conf.write_text("[reconcile]\nhosts_file = %s\n" % hosts)
    fill = {"{hosts}": str(hosts), "{conf}": str(conf), "{tool}": tool}

    def filled(text):
        for key, value in fill.items():
            text = text.replace(key, value)
        return text

    proc = run(tool, [filled(a) for a in args], None if closed else full, env=NOWHERE)
    reason = "it is closed" if closed else "No space left on device"
    assert proc.stderr.splitlines() == [filled(line) for line in before] + [
        "%s: error: cannot write %s to stdout: %s" % (tool, what, reason)]
    assert proc.returncode == 1
    assert stat.S_ISCHR(os.lstat(full).st_mode) and hosts.read_text() == PIN


@pytest.mark.parametrize("tool, args", [(RECONCILE, ["--help"]), (WATCHDOG, ["--version"]),
                                        (RECONCILE, ["--list", "--hosts-file", "{hosts}"])])
def test_a_pipe_whose_reader_is_gone_ends_quietly_exit_1(tmp_path, tool, args):
    """`| head` that has stopped reading: exit 1, nothing on stderr (the
    reader chose to stop), no traceback, no 'Exception ignored' at exit."""
    hosts = tmp_path / "hosts"
    hosts.write_text(PIN)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, os.path.join(ROOT, "bin", tool),
                               *[a.replace("{hosts}", str(hosts)) for a in args]],
                              env=tool_env(NOWHERE), stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (1, "")
