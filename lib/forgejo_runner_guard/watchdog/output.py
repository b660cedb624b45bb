"""What the watchdog says about its checks: the summary line, the --json
document and the metric samples of each runner (backends.Check).  Pure
but for the backends' describe() and target(), which read only the check.
"""

from ..logs.failures import failure_label
from ..logs.runnerlog import RECENT_ERRORS as RECENT
from ..report import EXIT_FAILURE, combine, human
from ..runners import backends
from . import decide

# the decisions of a runner whose log says wedged: the forge's word is shown
_WEDGED = (decide.WEDGED, decide.SKIPPED_JOB, decide.SKIPPED_BUDGET)


def _plural(count, word):
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


LAST_LINE = 300  # characters of a log's last line in a summary


def outcome(c, dry_run):
    d = c.decision
    if d.kind == decide.HEALTHY:
        return "healthy"
    if d.kind == decide.RECOVERED:
        return "recovered: " + d.reason
    if d.cause or d.condition:  # a terminal state, a runner not running normally
        return d.reason
    if d.kind == decide.REFUSED:
        detail = d.newest_error_detail
        return "refused by the server%s: the runner must be re-registered (a restart cannot " \
               "help)" % (" (%s)" % detail if detail else "")
    if d.kind in (decide.FORGE_ERROR, decide.FORGE_UNREACHABLE):
        return d.reason
    if d.kind == decide.SKIPPED_JOB:
        return "wedged, not restarted while a job runs: skipped"
    if d.kind == decide.SKIPPED_BUDGET:
        return "wedged, not restarted: " + d.reason
    if d.kind == decide.WEDGED:
        if dry_run:
            return "wedged: would restart (dry run)"
        if c.restart is not None and c.restart.held:
            return "wedged, not restarted: " + c.error
        if c.error:
            return "wedged: " + c.error
        return "restarted"
    return c.error or d.reason


def _what(d):
    """' (transport: connection reset)': the newest failure's class (can a
    restart help?) and its short name; '' when unknown."""
    if not d.failure_class:
        return ""
    return " (%s: %s)" % (d.failure_class, failure_label(d.newest_error_detail))


def summary(c, dry_run):
    """One line: what the log shows (with the newest failure's class), what
    the forge's REST view says (with a forge token), the jobs, the outcome; when only the polling rule holds, the failing streak
    stands for the count; a log source that cannot tell job output apart
    says so at the end."""
    d = c.decision
    if d.condition:
        return held_summary(c)
    if d.kind == decide.ERROR:
        return "%s: %s" % (c.name, c.error or d.reason)
    if d.rule == "polling":
        parts = [d.polling]
    else:
        span = d.span if d.span is not None else d.window
        parts = ["%s in %ds (threshold %d)" % (_plural(d.errors, "fetch error"), round(span),
                                               d.threshold)]
        if d.newest_error_age is not None:
            parts.append("newest %ds ago%s" % (max(0, round(d.newest_error_age)), _what(d)))
    if c.view is not None:
        parts.append(view_phrase(c.view))
    if d.blocking:
        parts.append(decide.jobs_phrase(d.blocking))
    elif c.jobs_from_log:
        parts.append("no job running (no Docker engine; by the log)")
    elif c.jobs_checked:
        parts.append("no job running")
    if d.orphans:
        parts.append(decide.jobs_phrase(d.orphans,
                                        "orphaned (from before the runner's start; ignored)"))
    line = "%s: %s: %s" % (c.name, ", ".join(parts), outcome(c, dry_run))
    if d.kind in _WEDGED and d.forge is not None:
        line += " (%s)" % forge_phrase(d.forge)
    if d.ambiguous:
        line += " (beware: %s)" % d.ambiguous
    return line


def held_summary(c):
    """The line of a runner not running normally: its state, what the
    watchdog does, and (but for a pause) how its log ends."""
    d = c.decision
    line = "%s: %s" % (c.name, d.reason)
    if d.last_lines and d.kind != decide.PAUSED:
        last = d.last_lines[-1]
        line += "; its log ends: %s" % (last if len(last) <= LAST_LINE
                                         else last[:LAST_LINE - 3] + "...")
    if c.error:
        line += " (%s)" % c.error
    return line


def view_phrase(v):
    """What the forge's REST view says, for the summary: the verdict when
    it makes the runner wedged ('silent: the forge has not heard from it
    for over 1m (...)'), else 'forge: idle, 1 job waiting 4m', 'forge:
    offline on the forge, but its process started 40s ago', 'forge: its
    view failed' (the error line says why)."""
    if v.seen is None:
        return "forge: its view failed"
    rule, reason = v.verdict
    if rule:
        return reason
    if reason:
        return "forge: " + reason
    seen = v.seen
    said = seen.runner.said if seen.runner is not None else "no runner list"
    if not seen.jobs_listed:
        return "forge: %s, no job list" % said
    if not seen.waits:
        return "forge: %s, no job waiting" % said
    return "forge: %s, %s waiting, the longest %s" % (said, _plural(len(seen.waits), "job"),
                                                     human(seen.oldest_wait(v.at)))


def forge_phrase(word):
    """What the forge said about a runner whose log says wedged: 'forge
    answered Ping in 23 ms at 10.1.0.10: the runner's own connection is
    stuck', or 'forge not asked' (a warning line before says why)."""
    if not word.asked:
        return "forge not asked"
    if word.answered:
        return "%s: the runner's own connection is stuck" % word.decisive().phrase()
    return word.decisive().phrase()


def exit_status(c, view=True):
    """The decision's, or 1 when the check (or, with `view`, the forge's
    view: its error line is the one that says so) failed."""
    status = decide.exit_status(c.decision)
    if c.error or view and c.view is not None and c.view.error:
        status = combine(status, EXIT_FAILURE)
    return status


def _rounded(seconds):
    return None if seconds is None else round(seconds, 3)


def runner(c, dry_run):
    """One runner's part of the --json document."""
    d = c.decision
    doc = backends.of(c.cfg).describe(c)
    doc.update({
        "name": c.name,
        "backend": c.cfg.backend,
        "decision": d.kind,
        "restarted": c.restarted,
        "reason": d.reason,
        "error": c.error or (d.reason if d.kind == decide.ERROR else None),
        "summary": summary(c, dry_run),
        "errors": None if d.kind == decide.ERROR or d.condition else d.errors,
        "threshold": c.cfg.threshold,
        "window": c.cfg.window,
        "span": _rounded(d.span),
        "recent": c.cfg.recent,
        "newest_error_age": _rounded(d.newest_error_age),
        "newest_error": d.newest_error_detail or None,
        "failure_class": d.failure_class or None,
        "rule": d.rule or None,
        "sustain": c.cfg.sustain,
        "streak": _rounded(d.streak),
        "streak_polls": d.streak_polls,
        "log_source": None if c.evidence is None else c.evidence.source,
        "ambiguous": d.ambiguous or None,
        "condition": d.condition or None,
        "cause": d.cause or None,
        "cause_error": d.cause_detail or None,
        "last_lines": list(d.last_lines),
        "job_start_age": _rounded(d.job_start_age),
        "job_running": d.job_running if c.jobs_checked else None,
        "blocking_jobs": list(d.blocking),
        "orphaned_jobs": list(d.orphans),
        "restarts_last_hour": d.restarts_last_hour,
        "last_restart_age": _rounded(d.last_restart_age),
        "started_at": c.started_at,
        "new_started_at": c.new_started_at,
        "exit_status": exit_status(c),
        "forge": forge_document(c),
        "forge_view": view_document(c.view),
    })
    return doc


def view_document(v):
    """The --json `forge_view` object (None without a forge token): url,
    scope, api, version, status (offline, idle, active; null without a
    runner list), forge_status (the forge's own words), runner_id,
    disabled, labels, jobs_waiting, oldest_wait (seconds), waiting (id,
    name, labels, waited), rule (offline, queue or null), reason, error."""
    if v is None:
        return None
    doc = {"url": v.url or None, "scope": " ".join(v.scope) or None, "error": v.error or None,
           "rule": v.verdict[0] or None, "reason": v.verdict[1] or None}
    seen = v.seen
    if seen is None:
        return doc
    runner = seen.runner
    doc.update({
        "api": seen.dialect.name,
        "version": seen.dialect.text,
        "status": seen.status,
        "forge_status": runner.said if runner is not None else None,
        "runner_id": runner.id if runner is not None else None,
        "disabled": runner.disabled if runner is not None else None,
        "labels": list(seen.labels),
        "jobs_waiting": len(seen.waits) if seen.jobs_listed else None,
        "oldest_wait": _rounded(seen.oldest_wait(v.at)),
        "waiting": [{"id": j.id, "attempt": j.attempt, "name": j.name, "labels": list(j.labels),
                     "waited": _rounded(v.at - since)} for j, since in seen.waits],
    })
    return doc


def forge_document(c):
    """The --json `forge` object: url, address (asked), via, result
    (answered, failed), ms, class, reason, status, attempts, pings, and
    asked/why (why it was not asked)."""
    from ..forge import ping  # --json only: a check whose forge was not asked never loads it

    word = c.decision.forge if c.decision is not None else None
    if word is None:
        if c.cfg.verify == "none":
            word = ping.not_asked("verify = none")
        elif c.error is not None or c.evidence is None:
            word = ping.not_asked("the runner could not be checked")
        else:
            word = ping.not_asked("the log does not say wedged")
    return word.as_dict()


def document(checks, settings, now, status):
    return {
        "checked_at": now,
        "dry_run": settings.dry_run,
        "state_dir": settings.state_dir,
        "exit_status": status,
        "runners": [runner(c, settings.dry_run) for c in checks],
    }


def samples(checks, history, now):
    """Metric samples (metrics.Sample) of the checks; history: state.State."""
    from . import metrics

    result = []
    for c in checks:
        d = c.decision
        up = d.kind != decide.ERROR  # a crash loop, a pause: checked, by its state
        window = up and not d.condition  # its log's window was read
        result.append(metrics.Sample(
            container=backends.of(c.cfg).target(c.cfg),
            up=up,
            fetch_errors=d.errors if window else None,
            threshold=c.cfg.threshold,
            wedged=(d.kind in (decide.WEDGED, decide.REFUSED, decide.FORGE_ERROR,
                               decide.FORGE_UNREACHABLE, decide.SKIPPED_JOB,
                               decide.SKIPPED_BUDGET)
                    and not d.cause and not d.condition) if up else None,
            forge_unreachable=(d.kind == decide.FORGE_UNREACHABLE) if up else None,
            **_view_samples(c.view),
            restarts_total=history.restarts_total(c.name),
            last_check=now,
            last_restart=history.last_restart(c.name),
        ))
    return result


def _view_samples(v):
    """The forge view's metric values (metrics.Sample keywords)."""
    if v is None:
        return {}
    if v.seen is None:
        return {"forge_status": "error"}
    waited = v.seen.oldest_wait(v.at)
    return {"forge_status": v.seen.status or "unknown",
            "forge_jobs_waiting": len(v.seen.waits) if v.seen.jobs_listed else None,
            "forge_oldest_wait": round(waited, 3) if waited is not None else (
                0.0 if v.seen.jobs_listed else None)}


# ---------------------------------------------------------------- notifications


def notify_kinds():
    """decide's kinds, for notify.transition()."""
    from .. import notify

    from ..config import values

    return notify.Kinds(
        problems={decide.REFUSED: values.REFUSED,
                  decide.MISCONFIGURED: values.MISCONFIGURED,
                  decide.FORGE_ERROR: values.SERVER_ERROR,  # the forge's own error
                  decide.CRASH_LOOP: values.CRASH_LOOP,
                  decide.FORGE_UNREACHABLE: values.FORGE_UNREACHABLE,  # its Ping failed
                  decide.SKIPPED_BUDGET: values.BUDGET_EXHAUSTED},
        fine=(decide.HEALTHY, decide.RECOVERED))


def _evidence(c):
    """The lines an event carries: a held runner's last lines, a terminal
    state's line, else the last fetch errors."""
    d = c.decision
    if d.condition:
        return d.last_lines
    if c.evidence is None:
        return ()
    if d.cause:
        return c.evidence.recent_errors[-(RECENT - 1):] + (c.evidence.terminal_line,)
    return c.evidence.recent_errors


def notify_events(checks, history, dry_run, now, tool):
    """The watchdog's events for its checks (backends.Check), their
    conditions updated in `history` (state.State; saved by the caller).
    -> (event documents, whether a condition changed)."""
    from .. import notify

    kinds = notify_kinds()
    docs, changed = [], False
    for c in checks:
        d = c.decision
        previous = history.notified(c.name)
        attempted = bool(d.restart)
        restarted = c.restarted or (attempted and dry_run)
        event, condition = notify.transition(previous, d.kind, kinds, restarted,
                                      attempted and not dry_run and not c.restarted)
        if condition != previous or restarted:
            history.set_notified(c.name, condition, now)
            changed = True
        if event is None:
            continue
        evidence = _evidence(c)
        docs.append(notify.event_document(event, c.name, d.kind, summary(c, dry_run),
                                   error=d.cause_detail or d.newest_error_detail or c.error or "",
                                   evidence=evidence, now=now, tool=tool, previous=previous,
                                   backend=c.cfg.backend, dry_run=dry_run))
    return docs, changed
