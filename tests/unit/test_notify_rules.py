"""notify's pure half: the condition rule (transition), the commands'
event filters (wants), the event's JSON document and the command's
environment.  Nothing runs here (test_notify.py runs the commands).

Pure unit tests: they run on Python 3.9 too."""

import os

import pytest

from forgejo_runner_guard import notify
from forgejo_runner_guard.config import config


# ---------------------------------------------------------------- the rule


@pytest.mark.parametrize("previous, kind, restarted, failed, expect", [
    (None, "wedged", True, False, ("restarted", "restarted")),
    ("restarted", "wedged", True, False, ("restarted", "restarted")),  # every restart
    ("restarted", "healthy", False, False, ("recovered", None)),
    ("restarted", "recovered", False, False, ("recovered", None)),
    (None, "healthy", False, False, (None, None)),
    (None, "refused", False, False, ("refused", "refused")),
    ("refused", "refused", False, False, (None, "refused")),  # persists: once
    ("refused", "skipped-budget", False, False, ("budget-exhausted", "budget-exhausted")),
    ("budget-exhausted", "skipped-budget", False, False, (None, "budget-exhausted")),
    (None, "wedged", False, True, ("restart-failed", "restart-failed")),
    ("restart-failed", "wedged", False, True, (None, "restart-failed")),
    # issue 10's decision kind for the forge's own error maps to server-error
    (None, "forge-error", False, False, ("server-error", "server-error")),
    ("server-error", "forge-error", False, False, (None, "server-error")),
    # issue 19: the forge did not answer its Ping: once, and recovered when it does
    (None, "forge-unreachable", False, False, ("forge-unreachable", "forge-unreachable")),
    ("forge-unreachable", "forge-unreachable", False, False, (None, "forge-unreachable")),
    ("forge-unreachable", "recovered", False, False, ("recovered", None)),
    ("forge-unreachable", "wedged", True, False, ("restarted", "restarted")),
    # a job holds a wedged runner, or the check failed: the condition stands
    ("refused", "skipped-job", False, False, (None, "refused")),
    ("refused", "error", False, False, (None, "refused")),
    (None, "error", False, False, (None, None)),
    # reconcile's subjects
    (None, "stale", False, False, ("stale-pin", "stale-pin")),
    ("stale-pin", "stale", False, False, (None, "stale-pin")),
    ("stale-pin", "fresh", False, False, ("recovered", None)),
    (None, "drift", False, False, ("pin-drift", "pin-drift")),
    ("pin-drift", "in-sync", False, False, ("recovered", None)),
    ("pin-drift", "not-running", False, False, (None, "pin-drift")),
])
def test_transition(previous, kind, restarted, failed, expect):
    from forgejo_runner_guard.pins import command as reconcile
    from forgejo_runner_guard.watchdog import output

    kinds = reconcile.notify_kinds() if kind in ("stale", "fresh", "drift", "in-sync",
                                                 "not-running") else output.notify_kinds()
    assert notify.transition(previous, kind, kinds, restarted, failed) == expect


def test_transition_restarts_only_when_told():
    from forgejo_runner_guard.watchdog import output

    kinds = output.notify_kinds()
    # a wedged runner not restarted (a job holds it, a dry run's other case): nothing changes
    assert notify.transition(None, "wedged", kinds) == (None, None)
    assert notify.transition("refused", "wedged", kinds) == (None, "refused")
    assert notify.transition(None, "refused", kinds) == ("refused", "refused")
    # restarted wins over a failure in the same check
    assert notify.transition("refused", "wedged", kinds, True, True) == ("restarted", "restarted")


def test_every_problem_is_a_kind_decide_gives():
    from forgejo_runner_guard.config import values
    from forgejo_runner_guard.pins import command as reconcile
    from forgejo_runner_guard.watchdog import decide, output

    kinds = output.notify_kinds()
    assert set(kinds.problems) == {decide.REFUSED, decide.MISCONFIGURED, decide.FORGE_ERROR,
                                   decide.FORGE_UNREACHABLE, decide.CRASH_LOOP,
                                   decide.SKIPPED_BUDGET}
    assert (kinds.problems[decide.CRASH_LOOP], kinds.problems[decide.MISCONFIGURED]) == \
        ("crash-loop", "misconfigured")
    assert kinds.problems[decide.FORGE_UNREACHABLE] == values.FORGE_UNREACHABLE == "forge-unreachable"
    assert decide.PAUSED not in kinds.problems  # the operator's own act
    assert set(kinds.fine) == {decide.HEALTHY, decide.RECOVERED}
    assert set(kinds.problems) | set(kinds.fine) <= set(decide.KINDS)
    events = set(kinds.problems.values()) | set(reconcile.notify_kinds().problems.values())
    assert events | {notify.RESTARTED, notify.RESTART_FAILED, notify.RECOVERED} <= set(values.EVENTS)


def test_filters():
    every = config.NotifyCommand("command", ("true",))
    some = config.NotifyCommand("command.x", ("true",), ("refused", "recovered"))
    assert notify.wants(every, "restarted") and notify.wants(every, "pin-drift")
    assert notify.wants(some, "refused") and not notify.wants(some, "restarted")
    assert notify.wants(some, "test")  # --notify-test goes through every command


# ---------------------------------------------------------------- the document


def test_event_document_every_field_and_its_default():
    assert notify.event_document("refused", None, None, None, host="h") == {
        "event": "refused", "runner": "", "host": "h", "decision": "", "summary": "",
        "time": None, "error": "", "tool": "", "previous": None, "evidence": []}
    assert notify.event_document("test", "r", "test", "s")["host"] == os.uname().nodename
    doc = notify.event_document("restarted", "forgejo_runner", "wedged", "restarted it", now=12.5,
                                host="build-1", error="unavailable: EOF", tool="t",
                                previous="refused", evidence=("a", "b"), backend="docker",
                                dry_run=True)
    assert doc == {
        "event": "restarted", "runner": "forgejo_runner", "host": "build-1", "decision": "wedged",
        "summary": "restarted it", "time": 12.5, "error": "unavailable: EOF", "tool": "t",
        "previous": "refused", "evidence": ["a", "b"], "backend": "docker", "dry_run": True}
    # an error of None is "" like no error; the evidence is always a list
    assert notify.event_document("x", "r", "d", "s", host="h", error=None)["error"] == ""
    assert notify.event_document("x", "r", "d", "s", host="h", evidence=iter(["l"]))["evidence"] == ["l"]


def test_environment_is_the_base_plus_every_guard_variable():
    doc = notify.event_document("refused", "forgejo_runner", "refused", "60 fetch errors: refused",
                                now=1782727200.5, host="build-1", error="unauthenticated",
                                tool="forgejo-runner-watchdog", evidence=("one", "two"))
    base = {"PATH": "/usr/bin", "GUARD_EVENT": "stale"}
    env = notify.environment(doc, base)
    assert env == {
        "PATH": "/usr/bin", "GUARD_EVENT": "refused", "GUARD_RUNNER": "forgejo_runner",
        "GUARD_HOST": "build-1", "GUARD_DECISION": "refused",
        "GUARD_SUMMARY": "60 fetch errors: refused", "GUARD_ERROR": "unauthenticated",
        "GUARD_EVIDENCE": "one\ntwo", "GUARD_TIME": "1782727200.500",
        "GUARD_TOOL": "forgejo-runner-watchdog"}
    assert base == {"PATH": "/usr/bin", "GUARD_EVENT": "stale"}  # the caller's is left alone


def test_environment_without_a_time_or_evidence_and_never_a_nul():
    doc = notify.event_document("test", "a\0b", "test", "x\0y", host="h\0")
    env = notify.environment(doc, {})
    assert (env["GUARD_TIME"], env["GUARD_EVIDENCE"]) == ("", "")
    assert (env["GUARD_RUNNER"], env["GUARD_SUMMARY"], env["GUARD_HOST"]) == ("ab", "xy", "h")


def test_environment_defaults_to_the_tools_own():
    env = notify.environment(notify.event_document("test", "r", "test", "s", host="h"))
    assert env["PATH"] == os.environ["PATH"] and env["GUARD_EVENT"] == "test"
    assert set(env) == set(os.environ) | {k for k in env if k.startswith("GUARD_")}
