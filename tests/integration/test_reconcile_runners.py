"""optimus-boot-reconcile --runners / --refresh-stale.

Unmarked tests: the pure helpers and the command line without Docker.
Marked `docker`: against a real engine of its own (tests/helpers/engine.py,
own_etc=True) that runs in a private mount namespace whose /etc/hosts is
a temp file: Docker copies that file into each host-network container it
(re)starts, and the tool pins that same file (--hosts-file), so the
story is the real one (pin, then refresh the runner's copy) while the
machine's own /etc/hosts is never read by Docker nor written (checked
byte for byte at the end).  The containers only sleep: host network is
needed for Docker to copy the hosts file; nothing connects anywhere.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest
from helpers.tools import run_tool, tool_env, write_conf

from helpers import engine
from forgejo_runner_guard.config import config
from forgejo_runner_guard.pins import runner_copies
from forgejo_runner_guard.report import EXIT_DRIFT, EXIT_FAILURE, EXIT_OK

TOOL = "optimus-boot-reconcile"
IMAGE = "frg-busybox:latest"
PIN = "10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin"
BASE = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


# ---------------------------------------------------------------- pure


PINS = (config.Pin("forge.azrak.io", "10.1.0.10"),)


@pytest.mark.parametrize("text, problems", [
    (BASE, ["forge.azrak.io -> 10.1.0.10 missing"]),
    (BASE + PIN + "\n", []),
    (BASE + "10.1.0.10 FORGE.azrak.io\n", []),  # the admin's own line does it
    (BASE + "203.0.113.7 forge.azrak.io\n", ["forge.azrak.io -> 10.1.0.10 missing, maps 203.0.113.7"]),
    (BASE + "10.1.0.99\tforge.azrak.io # forgejo-runner-guard pin\n",
     ["forge.azrak.io -> 10.1.0.10 missing, maps 10.1.0.99"]),
    (BASE + PIN + "\n2001:db8::7 forge.azrak.io\n",
     ["forge.azrak.io -> 10.1.0.10, but also 2001:db8::7"]),
    (BASE + "#203.0.113.7 forge.azrak.io\n" + PIN, []),  # comments do not count
])
def test_stale_pins(text, problems):
    assert runner_copies.stale_pins(text.encode(), PINS) == problems


def test_stale_pins_without_pins_is_fresh():
    assert runner_copies.stale_pins(b"203.0.113.7 forge.azrak.io\n", ()) == []


def test_combine_failure_beats_drift_beats_probe():
    assert runner_copies.combine(0, 0) == 0
    assert runner_copies.combine(0, 4) == 4
    assert runner_copies.combine(4, 3) == 3
    assert runner_copies.combine(3, 1, 4) == 1
    assert runner_copies.combine(1, 0) == 1


# ---------------------------------------------------------------- command line, no Docker


def site_conf(path, hosts, state, runners=None, extra=""):
    """guard.conf of a site: the pin in `hosts`, `runners` watched, `extra` appended."""
    watchdog = {"state_dir": state, "docker_timeout": "10s"}
    if runners:
        watchdog["runners"] = " ".join(runners)
    write_conf(path, {"reconcile": {"hosts_file": hosts, "lock_file": hosts + ".lock",
                                    "state_dir": state, "pins": "forge.azrak.io 10.1.0.10"},
                      "watchdog": watchdog})
    with open(path, "a") as handle:
        handle.write(extra)


@pytest.fixture
def plain(tmp_path):
    hosts = str(tmp_path / "hosts")
    with open(hosts, "w") as handle:
        handle.write(BASE)
    conf = str(tmp_path / "guard.conf")
    site_conf(conf, hosts, str(tmp_path / "state"), ["native"],
               "[runner native]\nbackend = systemd\nunit = forgejo-runner.service\n")
    return conf, hosts


@pytest.mark.parametrize("args, message", [
    (["--runners", "--list"], "--runners cannot be combined with --list"),
    (["--refresh-stale", "--unpin", "forge.azrak.io"], "--refresh-stale cannot be combined"),
    (["--container", "x", "--unpin-all"], "--container cannot be combined"),
    (["--container", "-bad"], "--container"),
    (["--container", "a/b"], "--container: not a container name"),
])
def test_usage_errors(plain, args, message):
    conf, hosts = plain
    before = open(hosts).read()
    proc = run_tool(TOOL, "--config", conf, *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert open(hosts).read() == before


def test_two_runners_naming_one_container_is_a_usage_error(tmp_path):
    conf = str(tmp_path / "guard.conf")
    site_conf(conf, str(tmp_path / "hosts"), str(tmp_path / "state"), ["a", "b"],
               "[runner a]\ncontainer = c\n[runner b]\ncontainer = c\n")
    proc = run_tool(TOOL, "--config", conf, "--runners")
    assert proc.returncode == 2 and "runners a and b both watch container c" in proc.stderr
    assert not os.path.exists(str(tmp_path / "hosts"))


def test_systemd_backend_is_not_applicable_and_docker_is_never_run(plain):
    conf, hosts = plain
    proc = run_tool(TOOL, "--config", conf, "--check", "--runners", "--json",
                    env={"DOCKER_HOST": "unix:///nonexistent/docker.sock", "PATH": "/nonexistent"})
    # The hosts file lacks the pin (3), and the unit's ExecStart cannot be
    # asked without systemctl (1: that wins).
    assert proc.returncode == EXIT_FAILURE, proc.stderr
    assert "runner native (container forgejo-runner.service): not-applicable: systemd backend" \
        in proc.stderr
    assert proc.stderr.splitlines()[-1] == "%s: error: runner native: jobs: systemctl: command " \
        "not found (the systemd backend needs systemd)" % TOOL
    doc = json.loads(proc.stdout)
    assert [r["status"] for r in doc["runners"]] == ["not-applicable"]
    assert doc["runners"][0]["exit_status"] == EXIT_OK
    assert doc["runners"][0]["jobs"]["status"] == "error"


def test_help_says_never_from_the_boot_unit():
    proc = run_tool(TOOL, "--help")
    assert proc.returncode == 0
    for text in ("--runners", "--container NAME", "--refresh-stale", "Never from the boot unit",
                 "HostsPath", "stale runner"):
        assert text in proc.stdout, text


def test_without_runners_no_docker_module_is_needed(plain):
    conf, hosts = plain
    code = ("import sys; from forgejo_runner_guard.pins import command as reconcile; "
            "status = reconcile.main(['--config', sys.argv[1], '--check']); "
            "assert 'sh' not in sys.modules and 'forgejo_runner_guard.system.engines' not in sys.modules;"
            " sys.exit(status)")
    proc = subprocess.run([sys.executable, "-c", code, conf], env=tool_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr


# ---------------------------------------------------------------- the real engine


def _sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


class Engine:
    """An engine whose host-network containers copy `self.hosts`."""

    def __init__(self, root):
        self.root = root
        self.host = engine.start(root, own_etc=True)
        engine.ensure_image(self.host)
        self.hosts = engine.etc_hosts(root)
        self.env = dict(os.environ, DOCKER_HOST=self.host)

    def docker(self, *args, check=True):
        result = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True,
                                timeout=60)
        if check and result.returncode != 0:
            raise AssertionError("docker %s: %s" % (" ".join(args), result.stderr.strip()))
        return result.stdout.strip()

    def inspect(self, name, what):
        return self.docker("inspect", "--format", what, name)

    def started(self, name):
        return self.inspect(name, "{{.State.StartedAt}}")

    def copy(self, name):
        with open(self.inspect(name, "{{.HostsPath}}")) as handle:
            return handle.read()

    def pid(self):
        """dockerd's pid (its pidfile)."""
        with open(os.path.join(self.root, "pid")) as handle:
            return int(handle.read())

    def clean(self):
        ids = self.docker("ps", "-aq").split()
        if ids:
            self.docker("rm", "-f", *ids)


@pytest.fixture(scope="module")
def real(request):
    before = _sha256("/etc/hosts")
    root = tempfile.mkdtemp(prefix="frg-runners-", dir="/tmp")
    try:
        yield Engine(root)
    finally:
        engine.stop(root)
        subprocess.run(["rm", "-rf", root])
        assert _sha256("/etc/hosts") == before, "the machine's /etc/hosts changed"


class Site:
    """One test: a guard.conf for one runner container, its state dir, and
    the engine's hosts file reset to BASE (no pin)."""

    def __init__(self, real, tmp_path, network="host", create_runner=True, name=None):
        self.real = real
        self.name = name or "frg-runner-" + uuid.uuid4().hex[:8]
        self.state = str(tmp_path / "state")
        os.makedirs(self.state)  # the tools create only the package's own directories
        self.conf = str(tmp_path / "guard.conf")
        site_conf(self.conf, real.hosts, self.state, [self.name])
        real.clean()
        with open(real.hosts, "w") as handle:
            handle.write(BASE)
        self.network = network

    def start_runner(self):
        self.real.docker("run", "-d", "--init", "--network", self.network, "--name", self.name,
                         IMAGE, "sleep", "3600")
        return self.real.started(self.name)

    def job(self, task=7):
        name = "FORGEJO-ACTIONS-TASK-%d_WORKFLOW-%s_JOB-build" % (task, uuid.uuid4().hex[:8])
        self.real.docker("run", "-d", "--init", "--network", "none", "--name", name,
                         IMAGE, "sleep", "3600")
        return name

    def run(self, *args, env=None):
        # --hosts-file: the very file the engine copies (also in guard.conf; named here to
        # show it): the tool pins it by atomic rename, the engine sees the new file
        env = dict({"DOCKER_HOST": self.real.host}, **(env or {}))
        proc = run_tool(TOOL, "--config", self.conf, "--hosts-file", self.real.hosts, *args,
                        env=env, timeout=60)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def restarts(self):
        path = os.path.join(self.state, "state.json")
        if not os.path.exists(path):
            return []
        with open(path) as handle:
            return json.load(handle)["runners"].get(self.name, {}).get("restarts", [])

    def runner_line(self, proc):
        """The line about the runner's hosts copy (not its jobs)."""
        lines = [ln for ln in proc.stderr.splitlines() if ": runner %s" % self.name in ln
                 and ": jobs" not in ln]
        assert len(lines) == 1, proc.stderr
        return lines[0]


@pytest.fixture
def site(real, tmp_path):
    s = Site(real, tmp_path)
    yield s
    real.clean()


@pytest.mark.docker
def test_fresh_when_started_after_the_pin(site):
    assert site.run().returncode == 0  # pin first
    site.start_runner()
    assert PIN in site.real.copy(site.name)
    proc = site.run("--runners", "--json")
    assert proc.returncode == EXIT_OK, proc.stderr
    assert site.runner_line(proc).endswith("runner %s: fresh: its hosts copy has the pins"
                                           % site.name)
    doc = json.loads(proc.stdout)
    assert doc["runners"][0]["status"] == "fresh" and not doc["runners"][0]["restarted"]
    assert doc["runners"][0]["hosts_path"].endswith("/hosts")
    proc = site.run("--check", "--runners")
    assert proc.returncode == EXIT_OK, proc.stderr


@pytest.mark.docker
def test_stale_is_reported_and_is_drift_only_with_check(site):
    started = site.start_runner()  # before the pin: its copy lacks it
    proc = site.run("--runners")  # pins the host file, reports the runner
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "updated (atomic rename)" in proc.stderr
    line = site.runner_line(proc)
    assert "warning: runner %s: stale: forge.azrak.io -> 10.1.0.10 missing: restart it " \
        "between jobs, or run with --refresh-stale" % site.name in line
    assert PIN in open(site.real.hosts).read() and PIN not in site.real.copy(site.name)
    proc = site.run("--check", "--runners")
    assert proc.returncode == EXIT_DRIFT, proc.stderr
    assert "in sync" in proc.stderr and "stale" in site.runner_line(proc)
    proc = site.run("--diff", "--runners")
    assert proc.returncode == EXIT_DRIFT and proc.stdout == "", proc.stderr
    # --check with --refresh-stale says what it would do, and does nothing
    proc = site.run("--check", "--refresh-stale", "--json")
    assert proc.returncode == EXIT_DRIFT, proc.stderr
    assert site.runner_line(proc).endswith(": would restart (nothing changed)")
    assert json.loads(proc.stdout)["runners"][0]["restarted"] is False
    assert site.real.started(site.name) == started
    assert site.restarts() == [] and os.listdir(site.state) == []


@pytest.mark.docker
def test_check_reports_a_different_address(site):
    with open(site.real.hosts, "a") as handle:
        handle.write("203.0.113.7 forge.azrak.io\n")
    site.start_runner()
    proc = site.run("--check", "--container", site.name)
    assert proc.returncode == EXIT_DRIFT, proc.stderr
    assert "stale: forge.azrak.io -> 10.1.0.10 missing, maps 203.0.113.7" in site.runner_line(proc)


@pytest.mark.docker
def test_refresh_stale_pins_then_restarts_and_the_new_copy_has_the_pin(site):
    started = site.start_runner()
    proc = site.run("--refresh-stale", "--json")  # one run: the file first, then the runner
    assert proc.returncode == EXIT_OK, proc.stderr
    lines = proc.stderr.splitlines()
    assert "updated (atomic rename)" in lines[0]
    assert site.runner_line(proc).endswith(
        "runner %s: refreshed: was stale (forge.azrak.io -> 10.1.0.10 missing): restarted, its "
        "new hosts copy has the pins" % site.name)
    assert site.real.started(site.name) != started
    assert PIN in site.real.copy(site.name)
    doc = json.loads(proc.stdout)["runners"][0]
    assert doc["status"] == "refreshed" and doc["restarted"] and doc["new_started_at"]
    assert len(site.restarts()) == 1  # the watchdog's budget sees it
    # a second run: fresh, no second restart
    again = site.real.started(site.name)
    proc = site.run("--refresh-stale")
    assert proc.returncode == EXIT_OK and "fresh" in site.runner_line(proc), proc.stderr
    assert site.real.started(site.name) == again and len(site.restarts()) == 1


@pytest.mark.docker
def test_a_runner_named_like_a_job_is_refreshed(real, tmp_path):
    """Its own name starts with a job prefix: it is not its own job."""
    site = Site(real, tmp_path, name="FORGEJO-ACTIONS-TASK-self-" + uuid.uuid4().hex[:8])
    started = site.start_runner()
    proc = site.run("--refresh-stale", "--json")
    assert proc.returncode == EXIT_OK, proc.stderr
    assert ": refreshed: was stale" in site.runner_line(proc)
    doc = json.loads(proc.stdout)["runners"][0]
    assert (doc["blocking_jobs"], doc["orphaned_jobs"]) == ([], [])
    assert site.real.started(site.name) != started


@pytest.mark.docker
def test_a_hosts_file_the_engine_does_not_copy_is_said_and_nothing_restarted(site, tmp_path):
    """--hosts-file names a file the engine does not copy (it copies its
    own /etc/hosts, the engine's namespace's): a restart would copy the old
    file again.  Said, and no restart: not with --refresh-stale (exit 1),
    not read-only, not without it."""
    started = site.start_runner()
    other = str(tmp_path / "other-hosts")
    with open(other, "w") as handle:
        handle.write(BASE)
    why = ("a restart would copy /etc/hosts of the Docker daemon (pid %d) again, which is not %s "
           "and lacks the pins: pin that file (--hosts-file names another)"
           % (site.real.pid(), other))
    for args, status, action in (
            (["--refresh-stale"], EXIT_FAILURE, "not restarted: " + why),
            (["--check", "--refresh-stale"], EXIT_DRIFT,
             "would not restart: %s (nothing changed)" % why),
            (["--runners"], EXIT_OK, why)):
        proc = run_tool(TOOL, "--config", site.conf, "--hosts-file", other, *args, "--json",
                        env={"DOCKER_HOST": site.real.host}, timeout=60)
        assert proc.returncode == status, proc.stderr
        assert site.runner_line(proc).endswith(
            "runner %s: stale: forge.azrak.io -> 10.1.0.10 missing: %s" % (site.name, action))
        doc = json.loads(proc.stdout)["runners"][0]
        assert (doc["status"], doc["restarted"], doc["action"]) == ("stale", False, action)
    assert site.real.started(site.name) == started and site.restarts() == []
    assert PIN in open(other).read()  # the file named was pinned all the same
    # the file the engine copies has the pins: a restart helps, whatever file is named
    with open(site.real.hosts, "a") as handle:
        handle.write(PIN + "\n")
    proc = run_tool(TOOL, "--config", site.conf, "--hosts-file", other, "--refresh-stale",
                    env={"DOCKER_HOST": site.real.host}, timeout=60)
    assert proc.returncode == EXIT_OK and ": refreshed: was stale" in site.runner_line(proc)


@pytest.mark.docker
def test_a_running_job_blocks_the_refresh(site):
    started = site.start_runner()
    job = site.job()
    proc = site.run("--refresh-stale")
    assert proc.returncode == EXIT_OK, proc.stderr  # skipped, as the watchdog does: retry later
    assert site.runner_line(proc).endswith(
        "stale: forge.azrak.io -> 10.1.0.10 missing: not restarted while a job runs (job "
        "container %s running): skipped" % job)
    assert site.real.started(site.name) == started and site.restarts() == []
    proc = site.run("--check", "--refresh-stale")
    assert proc.returncode == EXIT_DRIFT
    assert "would not restart while a job runs" in site.runner_line(proc)


@pytest.mark.docker
def test_a_job_without_a_container_blocks_the_refresh(site, tmp_path):
    """A host job: a child of the runner's daemon (tests/helpers/hostrunner.sh as
    forgejo-runner in the container), no job container."""
    from helpers.runners import DAEMON, FAKE, HOSTRUNNER, wait_for

    box = tmp_path / "box"
    box.mkdir()
    os.mkfifo(str(box / "fifo"))
    site.real.docker("run", "-d", "--init", "--network", "host", "--name", site.name,
                     "-v", "%s:/state" % box, "-v", "%s:%s:ro" % (HOSTRUNNER, DAEMON),
                     "-v", "%s:/fakerunner.sh:ro" % FAKE, IMAGE, DAEMON, "/state", "0", "3600",
                     "healthy")
    wait_for(box / "events", "idle")
    started = site.real.started(site.name)
    top = site.real.docker("top", site.name, "-eo", "pid,comm").splitlines()
    job = [line.split()[0] for line in top if line.split()[1] == "sleep"]
    proc = site.run("--refresh-stale")
    assert proc.returncode == EXIT_OK, proc.stderr
    assert site.runner_line(proc).endswith(
        "stale: forge.azrak.io -> 10.1.0.10 missing: not restarted while a job runs (host "
        "job pid %s (sleep 3600) running): skipped" % job[0])
    assert site.real.started(site.name) == started and site.restarts() == []


@pytest.mark.docker
def test_an_orphaned_job_does_not_block(site):
    job = site.job()  # created before the runner's start (more than the 2 s margin)
    time.sleep(2.2)
    started = site.start_runner()
    proc = site.run("--refresh-stale", "--json")
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "job container %s orphaned" % job in proc.stderr
    assert "refreshed" in site.runner_line(proc)
    assert site.real.started(site.name) != started and PIN in site.real.copy(site.name)
    assert json.loads(proc.stdout)["runners"][0]["orphaned_jobs"] == [job]


@pytest.mark.docker
def test_the_restart_budget_forbids_the_refresh(site):
    started = site.start_runner()
    os.makedirs(site.state, exist_ok=True)
    with open(os.path.join(site.state, "state.json"), "w") as handle:
        json.dump({"version": 1, "runners": {site.name: {"restarts": [time.time() - 60],
                                                           "restarts_total": 1}}}, handle)
    proc = site.run("--refresh-stale")
    assert proc.returncode == EXIT_FAILURE, proc.stderr
    line = site.runner_line(proc)
    assert "error: runner %s: stale: " % site.name in line
    # 1m, or 1m0Ns when this run started a few seconds after the state was written
    assert re.search(r"not restarted: cooldown: last restart 1m(0\ds)? ago \(cooldown 10m\)$", line), line
    assert site.real.started(site.name) == started and len(site.restarts()) == 1


@pytest.mark.docker
def test_a_refresh_that_cannot_be_recorded_first_is_not_made(site):
    """state.json a directory: the restart history can be neither read nor
    kept, so --refresh-stale does not restart the stale runner."""
    started = site.start_runner()
    os.mkdir(os.path.join(site.state, "state.json"))
    proc = site.run("--refresh-stale")
    assert proc.returncode == EXIT_FAILURE, proc.stderr
    assert site.real.started(site.name) == started
    path = os.path.join(site.state, "state.json")
    assert site.runner_line(proc).endswith(
        "not restarted: a restart that cannot be recorded first is never made: the restart "
        "history cannot be read: cannot read %s: it is a directory, not a regular file; left as "
        "it is" % path), proc.stderr
    assert os.listdir(path) == []


@pytest.mark.docker
def test_the_watchdogs_run_lock_is_shared(site):
    from forgejo_runner_guard.system import safewrite

    site.start_runner()
    os.makedirs(site.state, exist_ok=True)
    held = threading.Event()
    release = threading.Event()

    def hold():
        with safewrite.lock(os.path.join(site.state, "watchdog.lock")):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    threading.Timer(1.0, release.set).start()
    t0 = time.monotonic()
    try:
        proc = site.run("--refresh-stale")
    finally:
        release.set()
        holder.join()
    assert time.monotonic() - t0 >= 1.0
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "waiting for the watchdog's run lock" in proc.stderr and "refreshed" in site.runner_line(proc)


@pytest.mark.docker
def test_not_running_missing_and_not_host_network(site, real):
    site.real.docker("create", "--init", "--network", "host", "--name", site.name, IMAGE,
                     "sleep", "3600")
    proc = site.run("--check", "--refresh-stale")
    assert proc.returncode == EXIT_DRIFT, proc.stderr  # the file, not the runner
    assert "runner %s: not-running: created: Docker gives it a fresh copy when it starts" \
        % site.name in site.runner_line(proc)
    real.docker("rm", "-f", site.name)
    proc = site.run("--runners")
    assert proc.returncode == EXIT_FAILURE, proc.stderr
    assert "container %s does not exist" % site.name in site.runner_line(proc)
    site.network = "none"
    site.start_runner()
    proc = site.run("--refresh-stale")
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "not-applicable: network mode none" in site.runner_line(proc)


@pytest.mark.docker
def test_a_paused_stale_runner_is_not_refreshed(site):
    """Docker says a paused container is Running: its stale copy is
    reported, never refreshed by a restart (the pause is not undone)."""
    started = site.start_runner()
    site.real.docker("pause", site.name)
    proc = site.run("--refresh-stale", "--json")
    assert proc.returncode == EXIT_OK, proc.stderr  # the file pinned; the runner left as it is
    assert site.runner_line(proc).endswith(
        "runner %s: not-running: paused: not refreshed, its pause is not undone" % site.name)
    doc = json.loads(proc.stdout)["runners"][0]
    assert (doc["status"], doc["restarted"]) == ("not-running", False)
    assert site.real.inspect(site.name, "{{.State.Status}}") == "paused"
    assert site.real.started(site.name) == started and site.restarts() == []
    site.real.docker("unpause", site.name)


@pytest.mark.docker
def test_docker_unreachable_is_one_line_and_exit_1(site, tmp_path):
    proc = site.run("--check", "--runners", env={"DOCKER_HOST": "unix://%s/none.sock" % tmp_path})
    assert proc.returncode == EXIT_FAILURE, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ": error: " in ln]
    assert errors == [site.runner_line(proc)], proc.stderr
    assert "Docker engine unreachable at unix://%s/none.sock" % tmp_path in errors[0]
    assert open(site.real.hosts).read() == BASE  # --check wrote nothing


@pytest.mark.docker
def test_a_restart_that_does_not_come_back_is_exit_1_and_recorded(site):
    with open(site.conf) as handle:
        text = handle.read()
    with open(site.conf, "w") as handle:  # confirm within 2 s, not 10
        handle.write(text.replace("docker_timeout = 10s", "docker_timeout = 2s"))
    # runs the first time; every later start exits at once (the flag file persists)
    site.real.docker("run", "-d", "--init", "--network", "host", "--name", site.name, IMAGE,
                     "sh", "-c", "[ -e /tmp/started ] && exit 1; echo > /tmp/started; "
                     "exec sleep 3600")
    proc = site.run("--refresh-stale")
    assert proc.returncode == EXIT_FAILURE, proc.stderr
    line = site.runner_line(proc)
    assert "error: runner %s: stale: " % site.name in line
    assert ": restart failed: %s is exited" % site.name in line
    assert len(site.restarts()) == 1  # it did restart: the budget must see it


@pytest.mark.docker
def test_stale_pin_is_notified_once_and_its_end_once(site, tmp_path):
    out = tmp_path / "events.jsonl"
    rec = tmp_path / "rec"
    rec.write_text("#!/bin/sh\ncat >>%s\n" % out)
    rec.chmod(0o755)
    with open(site.conf, "a") as handle:
        handle.write("[notify]\ncommand = %s\n" % rec)

    def events():
        return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []

    site.start_runner()  # before the pin: its copy lacks it
    for args in (("--runners",), ("--check", "--runners")):  # stale twice: notified once
        site.run(*args)
    [stale] = events()
    assert (stale["event"], stale["runner"], stale["decision"]) == ("stale-pin", site.name, "stale")
    assert stale["error"] == "forge.azrak.io -> 10.1.0.10 missing"
    assert stale["summary"].startswith("runner %s: stale: " % site.name)
    proc = site.run("--refresh-stale")
    assert proc.returncode == EXIT_OK and "refreshed" in site.runner_line(proc), proc.stderr
    site.run("--runners")
    assert [e["event"] for e in events()] == ["stale-pin", "recovered"]
    assert events()[1]["runner"] == site.name and events()[1]["previous"] == "stale-pin"
