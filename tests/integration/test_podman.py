"""The watchdog and --runners under real Podman 4.3.1 (tests/helpers/podman_engine.py),
two ways: the podman CLI (engine = podman) and Docker's CLI against
Podman's Docker-compatible service (engine = docker, DOCKER_HOST=
unix://.../podman.sock).

The runners are tests/helpers/fakerunner.sh (and tests/helpers/hostrunner.sh) in the
busybox image, started with the podman CLI in both ways (--init is
catatonit) by the Docker tests' own helpers.  Each scenario of tests/integration/test_watchdog_integration.py that
differs by engine runs here once per way; scenarios share a test where
one runner can serve several (a restart, then the budget).
"""

import json
import time

import pytest

from helpers.runners import IMAGE, Engine, host_runner
from helpers.states import crash_loop, inspect, replay
from helpers.tools import run_tool

pytestmark = [pytest.mark.docker, pytest.mark.podman]

WATCHDOG = "forgejo-runner-watchdog"
RECONCILE = "optimus-boot-reconcile"


class Way(Engine):
    """One way to reach Podman, and the containers a test started: the
    Docker tests' helper (test_watchdog_integration.Engine) with every
    container command run by the podman CLI."""

    def __init__(self, podman, kind, tmp_path):
        super().__init__(podman.docker_host)
        self.podman = podman
        self.kind = kind  # "podman" (the CLI) or "docker-api" (docker CLI, podman's socket)
        self.tmp = tmp_path

    @property
    def engine(self):
        return "podman" if self.kind == "podman" else "docker"

    def tool_env(self, extra=None):
        env = self.podman.env()
        if self.kind == "docker-api":
            env["DOCKER_HOST"] = self.podman.docker_host
        env.update(extra or {})
        return env

    def docker(self, *args, check=True, timeout=60):
        result = self.podman.podman(*args, check=False, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError("podman %s: %s" % (" ".join(args), result.stderr.strip()))
        return result

    def cli(self, *args):
        return self.docker(*args).stdout.strip()

    def cleanup(self):
        if self.names:  # podman rm -f would give each its 10 s to stop
            self.docker("rm", "-f", "-t", "0", *self.names, check=False)

    def conf(self, text=""):
        path = self.tmp / ("guard-%d.conf" % len(self.names))
        path.write_text("[watchdog]\nengine = %s\ndocker_timeout = 10s\n%s" % (self.engine, text))
        return str(path)

    def watchdog(self, *args, env=None, state="state"):
        result = run_tool(WATCHDOG, "--config", self.conf(), "--state-dir",
                          str(self.tmp / state), "--json", *args, env=self.tool_env(env), timeout=60)
        assert "Traceback" not in result.stderr, result.stderr
        doc = json.loads(result.stdout)["runners"][0] if result.stdout.strip() else None
        return result, doc


@pytest.fixture(params=["podman", "docker-api"])
def way(request, podman, tmp_path):
    (tmp_path / "state").mkdir()  # a state_dir other than the package's own must exist
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
    assert result.stderr.strip().endswith("no job running: restarted (forge not asked)")  # no .runner
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
    runner, _ = host_runner(way, way.tmp, 0, 3600, "wedged", "60", lines=60)
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
    runner = way.name("runner")
    way.cli("run", "-d", "--init", "--network", "host", "--name", runner, IMAGE, "sleep", "3600")
    before = way.started_at(runner)
    conf = way.conf("runners = %s\n[reconcile]\nhosts_file = %s\nlock_file = %s/hosts.lock\n"
                    "state_dir = %s/state\npins = forge.azrak.io 10.1.0.10\n"
                    % (runner, way.podman.hosts, way.tmp, way.tmp))
    conf_text = open(conf).read().replace("docker_timeout = 10s\n",
                                          "docker_timeout = 10s\nstate_dir = %s/state\n" % way.tmp)
    open(conf, "w").write(conf_text)
    check = run_tool(RECONCILE, "--config", conf, "--runners", env=way.tool_env())
    assert check.returncode == 0, check.stderr
    assert "runner %s: stale: forge.azrak.io -> 10.1.0.10 missing" % runner in check.stderr
    result = run_tool(RECONCILE, "--config", conf, "--refresh-stale", "--json", env=way.tool_env())
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)["runners"][0]
    assert doc["status"] == "refreshed" and doc["restarted"] is True, result.stderr
    assert way.started_at(runner) != before
    path = way.cli("inspect", "--format", "{{.HostsPath}}", runner)
    # podman writes the pinned line without its comment: the pin all the same
    assert "10.1.0.10\tforge.azrak.io\n" in open(path).read()


def test_refresh_says_a_hosts_file_podman_does_not_copy(way):
    """Podman copies its base_hosts_file (containers.conf, read from the
    podman CLI's environment or from the service's): a --hosts-file that is
    another file is said, and nothing restarted."""
    way.podman.podman("rm", "-fa", "-t", "0")
    with open(way.podman.hosts, "w") as handle:
        handle.write("127.0.0.1\tlocalhost\n")
    other = way.tmp / "other-hosts"
    other.write_text("127.0.0.1\tlocalhost\n")
    runner = way.name("runner")
    way.cli("run", "-d", "--init", "--network", "host", "--name", runner, IMAGE, "sleep", "3600")
    before = way.started_at(runner)
    conf = way.conf("runners = %s\nstate_dir = %s/state\n[reconcile]\nhosts_file = %s\n"
                    "lock_file = %s/hosts.lock\nstate_dir = %s/state\n"
                    "pins = forge.azrak.io 10.1.0.10\n" % (runner, way.tmp, other, way.tmp, way.tmp))
    result = run_tool(RECONCILE, "--config", conf, "--refresh-stale", env=way.tool_env())
    assert result.returncode == 1, result.stderr
    line = [ln for ln in result.stderr.splitlines() if "runner %s:" % runner in ln][0]
    assert ": not restarted: a restart would copy %s" % way.podman.hosts in line, line
    assert "which is not %s and lacks the pins" % other in line
    assert way.started_at(runner) == before


def test_a_runner_that_does_not_drain_in_time_is_reported_killed(way):
    """The grace period and the kill report under Podman: podman restart -t
    (or the Docker API's), and FinishedAt as podman records it."""
    runner, events = host_runner(way, way.tmp, 30, "none", "wedged", "60", lines=60)
    conf = way.conf("runners = r\n[runner r]\ncontainer = %s\nstop_timeout = 1s\n" % runner)
    result = run_tool(WATCHDOG, "--config", conf, "--state-dir", str(way.tmp / "state"), "--json",
                      env=way.tool_env(), timeout=60)
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)["runners"][0]
    assert doc["restarted"] is True
    assert ("restarted, but %s did not stop within 1s of SIGTERM: it was killed (SIGKILL)"
            % runner) in doc["error"]
    assert "exited by itself" not in events.read_text()


def test_a_paused_runner_and_a_crash_loop_are_reported_never_restarted(way):
    """Podman's states: a paused container (State.Running false under the
    podman CLI, true through its Docker API), and a crash loop, which
    Podman restarts without a back-off: RestartCount rises while it is
    `running` for a moment or `stopped` between runs."""
    runner = way.runner("wedged", "60", lines=60)
    way.docker("pause", runner)
    before = inspect(way, runner)
    result, doc = way.watchdog("--container", runner)
    assert (result.returncode, doc["decision"]) == (1, "paused"), result.stderr
    assert (doc["condition"], doc["runner_state"], doc["restarted"]) == ("paused", "paused", False)
    tool = "podman" if way.kind == "podman" else "docker"
    assert result.stderr.strip().endswith(
        "container %s is paused: not restarted (the pause is not undone); `%s unpause %s` when it "
        "should run again" % (runner, tool, runner)), result.stderr
    after = inspect(way, runner)
    assert (after["State"]["Status"], after["State"]["StartedAt"]) == \
        ("paused", before["State"]["StartedAt"])
    loop = crash_loop(way, replay("gitea-second-process-text"), restarts=5)
    result, doc = way.watchdog("--container", loop)
    assert result.returncode == 1, result.stderr
    assert (doc["decision"], doc["condition"], doc["cause"], doc["restarted"]) == \
        ("misconfigured", "crash-loop", "second-process", False), doc
    assert doc["runner_state"] in ("running", "stopped") and doc["restart_count"] >= 5
    assert doc["last_lines"][-1].endswith(" Error: runner file is already locked by another process")
    assert "is in a crash loop (" in result.stderr and "(a restart cannot help)" in result.stderr
    plain = crash_loop(way, "echo 'exec: gitea-runner: not found' >&2; exit 127", restarts=5)
    result, doc = way.watchdog("--container", plain)
    assert (result.returncode, doc["decision"], doc["cause"]) == (1, "crash-loop", None), doc
    assert result.stderr.strip().endswith("; its log ends: %s" % doc["last_lines"][-1])
    assert doc["last_lines"][-1].endswith(" exec: gitea-runner: not found")
