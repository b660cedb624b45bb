"""decide: the window, the job guard, the restart budget and the decision.

Pure unit tests (no Docker): they run on Python 3.9 too."""

import dataclasses
import os

import pytest

from forgejo_runner_guard import decide as d
from forgejo_runner_guard.config import DEFAULT_JOB_PREFIXES, RunnerConfig
from forgejo_runner_guard.decide import (
    Decision,
    JobContainer,
    blocking_jobs,
    budget_check,
    decide,
    exit_status,
    human,
    parse_job_container,
    window_start,
)
from forgejo_runner_guard.runnerlog import Evidence, scan

NOW = 1782727500.0  # 2026-06-29T10:05:00Z
CFG = RunnerConfig()  # threshold 40, window 5m, recent 60s, cooldown 10m, 3 per hour
MIN = 60.0


def evidence(errors=40, newest_age=2.0, detail="unavailable: unexpected EOF", job_age=None, since=NOW - 300):
    return Evidence(
        errors=errors,
        newest_error=None if newest_age is None else NOW - newest_age,
        newest_error_detail=detail if newest_age is not None else "",
        last_job_start=None if job_age is None else NOW - job_age,
        since=since,
    )


# ------------------------------------------------------------ window_start


@pytest.mark.parametrize(
    "started,finished,expected",
    [
        (None, None, NOW - 300),  # nothing known: the window
        (NOW - 3600, NOW - 3700, NOW - 300),  # started long ago: the window
        (NOW - 100, None, NOW - 102),  # started 100 s ago: from the start, 2 s margin
        (NOW - 100, NOW - 130, NOW - 102),  # previous run ended well before: margin applies
        (NOW - 100, NOW - 101, NOW - 101),  # margin never reaches back before FinishedAt
        (NOW - 100, NOW - 100.5, NOW - 100.5),
        (NOW - 301, NOW - 400, NOW - 300),  # start just before the window: the window
        (NOW - 301, NOW - 299, NOW - 299),  # finished inside the window (restart took long)
    ],
)
def test_window_start(started, finished, expected):
    assert window_start(NOW, 300.0, started, finished) == expected  # exactly: an epoch is never compared approximately


def test_window_start_margin():
    assert window_start(NOW, 300.0, NOW - 10, None, margin=5.0) == NOW - 15
    assert window_start(NOW, 300.0, NOW - 10, None, margin=0.0) == NOW - 10


# ------------------------------------------------------------ job containers


@pytest.mark.parametrize(
    "name,task",
    [
        ("FORGEJO-ACTIONS-TASK-12_WORKFLOW-deploy_JOB-build", 12),
        ("/FORGEJO-ACTIONS-TASK-4711_WORKFLOW-3f2a_JOB-test", 4711),
        ("GITEA-ACTIONS-TASK-5_WORKFLOW-ci_JOB-lint", 5),
        ("GITEA-ACTIONS-TASK-77-Lint", 77),
        ("FORGEJO-ACTIONS-TASK-", None),
        ("FORGEJO-ACTIONS-TASK-abc", None),
    ],
)
def test_parse_job_container(name, task):
    job = parse_job_container(name, DEFAULT_JOB_PREFIXES, created=5.0)
    assert job == JobContainer(name.lstrip("/"), 5.0, task)


@pytest.mark.parametrize(
    "name",
    ["forgejo_runner", "forgejo-actions-task-12_x", "X-FORGEJO-ACTIONS-TASK-12", "GITEA-ACTIONS-12", ""],
)
def test_not_a_job_container(name):
    assert parse_job_container(name, DEFAULT_JOB_PREFIXES) is None


def test_job_prefixes_are_configurable():
    assert parse_job_container("CI-JOB-9_x", ("CI-JOB-",)) == JobContainer("CI-JOB-9_x", 0.0, 9)
    assert parse_job_container("FORGEJO-ACTIONS-TASK-9_x", ("CI-JOB-",)) is None
    assert parse_job_container("anything", ("",)) is None  # an empty prefix matches nothing


START = NOW - 1000  # the runner's current start


def test_unclaimed_job_after_start_blocks():
    running = [JobContainer("FORGEJO-ACTIONS-TASK-12_W_J", START + 30, 12)]
    assert blocking_jobs("a", running, START, {"a": set()}) == (running, [])


def test_orphan_from_an_earlier_run_does_not_block():
    orphan = JobContainer("FORGEJO-ACTIONS-TASK-12_W_J", START - 3600, 12)
    assert blocking_jobs("a", [orphan], START, {"a": set()}) == ([], [orphan])
    # even when this runner's (older) log claimed it
    assert blocking_jobs("a", [orphan], START, {"a": {12}}) == ([], [orphan])


def test_job_created_in_the_first_seconds_is_not_an_orphan():
    # Docker records StartedAt a little late: a job created up to 2 s
    # "before" it may belong to this run, so it blocks
    early = JobContainer("FORGEJO-ACTIONS-TASK-1_W_J", START - 1.5, 1)
    assert blocking_jobs("a", [early], START, {}) == ([early], [])
    before = JobContainer("FORGEJO-ACTIONS-TASK-1_W_J", START - 2.5, 1)
    assert blocking_jobs("a", [before], START, {}) == ([], [before])
    assert blocking_jobs("a", [before], START, {}, margin=3.0) == ([before], [])


def test_unknown_start_blocks_everything():
    old = JobContainer("FORGEJO-ACTIONS-TASK-1_W_J", 0.0, 1)
    assert blocking_jobs("a", [old], None, {}) == ([old], [])


def test_job_claimed_by_another_runner_blocks_only_that_runner():
    theirs = JobContainer("FORGEJO-ACTIONS-TASK-7_W_J", START + 10, 7)
    nobodys = JobContainer("FORGEJO-ACTIONS-TASK-8_W_J", START + 10, 8)
    nameless = JobContainer("FORGEJO-ACTIONS-TASK-x", START + 10, None)
    claims = {"a": {1, 2}, "b": {7}}
    running = [theirs, nobodys, nameless]
    assert blocking_jobs("a", running, START, claims) == ([nobodys, nameless], [])
    assert blocking_jobs("b", running, START, claims) == (running, [])
    # a runner not in claims at all (its log gave none)
    assert blocking_jobs("c", running, START, claims) == ([nobodys, nameless], [])


def test_job_claimed_by_both_blocks_both():
    both = JobContainer("FORGEJO-ACTIONS-TASK-7_W_J", START + 10, 7)
    claims = {"a": frozenset({7}), "b": frozenset({7})}
    assert blocking_jobs("a", [both], START, claims) == ([both], [])
    assert blocking_jobs("b", [both], START, claims) == ([both], [])


def test_claimed_by_other_is_not_reported_as_my_orphan():
    theirs = JobContainer("FORGEJO-ACTIONS-TASK-7_W_J", START - 500, 7)
    assert blocking_jobs("a", [theirs], START, {"b": [7]}) == ([], [])


def test_no_jobs():
    assert blocking_jobs("a", [], START, {}) == ([], [])


# ------------------------------------------------------------ budget


def test_no_history_allows():
    assert budget_check([], NOW, 600, 3) is None


@pytest.mark.parametrize(
    "ago,allowed",
    [
        (9 * MIN + 31, True),  # the 5-minute timer's second tick after a restart: allowed
        (9 * MIN + 30, True),  # exactly cooldown - slack: allowed (>=)
        (9 * MIN + 29, False),
        (4 * MIN, False),
        (0, False),
        (10 * MIN, True),
        (3 * 3600, True),
    ],
)
def test_cooldown_with_slack(ago, allowed):
    why = budget_check([NOW - ago], NOW, 600.0, 3)
    assert (why is None) is allowed
    if not allowed:
        assert why.startswith("cooldown: last restart ") and why.endswith(" ago (cooldown 10m)")


def test_cooldown_reason_text():
    assert budget_check([NOW - 240], NOW, 600.0, 3) == "cooldown: last restart 4m ago (cooldown 10m)"
    assert budget_check([NOW - 569], NOW, 600.0, 3) == "cooldown: last restart 9m29s ago (cooldown 10m)"


def test_cooldown_uses_the_latest_restart():
    assert budget_check([NOW - 3000, NOW - 60, NOW - 2000], NOW, 600.0, 5).startswith("cooldown")


def test_slack_and_zero_cooldown():
    assert budget_check([NOW - 580], NOW, 600.0, 3, slack=0.0) is not None
    assert budget_check([NOW - 600], NOW, 600.0, 3, slack=0.0) is None
    assert budget_check([NOW - 1], NOW, 0.0, 3) is None


def test_hourly_cap():
    three = [NOW - 50 * MIN, NOW - 35 * MIN, NOW - 20 * MIN]
    assert budget_check(three, NOW, 600.0, 3) == "hourly cap: 3 restarts in the last hour (max 3)"
    assert budget_check(three, NOW, 600.0, 4) is None
    # the oldest one leaves the hour at exactly 3600 s: allowed again
    aged = [NOW - 3600, NOW - 35 * MIN, NOW - 20 * MIN]
    assert budget_check(aged, NOW, 600.0, 3) is None
    almost = [NOW - 3599, NOW - 35 * MIN, NOW - 20 * MIN]
    assert budget_check(almost, NOW, 600.0, 3) is not None
    assert budget_check([NOW - 20 * MIN], NOW, 600.0, 1) == "hourly cap: 1 restart in the last hour (max 1)"


def test_max_restarts_zero_disables():
    assert budget_check([], NOW, 600.0, 0) == "restarts disabled (max-restarts 0)"


def test_restarts_from_the_future():
    # the clock was set back: far-future entries are ignored, near ones are "just now"
    assert budget_check([NOW + 7200], NOW, 600.0, 1) is None
    assert budget_check([NOW + 30], NOW, 600.0, 3) == "cooldown: last restart 0s ago (cooldown 10m)"


@pytest.mark.parametrize(
    "seconds,text",
    [(0, "0s"), (2.4, "2s"), (59, "59s"), (60, "1m"), (240, "4m"), (571, "9m31s"), (3600, "1h"),
     (3900, "1h05m"), (-5, "0s")],
)
def test_human(seconds, text):
    assert human(seconds) == text


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

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


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


def test_a_job_created_exactly_at_start_minus_margin_blocks():
    edge = JobContainer("FORGEJO-ACTIONS-TASK-1_W_J", START - 2.0, 1)
    assert blocking_jobs("a", [edge], START, {}) == ([edge], [])
    just_before = JobContainer("FORGEJO-ACTIONS-TASK-1_W_J", START - 2.0 - 1e-6, 1)
    assert blocking_jobs("a", [just_before], START, {}) == ([], [just_before])


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


def test_cooldown_zero_with_a_restart_stamped_in_the_future():
    # up to 60 s ahead is "just now" (age 0), not a negative age that a
    # zero cooldown would still refuse
    assert budget_check([NOW + 30], NOW, 0.0, 3) is None
    assert budget_check([NOW + 30], NOW, 0.0, 3, slack=0.0) is None
    assert budget_check([NOW + 30], NOW, 1.0, 3, slack=0.0) == (
        "cooldown: last restart 0s ago (cooldown 1s)")
    assert budget_check([NOW + 61], NOW, 600.0, 1) is None
    assert budget_check([NOW + 60], NOW, 600.0, 1, slack=0.0).startswith("cooldown")


def test_the_cooldown_edge_with_slack():
    # refused while ago < cooldown - slack: 570 s is allowed, 569.999 is not
    assert budget_check([NOW - 570.0], NOW, 600.0, 3) is None
    assert budget_check([NOW - 569.5], NOW, 600.0, 3) == (
        "cooldown: last restart 9m30s ago (cooldown 10m)")


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
    assert [(d.kind, d.reason) for d in (error, healthy, over, refused_)] == [
        ("error", "cannot read the logs"), ("healthy", "below threshold"),
        ("recovered", "burst over (recent 1m)"),
        ("refused", "refused by the server: re-register the runner")]
    for d in (error, healthy, over, refused_):
        assert (d.threshold, d.window, d.orphans, d.job_running) == (40, 300.0, tuple(orphans), False)


def test_prefixes_and_a_leading_slash():
    assert parse_job_container("/X-12_y", ["X-"]) == JobContainer("X-12_y", 0.0, 12)
    assert parse_job_container("XX-1", ["X-"]) is None


def test_human_hours_without_minutes():
    assert [human(s) for s in (3630, 7199, 7200)] == ["1h", "1h59m", "2h"]
