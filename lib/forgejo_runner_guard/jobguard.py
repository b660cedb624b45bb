"""Which running jobs forbid restarting a runner: the job guard of the
watchdog and of `optimus-boot-reconcile --refresh-stale`.

A job runs in a container named with one of the runner's job_prefixes
(FORGEJO-ACTIONS-TASK-..., GITEA-ACTIONS-TASK-...).  For each runner:

    list     one `docker ps` (+ inspect for creation times) for the union
             of the runners' prefixes: list_jobs()
    split    this runner's blocking and orphaned job containers:
             decide.parse_job_container + decide.blocking_jobs (pure),
             with the task ids each runner's log claims: split()

guard() does both for the watchdog's checks (backends/*.py call it with
their engine); runnerpins calls list_jobs() and split() for the stale
runners it may refresh, then the budget.
"""

from .report import GuardError


def list_jobs(engine, cfgs):
    """The running job containers for these runners' configs: one listing
    for the union of their job_prefixes.  Raises the engine's error."""
    prefixes = sorted({p for cfg in cfgs for p in cfg.job_prefixes if p})
    return engine.job_containers(prefixes)


def split(name, cfg, jobs, started_at, claims):
    """-> (blocking, orphans): decide.JobContainer lists of runner `name`
    among `jobs` (docker.JobRecord).  claims: {runner: task ids} of every
    runner checked in the run ({} when none are known)."""
    from . import decide

    mine = []
    for job in jobs:
        parsed = decide.parse_job_container(job.name, cfg.job_prefixes, job.created)
        if parsed is not None:
            mine.append(parsed)
    return decide.blocking_jobs(name, mine, started_at, claims)


def guard(checks, engine, claims, reporter, no_engine=()):
    """Fill each check's blocking and orphaned job containers (and
    jobs_checked), or fail it when they cannot be listed.  An error of
    `no_engine` (a runner outside Docker on a host without an engine)
    leaves the job guard to the log: jobs_from_log."""
    if not checks:
        return
    try:
        jobs = list_jobs(engine, [c.cfg for c in checks])
    except GuardError as exc:
        for c in checks:
            if no_engine and isinstance(exc, no_engine):
                c.jobs_from_log = c.jobs_checked = True
                reporter.debug("%s: no Docker engine (%s): job guard from the log" % (c.name, exc))
            else:
                c.fail("cannot list the job containers: %s" % exc)
        return
    for c in checks:
        c.blocking, c.orphans = split(c.name, c.cfg, jobs, c.started_at, claims)
        c.jobs_checked = True
        reporter.debug("%s: job containers: %d blocking, %d orphaned"
                       % (c.name, len(c.blocking), len(c.orphans)))
