"""`make demo` tells the whole story, in under a minute, and leaves nothing
behind: not when it succeeds, not when it is interrupted."""

import glob
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from helpers.tools import ROOT

DEMO = os.path.join(ROOT, "demo", "demo.sh")
# What `make demo` installs: what demo.sh runs (the Docker engine and CLI,
# busybox for its image, python3-sh for the tools in bin/), and no more.
DEMO_DEBS = {"docker.io", "busybox-static", "python3-sh"}


def _containers(docker_host):
    result = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"],
        env=dict(os.environ, DOCKER_HOST=docker_host),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return set(result.stdout.split())


_TMP = {}


@pytest.fixture(autouse=True, scope="module")
def _tmpdir():
    """The demos' TMPDIR, this module's own: what another session's demo
    makes in /tmp at the same time (make check's other lane) is not
    counted as this one's leftover.  Short: the demo's engine has sockets
    under it."""
    _TMP["dir"] = tempfile.mkdtemp(prefix="frg-dt.", dir="/tmp")
    yield
    shutil.rmtree(_TMP.pop("dir"), ignore_errors=True)


def _demo_dirs():
    return set(glob.glob(os.path.join(_TMP["dir"], "frg-demo.*")))


def _processes_mentioning(text):
    found = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(cmdline, "rb") as handle:
                if text.encode() in handle.read():
                    found.append(cmdline.split("/")[2])
        except OSError:
            pass
    return found


def _package_installed():
    """Is forgejo-runner-guard installed on this machine (make install)?"""
    result = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", "forgejo-runner-guard"],
                            capture_output=True, text=True)
    return result.returncode == 0 and result.stdout == "installed"


def _env(docker_host=None):
    env = dict(os.environ, PYTHON=sys.executable, LC_ALL="C.UTF-8", TMPDIR=_TMP["dir"])
    env.pop("DOCKER_HOST", None)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    return env


@pytest.mark.docker
def test_make_demo_tells_the_story_and_cleans_up(docker_host):
    containers, dirs = _containers(docker_host), _demo_dirs()
    start = time.monotonic()
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "demo"],
        cwd=ROOT,
        env=_env(docker_host),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - start
    out = result.stdout
    assert result.returncode == 0, out
    assert elapsed < 60, "the demo took %.0fs" % elapsed
    assert "Traceback" not in out, out

    # the tools it says it runs: the package's once installed, else bin/
    if _package_installed():
        tools = (r"Tools: the installed package's, /usr/bin/forgejo-runner-watchdog and "
                 r"/usr/bin/optimus-boot-reconcile \(forgejo-runner-watchdog \d+\.\d+\.\d+\)\.")
    else:
        tools = (r"Tools: this checkout's, %s/bin/forgejo-runner-watchdog and %s/bin/optimus-boot-reconcile "
                 r"with its lib/ \(forgejo-runner-watchdog \d+\.\d+\.\d+\); after `make install`"
                 % (re.escape(ROOT), re.escape(ROOT)))
    # the story, in order
    story = [
        tools,
        r"Docker engine: the one at DOCKER_HOST",
        r'level=error msg="failed to fetch task"',
        r"\$ forgejo-runner-watchdog --config \$DEMO/guard.conf --state-dir \$DEMO/state --dry-run",
        r"forgejo_runner: \d+ fetch errors in \d+s \(threshold 40\), newest \d+s ago \(transport: [^)]+\), "
        r"no job running: wedged: would restart \(dry run\)",
        r"job container FORGEJO-ACTIONS-TASK-4711_WORKFLOW-deploy_JOB-build-\S+ running: "
        r"wedged, not restarted while a job runs: skipped",
        r"forgejo_runner: \d+ fetch errors in \d+s \(threshold 40\), newest \d+s ago \(transport: [^)]+\), "
        r"no job running: restarted",
        r'msg="\[poller 0\] launched"',
        # a line the old process wrote as it was stopped can reach the engine's
        # log (and its time stamp) after the new start: one, rarely two
        r"forgejo_runner: [0-2] fetch errors? in \d+s \(threshold 40\)(, newest [^\n]*)?: healthy",
        r"--hosts-file \$DEMO/hosts --check",
        r"\(exit status 3\)",
        r"\+10\.1\.0\.10\s+forge\.azrak\.io",
        r"\(exit status 3\)",
        r"forge\.azrak\.io -> 10\.1\.0\.10 added",
        r"10\.1\.0\.10\s+forge\.azrak\.io",
        r"Removed everything the demo started\.",
    ]
    pos = 0
    for pattern in story:
        match = re.compile(pattern).search(out, pos)
        assert match, "expected /%s/ after offset %d of:\n%s" % (pattern, pos, out)
        pos = match.end()
    # the runner was really restarted, once
    times = re.search(r"Runner started at (\S+), now at (\S+)\.", out)
    assert times and times.group(1) != times.group(2), out

    assert _containers(docker_host) == containers, "the demo left containers behind"
    assert _demo_dirs() == dirs, "the demo left its temp dir behind"


def _interrupt_after(marker, docker_host):
    """Run the demo, send Ctrl-C (SIGINT to its process group) once `marker`
    is printed; -> (exit status, output, the demo's temp dir)."""
    proc = subprocess.Popen(
        [DEMO],
        cwd=ROOT,
        env=_env(docker_host),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(l) for l in proc.stdout] + [lines.put(None)])
    reader.daemon = True
    reader.start()
    seen, work = [], None
    deadline = time.monotonic() + 60
    try:
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                raise AssertionError("the demo ended before %r:\n%s" % (marker, "".join(seen)))
            seen.append(line)
            found = re.search(r"Everything runs in (/\S+/frg-demo\.\w+)", line)
            if found:
                work = found.group(1)
            if marker in line:
                break
        os.killpg(proc.pid, signal.SIGINT)
        status = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(timeout=10)
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            break
        if line is not None:
            seen.append(line)
    return status, "".join(seen), work


@pytest.mark.docker
def test_interrupted_demo_with_its_own_engine_leaves_nothing_behind():
    """Ctrl-C while the throwaway engine and the runner are up."""
    dirs = _demo_dirs()
    status, out, work = _interrupt_after("2. The watchdog's verdict", None)
    assert work, out
    assert "starting a throwaway one" in out
    assert status == 130, out
    assert "removed everything it started" in out
    assert not os.path.exists(work)
    assert _demo_dirs() == dirs
    assert _processes_mentioning(work) == [], "the throwaway engine is still running"


@pytest.mark.docker
def test_interrupted_demo_on_a_given_engine_removes_its_containers(docker_host):
    """Ctrl-C while the runner and a job container run on the given engine."""
    containers, dirs = _containers(docker_host), _demo_dirs()
    status, out, work = _interrupt_after("A job container FORGEJO-ACTIONS-TASK-", docker_host)
    assert status == 130, out
    assert _containers(docker_host) == containers, "the demo left containers behind"
    assert _demo_dirs() == dirs
    assert work and not os.path.exists(work)


def test_make_demo_installs_only_what_the_demo_runs():
    """Not the test suite's packages (golang-go, podman, debootstrap, ...),
    no venv, no build: only DEMO_DEBS, then the demo."""
    result = subprocess.run(["make", "-n", "--no-print-directory", "demo"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    installs = [line.split()[1:] for line in lines if line.split()[:1] == ["tools/apt-install"]]
    assert len(installs) == 1 and set(installs[0]) == DEMO_DEBS, result.stdout
    assert lines[-1] == "demo/demo.sh", result.stdout
    assert len(lines) == 2, result.stdout  # nothing else: no deps, venvs or deb
    # and the test suite's list is a different, bigger one
    suite = subprocess.run(["make", "-n", "--no-print-directory", "deps"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60).stdout.split()
    assert DEMO_DEBS < set(suite) and {"golang-go", "podman", "debootstrap"} <= set(suite), suite


def test_demo_with_an_unknown_DEMO_TOOLS_stops_before_starting_anything():
    dirs = _demo_dirs()
    result = subprocess.run([DEMO], cwd=ROOT, env=dict(_env(), DEMO_TOOLS="usr-local"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "demo: DEMO_TOOLS must be auto, installed or checkout, not 'usr-local'" in result.stderr
    assert "Docker engine" not in result.stdout
    assert _demo_dirs() == dirs


@pytest.mark.docker
def test_demo_runs_the_checkout_tools_when_told_to(docker_host):
    """DEMO_TOOLS=checkout: bin/ with lib/, also once the package is installed."""
    result = subprocess.run([DEMO], cwd=ROOT, env=dict(_env(docker_host), DEMO_TOOLS="checkout"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert result.returncode == 0, result.stdout
    assert "Tools: this checkout's, %s/bin/forgejo-runner-watchdog" % ROOT in result.stdout
    assert re.search(r"forgejo_runner: [0-2] fetch errors? in \d+s \(threshold 40\)(, newest [^\n]*)?: healthy",
                     result.stdout)
