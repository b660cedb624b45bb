"""Telling the operator: the [notify] commands of guard.conf, run once per event.

An event is one fact worth a message: a runner restarted, a restart that
failed, a runner the server refuses, a misconfigured runner, the forge's
own error, a crash loop, a spent restart budget, a forge that does not
answer its Ping, the recovery from any of them, a stale pin in a runner's
hosts copy, the hosts file out of sync (pin drift), or `--notify-test`.

Each configured command (`command`, `command.NAME` in [notify]) whose
event filter (`events`, `events.NAME`; none: every event) takes the event
runs once for it, without a shell, through `sh` (calls.py: its own
deadline, `timeout` in [notify]; a new session, so the deadline kills
whatever it started), with

    stdin        the event as one JSON document (event_document())
    environment  the tool's own, plus GUARD_EVENT, GUARD_RUNNER, GUARD_HOST,
                 GUARD_DECISION, GUARD_SUMMARY, GUARD_ERROR (the newest
                 error text), GUARD_EVIDENCE (the last few fetch-error
                 lines, one a line), GUARD_TIME (epoch seconds), GUARD_TOOL

A command that is missing, exits non-zero or runs out of time is one
warning line; it never changes a decision, a restart or an exit status.

Conditions, not checks: a problem that persists (refused, misconfigured,
server-error, crash-loop, budget-exhausted, forge-unreachable,
restart-failed, stale-pin, pin-drift) is notified once
when it starts and once, as `recovered`, when it ends.  Each subject's
open condition is kept with its history (state.State.notified: the
watchdog's state.json; reconcile's RECONCILE_STATE).  `restarted` is sent
for every restart; it opens a condition that the next healthy check ends
with `recovered`.  transition() is the pure rule.

This module is imported only when [notify] has a command: a check
without one never pays for it.
"""

import contextlib
import os
from typing import NamedTuple

from .config.values import RECOVERED, RESTART_FAILED, RESTARTED, TEST
from .report import why
from .system import calls, signals


class Kinds(NamedTuple):
    """A tool's vocabulary for transition(): its kinds that are a
    persisting problem -> their event, and its kinds that end a condition
    (watchdog.output.notify_kinds(), pins.command.notify_kinds())."""

    problems: dict
    fine: tuple

RECONCILE_STATE = "reconcile.json"  # reconcile's conditions, in its state_dir
OUTPUT_TAIL = 200  # characters of a failed command's output in the warning


# ---------------------------------------------------------------- pure


def transition(previous, kind, kinds, restarted=False, restart_failed=False):
    """The event one check sends and the condition it leaves.

    previous        the subject's open condition (an event name) or None
    kind            the tool's kind of the check: decide's, or for
                    reconcile "stale"/"drift"/"fresh"/"in-sync"
    kinds           the tool's Kinds: which kinds are a problem (and its
                    event), which are fine; anything else is unknown and
                    changes nothing
    restarted       the check restarted the runner (or, dry run, would)
    restart_failed  it tried and failed
    -> (event or None, condition or None)
    """
    if restarted:
        return RESTARTED, RESTARTED
    problem = RESTART_FAILED if restart_failed else kinds.problems.get(kind)
    if problem is not None:
        return (None if problem == previous else problem), problem
    if kind in kinds.fine:
        return (RECOVERED if previous else None), None
    return None, previous  # a job holds it, an error: the condition stands


def wants(command, event):
    """Does this NotifyCommand run for this event?  (test: every command)"""
    return event == TEST or not command.events or event in command.events


def event_document(event, runner, decision, summary, now=None, host=None, **fields):
    """The event as the JSON document on a command's stdin.  fields:
    error (text), evidence (lines), tool, previous (the condition before),
    and anything else the caller adds (backend, dry_run)."""
    doc = {
        "event": event,
        "runner": runner or "",
        "host": host if host is not None else os.uname().nodename,
        "decision": decision or "",
        "summary": summary or "",
        "time": now,
        "error": "",
        "tool": "",
        "previous": None,
    }
    doc.update(fields)
    doc["error"] = doc["error"] or ""
    doc["evidence"] = list(fields.get("evidence", ()))
    return doc


def environment(doc, base=None):
    """The command's environment: `base` (the tool's) plus GUARD_*."""
    env = dict(os.environ if base is None else base)
    values = {
        "GUARD_EVENT": doc["event"],
        "GUARD_RUNNER": doc["runner"],
        "GUARD_HOST": doc["host"],
        "GUARD_DECISION": doc["decision"],
        "GUARD_SUMMARY": doc["summary"],
        "GUARD_ERROR": doc["error"],
        "GUARD_EVIDENCE": "\n".join(doc["evidence"]),
        "GUARD_TIME": "" if doc["time"] is None else "%.3f" % doc["time"],
        "GUARD_TOOL": doc["tool"],
    }
    for key, value in values.items():
        env[key] = str(value).replace("\0", "")
    return env


# ---------------------------------------------------------------- running


class NotifyError(Exception):
    pass


class NotifyCall(calls.Call):
    """One run of a notify command; result() -> None or raises NotifyError."""

    end = staticmethod(lambda proc: calls.kill(proc, group=True))  # what it started, too

    def __init__(self, command, doc, timeout):
        import json

        import sh

        self.key = command.key
        program = command.argv[0]
        try:
            executable = sh.Command(program)
        except Exception:  # sh.CommandNotFound (AttributeError, ImportError by version)
            raise NotifyError("%s is not an executable program" % program)
        data = (json.dumps(doc, sort_keys=True) + "\n").encode("utf-8")
        try:
            super().__init__(executable, command.argv[1:], timeout, _in=data,
                             _env=environment(doc), _new_session=True)
        except sh.ForkException as exc:  # exec failed (not a program: ENOEXEC, ...)
            raise NotifyError("cannot run it: %s" % exec_failure(str(exc), program))

    def launch_error(self, exc):
        return NotifyError("cannot run it: %s" % why(exc))

    def timed_out(self, reason):
        return NotifyError("killed it: %s" % reason)

    def failed(self, exit_code):
        if exit_code < 0:
            return NotifyError("killed by signal %d" % -exit_code)
        said = " ".join((self.text("stderr") or self.text("stdout")).split())
        if len(said) > OUTPUT_TAIL:
            said = "..." + said[-OUTPUT_TAIL:]
        return NotifyError("exit status %d%s" % (exit_code, ": " + said if said else ""))


def exec_failure(text, program):
    """Why exec() of `program` failed, in plain words, from the text of
    sh's ForkException (the child's traceback, ending in "OSError: [Errno
    8] Exec format error: b'...'")."""
    import errno
    import re

    found = re.search(r"\[Errno (\d+)\]", text)
    if found is None:
        return "exec failed"
    code = int(found.group(1))
    if code == errno.ENOEXEC:
        return "%s (not a program, nor a script starting with #!)" % os.strerror(code)
    if code == errno.ENOENT and os.path.exists(program):
        return "the interpreter its #! line names does not exist"
    return os.strerror(code)


def send(commands, docs, timeout, reporter, dry_run=False):
    """Run each command that wants it once per event document, all side
    by side, each within `timeout`.  -> [(doc, command key, error or
    None)] in order.  A failure is a warning line, never raised."""
    todo = [(doc, command) for doc in docs for command in commands if wants(command, doc["event"])]
    if dry_run:
        for doc in docs:
            keys = [c.key for d, c in todo if d is doc]
            reporter.info("would notify %s%s through %s (dry run)"
                          % (doc["event"], _about(doc), ", ".join(keys) or "no command (filtered)"))
        return []
    started = []
    try:
        for doc, command in todo:
            try:
                with signals.deferred():  # a signal waits until the call is known, to be ended
                    started.append((doc, command, NotifyCall(command, doc, timeout), None))
            except Exception as exc:  # NotifyError, or anything else: never the check's failure
                started.append((doc, command, None, exc))
        return _results(started, reporter)
    except BaseException:  # a signal (signals.Interrupted): nothing started runs on
        for _, _, call, _ in started:
            if call is not None and not call.done:
                call.kill()  # the whole session: what the command started, too
                with contextlib.suppress(Exception):
                    call.result()
        raise


def _results(started, reporter):
    """Wait for each started call; one warning line per failure."""
    results = []
    for doc, command, call, error in started:
        if call is not None:
            try:
                call.result()
            except Exception as exc:
                error = exc
        if error is None:
            reporter.debug("notified %s%s through %s" % (doc["event"], _about(doc), command.key))
        else:
            reporter.warning("notify %s%s through [notify] %s failed: %s"
                             % (doc["event"], _about(doc), command.key, error))
        results.append((doc, command.key, None if error is None else str(error)))
    return results


def _about(doc):
    return " (%s)" % doc["runner"] if doc["runner"] else ""


# ---------------------------------------------------------------- the tools


class Subject:
    """One thing reconcile judged: its key in RECONCILE_STATE, the runner
    (or ""), its kind for transition(), summary line and error text."""

    def __init__(self, key, runner, kind, summary, error=""):
        self.key, self.runner, self.kind, self.summary, self.error = \
            key, runner, kind, summary, error


def subject_events(subjects, history, now, tool, kinds):
    """Events for reconcile's subjects (of Kinds `kinds`), their
    conditions updated in `history` (a state.State of RECONCILE_STATE).
    -> (documents, changed)."""
    docs, changed = [], False
    for s in subjects:
        previous = history.notified(s.key)
        event, condition = transition(previous, s.kind, kinds)
        if condition != previous:
            history.set_notified(s.key, condition, now)
            changed = True
        if event is not None:
            docs.append(event_document(event, s.runner, s.kind, s.summary, error=s.error,
                                       now=now, tool=tool, previous=previous))
    return docs, changed


def test_documents(runners, now, tool):
    """One `test` event (for every configured command)."""
    names = " ".join(r.name for r in runners)
    host = os.uname().nodename
    return [event_document(TEST, names, TEST,
                           "a test notification from %s on %s (runners: %s)" % (tool, host, names),
                           host=host, now=now, tool=tool)]


def notify_test(notify, runners, reporter, now, tool, dry_run=False):
    """--notify-test: one test event through every command; each result
    reported.  -> (exit status: 0 only when every command succeeded, the
    --json document: each command, whether it was sent, its error)."""
    from .report import EXIT_FAILURE, EXIT_OK, UsageError

    if not notify.commands:
        raise UsageError("--notify-test: no command in [notify] of the configuration")
    results = send(notify.commands, test_documents(runners, now, tool), notify.timeout,
                   reporter, dry_run)
    for _, key, error in results:
        if error is None:
            reporter.info("notify test: [notify] %s: sent" % key)
    status = EXIT_FAILURE if any(error for _, _, error in results) else EXIT_OK
    errors = {key: error for _, key, error in results}
    commands = [{"command": c.key, "argv": list(c.argv), "sent": c.key in errors
                 and errors[c.key] is None, "error": errors.get(c.key)} for c in notify.commands]
    return status, {"event": "test", "dry_run": dry_run, "commands": commands,
                    "exit_status": status}
