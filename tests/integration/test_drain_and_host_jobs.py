"""A restart never kills a job: against the real Docker engine.

The runner is tests/helpers/hostrunner.sh installed in its container as
/usr/local/bin/forgejo-runner (so its command name is the daemon's), under
--init (docker-init is PID 1, the daemon its child).  It logs a wedge with
tests/helpers/fakerunner.sh's steps, may start a host job (`sleep`, its child), and
on SIGTERM drains for DRAIN seconds before it exits by itself, writing
what happened to DIR/events (a bind mount).
"""

import pytest

from helpers.runners import as_json, host_job_pid, host_runner, wait_for, watchdog
from helpers.tools import no_traceback

pytestmark = pytest.mark.docker

def test_a_draining_runner_is_restarted_without_sigkill(eng, tmp_path):
    runner, events = host_runner(eng, tmp_path, 3, "none", "wedged", "60", lines=60)
    before = eng.started_at(runner)
    result = watchdog(eng, tmp_path / "state", "--container", runner, "--json")
    assert result.returncode == 0, result.stderr
    doc = as_json(result)
    assert doc["restarted"] is True and doc["error"] is None
    assert result.stderr.strip().endswith("no job running: restarted (forge not asked)")
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
        "host job pid %d (sleep 3600) running: wedged, not restarted while a job runs: skipped "
        "(forge not asked)" % job)  # no .runner: the log alone decides
    assert eng.started_at(runner) == before
    assert "got TERM" not in events.read_text()

