"""Deciding what to do about one runner: where the restart is decided.

Pure: evidence, settings and the time `now` (epoch seconds) in, a
Decision out.  No clock, no Docker, no files.  The caller (watchdog.py)
gathers the facts, calls decide(), acts on Decision.restart and turns
exit_status() into the unit's exit status.

The rules, in the order decide() applies them (issue 3, rules 3-6 and 9):

  1. error           the logs could not be read: never call that healthy.
  2. healthy         fewer than `threshold` fetch errors in the window.
  3. recovered       was wedged, no longer is: at least `threshold` errors
                     in the window, but the burst is over (the newest
                     error is `recent` seconds old or older) or a job
                     started after the newest error (a fetch worked).
  -- otherwise the runner is WEDGED: count >= threshold, newest error
     younger than `recent`, no job start after it --
  4. refused         the newest error says the server refuses the runner:
                     a restart cannot help; it must be re-registered.
  5. skipped-job     a job container this runner may own is running.
  6. skipped-budget  cooldown or hourly cap forbids another restart.
  7. wedged          restart=True: the only outcome that restarts.

Exit status (exit_status()): 1 for refused, skipped-budget and error
(someone must look), 0 for the rest.
"""

import dataclasses
import re
from typing import Optional, Tuple

from . import report
from .runnerlog import refused

HEALTHY = "healthy"
RECOVERED = "recovered"
WEDGED = "wedged"
REFUSED = "refused"
SKIPPED_JOB = "skipped-job"
SKIPPED_BUDGET = "skipped-budget"
ERROR = "error"
KINDS = (HEALTHY, RECOVERED, WEDGED, REFUSED, SKIPPED_JOB, SKIPPED_BUDGET, ERROR)

HOUR = 3600.0
COOLDOWN_SLACK = 30.0  # a 5-minute timer must not stretch a 10m cooldown to 15m
START_MARGIN = 2.0  # Docker records StartedAt a little after the process starts


def human(seconds):
    """A short plain duration: 45s, 4m, 9m31s, 2h, 1h05m."""
    seconds = int(round(max(0.0, seconds)))
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        minutes, secs = divmod(seconds, 60)
        return "%dm" % minutes if not secs else "%dm%02ds" % (minutes, secs)
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return "%dh" % hours if not minutes else "%dh%02dm" % (hours, minutes)


# ------------------------------------------------------------ the window


def window_start(now, window, started_at, previous_finished_at, margin=START_MARGIN):
    """Where counting starts (issue rule 2): the later of now - window and
    started_at - margin (the container's current run; the margin covers
    Docker recording StartedAt after the first lines), but never before
    previous_finished_at (errors of the run before the last restart are
    never counted again).  started_at / previous_finished_at may be None
    (unknown / never finished)."""
    start = now - window
    if started_at is not None:
        start = max(start, started_at - margin)
    if previous_finished_at is not None:
        start = max(start, previous_finished_at)
    return start


# ------------------------------------------------------------ the job guard


@dataclasses.dataclass(frozen=True)
class JobContainer:
    """A running job container: name, creation time (epoch seconds) and the
    task id from its name (None when the name carries none)."""

    name: str
    created: float
    task_id: Optional[int] = None


def parse_job_container(name, prefixes, created=0.0):
    """A JobContainer(name, created, task_id) when `name` starts with one
    of `prefixes` (FORGEJO-ACTIONS-TASK-, GITEA-ACTIONS-TASK-), else None.  The task id
    is the number right after the prefix (FORGEJO-ACTIONS-TASK-12_WORKFLOW-
    ..._JOB-... -> 12).  A leading "/" (docker inspect's form) is ignored."""
    name = name.lstrip("/")
    for prefix in prefixes:
        if prefix and name.startswith(prefix):
            digits = re.match(r"\d+", name[len(prefix) :])
            return JobContainer(name, created, int(digits.group()) if digits else None)
    return None


def blocking_jobs(runner, job_containers, runner_started_at, claims, margin=START_MARGIN):
    """Which running job containers forbid restarting `runner` (rule 5).

    runner              the runner's name (a key of claims)
    job_containers      JobContainer list (running ones)
    runner_started_at   epoch seconds of the runner's current start (or None)
    claims              {runner name: task ids its log claims}, for every
                        runner checked in this run

    For each job container, in this order:
      * claimed by another runner's log and not by this one's: that
        runner's job; it does not concern this runner;
      * created before this runner's current start (minus `margin`, so a
        job started in the first seconds of a run is never mistaken for an
        orphan): an orphan of an earlier run, reported, not blocking;
      * otherwise (claimed by this runner, or by nobody): blocking.
    -> (blocking, orphans), two lists of JobContainer.
    """
    mine = set(claims.get(runner, ()))
    others = set()
    for name, tasks in claims.items():
        if name != runner:
            others.update(tasks)
    blocking, orphans = [], []
    for job in job_containers:
        if job.task_id is not None and job.task_id in others and job.task_id not in mine:
            continue
        if runner_started_at is not None and job.created < runner_started_at - margin:
            orphans.append(job)
        else:
            blocking.append(job)
    return blocking, orphans


# ------------------------------------------------------------ the budget


def budget_check(history, now, cooldown, max_restarts, slack=COOLDOWN_SLACK):
    """None when a restart is allowed now, else the reason it is not (rule 6).

    history        epoch seconds of this runner's earlier restarts
    cooldown       no restart while the last one is less than
                   cooldown - slack seconds ago: with cooldown 10m a restart
                   9m30s (or later) after the last one is allowed, 9m29s
                   is not, so a 5-minute timer gets the 10-minute pace
    max_restarts   at most this many restarts within any hour: refused
                   while max_restarts restarts lie less than 3600 s ago
                   (no slack here: the cap is a hard limit; 0 disables
                   restarting)

    A restart time more than 60 s in the future (the clock was set back)
    is ignored rather than blocking restarts until the clock catches up;
    up to 60 s ahead counts as "just now".
    """
    times = [min(t, now) for t in history if t <= now + 60.0]
    if times:
        ago = now - max(times)
        if ago < cooldown - slack:
            return "cooldown: last restart %s ago (cooldown %s)" % (human(ago), human(cooldown))
    last_hour = [t for t in times if now - t < HOUR]
    if len(last_hour) >= max_restarts:
        if max_restarts == 0:
            return "restarts disabled (max-restarts 0)"
        return "hourly cap: %d restart%s in the last hour (max %d)" % (
            len(last_hour),
            "" if len(last_hour) == 1 else "s",
            max_restarts,
        )
    return None


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


def jobs_phrase(names, what="running"):
    """'job container A running', 'job containers A and 2 more running';
    a job without a container (hostjobs.HostJob.name, "pid N (command)",
    never a container's name): 'host job pid N (command) running'."""
    kind = "host job" if names[0].startswith("pid ") else "job container"
    if len(names) == 1:
        return "%s %s %s" % (kind, names[0], what)
    return "%ss %s and %d more %s" % (kind, names[0], len(names) - 1, what)


def assess(evidence, now, cfg):
    """What the log alone says: (kind, reason), kind one of HEALTHY,
    RECOVERED, REFUSED or WEDGED (rules 2-4; the job guard and the budget
    come after)."""
    newest = evidence.newest_error
    job = evidence.last_job_start
    if evidence.errors < cfg.threshold or newest is None:
        return HEALTHY, "below threshold"
    if now - newest >= cfg.recent:
        return RECOVERED, "burst over (recent %s)" % human(cfg.recent)
    if job is not None and job > newest:
        return RECOVERED, "a job started after the newest error"
    if refused(evidence.newest_error_detail):
        return REFUSED, "refused by the server: re-register the runner"
    return WEDGED, "no job running: restart"


def needs_job_guard(evidence, now, cfg):
    """Does deciding for this evidence need the running jobs?  Only when
    the log says wedged (the job guard comes before the budget); a caller
    lists the jobs for these runners only, then decides once."""
    return evidence is not None and assess(evidence, now, cfg)[0] == WEDGED


def decide(evidence, now, cfg, blocking_jobs=(), history=(), logs_ok=True, orphans=()):
    """Decide for one runner.  See the module docstring for the rules.

    evidence       runnerlog.Evidence of the window (its `since` gives span)
    now            epoch seconds
    cfg            config.RunnerConfig (threshold, recent, cooldown,
                   max_restarts, window)
    blocking_jobs  JobContainer (or names) from blocking_jobs()[0]
    history        epoch seconds of earlier restarts of this runner
    logs_ok        False when the logs could not be read
    orphans        JobContainer (or names) from blocking_jobs()[1], only
                   reported
    """
    blocking = tuple(getattr(j, "name", j) for j in blocking_jobs)
    past = [t for t in history if t <= now + 60.0]
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
    )
    kind, reason = assess(evidence, now, cfg)
    if kind != WEDGED:
        return Decision(kind, False, reason, **base)
    if blocking:
        return Decision(SKIPPED_JOB, False, jobs_phrase(blocking) + ": skipped", **base)
    why = budget_check(history, now, cfg.cooldown, cfg.max_restarts)
    if why is not None:
        return Decision(SKIPPED_BUDGET, False, why, **base)
    return Decision(WEDGED, True, reason, **base)


def exit_status(decision):
    """The exit status one decision asks for: 1 when someone must look
    (refused, skipped-budget, error), else 0 (healthy, recovered, wedged
    and restarted, skipped for a job).  Several runners: the maximum."""
    if decision.kind in (REFUSED, SKIPPED_BUDGET, ERROR):
        return report.EXIT_FAILURE
    return report.EXIT_OK
