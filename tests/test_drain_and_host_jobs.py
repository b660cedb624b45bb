"""A restart never kills a job: against the real Docker engine.

The runner is tests/hostrunner.sh installed in its container as
/usr/local/bin/forgejo-runner (so its command name is the daemon's), under
--init (docker-init is PID 1, the daemon its child).  It logs a wedge with
tests/fakerunner.sh's steps, may start a host job (`sleep`, its child), and
on SIGTERM drains for DRAIN seconds before it exits by itself, writing
what happened to DIR/events (a bind mount).
"""

import os

import pytest

from conftest import ROOT
from test_watchdog_integration import IMAGE, Engine, as_json, no_traceback, watchdog

pytestmark = pytest.mark.docker

HOSTRUNNER = os.path.join(ROOT, "tests", "hostrunner.sh")
FAKE = os.path.join(ROOT, "tests", "fakerunner.sh")
DAEMON = "/usr/local/bin/forgejo-runner"


def host_runner(eng, tmp_path, drain, job, *steps, lines=0):
    """Start a host-job runner; -> (container name, its events file)."""
    box = tmp_path / ("box-%d" % len(eng.names))
    box.mkdir()
    os.mkfifo(str(box / "fifo"))
    name = eng.name("hostrunner")
    eng.docker("run", "-d", "--init", "--network", "none", "--name", name,
               "-v", "%s:/state" % box, "-v", "%s:%s:ro" % (HOSTRUNNER, DAEMON),
               "-v", "%s:/fakerunner.sh:ro" % FAKE, IMAGE,
               DAEMON, "/state", str(drain), str(job), *steps)
    if lines:
        eng.wait_lines(name, lines)
    wait_for(box / "events", "idle")
    return name, box / "events"


def host_job_pid(eng, container):
    """The host pid of the container's `sleep` (the host job), by docker top."""
    top = eng.docker("top", container, "-eo", "pid,ppid,comm,args").stdout.splitlines()
    pids = [line.split()[0] for line in top[1:] if line.split()[2] == "sleep"]
    assert len(pids) == 1, top
    return int(pids[0])


def wait_for(path, text, seconds=10.0, count=1):
    """Until `path` holds `text` (count times)."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        if path.exists() and path.read_text().count(text) >= count:
            return
        if time.monotonic() > deadline:
            raise AssertionError("%s: no %r in %r" % (path, text, path.read_text()
                                                      if path.exists() else None))
        time.sleep(0.05)


@pytest.fixture
def eng(docker_host):
    engine = Engine(docker_host)
    yield engine
    engine.cleanup()


def test_a_draining_runner_is_restarted_without_sigkill(eng, tmp_path):
    runner, events = host_runner(eng, tmp_path, 3, "none", "wedged", "60", lines=60)
    before = eng.started_at(runner)
    result = watchdog(eng, tmp_path / "state", "--container", runner, "--json")
    assert result.returncode == 0, result.stderr
    doc = as_json(result)
    assert doc["restarted"] is True and doc["error"] is None
    assert result.stderr.strip().endswith("no job running: restarted")
    assert eng.started_at(runner) != before
    # its own words: it got SIGTERM, took its 3 s and exited by itself
    wait_for(events, "idle", count=2)  # the new run is up
    assert events.read_text().splitlines() == ["idle", "got TERM", "exited by itself", "idle"]


def test_a_runner_that_does_not_drain_in_time_is_reported(eng, tmp_path):
    runner, events = host_runner(eng, tmp_path, 30, "none", "wedged", "60", lines=60)
    conf = tmp_path / "guard.conf"
    conf.write_text("[watchdog]\nrunners = r\n\n[runner r]\ncontainer = %s\n"
                    "stop_timeout = 1s\n" % runner)
    result = watchdog(eng, tmp_path / "state", "--config", str(conf), "--json")
    no_traceback(result)
    assert result.returncode == 1, result.stderr
    doc = as_json(result)
    assert doc["restarted"] is True
    assert ("restarted, but %s did not stop within 1s of SIGTERM: it was killed (SIGKILL)"
            % runner) in doc["error"]
    assert "any job it was still running" in result.stderr
    wait_for(events, "idle", count=2)
    assert events.read_text().splitlines() == ["idle", "got TERM", "idle"]


def test_a_host_job_blocks_the_restart_and_is_named(eng, tmp_path):
    runner, events = host_runner(eng, tmp_path, 0, 3600, "wedged", "60", lines=60)
    before = eng.started_at(runner)
    job = host_job_pid(eng, runner)
    result = watchdog(eng, tmp_path / "state", "--container", runner, "--json")
    assert result.returncode == 0, result.stderr
    doc = as_json(result)
    assert doc["decision"] == "skipped-job" and doc["job_running"] is True
    assert doc["blocking_jobs"] == ["pid %d (sleep 3600)" % job]
    assert result.stderr.strip().endswith(
        "host job pid %d (sleep 3600) running: wedged, not restarted while a job runs: skipped"
        % job)
    assert eng.started_at(runner) == before
    assert "got TERM" not in events.read_text()

