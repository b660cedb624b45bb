"""decide's rules on the forge's own view (issue 20): forge_rule() and
with_view().  Pure unit tests (no network): they run on Python 3.9 too."""

import dataclasses

import pytest

from forgejo_runner_guard.config.config import RunnerConfig
from forgejo_runner_guard.forge import view
from forgejo_runner_guard.logs.runnerlog import Evidence
from forgejo_runner_guard.watchdog import decide as d
from forgejo_runner_guard.watchdog.forgeview import View

NOW = 1782727500.0  # 2026-06-29T10:05:00Z
CFG = RunnerConfig()  # queue_wait 5m, cooldown 10m, 3 restarts an hour
FORGEJO = view.Dialect("forgejo", (15, 0, 3), "15.0.3+gitea-1.22.0")
OLD = view.Dialect("forgejo", (14, 0, 5), "14.0.5+gitea-1.22.0")
QUIET = Evidence(since=NOW - 300)  # the log shows nothing
STARTED = NOW - 3600


def runner(status="idle", said=None, disabled=False):
    return view.Runner(id=1, name="build-1", status=status, said=said or status, labels=("docker",),
                       uuid="u", owner_id=0, repo_id=0, disabled=disabled)


def job(id_=42, labels=("docker",)):
    return view.Job(id=id_, attempt=1, name="build", labels=labels)


def seen(status="idle", waits=(), offline_since=None, dialect=FORGEJO, **kw):
    r = None if status is None else runner(status, **kw)
    return view.Seen(dialect, r, ("docker",), tuple(waits), True, offline_since)


def started(job_age):
    return dataclasses.replace(QUIET, last_job_start=NOW - job_age)


# ------------------------------------------------------------ offline


def test_offline_after_two_minutes_is_silent():
    assert d.forge_rule(seen("offline", offline_since=NOW), NOW, CFG, QUIET, STARTED) == (
        "offline", "silent: the forge has not heard from it for over 1m (offline on the forge; its "
                   "process has run 1h)")
    # seen offline at the check 5 minutes ago too: at least 6 minutes of silence
    assert d.forge_rule(seen("offline", offline_since=NOW - 300), NOW, CFG, QUIET, STARTED)[1].startswith(
        "silent: the forge has not heard from it for over 6m (")


@pytest.mark.parametrize("uptime, rule", [(120.0, ""), (121.0, "offline")])
def test_offline_counts_after_its_process_has_run_two_minutes(uptime, rule):
    verdict = d.forge_rule(seen("offline", offline_since=NOW), NOW, CFG, QUIET, NOW - uptime)
    assert verdict[0] == rule
    if not rule:
        assert verdict[1] == "offline on the forge, but its process started 2m ago"
    assert d.forge_rule(seen("offline"), NOW, CFG, QUIET, None) == (
        "", "offline on the forge, but its process started a moment ago")


@pytest.mark.parametrize("job_age, rule", [(59.0, ""), (60.0, "offline")])
def test_offline_but_a_job_started_since_the_forge_last_heard(job_age, rule):
    verdict = d.forge_rule(seen("offline", offline_since=NOW), NOW, CFG, started(job_age), STARTED)
    assert verdict[0] == rule


# ------------------------------------------------------------ a job waits


def test_idle_while_a_job_has_waited_queue_wait():
    verdict = d.forge_rule(seen(waits=[(job(), NOW - 300)]), NOW, CFG, QUIET, STARTED)
    assert verdict == ("queue", "idle on the forge while job 42 (build, runs-on docker) has waited "
                                "5m (queue_wait 5m)")
    assert d.forge_rule(seen(waits=[(job(), NOW - 299)]), NOW, CFG, QUIET, STARTED) == ("", "")


def test_gitea_online_not_busy_is_idle():
    verdict = d.forge_rule(seen(said="online, not busy", waits=[(job(), NOW - 400)]), NOW, CFG, QUIET,
                           STARTED)
    assert verdict[1].startswith("online, not busy on the forge while job 42 ")


@pytest.mark.parametrize("status", ["active", "offline"])
def test_no_queue_rule_unless_idle(status):
    verdict = d.forge_rule(seen(status, waits=[(job(), NOW - 900)]), NOW, CFG, QUIET, NOW - 60)
    assert verdict[0] == ""


def test_disabled_takes_no_jobs():
    assert d.forge_rule(seen(disabled=True, waits=[(job(), NOW - 900)]), NOW, CFG, QUIET, STARTED) == (
        "", "disabled on the forge: it takes no jobs")


def test_a_job_start_after_the_job_appeared_is_healthy():
    first = NOW - 400
    assert d.forge_rule(seen(waits=[(job(), first)]), NOW, CFG, started(399), STARTED) == (
        "", "a job started after job 42 began to wait")
    # a job start before the job was first seen does not count
    assert d.forge_rule(seen(waits=[(job(), first)]), NOW, CFG, started(400), STARTED)[0] == "queue"


def test_a_younger_job_still_waiting_after_a_job_start():
    waits = [(job(1), NOW - 900), (job(2), NOW - 400)]
    verdict = d.forge_rule(seen(waits=waits), NOW, CFG, started(600), STARTED)
    assert verdict[0] == "queue" and "job 2 " in verdict[1] and "waited 6m40s" in verdict[1]


def test_a_wait_counts_from_the_runners_start():
    waits = [(job(), NOW - 900)]
    assert d.forge_rule(seen(waits=waits), NOW, CFG, QUIET, NOW - 299)[0] == ""
    assert d.forge_rule(seen(waits=waits), NOW, CFG, QUIET, NOW - 300)[0] == "queue"


def test_jobs_alone_without_a_runner_list():
    verdict = d.forge_rule(seen(None, waits=[(job(), NOW - 300)], dialect=OLD), NOW, CFG, QUIET, STARTED)
    assert verdict == ("queue", "by the forge's job list (Forgejo 14.0.5+gitea-1.22.0 lists no runners) "
                                "while job 42 (build, runs-on docker) has waited 5m (queue_wait 5m)")


def test_nothing_waiting_or_not_asked():
    assert d.forge_rule(seen(), NOW, CFG, QUIET, STARTED) == ("", "")
    assert d.forge_rule(None, NOW, CFG, QUIET, STARTED) == ("", "")


# ------------------------------------------------------------ with_view


def healthy():
    return d.decide(QUIET, NOW, CFG, [], [])


VERDICT = ("queue", "idle on the forge while job 42 (build, runs-on docker) has waited 6m (queue_wait 5m)")


def test_the_forge_makes_a_quiet_runner_wedged():
    decision = d.with_view(healthy(), VERDICT, [], NOW, CFG)
    assert (decision.kind, decision.restart, decision.rule) == ("wedged", True, "forge-queue")
    assert decision.reason == VERDICT[1] + ", no job running: restart"
    assert d.exit_status(decision) == 0


def test_a_running_job_means_not_wedged():
    decision = d.with_view(d.decide(QUIET, NOW, CFG, ["FORGEJO-ACTIONS-TASK-7_x"], []), VERDICT, [], NOW, CFG)
    assert (decision.kind, decision.restart) == ("healthy", False)
    assert decision.reason == VERDICT[1] + ", but job container FORGEJO-ACTIONS-TASK-7_x running: not wedged"


def test_the_budget_still_rules():
    decision = d.with_view(healthy(), ("offline", "silent: ..."), [NOW - 60], NOW, CFG)
    assert (decision.kind, decision.restart, decision.rule) == ("skipped-budget", False, "forge-offline")
    assert d.exit_status(decision) == 1


def test_the_logs_own_verdicts_stand():
    wedged = d.decide(Evidence(errors=40, newest_error=NOW - 2, newest_error_detail="unavailable: EOF",
                               since=NOW - 300), NOW, CFG, [], [])
    assert wedged.kind == "wedged"
    assert d.with_view(wedged, VERDICT, [], NOW, CFG) is wedged
    assert d.with_view(healthy(), ("", "offline on the forge, but ..."), [], NOW, CFG) == healthy()


def test_the_forges_rule_alone_needs_the_job_guard():
    # a quiet log: only the forge's rule makes the watchdog list the jobs
    assert d.needs_job_guard(QUIET, NOW, CFG, None, View(verdict=VERDICT)) is True
    assert d.needs_job_guard(QUIET, NOW, CFG, None, View(verdict=("", "offline on the forge, but a job "
                                                                   "started 30s ago"))) is False
    assert d.needs_job_guard(QUIET, NOW, CFG, None, None) is False


# ------------------------------------------------------------ edges the mutation run found untested


def test_offline_but_a_job_started_exactly():
    verdict = d.forge_rule(seen("offline", offline_since=NOW), NOW, CFG, started(42), STARTED)
    assert verdict == ("", "offline on the forge, but a job started 42s ago")


def test_active_on_the_forge_is_no_queue_whatever_waits():
    # busy with a job (Forgejo "active", Gitea "online, busy"): a job waiting
    # behind it is not this runner's wedge
    waits = [(job(), NOW - 900)]
    assert d.forge_rule(seen("active", waits=waits), NOW, CFG, QUIET, STARTED) == ("", "")
    assert d.forge_rule(seen("active", said="online, busy", waits=waits), NOW, CFG, QUIET, STARTED) == ("", "")


def test_no_evidence_no_job_start():
    # the log could not be read: the forge's word alone
    assert d.forge_rule(seen(waits=[(job(), NOW - 300)]), NOW, CFG, None, STARTED)[0] == "queue"
    assert d.forge_rule(seen("offline", offline_since=NOW), NOW, CFG, None, STARTED)[0] == "offline"


@pytest.mark.parametrize("labels, runs_on", [((), "nothing"), (("docker", "amd64"), "docker amd64")])
def test_the_jobs_labels_in_the_reason(labels, runs_on):
    # a job with no runs-on is taken by a runner with no labels (view.runs_on)
    verdict = d.forge_rule(seen(waits=[(job(labels=labels), NOW - 300)]), NOW, CFG, QUIET, STARTED)
    assert verdict == ("queue", "idle on the forge while job 42 (build, runs-on %s) has waited 5m "
                                "(queue_wait 5m)" % runs_on)


def test_the_budget_says_why_exactly():
    decision = d.with_view(healthy(), VERDICT, [NOW - 60], NOW, CFG)
    assert (decision.kind, decision.restart, decision.reason) == (
        "skipped-budget", False, "cooldown: last restart 1m ago (cooldown 10m)")


def test_a_recovered_runner_with_a_job_running_is_healthy():
    burst = Evidence(errors=40, newest_error=NOW - 90, newest_error_detail="unavailable: EOF", since=NOW - 300)
    recovered = d.decide(burst, NOW, CFG, ["FORGEJO-ACTIONS-TASK-7_x"], [])
    assert recovered.kind == "recovered"
    decision = d.with_view(recovered, VERDICT, [], NOW, CFG)
    assert (decision.kind, decision.restart, decision.rule) == ("healthy", False, "")
    assert decision.reason == VERDICT[1] + ", but job container FORGEJO-ACTIONS-TASK-7_x running: not wedged"
    # without the job: wedged by the forge's word
    assert d.with_view(d.decide(burst, NOW, CFG, [], []), VERDICT, [], NOW, CFG).kind == "wedged"


def test_its_start_unknown_a_wait_counts_from_its_first_sighting():
    waits = [(job(), NOW - 400)]
    verdict = d.forge_rule(seen(waits=waits), NOW, CFG, QUIET, None)
    assert verdict == ("queue", "idle on the forge while job 42 (build, runs-on docker) has waited "
                                "6m40s (queue_wait 5m)")
    assert d.forge_rule(seen(waits=[(job(), NOW - 299)]), NOW, CFG, QUIET, None) == ("", "")
