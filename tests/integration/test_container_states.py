"""forgejo-runner-watchdog against real containers in every state a runner
can be in but running normally (runners/condition.py): a crash loop
(`--restart always`, exits at once: Docker's `restarting`), paused,
created and never started, exited; and the terminal states a restart never
fixes (logs/terminal.py), from the bytes the runners really write
(tests/fixtures/logrus/terminal/).  Each is reported (exit 1), never
called healthy, never restarted: Docker resets RestartCount on a restart
(`docker restart`) and StartedAt changes, so neither may go back."""

import pytest

from helpers.runners import as_json, watchdog
from helpers.states import STARTING, crash_loop, exited, inspect, replay, start
from helpers.tools import no_traceback

pytestmark = pytest.mark.docker


def check(eng, tmp_path, name, *args):
    result = watchdog(eng, tmp_path / "state", "--container", name, "--json", *args)
    no_traceback(result)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result, as_json(result)


def never_restarted(eng, name, before):
    after = inspect(eng, name)
    assert after["RestartCount"] >= before["RestartCount"], (before["State"], after["State"])
    assert after["State"]["StartedAt"] >= before["State"]["StartedAt"]
    return after


def test_a_crash_loop_is_reported_with_the_last_lines_of_its_log(eng, tmp_path):
    script = ("echo '%s' >&2; echo 'panic: runtime error: index out of range [3] with length 3' >&2; "
              "echo 'goroutine 1 [running]:' >&2; exit 2" % STARTING)
    runner = crash_loop(eng, script)
    before = inspect(eng, runner)
    result, doc = check(eng, tmp_path, runner)
    assert result.returncode == 1, result.stderr
    assert (doc["decision"], doc["condition"], doc["restarted"], doc["cause"]) == \
        ("crash-loop", "crash-loop", False, None)
    assert doc["runner_state"] in ("restarting", "running")  # caught between runs, or in one
    assert doc["restart_count"] >= 3 and doc["errors"] is None and doc["exit_status"] == 1
    # the last lines, of several runs, Docker's time in front
    texts = [line.split(" ", 1)[1] for line in doc["last_lines"]]
    assert len(texts) == 5 and texts[-2:] == ["panic: runtime error: index out of range [3] with "
                                              "length 3", "goroutine 1 [running]:"], doc
    assert texts.count(STARTING) >= 1
    summary = result.stderr.strip()
    assert summary.startswith("forgejo-runner-watchdog: error: %s: container %s is in a crash loop ("
                              % (runner, runner)), summary
    assert "restarts by its restart policy): not restarted by the watchdog; `docker logs %s` says " \
           "why it exits" % runner in summary
    assert summary.endswith("; its log ends: %s" % doc["last_lines"][-1])
    assert "healthy" not in summary
    never_restarted(eng, runner, before)
    # metrics: checked (up), not wedged, no window counted
    prom = tmp_path / "m.prom"
    result, doc = check(eng, tmp_path, runner, "--metrics-file", str(prom))
    text = prom.read_text()
    assert 'forgejo_runner_watchdog_up{container="%s"} 1\n' % runner in text
    assert 'forgejo_runner_watchdog_wedged{container="%s"} 0\n' % runner in text
    assert "forgejo_runner_watchdog_fetch_errors{" not in text


def test_a_crash_loop_of_an_unregistered_runner_says_so(eng, tmp_path):
    """A Gitea runner the forge no longer knows fails its Declare and exits
    1 at every start: its log says why, so the report does."""
    runner = crash_loop(eng, replay("gitea-unregistered-declare-text"))
    before = inspect(eng, runner)
    result, doc = check(eng, tmp_path, runner)
    assert result.returncode == 1, result.stderr
    assert (doc["decision"], doc["condition"], doc["cause"], doc["restarted"]) == \
        ("refused", "crash-loop", "unregistered", False)
    assert doc["cause_error"] == "unauthenticated: unregistered runner"
    assert doc["last_lines"][-1].endswith(" Error: unauthenticated: unregistered runner")
    assert "is in a crash loop (" in result.stderr
    assert "refused by the server (unauthenticated: unregistered runner): the runner must be " \
           "re-registered (a restart cannot help)" in result.stderr
    never_restarted(eng, runner, before)


def test_a_paused_runner_is_reported_not_restarted(eng, tmp_path):
    """Even a wedged one: the operator's pause is not undone."""
    runner = eng.runner("wedged", "60", lines=60)
    eng.docker("pause", runner)
    before = inspect(eng, runner)
    result, doc = check(eng, tmp_path, runner)
    assert result.returncode == 1, result.stderr
    assert (doc["decision"], doc["condition"], doc["runner_state"], doc["restarted"]) == \
        ("paused", "paused", "paused", False)
    assert len(doc["last_lines"]) == 5 and doc["errors"] is None  # in --json, not the summary
    assert 'msg="failed to fetch task"' in doc["last_lines"][-1]
    assert result.stderr.strip() == (
        "forgejo-runner-watchdog: error: %s: container %s is paused: not restarted (the pause is "
        "not undone); `docker unpause %s` when it should run again" % (runner, runner, runner))
    after = never_restarted(eng, runner, before)
    assert after["State"]["Status"] == "paused"
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]
    # --dry-run says the same
    result, doc = check(eng, tmp_path, runner, "--dry-run")
    assert (result.returncode, doc["decision"]) == (1, "paused")


def test_a_container_created_never_started(eng, tmp_path):
    runner = start(eng, "exit 0", create=True)
    result, doc = check(eng, tmp_path, runner)
    assert result.returncode == 1, result.stderr
    assert (doc["decision"], doc["condition"], doc["runner_state"], doc["restarted"]) == \
        ("error", "stopped", "created", False)
    assert doc["error"] == ("container %s is not running (created, exit code 0): start it; the "
                            "watchdog only restarts a running runner" % runner)
    assert result.stderr.strip().endswith(": " + doc["error"])
    assert inspect(eng, runner)["State"]["Status"] == "created"


def test_an_exited_runner_whose_log_says_why(eng, tmp_path):
    """The Forgejo runner's daemon refuses an address it cannot parse
    before it logs anything: cobra's line on its stderr, exit 1."""
    runner = exited(eng, replay("forgejo-bad-url-text"))
    result, doc = check(eng, tmp_path, runner)
    assert result.returncode == 1, result.stderr
    assert (doc["decision"], doc["condition"], doc["cause"], doc["runner_state"]) == \
        ("misconfigured", "stopped", "bad-url", "exited")
    assert doc["cause_error"] == ('invalid configuration: malformed `url` "forge.azrak.io": parse '
                                  '"forge.azrak.io": invalid URI for request')
    assert ("container %s is not running (exited, exit code 1): misconfigured (invalid "
            "configuration: malformed `url`" % runner) in result.stderr
    assert inspect(eng, runner)["State"]["Status"] == "exited"
    # an exit without a cause: stopped, as before
    plain = exited(eng, "echo bye >&2; exit 3")
    result, doc = check(eng, tmp_path, plain)
    assert (result.returncode, doc["decision"], doc["cause"]) == (1, "error", None)
    assert "container %s is not running (exited, exit code 3): start it" % plain in result.stderr
    assert doc["last_lines"][-1].endswith(" bye")


@pytest.mark.parametrize("fixture, cause, decision", [
    ("gitea-second-process-text", "second-process", "misconfigured"),
    ("gitea-bad-url-register-text", "bad-url", "misconfigured"),
    ("gitea-unregistered-text", "unregistered", "refused"),
])
def test_a_running_runner_whose_log_ends_in_a_terminal_state(eng, tmp_path, fixture, cause,
                                                            decision):
    """A container that stays up while its runner fails again and again
    (a supervisor inside it, s6 in Gitea's dind images): its window ends in
    the terminal line; with 150 fetch errors before it, still no restart."""
    runner = start(eng, "i=0; while [ $i -lt 150 ]; do echo 'time=\"t\" level=error msg=\"failed to "
                   "fetch task\" error=\"unavailable: unexpected EOF\"' >&2; i=$((i+1)); done; "
                   "while :; do %s; done" % replay(fixture, "sleep 1"))
    before = inspect(eng, runner)
    eng.wait_lines(runner, 152)
    result, doc = check(eng, tmp_path, runner)
    assert result.returncode == 1, result.stderr
    assert (doc["decision"], doc["cause"], doc["condition"], doc["restarted"]) == \
        (decision, cause, None, False)
    assert doc["errors"] == 150 and doc["runner_state"] == "running"
    assert "(a restart cannot help)" in result.stderr
    after = never_restarted(eng, runner, before)
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]
