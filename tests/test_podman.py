"""The watchdog and --runners under real Podman 4.3.1 (tests/podman_engine.py),
two ways: the podman CLI (engine = podman) and Docker's CLI against
Podman's Docker-compatible service (engine = docker, DOCKER_HOST=
unix://.../podman.sock).

The runners are tests/fakerunner.sh (and tests/hostrunner.sh) in the
busybox image, started with the podman CLI in both ways (--init is
catatonit).  Each scenario of tests/test_watchdog_integration.py that
differs by engine runs here once per way; scenarios share a test where
one runner can serve several (a restart, then the budget).
"""

import json
import os
import time
import uuid

import pytest

from conftest import ROOT, run_tool

pytestmark = [pytest.mark.docker, pytest.mark.podman]

WATCHDOG = "forgejo-runner-watchdog"
RECONCILE = "optimus-boot-reconcile"
IMAGE = "frg-busybox:latest"
FAKE = os.path.join(ROOT, "tests", "fakerunner.sh")
HOSTRUNNER = os.path.join(ROOT, "tests", "hostrunner.sh")
DAEMON = "/usr/local/bin/forgejo-runner"
PIN = "10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin"


class Way:
    """One way to reach Podman, and the containers a test started."""

    def __init__(self, podman, kind, tmp_path):
        self.podman = podman
        self.kind = kind  # "podman" (the CLI) or "docker-api" (docker CLI, podman's socket)
        self.tmp = tmp_path
        self.names = []

    @property
    def engine(self):
        return "podman" if self.kind == "podman" else "docker"

    def env(self, extra=None):
        env = self.podman.env()
        if self.kind == "docker-api":
            env["DOCKER_HOST"] = self.podman.docker_host
        env.update(extra or {})
        return env

    def cli(self, *args, check=True):
        result = self.podman.podman(*args, check=check)
        return result.stdout.strip()

    def name(self, what):
        name = "frg-%s-%s" % (what, uuid.uuid4().hex[:8])
        self.names.append(name)
        return name

    def runner(self, *steps, lines=0, network="none"):
        name = self.name("runner")
        self.cli("run", "-d", "--init", "--network", network, "--name", name,
                 "-v", "%s:/fakerunner.sh:ro" % FAKE, IMAGE, "sh", "/fakerunner.sh", *steps)
        if lines:
            self.wait_lines(name, lines)
        return name

    def host_runner(self, job, *steps, lines=0):
        box = self.tmp / ("box-%d" % len(self.names))
        box.mkdir()
        os.mkfifo(str(box / "fifo"))
        name = self.name("hostrunner")
        self.cli("run", "-d", "--init", "--network", "none", "--name", name,
                 "-v", "%s:/state" % box, "-v", "%s:%s:ro" % (HOSTRUNNER, DAEMON),
                 "-v", "%s:/fakerunner.sh:ro" % FAKE, IMAGE, DAEMON, "/state", "0", str(job),
                 *steps)
        self.wait_lines(name, lines)
        return name

    def job(self, task=7):
        name = "FORGEJO-ACTIONS-TASK-%d_WORKFLOW-%s_JOB-build" % (task, uuid.uuid4().hex[:8])
        self.names.append(name)
        self.cli("run", "-d", "--init", "--network", "none", "--name", name, IMAGE,
                 "sleep", "3600")
        return name

    def started_at(self, name):
        return self.cli("inspect", "--format", "{{.State.StartedAt}}", name)

    def wait_lines(self, name, count, since=None, seconds=10.0):
        deadline = time.monotonic() + seconds
        args = ["logs"] + (["--since", since] if since else []) + [name]
        while True:
            result = self.podman.podman(*args, check=False)
            have = len((result.stdout + result.stderr).splitlines())
            if have >= count:
                return
            if time.monotonic() > deadline:
                raise AssertionError("%s logged %d lines, not %d" % (name, have, count))
            time.sleep(0.05)

    def conf(self, text=""):
        path = self.tmp / ("guard-%d.conf" % len(self.names))
        path.write_text("[watchdog]\nengine = %s\ndocker_timeout = 10s\n%s" % (self.engine, text))
        return str(path)

    def watchdog(self, *args, env=None, state="state"):
        result = run_tool(WATCHDOG, "--config", self.conf(), "--state-dir",
                          str(self.tmp / state), "--json", *args, env=self.env(env), timeout=60)
        assert "Traceback" not in result.stderr, result.stderr
        doc = json.loads(result.stdout)["runners"][0] if result.stdout.strip() else None
        return result, doc

    def cleanup(self):
        if self.names:
            self.cli("rm", "-f", "-t", "0", *self.names, check=False)


@pytest.fixture(params=["podman", "docker-api"])
def way(request, podman, tmp_path):
    w = Way(podman, request.param, tmp_path)
    yield w
    w.cleanup()


def test_wedged_is_restarted_then_the_budget_holds(way):
    # Podman's Docker API stamps log lines to the whole second (2026-11-29T14:58:04Z,
    # the fraction cut off): a line of a run's first second looks older than the run's
    # start (or the previous run's end) and is not counted.  So the second burst
    # comes 1.2 s after the restart, as a wedged runner's errors do (every 2 s).
    runner = way.runner("wedged", "60", "on-restart", "sleep", "1.2", "wedged", "60", lines=60)
    before = way.started_at(runner)
    result, doc = way.watchdog("--container", runner)
    assert result.returncode == 0, result.stderr
    assert doc["decision"] == "wedged" and doc["restarted"] is True and doc["errors"] == 60
    assert result.stderr.strip().endswith("no job running: restarted")
    assert way.started_at(runner) != before
    assert doc["new_started_at"] > doc["started_at"]
    finished = way.cli("inspect", "--format", "{{.State.FinishedAt}}", runner)
    way.wait_lines(runner, 60, since=finished.split(" +")[0].replace(" ", "T") + "Z")
    after = way.started_at(runner)
    result, doc = way.watchdog("--container", runner)
    assert result.returncode == 1, result.stderr
    assert doc["decision"] == "skipped-budget" and "cooldown" in result.stderr
    assert way.started_at(runner) == after


def test_healthy_is_left_alone(way):
    runner = way.runner("healthy", lines=3)
    before = way.started_at(runner)
    result, doc = way.watchdog("--container", runner)
    assert result.returncode == 0, result.stderr
    assert (doc["decision"], doc["errors"]) == ("healthy", 0)
    assert way.started_at(runner) == before


def test_job_containers_block_and_orphans_do_not(way):
    orphan = way.job(task=3)
    time.sleep(2.2)  # created more than the 2 s start margin before the runner
    runner = way.runner("wedged", "60", lines=60)
    result, doc = way.watchdog("--container", runner, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert doc["decision"] == "wedged" and doc["orphaned_jobs"] == [orphan]
    assert doc["blocking_jobs"] == [] and "would restart (dry run)" in result.stderr
    job = way.job(task=7)
    before = way.started_at(runner)
    result, doc = way.watchdog("--container", runner)
    assert result.returncode == 0, result.stderr
    assert doc["decision"] == "skipped-job" and doc["blocking_jobs"] == [job]
    assert "job container %s running" % job in result.stderr
    assert way.started_at(runner) == before


def test_a_host_job_blocks(way):
    runner = way.host_runner(3600, "wedged", "60", lines=60)
    before = way.started_at(runner)
    result, doc = way.watchdog("--container", runner)
    assert result.returncode == 0, result.stderr
    assert doc["decision"] == "skipped-job", result.stderr
    assert len(doc["blocking_jobs"]) == 1 and doc["blocking_jobs"][0].endswith(" (sleep 3600)")
    assert "host job pid " in result.stderr
    assert way.started_at(runner) == before


def test_refused_is_not_restarted(way):
    runner = way.runner("refused", "60", lines=60)
    before = way.started_at(runner)
    result, doc = way.watchdog("--container", runner)
    assert result.returncode == 1 and doc["decision"] == "refused", result.stderr
    assert "re-registered" in result.stderr
    assert way.started_at(runner) == before


def test_missing_container_and_unreachable_engine(way):
    name = way.name("missing")
    result, doc = way.watchdog("--container", name)
    assert result.returncode == 1 and doc["decision"] == "error"
    assert "container %s does not exist" % name in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    gone = "unix://%s/nothing.sock" % way.tmp
    key = "CONTAINER_HOST" if way.kind == "podman" else "DOCKER_HOST"
    result, doc = way.watchdog("--container", name, env={key: gone})
    assert result.returncode == 1 and doc["decision"] == "error"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    title = "Podman" if way.kind == "podman" else "Docker engine"
    assert "%s unreachable at %s" % (title, gone) in lines[0]


def test_runners_refresh_a_stale_host_network_container(way):
    way.podman.podman("rm", "-fa", "-t", "0")  # no job container of another test blocks
    with open(way.podman.hosts, "w") as handle:
        handle.write("127.0.0.1\tlocalhost\n")
    runner = way.runner(network="host")
    before = way.started_at(runner)
    conf = way.conf("runners = %s\n[reconcile]\nhosts_file = %s\nlock_file = %s/hosts.lock\n"
                    "state_dir = %s/state\npins = forge.azrak.io 10.1.0.10\n"
                    % (runner, way.podman.hosts, way.tmp, way.tmp))
    conf_text = open(conf).read().replace("docker_timeout = 10s\n",
                                          "docker_timeout = 10s\nstate_dir = %s/state\n" % way.tmp)
    open(conf, "w").write(conf_text)
    check = run_tool(RECONCILE, "--config", conf, "--runners", env=way.env())
    assert check.returncode == 0, check.stderr
    assert "runner %s: stale: forge.azrak.io -> 10.1.0.10 missing" % runner in check.stderr
    result = run_tool(RECONCILE, "--config", conf, "--refresh-stale", "--json", env=way.env())
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)["runners"][0]
    assert doc["status"] == "refreshed" and doc["restarted"] is True, result.stderr
    assert way.started_at(runner) != before
    path = way.cli("inspect", "--format", "{{.HostsPath}}", runner)
    # podman writes the pinned line without its comment: the pin all the same
    assert "10.1.0.10\tforge.azrak.io\n" in open(path).read()
