"""Which running jobs forbid restarting a runner: the job guard of the
watchdog and of `optimus-boot-reconcile --refresh-stale`.

A job runs in a container named with one of the runner's job_prefixes
(FORGEJO-ACTIONS-TASK-..., GITEA-ACTIONS-TASK-...).  For each runner:

    list     one `docker ps` (+ inspect for creation times) for the union
             of the runners' prefixes: list_jobs()
    split    this runner's blocking and orphaned job containers:
             parse_job_container + blocking_jobs (pure),
             with the task ids each runner's log claims: split()

guard() does both for the watchdog's checks (backends/*.py call it with
their engine); pins/runner_copies.py calls list_jobs() and split() for the stale
runners it may refresh, then the budget.

A job without a container (host labels) is a live child of the runner's
daemon process (hostjobs.py): guard_host() adds them to each check's
blocking jobs, from the processes the backend reads (proctree.py: a
container's process tree, a unit's cgroup); container_host_jobs() does it
for one container, for runner_copies.
"""

import dataclasses
import re
from typing import Optional

from ..logs.stamps import START_MARGIN
from ..report import GuardError


def list_jobs(engine, cfgs):
    """The running job containers for these runners' configs: one listing
    for the union of their job_prefixes.  Raises the engine's error."""
    prefixes = sorted({p for cfg in cfgs for p in cfg.job_prefixes if p})
    return engine.job_containers(prefixes)


def split(name, cfg, jobs, started_at, claims, runners=frozenset()):
    """-> (blocking, orphans): JobContainer lists of runner `name`
    among `jobs` (engines.JobRecord).  claims: {runner: task ids} of every
    runner checked in the run ({} when none are known).  runners: the
    names and ids of runner containers, which are never jobs, whatever
    their names (a runner named FORGEJO-ACTIONS-TASK-self); the runner's
    own container is one of them."""
    runners = set(runners)
    if cfg.backend == "docker":
        runners.add(cfg.container)
    mine = []
    for job in jobs:
        if job.id in runners or job.name.lstrip("/") in runners:
            continue
        parsed = parse_job_container(job.name, cfg.job_prefixes, job.created)
        if parsed is not None:
            mine.append(parsed)
    return blocking_jobs(name, mine, started_at, claims)


def runner_containers(checks):
    """The names and ids of the runner containers among `checks`
    (backends.Check objects, of any backend): what split() never counts as
    a job."""
    found = set()
    for c in checks:
        if c.cfg.backend != "docker":
            continue
        found.add(c.cfg.container)
        for value in (getattr(c.state, "id", ""), getattr(c.state, "name", "")):
            if value:
                found.add(value.lstrip("/"))
    return frozenset(found)


def guard(checks, engine, claims, reporter, no_engine=(), runners=frozenset()):
    """Fill each check's blocking and orphaned job containers (and
    jobs_checked), or fail it when they cannot be listed.  An error of
    `no_engine` (a runner outside Docker on a host without an engine)
    leaves the job guard to the log: jobs_from_log.  runners: the runner
    containers of the whole run (runner_containers()), never jobs."""
    if not checks:
        return
    runners = frozenset(runners) | runner_containers(checks)
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
        c.blocking, c.orphans = split(c.name, c.cfg, jobs, c.started_at, claims, runners)
        c.jobs_checked = True
        reporter.debug("%s: job containers: %d blocking, %d orphaned"
                       % (c.name, len(c.blocking), len(c.orphans)))


def host_jobs(name, cfg, procs, reporter=None):
    """The host jobs (hostjobs.HostJob) among a runner's processes."""
    from . import hostjobs

    found = hostjobs.find(procs, cfg.daemon)
    if reporter is not None:
        reporter.debug("%s: %s" % (name, hostjobs.summary(found, cfg.daemon)))
    return list(found.jobs)


def guard_host(checks, read_procs, reporter):
    """Add each check's host jobs to its blocking jobs, or fail it when its
    processes cannot be read.  read_procs(check) -> hostjobs.Proc list."""
    for c in checks:
        if c.error is not None or not c.cfg.daemon:
            continue  # daemon = (empty): no jobs without a container looked for
        try:
            procs = read_procs(c)
        except GuardError as exc:
            c.fail("cannot list the runner's processes (for jobs without a container): %s"
                   % exc)
            continue
        c.blocking = list(c.blocking) + host_jobs(c.name, c.cfg, procs, reporter)


def container_host_jobs(engine, cfg):
    """The host jobs in runner container cfg.container (inspect, then its
    process tree).  Raises GuardError."""
    from ..system import proctree

    if not cfg.daemon:
        return []
    state = engine.inspect(cfg.container)
    if not state.running or not state.pid:
        return []
    return host_jobs(cfg.name, cfg, proctree.container(state.pid))


# ------------------------------------------------------------ job containers (pure)


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
    """Which running job containers forbid restarting `runner` (step 5).

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


def jobs_phrase(names, what="running"):
    """'job container A running', 'job containers A and 2 more running';
    a job without a container (hostjobs.HostJob.name, "pid N (command)",
    never a container's name): 'host job pid N (command) running'."""
    kind = "host job" if names[0].startswith("pid ") else "job container"
    if len(names) == 1:
        return "%s %s %s" % (kind, names[0], what)
    return "%ss %s and %d more %s" % (kind, names[0], len(names) - 1, what)
