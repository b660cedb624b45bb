"""watchdog.output and metrics: what the watchdog says about the forge's
word (issue 19): the summary line, the --json `forge` object, the metric
forgejo_runner_watchdog_forge_unreachable and the forge-unreachable
event.  In-process, from checks made by hand (no Docker)."""

import pytest

from forgejo_runner_guard.config.config import RunnerConfig
from forgejo_runner_guard.forge.ping import ForgeWord, PingResult, not_asked
from forgejo_runner_guard.logs.runnerlog import Evidence
from forgejo_runner_guard.runners import backends, state
from forgejo_runner_guard.watchdog import decide, metrics, output

NOW = 1782727500.0
URL = "https://forge.azrak.io/"
ANSWERED = ForgeWord(True, (PingResult(URL, "10.1.0.10", "the host's resolver", True, 23,
                                       status=200, attempts=1),))
BAD_GATEWAY = ForgeWord(True, (PingResult(URL, "10.1.0.10", "its --add-host", False, 9, "http",
                                          "Bad Gateway", 502, 3),))
WEDGED = Evidence(errors=152, newest_error=NOW - 2.0,
                  newest_error_detail="unavailable: read tcp 10.1.0.5:51234->203.0.113.7:443: "
                  "read: connection reset by peer", newest_class="transport", since=NOW - 300.0)
HEALTHY = Evidence(errors=0, since=NOW - 300.0)


def check(word, evidence=WEDGED, verify="ping", restarted=False):
    c = backends.Check(RunnerConfig(verify=verify))
    c.evidence, c.forge, c.jobs_checked = evidence, word, not (word and word.unreachable)
    c.decision = decide.with_forge(decide.decide(evidence, NOW, c.cfg, [], []), word)
    if restarted:
        c.restart = type("Done", (), {"restarted": True, "new_started_at": NOW, "error": None})()
    return c


HEAD = ("forgejo_runner: 152 fetch errors in 300s (threshold 40), newest 2s ago (transport: "
        "connection reset)")


@pytest.mark.parametrize("word, dry_run, restarted, tail", [
    (ANSWERED, False, True, ", no job running: restarted (forge answered Ping in 23 ms at "
                            "10.1.0.10: the runner's own connection is stuck)"),
    (ANSWERED, True, False, ", no job running: wedged: would restart (dry run) (forge answered "
                            "Ping in 23 ms at 10.1.0.10: the runner's own connection is stuck)"),
    (BAD_GATEWAY, False, False, ": forge unreachable: Ping to https://forge.azrak.io/ at 10.1.0.10 "
                                "(its --add-host) failed 3 times (http 502: Bad Gateway): a restart "
                                "cannot help, not restarted"),
    (not_asked("no .runner: not on a mount of the container (looked for /.runner, /data/.runner)"),
     False, True, ", no job running: restarted (forge not asked)"),
    (None, False, True, ", no job running: restarted"),  # verify = none: as before
])
def test_summary(word, dry_run, restarted, tail):
    assert output.summary(check(word, restarted=restarted), dry_run) == HEAD + tail


def test_forge_unreachable_exits_1_and_is_a_wedged_runner_in_the_metrics():
    c = check(BAD_GATEWAY)
    assert output.exit_status(c) == 1
    [sample] = output.samples([c], state.State("/nonexistent/state.json"), NOW)
    assert (sample.wedged, sample.forge_unreachable) == (True, True)
    [sample] = output.samples([check(ANSWERED)], state.State("/nonexistent/state.json"), NOW)
    assert (sample.wedged, sample.forge_unreachable) == (True, False)
    down = backends.Check(RunnerConfig())
    down.fail("container forgejo_runner does not exist")
    down.decision = decide.decide(None, NOW, down.cfg, logs_ok=False)
    [sample] = output.samples([down], state.State("/nonexistent/state.json"), NOW)
    assert sample.forge_unreachable is None  # unknown: no sample rather than a false one


def test_the_metric():
    text = metrics.render([
        metrics.Sample("a", True, 152, 40, True, 0, NOW, None, forge_unreachable=True),
        metrics.Sample("b", True, 0, 40, False, 0, NOW, None, forge_unreachable=False),
        metrics.Sample("c", False, None, 40, None, 0, NOW, None),
    ])
    assert ("# HELP forgejo_runner_watchdog_forge_unreachable 1 when the last check found the "
            "forge unreachable (its Ping failed), else 0.\n"
            "# TYPE forgejo_runner_watchdog_forge_unreachable gauge\n"
            'forgejo_runner_watchdog_forge_unreachable{container="a"} 1\n'
            'forgejo_runner_watchdog_forge_unreachable{container="b"} 0\n') in text
    assert 'forgejo_runner_watchdog_forge_unreachable{container="c"}' not in text


@pytest.mark.parametrize("c, why", [
    (check(None, verify="none"), "verify = none"),
    (check(None, evidence=HEALTHY), "the log does not say wedged"),
    (check(not_asked("no .runner: x")), "no .runner: x"),
])
def test_the_json_says_when_the_forge_was_not_asked(c, why):
    doc = output.runner(c, False)["forge"]
    assert (doc["asked"], doc["why"], doc["url"], doc["result"], doc["attempts"]) == (
        False, why, None, None, 0)


def test_the_json_forge_object():
    doc = output.runner(check(BAD_GATEWAY), False)
    assert doc["decision"] == "forge-unreachable" and doc["exit_status"] == 1
    assert {k: doc["forge"][k] for k in ("asked", "url", "address", "via", "result", "ms", "class",
                                          "status", "reason", "attempts")} == {
        "asked": True, "url": URL, "address": "10.1.0.10", "via": "its --add-host",
        "result": "failed", "ms": 9, "class": "http", "status": 502, "reason": "Bad Gateway",
        "attempts": 3}


def test_forge_unreachable_is_notified_once_then_recovered():
    history = state.State("/nonexistent/state.json")
    sent = []
    for c in (check(BAD_GATEWAY), check(BAD_GATEWAY), check(None, evidence=HEALTHY)):
        docs, _ = output.notify_events([c], history, False, NOW, "forgejo-runner-watchdog")
        sent += [(d["event"], d["decision"]) for d in docs]
    assert sent == [("forge-unreachable", "forge-unreachable"), ("recovered", "healthy")]
