"""What the watchdog says of the forge's view (issue 20): the summary's
part, --json forge_view and the forge_* metrics.  In process, no network."""

import pytest

from forgejo_runner_guard.config.config import RunnerConfig
from forgejo_runner_guard.forge import view
from forgejo_runner_guard.logs.runnerlog import Evidence
from forgejo_runner_guard.runners import backends
from forgejo_runner_guard.watchdog import decide, metrics, output
from forgejo_runner_guard.watchdog.forgeview import View

NOW = 1782727500.0
CFG = RunnerConfig(name="r", container="r")
FORGEJO = view.Dialect("forgejo", (15, 0, 3), "15.0.3+gitea-1.22.0")


def check(v):
    c = backends.Check(CFG)
    c.evidence = Evidence(since=NOW - 300)
    c.decision = decide.decide(c.evidence, NOW, CFG, [], [])
    if v is not None and v.verdict[0]:
        c.decision = decide.with_view(c.decision, v.verdict, [], NOW, CFG)
        c.jobs_checked = True
    c.view = v
    return c


def seen(status="idle", waits=(), runner=True, jobs_listed=True):
    r = view.Runner(id=7, name="build-1", status=status, said=status, labels=("docker",), uuid="u",
                    owner_id=2, repo_id=0) if runner else None
    return view.Seen(FORGEJO, r, ("docker",), tuple(waits), jobs_listed, None)


JOB = view.Job(id=42, attempt=1, name="build", labels=("docker",), repo_id=5, owner_id=2)


@pytest.mark.parametrize("v, part", [
    (View("https://f", ("org", "ops"), seen(), at=NOW), "forge: idle, no job waiting"),
    (View("https://f", ("org", "ops"), seen(waits=[(JOB, NOW - 40), (JOB, NOW - 10)]), at=NOW),
     "forge: idle, 2 jobs waiting, the longest 40s"),
    (View("https://f", ("org", "ops"), seen(runner=False, waits=[(JOB, NOW - 5)]), at=NOW),
     "forge: no runner list, 1 job waiting, the longest 5s"),
    (View("https://f", ("org", "ops"), seen(jobs_listed=False), at=NOW), "forge: idle, no job list"),
    (View("https://f", ("org", "ops"), seen("offline"), ("", "offline on the forge, but its process "
                                                        "started 40s ago"), at=NOW),
     "forge: offline on the forge, but its process started 40s ago"),
    (View("https://f", ("org", "ops"), error="org ops at https://f: GET ...", at=NOW),
     "forge: its view failed"),
])
def test_the_summary_says_what_the_forge_said(v, part):
    assert output.summary(check(v), False) == "r: 0 fetch errors in 300s (threshold 40), %s: healthy" % part


def test_a_forge_wedge_in_the_summary():
    verdict = ("queue", "idle on the forge while job 42 (build, runs-on docker) has waited 6m (queue_wait 5m)")
    c = check(View("https://f", ("org", "ops"), seen(waits=[(JOB, NOW - 360)]), verdict, at=NOW))
    assert output.summary(c, True) == (
        "r: 0 fetch errors in 300s (threshold 40), idle on the forge while job 42 (build, runs-on docker) "
        "has waited 6m (queue_wait 5m), no job running: wedged: would restart (dry run)")


def test_the_json_forge_view():
    v = View("https://f", ("org", "ops"), seen(waits=[(JOB, NOW - 360.25)]),
             ("queue", "idle on the forge while ..."), at=NOW)
    doc = output.runner(check(v), False)["forge_view"]
    assert doc == {
        "url": "https://f", "scope": "org ops", "error": None, "rule": "queue",
        "reason": "idle on the forge while ...", "api": "forgejo", "version": "15.0.3+gitea-1.22.0",
        "status": "idle", "forge_status": "idle", "runner_id": 7, "disabled": False,
        "labels": ["docker"], "jobs_waiting": 1, "oldest_wait": 360.25,
        "waiting": [{"id": 42, "attempt": 1, "name": "build", "labels": ["docker"], "waited": 360.25}]}
    failed = output.runner(check(View("https://f", ("org", "ops"), error="boom", at=NOW)), False)
    assert failed["forge_view"] == {"url": "https://f", "scope": "org ops", "error": "boom", "rule": None,
                                    "reason": None}
    assert failed["exit_status"] == 1 and output.exit_status(check(View(error="boom")), view=False) == 0
    assert output.runner(check(None), False)["forge_view"] is None


class History:
    def restarts_total(self, name):
        return 0

    def last_restart(self, name):
        return None


def test_the_forge_metrics():
    views = {"a": View("u", ("admin",), seen("offline"), at=NOW),
             "b": View("u", ("admin",), seen(runner=False, waits=[(JOB, NOW - 30.5)]), at=NOW),
             "c": View("u", ("admin",), error="boom", at=NOW),
             "d": None}
    checks = []
    for name, v in views.items():
        c = check(v)
        c.cfg = RunnerConfig(name=name, container=name)
        checks.append(c)
    text = metrics.render(output.samples(checks, History(), NOW))
    assert "# TYPE forgejo_runner_watchdog_forge_status gauge\n" in text
    for name, current in (("a", "offline"), ("b", "unknown"), ("c", "error")):
        for status in metrics.FORGE_STATUSES:
            assert 'forgejo_runner_watchdog_forge_status{container="%s",status="%s"} %d\n' % (
                name, status, status == current) in text
    assert 'forgejo_runner_watchdog_forge_jobs_waiting{container="a"} 0\n' in text
    assert 'forgejo_runner_watchdog_forge_oldest_wait_seconds{container="a"} 0.0\n' in text
    assert 'forgejo_runner_watchdog_forge_jobs_waiting{container="b"} 1\n' in text
    assert 'forgejo_runner_watchdog_forge_oldest_wait_seconds{container="b"} 30.5\n' in text
    # the API failed: its status says so, and no figure stands for what it did not say
    assert 'forge_jobs_waiting{container="c"}' not in text
    assert 'forge_oldest_wait_seconds{container="c"}' not in text
    assert 'container="d",status=' not in text and 'forge_jobs_waiting{container="d"}' not in text
