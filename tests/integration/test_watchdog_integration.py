"""forgejo-runner-watchdog against the real Docker engine.

A fake runner (tests/helpers/fakerunner.sh in the busybox image, --init,
--network none) writes real-format runner lines to stderr and keeps
running; job containers carry the runner's naming.  Whether the watchdog
restarted a runner is read from `docker inspect` (State.StartedAt).
Every test has its own container names and its own state dir.
"""

import json
import os
import socket
import subprocess
import threading
import time
import uuid

import pytest

from helpers.runners import TOOL, as_json, restarts_in_state, watchdog
from helpers.tools import ROOT, no_traceback

pytestmark = pytest.mark.docker

# ---------------------------------------------------------------- decisions


def test_wedged_runner_is_restarted(eng, tmp_path):
    runner = eng.runner("wedged", "60", lines=60)
    before = eng.started_at(runner)
    metrics = tmp_path / "watchdog.prom"
    result = watchdog(eng, tmp_path / "state", "--container", runner, "--json",
                      "--metrics-file", str(metrics))
    assert result.returncode == 0, result.stderr
    assert eng.started_at(runner) != before
    # verify = ping by default, but this runner has no .runner on a mount: the
    # forge is not asked (one warning says why) and the log alone decides
    assert result.stderr.strip() == (
        "%s: warning: %s: forge not asked: no .runner: not on a mount of the container (looked "
        "for /.runner, /data/.runner): the log alone decides (forge = URL in [runner %s] names "
        "it)\n"
        "%s: %s: 60 fetch errors in %ds (threshold 40), newest %ds ago (transport: connection "
        "reset), no job running: restarted (forge not asked)"
        % (TOOL, runner, runner, TOOL, runner, round(as_json(result)["span"]),
           round(as_json(result)["newest_error_age"]))
    )
    doc = as_json(result)
    assert doc["forge"]["asked"] is False and doc["forge"]["url"] is None
    assert doc["forge"]["why"].startswith("no .runner: not on a mount")
    assert doc["decision"] == "wedged" and doc["restarted"] is True
    assert doc["errors"] == 60 and doc["threshold"] == 40 and doc["window"] == 300
    assert doc["job_running"] is False and doc["exit_status"] == 0
    assert doc["newest_error"].endswith("connection reset by peer")
    assert restarts_in_state(tmp_path / "state", runner) == 1
    text = metrics.read_text()
    assert '# TYPE forgejo_runner_watchdog_restarts_total counter' in text
    assert 'forgejo_runner_watchdog_restarts_total{container="%s"} 1\n' % runner in text
    assert 'forgejo_runner_watchdog_fetch_errors{container="%s"} 60\n' % runner in text
    assert 'forgejo_runner_watchdog_wedged{container="%s"} 1\n' % runner in text
    assert 'forgejo_runner_watchdog_last_restart_timestamp_seconds{container="%s"} 0\n' \
        % runner not in text


def test_healthy_runner_is_left_alone(eng, tmp_path):
    runner = eng.runner("healthy", lines=3)
    before = eng.started_at(runner)
    result = watchdog(eng, tmp_path, "--container", runner, "--json")
    assert result.returncode == 0, result.stderr
    assert as_json(result)["decision"] == "healthy" and as_json(result)["errors"] == 0
    assert result.stderr.strip() == "%s: %s: 0 fetch errors in %ds (threshold 40): healthy" % (
        TOOL, runner, round(as_json(result)["span"]))
    assert as_json(result)["job_running"] is None  # not wedged: job containers not listed
    assert eng.started_at(runner) == before
    assert not os.path.exists(tmp_path / "state.json")


def test_below_threshold_is_healthy(eng, tmp_path):
    runner = eng.runner("wedged", "39", lines=39)
    before = eng.started_at(runner)
    result = watchdog(eng, tmp_path, "--container", runner, "--json")
    assert result.returncode == 0, result.stderr
    doc = as_json(result)
    assert (doc["decision"], doc["errors"], doc["restarted"]) == ("healthy", 39, False)
    assert eng.started_at(runner) == before


def test_threshold_option_overrides(eng, tmp_path):
    runner = eng.runner("wedged", "39", lines=39)
    result = watchdog(eng, tmp_path, "--container", runner, "--threshold", "39", "--json")
    assert result.returncode == 0, result.stderr
    assert as_json(result)["restarted"] is True


def test_every_error_format_counts(eng, tmp_path):
    steps = []
    for kind in ("reset", "eof", "refused", "502", "deadline", "debug", "tty"):
        steps += ["errors", "6", kind]
    runner = eng.runner(*steps, lines=42)
    result = watchdog(eng, tmp_path, "--container", runner, "--json", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert as_json(result)["errors"] == 42
    assert as_json(result)["decision"] == "wedged"


def test_job_running_blocks_the_restart(eng, tmp_path):
    runner = eng.runner("wedged", "60", lines=60)
    job = eng.job()
    before = eng.started_at(runner)
    result = watchdog(eng, tmp_path, "--container", runner, "--json")
    assert result.returncode == 0, result.stderr
    doc = as_json(result)
    assert doc["decision"] == "skipped-job" and doc["job_running"] is True
    assert doc["blocking_jobs"] == [job]
    assert "job container %s running" % job in result.stderr
    assert eng.started_at(runner) == before


def test_a_runner_named_like_a_job_is_never_a_job(eng, tmp_path):
    """A runner container whose own name starts with a job prefix, and
    another runner of the run named so too: neither is a job, of itself or
    of the other; the wedged one is restarted."""
    tag = uuid.uuid4().hex[:8]
    runner = eng.runner("wedged", "60", lines=60, name="FORGEJO-ACTIONS-TASK-self-%s" % tag)
    other = eng.runner("healthy", name="GITEA-ACTIONS-TASK-7_other-%s" % tag)
    before = eng.started_at(runner)
    result = watchdog(eng, tmp_path, "--container", runner, "--container", other, "--json")
    assert result.returncode == 0, result.stderr
    docs = {d["name"]: d for d in json.loads(result.stdout)["runners"]}
    assert (docs[runner]["decision"], docs[runner]["restarted"]) == ("wedged", True), result.stderr
    assert docs[runner]["blocking_jobs"] == [] and docs[runner]["orphaned_jobs"] == []
    assert docs[other]["decision"] == "healthy"
    assert eng.started_at(runner) != before
    assert "job container" not in result.stderr and "orphaned" not in result.stderr


def test_orphaned_job_container_does_not_block(eng, tmp_path):
    job = eng.job()
    time.sleep(2.2)  # created more than the 2 s start margin before the runner
    runner = eng.runner("wedged", "60", lines=60)
    before = eng.started_at(runner)
    result = watchdog(eng, tmp_path, "--container", runner, "--json")
    assert result.returncode == 0, result.stderr
    doc = as_json(result)
    assert doc["restarted"] is True and doc["orphaned_jobs"] == [job]
    assert doc["blocking_jobs"] == []
    assert "orphaned" in result.stderr and job in result.stderr
    assert eng.started_at(runner) != before


def test_injected_job_output_never_counts(eng, tmp_path):
    runner = eng.runner("inject", "50", "wedged", "39", lines=239)
    before = eng.started_at(runner)
    result = watchdog(eng, tmp_path, "--container", runner, "--json")
    assert result.returncode == 0, result.stderr
    doc = as_json(result)
    assert (doc["decision"], doc["errors"]) == ("healthy", 39)
    assert eng.started_at(runner) == before


def test_burst_over_is_recovered(eng, tmp_path):
    runner = eng.runner("burst", "60", lines=60)
    before = eng.started_at(runner)
    time.sleep(1.2)
    result = watchdog(eng, tmp_path, "--container", runner, "--recent", "1s", "--json")
    assert result.returncode == 0, result.stderr
    doc = as_json(result)
    assert doc["decision"] == "recovered" and doc["errors"] == 60
    assert "recovered" in result.stderr
    assert eng.started_at(runner) == before


def test_job_start_after_errors_is_recovered(eng, tmp_path):
    runner = eng.runner("wedged", "60", "job", "12", lines=61)
    result = watchdog(eng, tmp_path, "--container", runner, "--json", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert as_json(result)["decision"] == "recovered"


def test_refused_by_the_server_is_not_restarted(eng, tmp_path):
    runner = eng.runner("refused", "60", lines=60)
    before = eng.started_at(runner)
    result = watchdog(eng, tmp_path, "--container", runner, "--json")
    assert result.returncode == 1, result.stderr
    assert as_json(result)["decision"] == "refused"
    assert "re-registered" in result.stderr and "unregistered runner" in result.stderr
    assert eng.started_at(runner) == before


def test_second_run_after_a_restart_counts_only_the_new_run(eng, tmp_path):
    runner = eng.runner("wedged", "60", lines=60)
    first = watchdog(eng, tmp_path, "--container", runner)
    assert first.returncode == 0 and "restarted" in first.stderr, first.stderr
    after = eng.started_at(runner)
    second = watchdog(eng, tmp_path, "--container", runner, "--json")
    assert second.returncode == 0, second.stderr
    doc = as_json(second)
    assert (doc["decision"], doc["errors"], doc["restarted"]) == ("healthy", 0, False)
    assert eng.started_at(runner) == after


def _wedge_again(eng, runner):
    """Wait for the restarted runner's new burst.  Its lines may carry
    stamps from before StartedAt (Docker records it late), never from
    before the previous run's FinishedAt."""
    finished = eng.docker("inspect", "--format", "{{.State.FinishedAt}}", runner).stdout.strip()
    eng.wait_lines(runner, 60, since=finished)


def test_cooldown_blocks_a_second_restart(eng, tmp_path):
    runner = eng.runner("wedged", "60", "on-restart", "wedged", "60", lines=60)
    first = watchdog(eng, tmp_path, "--container", runner)
    assert first.returncode == 0 and "restarted" in first.stderr, first.stderr
    after = eng.started_at(runner)
    _wedge_again(eng, runner)
    second = watchdog(eng, tmp_path, "--container", runner, "--json")
    assert second.returncode == 1, second.stderr
    doc = as_json(second)
    assert doc["decision"] == "skipped-budget" and doc["errors"] == 60
    assert "cooldown" in second.stderr
    assert eng.started_at(runner) == after
    assert restarts_in_state(tmp_path, runner) == 1


def test_hourly_cap(eng, tmp_path):
    runner = eng.runner("wedged", "60", "on-restart", "wedged", "60", lines=60)
    budget = ("--cooldown", "0", "--max-restarts", "2")
    for _ in range(2):
        result = watchdog(eng, tmp_path, "--container", runner, *budget)
        assert result.returncode == 0 and "restarted" in result.stderr, result.stderr
        _wedge_again(eng, runner)
    before = eng.started_at(runner)
    third = watchdog(eng, tmp_path, "--container", runner, "--json", *budget)
    assert third.returncode == 1, third.stderr
    assert as_json(third)["decision"] == "skipped-budget"
    assert "hourly cap: 2 restarts in the last hour (max 2)" in third.stderr
    assert eng.started_at(runner) == before
    assert restarts_in_state(tmp_path, runner) == 2


# A state file that cannot keep the restart history: the tmpfs is full
# (state.json corrupt, as a crash or an editor might leave it), or
# state.json is a directory or a FIFO.  Each run is in a private mount
# namespace over the same state dir.
_UNKEEPABLE = {
    "corrupt on a full file system": (
        'mount -t tmpfs -o size=8k tmpfs "$S" && printf "{not json" > "$S/state.json" && '
        '(dd if=/dev/zero of="$S/filler" bs=4096 2>/dev/null || true)',
        "the state file {state}/state.json is corrupt",
        "cannot write the state file {state}/state.json: No space left on device"),
    "a directory": (
        'mkdir "$S/state.json"',
        "cannot read {state}/state.json: it is a directory, not a regular file; left as it is: "
        "history unknown",
        "the restart history cannot be read: cannot read {state}/state.json: it is a directory, "
        "not a regular file; left as it is"),
    "a FIFO": (
        'mkfifo "$S/state.json"',
        "cannot read {state}/state.json: it is a FIFO, not a regular file; left as it is: "
        "history unknown",
        "the restart history cannot be read: cannot read {state}/state.json: it is a FIFO, "
        "not a regular file; left as it is"),
}


@pytest.mark.parametrize("what", sorted(_UNKEEPABLE))
def test_a_restart_history_that_cannot_be_kept_never_restarts(eng, tmp_path, what):
    """Three runs, a wedged runner that wedges again after every restart,
    cooldown 10m: not one restart, each run exit 1 with the file named."""
    import sys

    setup, warning, why = (text.replace("{state}", str(tmp_path / "state"))
                           for text in _UNKEEPABLE[what])
    (tmp_path / "state").mkdir()
    conf = tmp_path / "guard.conf"
    conf.write_text("[watchdog]\nverify = none\n")  # the subject is the state file, not the forge
    runner = eng.runner("wedged", "60", "on-restart", "wedged", "60", lines=60)
    before = eng.started_at(runner)
    script = ('%s && for run in 1 2 3; do "$PY" "$TOOL" --config "$C" --state-dir "$S" '
              '--container "$R" --cooldown 10m; echo "exit $?"; done' % setup)
    env = dict(os.environ, DOCKER_HOST=eng.host, PYTHONPATH=os.path.join(ROOT, "lib"),
               S=str(tmp_path / "state"), PY=sys.executable, TOOL=os.path.join(ROOT, "bin", TOOL),
               R=runner, C=str(conf))
    env.pop("JOURNAL_STREAM", None)
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                          env=env, capture_output=True, text=True, timeout=120)
    assert eng.started_at(runner) == before, proc.stderr  # never restarted
    no_traceback(proc)
    assert proc.stdout.splitlines() == ["exit 1"] * 3, proc.stderr
    summary = ("%s: error: %s: 60 fetch errors in " % (TOOL, runner))
    lines = proc.stderr.splitlines()
    assert len(lines) == 6, proc.stderr
    for number in range(3):
        first, second = lines[2 * number:2 * number + 2]
        assert first.startswith("%s: warning: %s" % (TOOL, warning)), first
        assert second.startswith(summary), second
        assert second.endswith("no job running: wedged, not restarted: a restart that cannot be "
                               "recorded first is never made: " + why), second


def test_two_runs_at_once_restart_once(eng, tmp_path):
    runner = eng.runner("wedged", "60", "on-restart", "wedged", "60", lines=60)
    before = eng.started_at(runner)
    env = dict(os.environ, DOCKER_HOST=eng.host,
               PYTHONPATH=os.path.join(ROOT, "lib"))
    env.pop("JOURNAL_STREAM", None)
    import sys
    cmd = [sys.executable, os.path.join(ROOT, "bin", TOOL), "--state-dir", str(tmp_path),
           "--container", runner, "--json"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    docs = [json.loads(out)["runners"][0] for out, _ in outs]
    assert sorted(d["restarted"] for d in docs) == [False, True], outs
    loser = [d for d in docs if not d["restarted"]][0]
    # the loser waited, then judged the new run: a cooldown, never a second restart
    assert loser["decision"] in ("healthy", "skipped-budget"), loser
    assert restarts_in_state(tmp_path, runner) == 1
    assert eng.started_at(runner) != before


def test_dry_run_changes_nothing(eng, tmp_path):
    runner = eng.runner("wedged", "60", lines=60)
    before = eng.started_at(runner)
    metrics = tmp_path / "m.prom"
    state_dir = tmp_path / "state"
    result = watchdog(eng, state_dir, "--container", runner, "--dry-run", "--json",
                      "--metrics-file", str(metrics))
    assert result.returncode == 0, result.stderr
    doc = as_json(result)
    assert doc["decision"] == "wedged" and doc["restarted"] is False
    assert "would restart (dry run)" in result.stderr
    assert eng.started_at(runner) == before
    assert os.listdir(str(state_dir)) == [] and not metrics.exists()


def test_runner_from_the_config_file(eng, tmp_path):
    runner = eng.runner("wedged", "30", lines=30)
    conf = tmp_path / "guard.conf"
    conf.write_text("[watchdog]\nrunners = main\nthreshold = 50\nverify = none\n\n"
                    "[runner main]\ncontainer = %s\nthreshold = 25\n" % runner)
    result = watchdog(eng, tmp_path, "--config", str(conf), "--json", "--dry-run")
    assert result.returncode == 0, result.stderr
    doc = as_json(result)
    assert (doc["name"], doc["container"], doc["threshold"]) == ("main", runner, 25)
    assert doc["decision"] == "wedged"
    assert result.stderr.startswith("%s: main: 30 fetch errors" % TOOL)


def test_several_runners_exit_with_the_worst(eng, tmp_path):
    good = eng.runner("healthy", lines=3)
    refused = eng.runner("refused", "60", lines=60)
    result = watchdog(eng, tmp_path, "--container", good, "--container", refused, "--json")
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert [r["decision"] for r in doc["runners"]] == ["healthy", "refused"]
    assert len(result.stderr.strip().splitlines()) == 2


def test_job_claimed_by_another_runner_blocks_only_that_one(eng, tmp_path):
    a = eng.runner("job", "41", "wedged", "60", lines=61)  # claims task 41, then wedges
    b = eng.runner("wedged", "60", lines=60)
    job = eng.job(task=41)
    result = watchdog(eng, tmp_path, "--container", a, "--container", b, "--json")
    assert result.returncode == 0, result.stderr
    doc = {r["container"]: r for r in json.loads(result.stdout)["runners"]}
    assert doc[a]["decision"] == "skipped-job" and doc[a]["blocking_jobs"] == [job]
    assert doc[b]["restarted"] is True


# ---------------------------------------------------------------- failures


def test_engine_stopped(eng, tmp_path):
    sock = tmp_path / "nothing.sock"
    result = watchdog(eng, tmp_path, "--container", "forgejo_runner",
                      env={"DOCKER_HOST": "unix://%s" % sock})
    assert result.returncode == 1
    no_traceback(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Docker engine unreachable at unix://%s" % sock in lines[0]


@pytest.fixture
def hanging_engine(tmp_path):
    """A unix socket that accepts and never answers."""
    path = str(tmp_path / "hang.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(64)
    held = []
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except socket.timeout:
                continue
            except OSError:
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield "unix://" + path
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_engine_hanging_times_out(eng, tmp_path, hanging_engine):
    start = time.monotonic()
    result = watchdog(eng, tmp_path, "--container", "forgejo_runner", "--docker-timeout", "2",
                      env={"DOCKER_HOST": hanging_engine})
    took = time.monotonic() - start
    assert result.returncode == 1
    no_traceback(result)
    assert "timed out" in result.stderr and "killed it" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert took < 6.0, took


def test_container_missing(eng, tmp_path):
    name = eng.name("missing")
    result = watchdog(eng, tmp_path, "--container", name, "--json")
    assert result.returncode == 1
    no_traceback(result)
    assert "container %s does not exist" % name in result.stderr
    doc = as_json(result)
    assert doc["decision"] == "error" and doc["errors"] is None


def test_unreadable_logs_are_an_error(eng, tmp_path):
    runner = eng.runner("wedged", "60", options=("--log-driver", "none"))
    before = eng.started_at(runner)
    result = watchdog(eng, tmp_path, "--container", runner, "--json")
    assert result.returncode == 1
    no_traceback(result)
    assert as_json(result)["decision"] == "error"
    assert "log driver" in result.stderr and "none" in result.stderr
    assert eng.started_at(runner) == before


def test_stopped_runner_is_an_error(eng, tmp_path):
    runner = eng.runner("healthy", lines=3)
    eng.docker("stop", "-t", "1", runner)
    result = watchdog(eng, tmp_path, "--container", runner)
    assert result.returncode == 1
    assert "is not running" in result.stderr
    no_traceback(result)


def test_budget_spent_and_a_job_running_is_skipped_job_exit_0(eng, tmp_path):
    """The job guard comes before the budget: with a job running the
    answer is skipped-job (exit 0), even when no restart is allowed."""
    runner = eng.runner("wedged", "60", lines=60)
    job = eng.job()
    before = eng.started_at(runner)
    result = watchdog(eng, tmp_path, "--container", runner, "--max-restarts", "0", "--json")
    assert result.returncode == 0, result.stderr
    doc = as_json(result)
    assert (doc["decision"], doc["restarted"], doc["blocking_jobs"]) == ("skipped-job", False, [job])
    assert eng.started_at(runner) == before


def test_a_failed_restart_exits_1(eng, tmp_path):
    """A real failure: the runner's bind-mounted file is gone, so Docker
    cannot start it again after stopping it."""
    extra = tmp_path / "extra"
    extra.write_text("x\n")
    runner = eng.runner("wedged", "60", lines=60, options=("-v", "%s:/extra:ro" % extra))
    extra.unlink()
    result = watchdog(eng, tmp_path / "state", "--container", runner, "--json")
    assert result.returncode == 1, result.stderr
    doc = as_json(result)
    assert doc["decision"] == "wedged" and doc["restarted"] is False, doc
    assert "restart" in result.stderr.splitlines()[-1], result.stderr
    assert restarts_in_state(tmp_path / "state", runner) == 1  # it may have happened: counted
