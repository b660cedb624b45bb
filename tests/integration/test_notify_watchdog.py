"""The watchdog's notifications against the real Docker engine (fake
runners as in test_watchdog_integration.py): one event per condition,
recovered once, failures that change nothing, the dry run, and no notify
import without a command."""

import json
import os

import pytest

from helpers.logrus import HERE
from helpers.runners import IMAGE, watchdog
from helpers.states import crash_loop, replay, wait

pytestmark = pytest.mark.docker


class Setup:
    """A guard.conf whose [notify] command appends each event's JSON to
    a file; run() runs the watchdog with it."""

    def __init__(self, eng, tmp_path, command=None):
        self.eng = eng
        self.out = tmp_path / "events.jsonl"
        rec = tmp_path / "rec"
        rec.write_text("#!/bin/sh\ncat >>%s\n" % self.out)
        rec.chmod(0o755)
        self.state = tmp_path / "state"
        self.conf = tmp_path / "guard.conf"
        # the log alone decides (verify = none): these runners have no .runner
        self.conf.write_text("[watchdog]\nverify = none\n[notify]\ncommand = %s\n%s" % (
            rec, "command.more = %s\n" % command if command else ""))

    def run(self, runner, *args):
        return watchdog(self.eng, self.state, "--config", str(self.conf), "--container",
                           runner, *args)

    def events(self):
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines()]


def test_restarted_once_then_recovered_once(eng, tmp_path):
    s = Setup(eng, tmp_path)
    runner = eng.runner("wedged", "60", lines=60)
    before = eng.started_at(runner)
    first = s.run(runner)
    assert first.returncode == 0 and "restarted" in first.stderr, first.stderr
    assert eng.started_at(runner) != before
    [restarted] = s.events()
    assert (restarted["event"], restarted["runner"], restarted["decision"]) == \
        ("restarted", runner, "wedged")
    assert restarted["summary"].endswith("no job running: restarted")
    assert restarted["error"].endswith("connection reset by peer")
    assert len(restarted["evidence"]) == 5
    assert all("failed to fetch task" in line for line in restarted["evidence"])
    for _ in range(2):  # healthy after the restart: recovered, once
        again = s.run(runner)
        assert again.returncode == 0 and again.stderr.endswith(": healthy\n"), again.stderr
    assert [e["event"] for e in s.events()] == ["restarted", "recovered"]
    assert s.events()[1]["previous"] == "restarted"


def test_refused_three_checks_one_event(eng, tmp_path):
    s = Setup(eng, tmp_path)
    runner = eng.runner("refused", "60", lines=60)
    for _ in range(3):
        result = s.run(runner)
        assert result.returncode == 1 and "re-registered" in result.stderr, result.stderr
    [refused] = s.events()
    assert refused["event"] == "refused" and refused["runner"] == runner
    assert "unregistered runner" in refused["error"]
    state = json.loads((s.state / "state.json").read_text())
    assert state["runners"][runner]["notified"]["condition"] == "refused"


def test_the_forges_own_error_is_one_server_error(eng, tmp_path):
    s = Setup(eng, tmp_path)
    runner = eng.runner("errors", "60", "internal", lines=60)
    for _ in range(2):
        result = s.run(runner)
        assert result.returncode == 1, result.stderr
    [event] = s.events()
    assert (event["event"], event["decision"]) == ("server-error", "forge-error")
    assert event["error"].startswith("internal: pick task")


def test_a_crash_loop_is_one_crash_loop_event_with_its_last_lines(eng, tmp_path):
    s = Setup(eng, tmp_path)
    runner = crash_loop(eng, "echo 'panic: boom' >&2; exit 2")
    for _ in range(2):
        result = s.run(runner)
        assert result.returncode == 1 and "is in a crash loop" in result.stderr, result.stderr
    [event] = s.events()
    assert (event["event"], event["decision"], event["runner"]) == ("crash-loop", "crash-loop", runner)
    # one line a run: RestartCount counts a restart once it is due, its line may come later
    assert len(event["evidence"]) >= 3 and event["evidence"][-1].endswith(" panic: boom")
    assert event["summary"].endswith("; its log ends: %s" % event["evidence"][-1])
    # its cause found later (a runner the forge no longer knows): a new condition
    eng.docker("rm", "-f", runner)
    eng.docker("run", "-d", "--network", "none", "--name", runner, "--restart", "always",
               "-v", "%s:/f:ro" % HERE, IMAGE, "sh", "-c", replay("gitea-unregistered-declare-text"))
    wait(eng, runner, lambda doc: doc["RestartCount"] >= 3, "restarted 3 times")
    result = s.run(runner)
    assert result.returncode == 1, result.stderr
    assert [e["event"] for e in s.events()] == ["crash-loop", "refused"]
    refused = s.events()[1]
    assert (refused["decision"], refused["error"], refused["previous"]) == \
        ("refused", "unauthenticated: unregistered runner", "crash-loop")


def test_a_paused_runner_is_no_event(eng, tmp_path):
    s = Setup(eng, tmp_path)
    runner = eng.runner("healthy", lines=3)
    eng.docker("pause", runner)
    result = s.run(runner)
    assert result.returncode == 1 and "is paused" in result.stderr, result.stderr
    assert s.events() == []


def test_budget_exhausted_once(eng, tmp_path):
    s = Setup(eng, tmp_path)
    runner = eng.runner("wedged", "60", lines=60)
    for _ in range(2):
        result = s.run(runner, "--max-restarts", "0")
        assert result.returncode == 1 and "restarts disabled" in result.stderr, result.stderr
    [event] = s.events()
    assert event["event"] == "budget-exhausted" and event["decision"] == "skipped-budget"


def test_failing_command_is_a_warning_and_the_restart_happens(eng, tmp_path):
    s = Setup(eng, tmp_path, command="sh -c 'echo unreachable >&2; exit 7'")
    runner = eng.runner("wedged", "60", lines=60)
    before = eng.started_at(runner)
    result = s.run(runner)
    assert result.returncode == 0, result.stderr
    assert eng.started_at(runner) != before
    lines = result.stderr.splitlines()
    assert lines[0].endswith("no job running: restarted")
    assert lines[1] == ("forgejo-runner-watchdog: warning: notify restarted (%s) through [notify] "
                        "command.more failed: exit status 7: unreachable" % runner)
    assert len(lines) == 2
    assert [e["event"] for e in s.events()] == ["restarted"]  # the other command still ran


def test_dry_run_sends_nothing_and_says_what_it_would(eng, tmp_path):
    s = Setup(eng, tmp_path)
    runner = eng.runner("wedged", "60", lines=60)
    before = eng.started_at(runner)
    result = s.run(runner, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[1] == \
        "forgejo-runner-watchdog: would notify restarted (%s) through command (dry run)" % runner
    assert s.events() == [] and os.listdir(str(s.state)) == []
    assert eng.started_at(runner) == before


def test_without_a_command_notify_is_never_imported(eng, tmp_path):
    runner = eng.runner("refused", "60", lines=60)
    result = watchdog(eng, tmp_path, "--container", runner,
                         env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 1
    assert "forgejo_runner_guard.logs.runnerlog" in result.stderr  # the profile is there
    assert "forgejo_runner_guard.notify" not in result.stderr
    assert not os.path.exists(tmp_path / "state.json")
