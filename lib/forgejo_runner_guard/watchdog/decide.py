"""Deciding what to do about one runner: where the restart is decided.

Pure: evidence, settings and the time `now` (epoch seconds) in, a
Decision out.  No clock, no Docker, no files.  The caller (command.py)
gathers the facts, calls assess() through needs_job_guard() to learn
whether it must list the running jobs, then decide() once, acts on
Decision.restart and turns exit_status() into the unit's exit status.

The log's verdict (assess()), from the fetch errors the runner's own
logger wrote since the window's start:

  The runner is WEDGED when either rule holds:
    polling    every poll it made for the last `sustain` failed: the
               streak of failures the newest one ends (failures no further
               apart than its polling model allows: fetch_interval, or for
               Gitea the backoff cap fetch_interval_max, times 1.5, plus
               fetch_timeout for a failure that waited out a timeout) began
               `sustain` or more before now, and the newest failure is
               recent by the same model (the next poll, had it failed,
               would not be due yet);
    threshold  at least `threshold` fetch errors in the window, the newest
               younger than `recent`;
  and no job started after the newest failure (a fetch worked).
  Otherwise it is HEALTHY (no rule comes near: fewer than `threshold`
  errors and no failing streak of `sustain`) or RECOVERED (a rule's count
  or streak is there, but the failures stopped or a job started after
  them).

Then, in this order:

  1. error           the logs could not be read: never call that healthy.
  2. refused / misconfigured: the newest line that matters (after every
                     fetch error and job start) is a terminal one
                     (logs/terminal.py): the runner is no longer registered
                     (refused), another process holds its runner file or
                     its forge URL is unusable (misconfigured).  A restart
                     never fixes these.
  3. healthy / recovered, as above: nothing to do.
  4. refused         the newest failure says the server refuses the runner
                     (unauthenticated, permission_denied, unregistered): a
                     restart cannot help; it must be re-registered.
  5. forge-error     the newest failure is the forge's own error
                     (`internal:`, `unknown: rpc error: code = Internal`): a
                     restart cannot help; someone must look at the forge.
  5. forge-unreachable  the log says wedged and the forge, asked with its
                     Ping at the address a restarted runner would use, did
                     not answer (forge.ping.ForgeWord): a restart cannot
                     help; wait for the forge or the path to it.
  6. skipped-job     a job container this runner may own is running.
  7. skipped-budget  cooldown or hourly cap forbids another restart.
  8. wedged          restart=True: the only outcome that restarts.

A runner that is not running normally (runners/condition.py: a crash
loop, paused, stopped) is decided by decide_held() instead, from the
last lines of its log: refused or misconfigured when they show a cause,
else crash-loop, paused, or error (stopped).  Never a restart.

decide() gives the rest from the log, the jobs and the budget;
with_forge() then takes the forge's word (the caller asks it only for a
runner whose log says wedged, wedged_by_log(), and only then, with the
forge answering, lists the jobs: needs_job_guard()).  Not asked (verify =
none, no forge URL found), the log alone decides, as before.

The forge's own view (issue 20, a runner with a forge_token_file; the
caller reads the forge's REST API, watchdog/forgeview.py): some wedges
write nothing to the log, so forge_rule() judges what the forge says:

    offline    the forge calls it offline (no authenticated call for over
               a minute) while its process has run over two minutes;
    queue      the forge calls it idle (Gitea: online, not busy; Forgejo
               v11-v14 list no runners: the jobs alone) while a job it
               could take has been seen waiting for queue_wait;
  each only while the log shows no job start since.  with_view() makes a
  runner the log calls healthy or recovered wedged by that word (rule
  forge-offline, forge-queue), unless a job runs (then it is healthy) or
  the budget forbids it; the Ping (with_forge()) comes after, as for any
  wedge.

Exit status (exit_status()): 1 for refused, misconfigured, forge-error,
forge-unreachable, crash-loop, paused, skipped-budget and error (someone
must look), 0 for the rest.
"""

import dataclasses
from typing import Optional, Tuple

from .. import report
from ..logs import terminal
from ..logs.failures import SERVER, failure_class, failure_label, poll_model, REFUSED as REFUSED_CLASS, slow
from ..report import human
from ..runners import condition
from ..runners.jobs import jobs_phrase
from ..runners.restart import CLOCK_SKEW, HOUR, budget_check

HEALTHY = "healthy"
RECOVERED = "recovered"
WEDGED = "wedged"
REFUSED = "refused"
SKIPPED_JOB = "skipped-job"
SKIPPED_BUDGET = "skipped-budget"
FORGE_ERROR = "forge-error"
MISCONFIGURED = "misconfigured"
FORGE_UNREACHABLE = "forge-unreachable"
CRASH_LOOP = "crash-loop"
PAUSED = "paused"
ERROR = "error"
KINDS = (HEALTHY, RECOVERED, WEDGED, REFUSED, MISCONFIGURED, FORGE_ERROR, FORGE_UNREACHABLE,
         CRASH_LOOP, PAUSED, SKIPPED_JOB, SKIPPED_BUDGET, ERROR)
_FAILING = (REFUSED, MISCONFIGURED, FORGE_ERROR, FORGE_UNREACHABLE, CRASH_LOOP, PAUSED,
            SKIPPED_BUDGET, ERROR)
# what a terminal state asks for (logs/terminal.py's causes)
_CAUSES = {
    terminal.UNREGISTERED: (REFUSED, "refused by the server (%s): the runner must be "
                                     "re-registered (a restart cannot help)"),
    terminal.SECOND_PROCESS: (MISCONFIGURED, "misconfigured (%s): another runner process uses "
                                             "its runner file; give each runner process its own "
                                             "runner.file (a restart cannot help)"),
    terminal.BAD_URL: (MISCONFIGURED, "misconfigured (%s): the runner cannot use its forge's "
                                      "address; correct it (http:// or https://) in its .runner "
                                      "or registration (a restart cannot help)"),
}



# ------------------------------------------------------------ the decision


@dataclasses.dataclass(frozen=True)
class Decision:
    """The outcome for one runner and the numbers its report needs.

    kind                one of KINDS
    restart             True only for kind "wedged" when nothing forbids it
    reason              a short phrase for the summary line
    errors, threshold   fetch errors counted / the threshold
    window              configured window (s); span: seconds actually
                        counted (shorter after a recent start), or None
    newest_error_age    seconds since the newest counted error, or None
    newest_error_detail its error text
    job_start_age       seconds since the newest job start, or None
    job_running         a blocking job container runs
    blocking, orphans   names of blocking / orphaned job containers
    restarts_last_hour  restarts in the last hour before this decision
    last_restart_age    seconds since the last restart, or None
    streak              seconds the failing streak has lasted (now - its first
                        failure), or None
    streak_polls        failures in that streak
    failure_class       class of the newest failure: transport, server,
                        refused ("" when none)
    rule                which rule made it wedged: "polling", "threshold",
                        "polling+threshold", or the forge's view's
                        "forge-offline", "forge-queue" ("" when not wedged)
    polling             polling_phrase() when the polling rule holds, else ""
    ambiguous           why the log source could not tell job output from
                        the runner's lines ("" when it could)
    cause               a terminal state's cause (logs/terminal.py), "" none
    cause_detail        its error text
    condition           runners/condition.py's kind for a runner not
                        running normally (crash-loop, paused, stopped), ""
    last_lines          the last lines of its log (condition only)
    forge               what the forge said (forge.ping.ForgeWord), None
                        when it was not asked (with_forge())
    """

    kind: str
    restart: bool
    reason: str
    errors: int = 0
    threshold: int = 0
    window: float = 0.0
    span: Optional[float] = None
    newest_error_age: Optional[float] = None
    newest_error_detail: str = ""
    job_start_age: Optional[float] = None
    job_running: bool = False
    blocking: Tuple[str, ...] = ()
    orphans: Tuple[str, ...] = ()
    restarts_last_hour: int = 0
    last_restart_age: Optional[float] = None
    streak: Optional[float] = None
    streak_polls: int = 0
    failure_class: str = ""
    rule: str = ""
    polling: str = ""
    ambiguous: str = ""
    cause: str = ""
    cause_detail: str = ""
    condition: str = ""
    last_lines: Tuple[str, ...] = ()
    forge: Optional[object] = None


def _polling(evidence, now, cfg):
    """The polling rule: (holds, streak seconds or None)."""
    start, newest = evidence.streak_start, evidence.newest_error
    if start is None or newest is None:
        return False, None
    streak = now - start
    due = poll_model(cfg).bound(slow(evidence.newest_error_detail))
    return streak >= cfg.sustain and now - newest <= due, streak


def polling_phrase(evidence, now, cfg):
    """'every poll failed for 3m12s (7 polls, deadline exceeded,
    fetch_timeout 30s)': the polling rule's case, for reports."""
    detail = evidence.newest_error_detail
    label = failure_label(detail)
    if slow(detail):
        setting = "fetch_timeout %s" % human(cfg.fetch_timeout)
    elif poll_model(cfg).interval > cfg.fetch_interval:
        setting = "fetch_interval_max %s" % human(cfg.fetch_interval_max)
    else:
        setting = "fetch_interval %s" % human(cfg.fetch_interval)
    polls = evidence.streak_polls
    return "every poll failed for %s (%d poll%s, %s, %s)" % (
        human(now - evidence.streak_start), polls, "" if polls == 1 else "s", label, setting)


def terminal_cause(evidence):
    """The cause of a terminal state the log ends in, or "": its newest
    terminal line, when no fetch error or job start came after it."""
    at = evidence.terminal_at
    if not evidence.terminal or at is None:
        return ""
    for later in (evidence.newest_error, evidence.last_job_start):
        if later is not None and later > at:
            return ""
    return evidence.terminal


def cause_outcome(cause, detail):
    """(kind, what to say) of a terminal state's cause."""
    kind, text = _CAUSES[cause]
    return kind, text % detail


def assess(evidence, now, cfg):
    """What the log alone says: (kind, reason), kind one of HEALTHY,
    RECOVERED, REFUSED, MISCONFIGURED, FORGE_ERROR or WEDGED (see the
    module docstring; the job guard and the budget come after)."""
    cause = terminal_cause(evidence)
    if cause:
        return cause_outcome(cause, evidence.terminal_detail)
    newest = evidence.newest_error
    job = evidence.last_job_start
    if newest is None:
        return HEALTHY, "below threshold"
    polling, streak = _polling(evidence, now, cfg)
    counted = evidence.errors >= cfg.threshold
    threshold = counted and now - newest < cfg.recent
    if not (polling or threshold):
        if counted:
            return RECOVERED, "burst over (recent %s)" % human(cfg.recent)
        if streak is not None and streak >= cfg.sustain:
            return RECOVERED, "polls failed for %s, but none in the last %s" % (human(streak), human(now - newest))
        return HEALTHY, "below threshold"
    if job is not None and job > newest:
        return RECOVERED, "a job started after the newest error"
    cls = evidence.newest_class or failure_class(evidence.newest_error_detail)
    if cls == REFUSED_CLASS:
        return REFUSED, "refused by the server: re-register the runner"
    if cls == SERVER:
        return FORGE_ERROR, "the forge's own error (%s): a restart cannot help, not restarted" % (
            evidence.newest_error_detail)
    if polling and not threshold:
        return WEDGED, polling_phrase(evidence, now, cfg) + ", no job running: restart"
    return WEDGED, "no job running: restart"


def wedged_by_log(evidence, now, cfg):
    """Does the log alone say wedged?  The only runners whose forge is
    asked (verify = ping)."""
    return evidence is not None and assess(evidence, now, cfg)[0] == WEDGED


def needs_job_guard(evidence, now, cfg, forge=None, view=None):
    """Does deciding for this evidence need the running jobs?  Only when
    the log, or the forge's REST view (watchdog.forgeview.View: its
    verdict's rule), says wedged (the job guard comes before the budget)
    and the forge, if asked, answered; a caller lists the jobs for these
    runners only, then decides once."""
    wedged = wedged_by_log(evidence, now, cfg) or view is not None and bool(view.verdict[0])
    return wedged and not (forge is not None and forge.unreachable)


def decide(evidence, now, cfg, blocking_jobs=(), history=(), logs_ok=True, orphans=()):
    """Decide for one runner.  See the module docstring for the rules.

    evidence       runnerlog.Evidence of the window (its `since` gives span)
    now            epoch seconds
    cfg            config.RunnerConfig (threshold, recent, window, sustain,
                   fetch_interval, fetch_timeout, fetch_interval_max,
                   flavour, cooldown, max_restarts)
    blocking_jobs  JobContainer (or names) from blocking_jobs()[0]
    history        epoch seconds of earlier restarts of this runner
    logs_ok        False when the logs could not be read
    orphans        JobContainer (or names) from blocking_jobs()[1], only
                   reported
    """
    blocking = tuple(getattr(j, "name", j) for j in blocking_jobs)
    past = [t for t in history if t <= now + CLOCK_SKEW]
    base = dict(
        threshold=cfg.threshold,
        window=cfg.window,
        job_running=bool(blocking),
        blocking=blocking,
        orphans=tuple(getattr(j, "name", j) for j in orphans),
        restarts_last_hour=sum(1 for t in past if now - t < HOUR),
        last_restart_age=(now - max(past)) if past else None,
    )
    if not logs_ok or evidence is None:
        return Decision(ERROR, False, "cannot read the logs", **base)

    newest = evidence.newest_error
    job = evidence.last_job_start
    base.update(
        errors=evidence.errors,
        span=None if evidence.since is None else now - evidence.since,
        newest_error_age=None if newest is None else now - newest,
        newest_error_detail=evidence.newest_error_detail,
        job_start_age=None if job is None else now - job,
        streak=None if evidence.streak_start is None else now - evidence.streak_start,
        streak_polls=evidence.streak_polls,
        failure_class=evidence.newest_class,
        ambiguous=evidence.ambiguous,
    )
    kind, reason = assess(evidence, now, cfg)
    cause = terminal_cause(evidence)
    if cause:
        base.update(cause=cause, cause_detail=evidence.terminal_detail)
    elif kind in (WEDGED, REFUSED, FORGE_ERROR):
        polling, _ = _polling(evidence, now, cfg)
        threshold = evidence.errors >= cfg.threshold and now - newest < cfg.recent
        base["rule"] = "+".join(r for r, on in (("polling", polling), ("threshold", threshold)) if on)
        base["polling"] = polling_phrase(evidence, now, cfg) if polling else ""
    if kind != WEDGED:
        return Decision(kind, False, reason, **base)
    if blocking:
        return Decision(SKIPPED_JOB, False, jobs_phrase(blocking) + ": skipped", **base)
    why = budget_check(history, now, cfg.cooldown, cfg.max_restarts)
    if why is not None:
        return Decision(SKIPPED_BUDGET, False, why, **base)
    return Decision(WEDGED, True, reason, **base)


def decide_held(held, now, cfg, history=()):
    """Decide for a runner that is not running normally: `held`, its
    runners/condition.Condition (with the Tail of its log, or None).
    Never a restart: the cause its log shows (refused, misconfigured),
    else crash-loop, paused, or error for a stopped runner."""
    past = [t for t in history if t <= now + CLOCK_SKEW]
    tail = held.tail
    base = dict(threshold=cfg.threshold, window=cfg.window,
                restarts_last_hour=sum(1 for t in past if now - t < HOUR),
                last_restart_age=(now - max(past)) if past else None,
                condition=held.kind, last_lines=tuple(tail.lines) if tail else ())
    if tail is not None and tail.cause:
        kind, text = cause_outcome(tail.cause, tail.detail)
        return Decision(kind, False, "%s: %s" % (held.phrase, text), cause=tail.cause,
                        cause_detail=tail.detail, **base)
    if held.kind == condition.CRASH_LOOP:
        return Decision(CRASH_LOOP, False, "%s: %s" % (held.phrase, held.advice), **base)
    if held.kind == condition.PAUSED:
        return Decision(PAUSED, False, "%s: %s" % (held.phrase, held.advice), **base)
    return Decision(ERROR, False, "%s: %s; the watchdog only restarts a running runner"
                    % (held.phrase, held.advice), **base)
def with_forge(decision, forge):
    """The forge's word on a decision (pure).  forge: forge.ping.ForgeWord,
    or None.  A runner whose log says wedged (wedged, skipped-job,
    skipped-budget) and whose forge did not answer is forge-unreachable:
    no restart, whatever the jobs and the budget say, since a restart
    cannot help.  Otherwise the decision stands, carrying the word."""
    if forge is None:
        return decision
    if forge.unreachable and decision.kind in (WEDGED, SKIPPED_JOB, SKIPPED_BUDGET):
        ping = forge.decisive()
        return dataclasses.replace(
            decision, kind=FORGE_UNREACHABLE, restart=False, forge=forge,
            reason="forge unreachable: %s: a restart cannot help, not restarted" % ping.phrase())
    return dataclasses.replace(decision, forge=forge)


def exit_status(decision):
    """The exit status one decision asks for: 1 when someone must look
    (refused, misconfigured, forge-error, forge-unreachable, crash-loop,
    paused, skipped-budget, error), else 0 (healthy, recovered, wedged and
    restarted, skipped for a job).  Several runners: the maximum."""
    if decision.kind in _FAILING:
        return report.EXIT_FAILURE
    return report.EXIT_OK


# ------------------------------------------------------------ the forge's own view (issue 20)

# The forges' RunnerOfflineTime: offline when the runner's last authenticated
# call is older (Forgejo v15.0.3 / Gitea v1.26.3 models/actions/runner.go:73-74)
FORGE_OFFLINE = 60.0
# A runner's process must have run this long before the forge's "offline"
# counts: time for its first Declare/FetchTask and for the forge to see it
FORGE_UPTIME = 120.0


def forge_rule(seen, now, cfg, evidence, started_at):
    """The forge's word on a runner whose log may show nothing (pure):
    -> ("offline" or "queue", reason) when it makes the runner wedged,
    else ("", why not, or "").  seen: forge.view.Seen, or None.

    offline  the forge calls it offline (no authenticated call for over
             FORGE_OFFLINE) while its process has run longer than
             FORGE_UPTIME, and the log shows no job start since the forge
             last heard from it;
    queue    the forge calls it idle (Gitea: online, not busy), or lists no
             runners (Forgejo v11-v14: the jobs alone), and a job it could
             take (its labels, its scope) has been seen waiting for at
             least queue_wait while its process ran, with no job start in
             the log since that job was first seen.
    A runner the forge lists as disabled (Gitea 1.26) takes no jobs: no
    queue rule.  The job guard (no job runs) comes after: with_view()."""
    if seen is None:
        return "", ""
    job = evidence.last_job_start if evidence is not None else None
    if seen.status == "offline":
        if started_at is None or now - started_at <= FORGE_UPTIME:
            return "", "offline on the forge, but its process started %s ago" % (
                "a moment" if started_at is None else human(now - started_at))
        if job is not None and job > now - FORGE_OFFLINE:
            return "", "offline on the forge, but a job started %s ago" % human(now - job)
        # seen offline since: at this check, or at the first of the checks in a row before it
        # that saw it offline since its process started
        since = min(max(seen.offline_since or now, started_at), now)
        silent = FORGE_OFFLINE + now - since
        return "offline", "silent: the forge has not heard from it for over %s (offline on the " \
                          "forge; its process has run %s)" % (human(silent), human(now - started_at))
    if seen.status == "active" or not seen.waits:
        return "", ""
    if seen.runner is not None and seen.runner.disabled:
        return "", "disabled on the forge: it takes no jobs"
    # a wait counts from the runner's start at the earliest: its process before was another
    # (its start unknown: from the wait's first sighting)
    waited = [(j, since if started_at is None else max(since, started_at)) for j, since in seen.waits]
    waited = [(j, since) for j, since in waited if now - since >= cfg.queue_wait]
    due = [(j, since) for j, since in waited if job is None or job <= since]
    if not due:
        return "", ("a job started after job %d began to wait" % waited[0][0].id) if waited else ""
    j, since = due[0]
    where = ("%s on the forge" % seen.runner.said if seen.runner is not None
             else "by the forge's job list (%s lists no runners)" % seen.dialect.label)
    return "queue", "%s while job %d (%s, runs-on %s) has waited %s (queue_wait %s)" % (
        where, j.id, j.name, " ".join(j.labels) or "nothing", human(now - since),
        human(cfg.queue_wait))


def with_view(decision, verdict, history, now, cfg):
    """A log decision (decide()) with the forge's verdict (forge_rule()):
    a runner the log calls healthy or recovered is wedged by the forge's
    word, unless a job runs (then it is not wedged at all: healthy) or the
    budget forbids a restart.  Wedged by its log, refused or the forge's
    error: the log's decision stands."""
    rule, reason = verdict
    if not rule or decision.kind not in (HEALTHY, RECOVERED):
        return decision
    if decision.blocking:
        return dataclasses.replace(decision, kind=HEALTHY, reason="%s, but %s: not wedged" % (
            reason, jobs_phrase(decision.blocking)))
    forge = dict(rule="forge-" + rule, restart=False)
    why = budget_check(history, now, cfg.cooldown, cfg.max_restarts)
    if why is not None:
        return dataclasses.replace(decision, kind=SKIPPED_BUDGET, reason=why, **forge)
    forge["restart"] = True
    return dataclasses.replace(decision, kind=WEDGED, reason=reason + ", no job running: restart",
                               **forge)
