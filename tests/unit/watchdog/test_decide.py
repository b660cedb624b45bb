"""decide: the decision, from the evidence, the jobs and the budget.

Pure unit tests (no Docker): they run on Python 3.9 too."""

import dataclasses
import os

import pytest

from helpers.tools import FIXTURES
from forgejo_runner_guard.watchdog import decide as d
from forgejo_runner_guard.config.config import RunnerConfig
from forgejo_runner_guard.forge.ping import ForgeWord, PingResult, not_asked
from forgejo_runner_guard.logs.stamps import window_start
from forgejo_runner_guard.runners.jobs import JobContainer
from forgejo_runner_guard.watchdog.decide import Decision, decide, exit_status
from forgejo_runner_guard.logs.runnerlog import Evidence, scan

NOW = 1782727500.0  # 2026-06-29T10:05:00Z
CFG = RunnerConfig()  # threshold 40, window 5m, recent 60s, cooldown 10m, 3 per hour
MIN = 60.0
START = NOW - 1000  # the runner's current start


def evidence(errors=40, newest_age=2.0, detail="unavailable: unexpected EOF", job_age=None, since=NOW - 300):
    return Evidence(
        errors=errors,
        newest_error=None if newest_age is None else NOW - newest_age,
        newest_error_detail=detail if newest_age is not None else "",
        last_job_start=None if job_age is None else NOW - job_age,
        since=since,
    )


# ------------------------------------------------------------ decide


def test_logs_unreadable_is_error_never_healthy():
    for ev in (None, evidence(errors=0, newest_age=None), evidence()):
        decision = decide(ev, NOW, CFG, [], [], logs_ok=False)
        assert (decision.kind, decision.restart) == ("error", False)
        assert exit_status(decision) == 1


def test_no_errors_is_healthy():
    decision = decide(evidence(errors=0, newest_age=None), NOW, CFG, [], [])
    assert (decision.kind, decision.restart, decision.errors) == ("healthy", False, 0)
    assert decision.newest_error_age is None


@pytest.mark.parametrize("errors,kind", [(0, "healthy"), (1, "healthy"), (39, "healthy"), (40, "wedged"),
                                         (41, "wedged"), (152, "wedged")])
def test_threshold_boundary(errors, kind):
    decision = decide(evidence(errors=errors), NOW, CFG, [], [])
    assert decision.kind == kind
    assert decision.restart is (kind == "wedged")


def test_threshold_from_config():
    cfg = dataclasses.replace(CFG, threshold=5)
    assert decide(evidence(errors=5), NOW, cfg, [], []).kind == "wedged"
    assert decide(evidence(errors=4), NOW, cfg, [], []).kind == "healthy"


@pytest.mark.parametrize(
    "age,kind",
    [(0.0, "wedged"), (2.0, "wedged"), (59.999, "wedged"), (60.0, "recovered"), (61.0, "recovered"),
     (-3.0, "wedged")],  # a Docker clock slightly ahead: still the burst
)
def test_recent_boundary(age, kind):
    assert decide(evidence(newest_age=age), NOW, CFG, [], []).kind == kind


def test_job_start_after_newest_error_is_recovered():
    after = decide(evidence(newest_age=10.0, job_age=5.0), NOW, CFG, [], [])
    assert (after.kind, after.restart, after.reason) == ("recovered", False, "a job started after the newest error")
    assert after.job_start_age == 5.0
    same = decide(evidence(newest_age=10.0, job_age=10.0), NOW, CFG, [], [])
    assert same.kind == "wedged"  # not after: the same instant proves nothing
    before = decide(evidence(newest_age=10.0, job_age=200.0), NOW, CFG, [], [])
    assert before.kind == "wedged"


def test_recovered_is_not_an_alarm():
    decision = decide(evidence(newest_age=120.0), NOW, CFG, [], [])
    assert (decision.kind, decision.restart) == ("recovered", False)
    assert decision.reason == "burst over (recent 1m)"
    assert exit_status(decision) == 0


@pytest.mark.parametrize(
    "detail",
    ["unknown: rpc error: code = Unauthenticated desc = unregistered runner", "UNAUTHENTICATED",
     "permission_denied: runner disabled", "Unregistered Runner"],
)
def test_refused_never_restarts(detail):
    decision = decide(evidence(detail=detail), NOW, CFG, [], [])
    assert (decision.kind, decision.restart) == ("refused", False)
    assert "re-register" in decision.reason
    assert exit_status(decision) == 1
    # refused comes before the job and budget checks: a restart cannot help anyway
    busy = decide(evidence(detail=detail), NOW, CFG, [JobContainer("FORGEJO-ACTIONS-TASK-1_x", NOW, 1)],
                  [NOW - 60])
    assert busy.kind == "refused"


def test_refused_only_when_otherwise_wedged():
    detail = "unauthenticated"
    assert decide(evidence(errors=39, detail=detail), NOW, CFG, [], []).kind == "healthy"
    assert decide(evidence(newest_age=300.0, detail=detail), NOW, CFG, [], []).kind == "recovered"


def test_running_job_skips():
    jobs = [JobContainer("FORGEJO-ACTIONS-TASK-12_WORKFLOW-x_JOB-y", NOW - 30, 12)]
    decision = decide(evidence(), NOW, CFG, jobs, [])
    assert (decision.kind, decision.restart) == ("skipped-job", False)
    assert decision.reason == "job container FORGEJO-ACTIONS-TASK-12_WORKFLOW-x_JOB-y running: skipped"
    assert decision.job_running and decision.blocking == ("FORGEJO-ACTIONS-TASK-12_WORKFLOW-x_JOB-y",)
    assert exit_status(decision) == 0
    two = decide(evidence(), NOW, CFG, ["A", "B"], [])
    assert two.reason == "job containers A and 1 more running: skipped"


def test_job_guard_before_budget():
    decision = decide(evidence(), NOW, CFG, ["FORGEJO-ACTIONS-TASK-1_x"], [NOW - 60])
    assert decision.kind == "skipped-job"


def test_orphans_are_reported_not_blocking():
    orphan = JobContainer("FORGEJO-ACTIONS-TASK-3_x", START - 9000, 3)
    decision = decide(evidence(), NOW, CFG, [], [], orphans=[orphan])
    assert (decision.kind, decision.restart, decision.orphans) == ("wedged", True, ("FORGEJO-ACTIONS-TASK-3_x",))
    assert not decision.job_running


def test_cooldown_skips_with_exit_1():
    decision = decide(evidence(), NOW, CFG, [], [NOW - 240])
    assert (decision.kind, decision.restart) == ("skipped-budget", False)
    assert decision.reason == "cooldown: last restart 4m ago (cooldown 10m)"
    assert exit_status(decision) == 1
    assert (decision.restarts_last_hour, decision.last_restart_age) == (1, 240.0)


def test_cooldown_slack_lets_the_timer_keep_pace():
    # restarted at the 10:00 tick; the 10:10 tick comes 9m31s later
    assert decide(evidence(), NOW, CFG, [], [NOW - 571]).kind == "wedged"
    assert decide(evidence(), NOW, CFG, [], [NOW - 569]).kind == "skipped-budget"


def test_hourly_cap_skips():
    history = [NOW - 55 * MIN, NOW - 40 * MIN, NOW - 25 * MIN]
    decision = decide(evidence(), NOW, CFG, [], history)
    assert decision.kind == "skipped-budget"
    assert decision.reason == "hourly cap: 3 restarts in the last hour (max 3)"
    assert decision.restarts_last_hour == 3
    cfg = dataclasses.replace(CFG, max_restarts=4)
    assert decide(evidence(), NOW, cfg, [], history).kind == "wedged"


def test_budget_does_not_matter_when_not_wedged():
    history = [NOW - 60, NOW - 120, NOW - 180]
    assert decide(evidence(errors=3), NOW, CFG, [], history).kind == "healthy"
    assert decide(evidence(newest_age=100.0), NOW, CFG, [], history).kind == "recovered"


def test_wedged_restarts():
    decision = decide(evidence(errors=152, newest_age=2.0), NOW, CFG, [], [NOW - 7200])
    assert decision == Decision(
        kind="wedged",
        restart=True,
        reason="no job running: restart",
        errors=152,
        threshold=40,
        window=300.0,
        span=300.0,
        newest_error_age=2.0,
        newest_error_detail="unavailable: unexpected EOF",
        job_start_age=None,
        job_running=False,
        blocking=(),
        orphans=(),
        restarts_last_hour=0,
        last_restart_age=7200.0,
        rule="threshold",
    )
    assert exit_status(decision) == 0


def test_span_follows_the_evidence_window():
    assert decide(evidence(since=NOW - 42), NOW, CFG, [], []).span == 42.0
    assert decide(evidence(since=None), NOW, CFG, [], []).span is None


@pytest.mark.parametrize(
    "kind,status",
    [("healthy", 0), ("recovered", 0), ("wedged", 0), ("skipped-job", 0), ("refused", 1),
     ("skipped-budget", 1), ("error", 1)],
)
def test_exit_status_table(kind, status):
    assert exit_status(Decision(kind, kind == "wedged", "")) == status
    assert kind in d.KINDS


# ------------------------------------------------------------ end to end (pure)


@pytest.mark.parametrize("name", ["docker-logs-logfmt.txt", "docker-logs-tty.txt"])
def test_fixture_log_to_decision(name):
    with open(os.path.join(FIXTURES, name), "rb") as handle:
        data = handle.read()
    t0 = 1782727200.0  # the fixtures start at 10:00:00; the burst ends at 10:02:28
    now = t0 + 150
    since = window_start(now, CFG.window, t0, None)
    ev = scan(data, since)
    assert ev.errors == 45
    assert decide(ev, now, CFG, [], []).kind == "wedged"
    # restarted at 10:01:12 (FinishedAt), started 2 s later: 39 errors left
    since = window_start(now, CFG.window, t0 + 60 + 12 + 2, t0 + 60 + 12)
    assert decide(scan(data, since), now, CFG, [], []).kind == "healthy"
    # a minute after the burst ended: recovered, not wedged
    assert decide(scan(data, t0), t0 + 148 + 61, CFG, [], []).kind == "recovered"
    assert decide(scan(data, t0), t0 + 148 + 59, CFG, [], []).kind == "wedged"


# ------------------------------------------------------------ edges the mutation run found untested


def test_restarts_last_hour_counts_strictly_less_than_an_hour_ago():
    exactly = decide(evidence(), NOW, CFG, [], [NOW - 3600.0, NOW - 700.0])
    assert (exactly.restarts_last_hour, exactly.last_restart_age) == (1, 700.0)
    inside = decide(evidence(), NOW, CFG, [], [NOW - 3599.0, NOW - 700.0])
    assert inside.restarts_last_hour == 2
    # a restart up to 60 s ahead (clock set back) counts; further ahead does not
    ahead = decide(evidence(), NOW, CFG, [], [NOW + 60.0, NOW + 61.0])
    assert (ahead.restarts_last_hour, ahead.last_restart_age) == (1, -60.0)
    error = decide(None, NOW, CFG, history=[NOW - 10.0], logs_ok=False)
    assert (error.kind, error.restarts_last_hour, error.last_restart_age) == ("error", 1, 10.0)


def test_a_wedged_runner_with_the_budget_spent_and_a_job_running_is_skipped_job():
    spent = [NOW - 50 * MIN, NOW - 35 * MIN, NOW - 20 * MIN]
    job = JobContainer("FORGEJO-ACTIONS-TASK-9_W_J", NOW - 30, 9)
    decision = decide(evidence(), NOW, CFG, [job], spent)
    assert (decision.kind, decision.restart, exit_status(decision)) == ("skipped-job", False, 0)
    assert decision.restarts_last_hour == 3


def test_the_decision_edges():
    # exactly threshold errors, newest exactly recent - 1 s old: wedged
    assert decide(evidence(errors=40, newest_age=59.0), NOW, CFG, [], []).kind == "wedged"
    # newest exactly `recent` old: over
    assert decide(evidence(newest_age=60.0), NOW, CFG, [], []).kind == "recovered"
    # a job started at the very time of the newest error does not end the burst
    assert decide(evidence(newest_age=2.0, job_age=2.0), NOW, CFG, [], []).kind == "wedged"
    assert decide(evidence(newest_age=2.0, job_age=1.0), NOW, CFG, [], []).kind == "recovered"


def test_every_reason_and_the_base_fields_exactly():
    orphans = ["FORGEJO-ACTIONS-TASK-3_x"]  # names are taken as they are
    error = decide(None, NOW, CFG, history=[NOW - 10.0], logs_ok=False, orphans=orphans)
    healthy = decide(evidence(errors=3), NOW, CFG, [], [], orphans=orphans)
    over = decide(evidence(newest_age=90.0), NOW, CFG, [], [], orphans=orphans)
    refused_ = decide(evidence(detail="unauthenticated"), NOW, CFG, [], [], orphans=orphans)
    assert [(one.kind, one.reason) for one in (error, healthy, over, refused_)] == [
        ("error", "cannot read the logs"), ("healthy", "below threshold"),
        ("recovered", "burst over (recent 1m)"),
        ("refused", "refused by the server: re-register the runner")]
    for one in (error, healthy, over, refused_):
        assert (one.threshold, one.window, one.orphans, one.job_running) == (40, 300.0, tuple(orphans), False)




# ------------------------------------------------------------ terminal states, runners not running


def ended(cause, age=1.0, detail="unauthenticated: unregistered runner", **fields):
    """Evidence whose newest terminal line (logs/terminal.py) is `age` old."""
    return dataclasses.replace(evidence(**fields), terminal=cause, terminal_at=NOW - age,
                               terminal_detail=detail, terminal_line="x")


@pytest.mark.parametrize("cause, kind, outcome", [
    ("unregistered", "refused", "refused by the server (D): the runner must be re-registered "
                                "(a restart cannot help)"),
    ("second-process", "misconfigured", "misconfigured (D): another runner process uses its "
                                        "runner file; give each runner process its own "
                                        "runner.file (a restart cannot help)"),
    ("bad-url", "misconfigured", "misconfigured (D): the runner cannot use its forge's address; "
                                 "correct it (http:// or https://) in its .runner or "
                                 "registration (a restart cannot help)"),
])
def test_a_terminal_state_is_reported_never_restarted(cause, kind, outcome):
    """Even when the log alone is wedged, with the budget free and no job."""
    for errors in (0, 150):
        ev = ended(cause, detail="D", errors=errors, newest_age=3.0 if errors else None)
        decision = decide(ev, NOW, CFG, [], [])
        assert (decision.kind, decision.restart, decision.reason) == (kind, False, outcome)
        assert (decision.cause, decision.cause_detail, decision.condition) == (cause, "D", "")
        assert exit_status(decision) == 1
        assert d.needs_job_guard(ev, NOW, CFG) is False
        assert d.assess(ev, NOW, CFG) == (kind, outcome)


def test_a_terminal_line_counts_only_when_nothing_came_after_it():
    # a fetch error after it: the runner polls again (a new run, registered)
    assert d.terminal_cause(ended("unregistered", age=5.0, newest_age=3.0)) == ""
    assert decide(ended("unregistered", age=5.0, newest_age=3.0), NOW, CFG, [], []).kind == "wedged"
    # the same time: still the terminal state
    assert d.terminal_cause(ended("unregistered", age=3.0, newest_age=3.0)) == "unregistered"
    # a job started after it
    assert d.terminal_cause(ended("bad-url", age=5.0, newest_age=None, job_age=4.0)) == ""
    assert d.terminal_cause(ended("bad-url", age=5.0, newest_age=None, job_age=6.0)) == "bad-url"
    assert d.terminal_cause(evidence()) == ""
    assert d.terminal_cause(dataclasses.replace(evidence(), terminal="bad-url")) == ""  # no time


def held(kind, cause="", lines=("l1", "l2")):
    from forgejo_runner_guard.logs.tail import Tail
    from forgejo_runner_guard.runners.condition import Condition

    return Condition(kind, "container r is X", "do Y", "restarting", 7,
                     Tail(tuple(lines), cause, "D" if cause else ""))


@pytest.mark.parametrize("condition, cause, kind, reason", [
    ("crash-loop", "", "crash-loop", "container r is X: do Y"),
    ("paused", "", "paused", "container r is X: do Y"),
    ("stopped", "", "error", "container r is X: do Y; the watchdog only restarts a running runner"),
    ("crash-loop", "unregistered", "refused", "container r is X: refused by the server (D): the "
                                              "runner must be re-registered (a restart cannot help)"),
    ("stopped", "bad-url", "misconfigured", "container r is X: misconfigured (D): the runner "
                                            "cannot use its forge's address; correct it (http:// "
                                            "or https://) in its .runner or registration (a "
                                            "restart cannot help)"),
    ("crash-loop", "second-process", "misconfigured", None),
])
def test_a_runner_not_running_normally_is_never_restarted(condition, cause, kind, reason):
    decision = d.decide_held(held(condition, cause), NOW, CFG, [NOW - 10.0])
    assert (decision.kind, decision.restart, decision.condition) == (kind, False, condition)
    if reason is not None:
        assert decision.reason == reason
    assert (decision.cause, decision.cause_detail) == (cause, "D" if cause else "")
    assert decision.last_lines == ("l1", "l2")
    assert (decision.restarts_last_hour, decision.last_restart_age) == (1, 10.0)
    assert exit_status(decision) == 1
    # its log unread: the condition alone
    unread = d.decide_held(held(condition)._replace(tail=None), NOW, CFG)
    assert (unread.kind, unread.last_lines, unread.cause) == (
        {"crash-loop": "crash-loop", "paused": "paused", "stopped": "error"}[condition], (), "")


@pytest.mark.parametrize("kind", ["misconfigured", "crash-loop", "paused"])
def test_the_new_kinds_exit_1(kind):
    assert exit_status(Decision(kind, False, "")) == 1
    assert kind in d.KINDS


# ------------------------------------------------------------ the forge's word (issue 19)

URL = "https://forge.azrak.io/"
ANSWERED = ForgeWord(True, (PingResult(URL, "10.1.0.10", "the host's resolver", True, 23,
                                       status=200, attempts=1),))
DOWN = ForgeWord(True, (PingResult(URL, "10.1.0.10", "the host's resolver", False, 0, "transport",
                                   "connection refused", None, 3),))
SPENT = [NOW - 50 * MIN, NOW - 35 * MIN, NOW - 20 * MIN]


def test_the_forge_answered_restart_as_before():
    decision = d.with_forge(decide(evidence(), NOW, CFG, [], []), ANSWERED)
    assert (decision.kind, decision.restart, decision.reason) == ("wedged", True,
                                                                  "no job running: restart")
    assert decision.forge is ANSWERED and exit_status(decision) == 0


def test_the_forge_down_no_restart():
    decision = d.with_forge(decide(evidence(), NOW, CFG, [], []), DOWN)
    assert (decision.kind, decision.restart, exit_status(decision)) == ("forge-unreachable", False, 1)
    assert decision.reason == (
        "forge unreachable: Ping to https://forge.azrak.io/ at 10.1.0.10 (the host's resolver) "
        "failed 3 times (transport: connection refused): a restart cannot help, not restarted")
    assert decision.forge is DOWN and decision.errors == 40 and decision.rule == "threshold"


@pytest.mark.parametrize("blocking, history", [(["FORGEJO-ACTIONS-TASK-9_W_J"], []), ([], SPENT)])
def test_the_forge_down_comes_before_the_job_and_the_budget(blocking, history):
    before = decide(evidence(), NOW, CFG, blocking, history)
    assert before.kind in ("skipped-job", "skipped-budget")
    assert d.with_forge(before, DOWN).kind == "forge-unreachable"
    assert d.with_forge(before, ANSWERED).kind == before.kind


@pytest.mark.parametrize("ev, kind", [
    (evidence(errors=3), "healthy"),
    (evidence(newest_age=90.0), "recovered"),
    (evidence(detail="unauthenticated"), "refused"),
    (evidence(detail="internal: pick task: CreateTaskForRunner: resource does not exist"),
     "forge-error"),
])
def test_the_forge_changes_nothing_the_log_already_decided(ev, kind):
    for word in (DOWN, ANSWERED, not_asked("verify = none")):
        assert d.with_forge(decide(ev, NOW, CFG, [], []), word).kind == kind
    assert d.with_forge(decide(None, NOW, CFG, logs_ok=False), DOWN).kind == "error"


def test_not_asked_the_log_alone_decides():
    silent = not_asked("no .runner: not on a mount of the container")
    decision = d.with_forge(decide(evidence(), NOW, CFG, [], []), silent)
    assert (decision.kind, decision.restart, decision.forge) == ("wedged", True, silent)
    assert d.with_forge(decide(evidence(), NOW, CFG, [], []), None).forge is None


def test_who_is_asked_and_who_gets_the_job_guard():
    assert d.wedged_by_log(evidence(), NOW, CFG)
    assert not d.wedged_by_log(evidence(errors=3), NOW, CFG)
    assert not d.wedged_by_log(evidence(detail="unauthenticated"), NOW, CFG)
    assert not d.wedged_by_log(None, NOW, CFG)
    assert d.needs_job_guard(evidence(), NOW, CFG, ANSWERED)
    assert d.needs_job_guard(evidence(), NOW, CFG, None)
    assert d.needs_job_guard(evidence(), NOW, CFG, not_asked("verify = none"))
    assert not d.needs_job_guard(evidence(), NOW, CFG, DOWN)  # no restart: no jobs to list
    assert "forge-unreachable" in d.KINDS


# ------------------------------------------------------------ needs_job_guard: the gate of the job guard


def polling_evidence(streak=200.0, newest_age=1.0, errors=30):
    """Fewer errors than the threshold, but every poll of the last `streak`
    seconds failed: wedged by the polling rule alone."""
    return dataclasses.replace(evidence(errors=errors, newest_age=newest_age),
                               streak_start=NOW - streak, streak_polls=errors)


@pytest.mark.parametrize("ev, kind", [
    (None, None),  # no evidence (the logs could not be read): no jobs to list
    (evidence(errors=0, newest_age=None), "healthy"),
    (evidence(errors=39), "healthy"),
    (evidence(newest_age=60.0), "recovered"),  # the burst is over
    (evidence(newest_age=10.0, job_age=5.0), "recovered"),  # a job started after it
    (evidence(detail="unauthenticated: unregistered runner"), "refused"),
    (evidence(detail="internal: pick task: boom"), "forge-error"),
    (polling_evidence(streak=179.0), "healthy"),  # the streak is not long enough yet
    (evidence(), "wedged"),  # the threshold rule
    (polling_evidence(), "wedged"),  # the polling rule alone
    (dataclasses.replace(evidence(errors=40), streak_start=NOW - 200.0, streak_polls=40), "wedged"),
])
def test_needs_job_guard_exactly_when_the_log_says_wedged(ev, kind):
    """The watchdog lists the running jobs only for the runners this says
    yes to: exactly those whose log alone says wedged, the only kind the job
    guard can change (into skipped-job); never for a missing evidence."""
    assert d.needs_job_guard(ev, NOW, CFG) is (kind == "wedged")
    if ev is not None:
        assert d.assess(ev, NOW, CFG)[0] == kind
        # and deciding without the jobs agrees: wedged restarts, the rest do not
        assert decide(ev, NOW, CFG, [], []).kind == kind


def test_needs_job_guard_follows_now_and_the_settings():
    ev = evidence(errors=40, newest_age=2.0)
    assert d.needs_job_guard(ev, NOW, CFG) is True
    assert d.needs_job_guard(ev, NOW + 58.0, CFG) is False  # the newest error is 60 s old by then
    assert d.needs_job_guard(ev, NOW, dataclasses.replace(CFG, threshold=41)) is False
    assert d.needs_job_guard(ev, NOW, dataclasses.replace(CFG, recent=2.0)) is False
    few = polling_evidence(streak=100.0)
    assert d.needs_job_guard(few, NOW, CFG) is False
    assert d.needs_job_guard(few, NOW, dataclasses.replace(CFG, sustain=100.0)) is True


# ------------------------------------------------------------ the polling rule's report


def test_the_polling_rule_in_the_decision_exactly():
    one = dataclasses.replace(polling_evidence(errors=1), streak_polls=1)
    decision = decide(one, NOW, dataclasses.replace(CFG, sustain=60.0), [], [])
    phrase = "every poll failed for 3m20s (1 poll, unexpected EOF, fetch_interval 2s)"
    assert (decision.kind, decision.rule, decision.polling) == ("wedged", "polling", phrase)
    assert decision.reason == phrase + ", no job running: restart"
    many = decide(polling_evidence(errors=30), NOW, CFG, [], [])
    assert many.polling == "every poll failed for 3m20s (30 polls, unexpected EOF, fetch_interval 2s)"
    # both rules: exactly `threshold` errors count for the threshold rule
    both = decide(dataclasses.replace(polling_evidence(errors=40), ambiguous="a TTY stream"), NOW, CFG, [], [])
    assert (both.kind, both.rule, both.reason) == ("wedged", "polling+threshold", "no job running: restart")
    assert both.polling.startswith("every poll failed for 3m20s (40 polls")
    assert both.ambiguous == "a TTY stream"
    threshold = decide(evidence(errors=40), NOW, CFG, [], [])
    assert (threshold.rule, threshold.polling, threshold.ambiguous) == ("threshold", "", "")


def test_healthy_and_recovered_reasons_exactly():
    assert d.assess(evidence(errors=0, newest_age=None), NOW, CFG) == ("healthy", "below threshold")
    # a streak of exactly `sustain` whose failures stopped: recovered, one a second shorter: healthy
    over = polling_evidence(streak=180.0, newest_age=10.0)
    assert d.assess(over, NOW, CFG) == ("recovered", "polls failed for 3m, but none in the last 10s")
    assert d.assess(polling_evidence(streak=179.0, newest_age=10.0), NOW, CFG) == ("healthy", "below threshold")


def test_the_threshold_rule_ends_exactly_at_recent_in_the_rule_too():
    """A slow poller (fetch_interval 40 s: a poll is due within 60 s) whose
    newest of 40 failures is exactly `recent` (60 s) old: wedged by the
    polling rule alone; the threshold rule no longer holds."""
    cfg = dataclasses.replace(CFG, fetch_interval=40.0)
    ev = dataclasses.replace(evidence(errors=40, newest_age=60.0), streak_start=NOW - 600.0, streak_polls=40)
    decision = decide(ev, NOW, cfg, [], [])
    assert (decision.kind, decision.rule) == ("wedged", "polling")
    assert decision.polling == "every poll failed for 10m (40 polls, unexpected EOF, fetch_interval 40s)"
    younger = decide(dataclasses.replace(ev, newest_error=NOW - 59.0), NOW, cfg, [], [])
    assert younger.rule == "polling+threshold"


def test_a_held_runners_settings_and_restarts_exactly():
    # the report shows a held runner's threshold and window as for any other,
    # and counts its restarts as decide() does: strictly less than an hour
    # ago, up to CLOCK_SKEW ahead
    cfg = dataclasses.replace(CFG, threshold=41, window=600.0)
    decision = d.decide_held(held("paused"), NOW, cfg, [NOW - 3600.0, NOW - 3599.0, NOW + 60.0, NOW + 61.0])
    assert (decision.threshold, decision.window) == (41, 600.0)
    assert (decision.restarts_last_hour, decision.last_restart_age) == (2, -60.0)
    assert d.decide_held(held("paused"), NOW, cfg, [NOW - 3600.0]).restarts_last_hour == 0
