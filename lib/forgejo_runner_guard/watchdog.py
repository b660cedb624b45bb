"""forgejo-runner-watchdog: restart a wedged Forgejo runner, never mid-job,
never in a loop.

One run, for every runner it checks:

    configure  command line over guard.conf -> RunnerConfig per runner
    lock       <state_dir>/watchdog.lock (not for --dry-run): one run at a time
    gather     docker inspect and docker logs --timestamps of each runner,
               all side by side, started before the state file and the
               deciding modules load; the log is streamed through
               runnerlog.LogScan, never held whole
    decide     decide.decide(): healthy, recovered, wedged, refused,
               skipped-job, skipped-budget, error; for a wedged runner
               only, docker ps lists the job containers (the job guard)
               and it decides again with them
    act        docker restart, record the restart in the state file, then
               confirm it runs with a new start time (restart.py, shared
               with optimus-boot-reconcile --refresh-stale)
    report     one summary line per runner on stderr, --json on stdout,
               --metrics-file

A runner with backend = systemd goes through SystemdBackend instead
(gather_units, restart.restart_unit): systemctl show and the journal of the
unit's current invocation, systemctl restart, confirmed by a new
invocation id.  Each backend object provides gather (state and evidence)
and restart; deciding, the job guard, the budget and the report are
shared.

The pure halves live in runnerlog.py (what a line means) and decide.py
(what to do); docker.py is the only module that runs docker, systemd.py
the only one that runs systemctl and journalctl.

Stable interface: main(argv=None) -> exit status; bin/ ends with
exit_now(main()).
"""

import os
import threading
import time

from . import cli, config, docker, restart, state
from .restart import stamp
from .report import EXIT_FAILURE, EXIT_OK, GuardError, UsageError, print_json

PROG = "forgejo-runner-watchdog"

DESCRIPTION = """\
Check the Forgejo Actions runner container(s) for the wedge the lossy
path to the forge causes, and restart a wedged runner: never while a job
runs, never in a loop.  A systemd timer runs this every 5 minutes."""

EPILOG = """\
what "wedged" means:
  The runner asks the forge for a job every 2 s (fetch_interval).  When
  the path to the forge is lossy it logs, at error level,
      level=error msg="failed to fetch task" error="unavailable: ..."
  on every poll, runs no jobs and never recovers by itself; a healthy
  runner logs none.  A runner counts as wedged when all of these hold:
    * at least THRESHOLD such lines in the last WINDOW (default 40 in 5m;
      a wedged runner logs about 150), counting only lines of the
      container's current run (times come from Docker, not the text);
    * the newest of them is younger than RECENT (default 60s): the burst
      is still going on (older: "recovered");
    * no job start ("task N repo is ...") was logged after it.
  Only the runner's own error-level lines count: job output that merely
  contains the phrase never does.

  A wedged runner is restarted (docker restart), unless:
    * a job container runs (FORGEJO-ACTIONS-TASK-*, GITEA-ACTIONS-TASK-*):
      skipped, exit 0.  A job container created before the runner's
      current start is an orphan of an earlier run: reported, not blocking;
    * the server refuses the runner (unauthenticated, unregistered):
      a restart cannot help, re-register it; exit 1;
    * the restart budget is spent: COOLDOWN since the last restart (with
      30s of slack) or MAX_RESTARTS in the last hour; exit 1.

  A runner installed as a systemd service (backend = systemd, unit = NAME
  in its [runner NAME] section) is read from the journal of the unit's
  current run (journalctl, _SYSTEMD_INVOCATION_ID) and restarted with
  systemctl restart; its job guard is the job containers on the host's
  Docker engine, or, without one, the log (a job start after the newest
  fetch error: "recovered").

examples:
  forgejo-runner-watchdog --dry-run        what would it do now?  (changes nothing)
  forgejo-runner-watchdog                  check and heal the configured runners
  forgejo-runner-watchdog --container forgejo_runner --threshold 20 --window 2m
  forgejo-runner-watchdog --json --dry-run | jq '.runners[] | {name, decision, errors}'
  journalctl -u forgejo-runner-watchdog.service    what the timer's runs said

exit status:
  0  healthy, recovered, restarted, or skipped because a job runs
  1  refused by the server, Docker unreachable, a Docker call timed out,
     container (or unit) missing or not running, logs unreadable, restart failed,
     restart budget exhausted, state or metrics file not writable
  2  usage or configuration error
  Several runners: the worst of them.

files:
  /etc/forgejo-runner-guard/guard.conf (and guard.conf.d/*.conf): [watchdog]
  defaults, [runner NAME] per runner.  STATE_DIR/state.json: restart history;
  STATE_DIR/watchdog.lock: one run at a time (a second run waits for the
  first, then decides afresh)."""



def _arg(parse):
    """argparse type from a config parser: ValueError -> one-line usage error."""
    import argparse

    def convert(text):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc))

    return convert


def _container_name(text):
    if not config.CONTAINER_NAME.match(text or ""):
        raise ValueError("not a container name: %r" % text)
    return text


def _directory(text):
    if not (text or "").strip():
        raise ValueError("empty path")
    return os.path.abspath(text)


def build_parser():
    parser = cli.make_parser(PROG, DESCRIPTION, EPILOG)
    parser.add_argument("--container", metavar="NAME", action="append", default=[],
                        type=_arg(_container_name),
                        help="check this runner only (a [runner NAME] of the configuration, or "
                        "a runner container of that name with the [watchdog] defaults); "
                        "repeatable (default: the configured runners, forgejo_runner)")
    parser.add_argument("--threshold", metavar="N", type=_arg(config.setting("threshold")),
                        help="fetch errors in the window that make a runner wedged (default 40; "
                        "1-10000)")
    parser.add_argument("--window", metavar="DURATION", type=_arg(config.setting("window")),
                        help="how far back to count (default 5m; 90, 90s, 5m, 1h; at most 1d)")
    parser.add_argument("--recent", metavar="DURATION", type=_arg(config.setting("recent")),
                        help="the newest error must be younger than this for the burst to be "
                        "still going on (default 60s; at most 1d)")
    parser.add_argument("--cooldown", metavar="DURATION", type=_arg(config.setting("cooldown")),
                        help="no restart within this long of the last one (default 10m; at most 1d)")
    parser.add_argument("--max-restarts", metavar="N", type=_arg(config.setting("max_restarts")),
                        help="at most N restarts per runner per hour (default 3, at most 60; 0: never "
                        "restart)")
    parser.add_argument("--state-dir", metavar="DIR", type=_arg(_directory),
                        help="restart history and lock (default /var/lib/forgejo-runner-guard; "
                        "any other must exist)")
    parser.add_argument("--metrics-file", metavar="PATH", type=_arg(_directory),
                        help="write Prometheus metrics here (node_exporter textfile collector; "
                        "its directory must exist)")
    parser.add_argument("--docker-timeout", metavar="DURATION", type=_arg(config.setting("docker_timeout")),
                        help="kill any docker call that takes longer (a log read: that "
                        "long without output) (default 30s; at most 1h)")
    parser.add_argument("--dry-run", action="store_true",
                        help="decide and report, change nothing: no restart, no state, no metrics")
    return parser


# ---------------------------------------------------------------- configure


class Settings:
    """One run's settings: the runners and what applies to all of them."""

    def __init__(self, runners, state_dir, metrics_file, docker_timeout, dry_run, json,
                 config_files=()):
        self.runners = runners
        self.state_dir = state_dir
        self.metrics_file = metrics_file
        self.docker_timeout = docker_timeout
        self.dry_run = dry_run
        self.json = json
        self.config_files = config_files


_OVERRIDES = (
    ("threshold", "threshold"),
    ("window", "window"),
    ("recent", "recent"),
    ("cooldown", "cooldown"),
    ("max_restarts", "max_restarts"),
)


def configure(args):
    import dataclasses

    conf = config.load(args.config)
    wd = conf.watchdog
    runners = config.select_runners(wd, args.container)
    overrides = {field: getattr(args, dest) for dest, field in _OVERRIDES
                 if getattr(args, dest) is not None}
    if overrides:
        runners = [dataclasses.replace(r, **overrides) for r in runners]
    config.check_distinct(runners)
    return Settings(
        runners=tuple(runners),
        state_dir=args.state_dir or wd.state_dir,
        metrics_file=args.metrics_file or wd.metrics_file,
        docker_timeout=args.docker_timeout or wd.docker_timeout,
        dry_run=args.dry_run,
        json=args.json,
        config_files=conf.files,
    )


# ---------------------------------------------------------------- one runner


class Check:
    """Everything known about one runner in this run."""

    def __init__(self, cfg):
        self.cfg = cfg  # config.RunnerConfig
        self.inspect_call = None  # docker backend: the calls in flight
        self.logs_call = None
        self.gate = None
        self.scan = None  # runnerlog.LogScan
        self.container = None  # docker.ContainerState
        self.unit = None  # systemd.UnitState: the systemd backend's container
        self.journal = None  # systemd.JournalScan
        self.since = None
        self.evidence = None  # runnerlog.Evidence
        self.blocking = []  # decide.JobContainer
        self.orphans = []
        self.decision = None  # decide.Decision
        self.error = None  # why the check (or the restart) failed
        self.restarted = False
        self.new_started_at = None
        self.new_invocation_id = None
        self.log_bytes = 0
        self.jobs_checked = False  # job containers were listed (only for a wedged runner)
        self.jobs_from_log = False  # systemd backend, no Docker engine: the log is the job guard

    @property
    def name(self):
        return self.cfg.name

    @property
    def target(self):
        """What is restarted: the container's or the unit's name."""
        return self.cfg.unit if self.cfg.backend == "systemd" else self.cfg.container

    @property
    def started_at(self):
        """Epoch seconds of the runner's current start, or None."""
        if self.container is not None:
            return self.container.started_at
        if self.unit is not None:
            return self.unit.started_at
        return None

    def fail(self, message):
        if self.error is None:
            self.error = message


class _Gate:
    """Holds the log stream (in sh's reader thread) until the runner's
    start time is known, then feeds it to the scanner.  So `docker logs`
    starts together with `docker inspect` instead of after it."""

    def __init__(self):
        self.ready = threading.Event()
        self.scan = None
        self.bytes = 0

    def open(self, scan):
        self.scan = scan
        self.ready.set()

    def feed(self, chunk):
        self.ready.wait()
        self.bytes += len(chunk)
        if self.scan is not None:
            self.scan.feed(chunk)


def begin_gather(checks, engine, now):
    """Start docker inspect and docker logs of every runner, side by side;
    the logs wait at the gate until gather() knows where to count from."""
    for c in checks:
        if c.gate is not None:
            continue  # started already
        c.gate = _Gate()
        c.inspect_call = engine.begin_inspect(c.cfg.container)
        # one second more than the window: the scanner draws the exact line
        c.logs_call = engine.begin_logs(c.cfg.container, now - c.cfg.window - 1.0, c.gate.feed)


def gather(checks, engine, now, reporter):
    """Inspect and stream the logs (begin_gather, if not yet), then scan."""
    docker_checks = [c for c in checks if c.cfg.backend == "docker"]
    if not docker_checks:
        return
    from . import decide, runnerlog

    try:
        begin_gather(docker_checks, engine, now)
        for c in docker_checks:
            try:
                c.container = c.inspect_call.result()
            except docker.DockerError as exc:
                c.fail(str(exc))
                c.logs_call.kill()
                c.gate.open(None)
                continue
            st = c.container
            c.since = decide.window_start(now, c.cfg.window, st.started_at, st.finished_at)
            c.scan = runnerlog.LogScan(c.since)
            c.gate.open(c.scan)
            reporter.debug("%s: container %s (%s), %s, started %s, counting from %s"
                           % (c.name, st.name, st.id[:12], st.status, stamp(st.started_at),
                              stamp(c.since)))
        for c in docker_checks:
            try:
                c.logs_call.result()
            except docker.DockerError as exc:
                if c.error is None and c.container is not None and c.container.log_driver == "none":
                    exc = docker.LogsUnreadable(
                        "cannot read the logs of %s: its log driver is \"none\", which keeps "
                        "nothing; use json-file, local or journald" % c.cfg.container)
                c.fail(str(exc))
                continue
            c.log_bytes = c.gate.bytes
            if c.error is None:
                c.evidence = c.scan.close()
                if c.evidence.untimed:
                    reporter.warning("%s: %d log lines without a Docker timestamp ignored"
                                     % (c.name, c.evidence.untimed))
    finally:
        for c in docker_checks:
            if c.gate is not None and not c.gate.ready.is_set():
                c.gate.open(None)
        engine.close()

    for c in docker_checks:
        if c.error is not None:
            continue
        if not c.container.running:
            c.fail("container %s is not running (%s, exit code %d): start it; the watchdog "
                   "only restarts a running runner" % (c.cfg.container, c.container.status or
                                                        "stopped", c.container.exit_code))
            continue
        reporter.debug("%s: %d log bytes, %d lines, %d fetch errors since %s"
                       % (c.name, c.log_bytes, c.evidence.lines, c.evidence.errors,
                          stamp(c.since)))


def gather_units(checks, manager, now, reporter):
    """The systemd backend: systemctl show, then the journal of the unit's
    current invocation since the window's start, streamed through
    systemd.JournalScan into runnerlog.LogScan.  Times come from the
    journal and only the current invocation is read, so no start margin
    and no previous-stop bound are needed."""
    from . import decide, runnerlog, systemd

    try:
        for c in checks:
            try:
                c.unit = manager.show(c.cfg.unit)
            except GuardError as exc:
                c.fail(str(exc))
                continue
            u = c.unit
            if not u.running:
                c.fail("unit %s is %s: start it; the watchdog only restarts a running runner"
                       % (u.name, u.status))
                continue
            if not u.to_journal:
                c.fail("cannot read the logs of %s: its stderr goes to %s, not the journal; "
                       "use StandardError=journal" % (u.name, u.std_error or "nowhere"))
                continue
            c.since = decide.window_start(now, c.cfg.window, u.started_at, None, margin=0.0)
            c.scan = runnerlog.LogScan(c.since)
            c.journal = systemd.JournalScan(c.scan)
            reporter.debug("%s: unit %s, %s, invocation %s, started %s, last stopped %s, "
                           "counting from %s" % (c.name, u.name, u.status, u.invocation_id,
                                                 stamp(u.started_at), stamp(u.stopped_at),
                                                 stamp(c.since)))
            try:
                # from one second before the window: the scanner draws the exact line
                manager.journal(u.name, u.invocation_id, c.since - 1.0, c.journal.feed)
            except GuardError as exc:
                c.fail(str(exc))
                continue
            c.evidence = c.journal.close()
            if c.journal.bad:
                reporter.warning("%s: %d journal entries unreadable, ignored" % (c.name, c.journal.bad))
            reporter.debug("%s: %d journal entries, %d fetch errors since %s"
                           % (c.name, c.evidence.lines, c.evidence.errors, stamp(c.since)))
    finally:
        manager.close()


def guard_jobs(checks, engine, reporter):
    """List the job containers for the runners that are wedged; fill in
    their blocking and orphaned jobs.  -> the runners it looked at.

    Only a wedged runner needs the job guard (decide() looks at jobs after
    refused and before the budget), so `docker ps` runs only then: a
    healthy check makes two docker calls, not three (~25 ms less, measured)."""
    from . import decide

    need = [c for c in checks
            if c.error is None and c.decision.kind in (decide.WEDGED, decide.SKIPPED_BUDGET)]
    if not need:
        return need
    prefixes = sorted({p for c in need for p in c.cfg.job_prefixes if p})
    try:
        jobs = engine.job_containers(prefixes)
    except docker.DockerError as exc:
        for c in need:
            if c.cfg.backend == "systemd" and isinstance(exc, docker.EngineUnreachable):
                # No Docker engine here: the log is the job guard.  A job
                # start not followed by a fetch error means a job runs, and
                # decide() already calls that "recovered" (a job started
                # after the newest error): a wedged runner runs none.
                c.jobs_from_log = True
                c.jobs_checked = True
                reporter.debug("%s: no Docker engine (%s): job guard from the log" % (c.name, exc))
            else:
                c.fail("cannot list the job containers: %s" % exc)
        return need
    claims = {c.name: c.evidence.claimed_tasks for c in checks if c.evidence is not None}
    for c in need:
        mine = []
        for job in jobs:
            parsed = decide.parse_job_container(job.name, c.cfg.job_prefixes, job.created)
            if parsed is not None:
                mine.append(parsed)
        c.blocking, c.orphans = decide.blocking_jobs(c.name, mine, c.started_at, claims)
        c.jobs_checked = True
        reporter.debug("%s: job containers: %d blocking, %d orphaned"
                       % (c.name, len(c.blocking), len(c.orphans)))
    return need


def _record(st, c):
    return lambda: restart.record_restart(st, c.name)


class DockerBackend:
    """Runners in containers (backend = docker): docker.py."""

    def __init__(self, timeout):
        self.engine = docker.Docker(timeout)

    def begin(self, checks, now):
        begin_gather([c for c in checks if c.cfg.backend == "docker"], self.engine, now)

    def gather(self, checks, now, reporter):
        gather(checks, self.engine, now, reporter)

    def close(self):
        self.engine.close()

    def restart(self, c, st, settings, reporter):
        """docker restart, record it, confirm it runs with a new start time."""
        done = restart.restart_container(self.engine, c.cfg.container, c.container.started_at,
                                         _record(st, c), settings.docker_timeout)
        if done.error:
            c.fail(done.error)
        if done.restarted:
            c.restarted = True
            c.new_started_at = done.new_started_at
            reporter.debug("%s: running again since %s" % (c.name, stamp(done.new_started_at)))


class SystemdBackend:
    """Runners installed as a systemd service (backend = systemd): systemd.py."""

    def __init__(self, timeout):
        from . import systemd

        self.manager = systemd.Systemd(timeout)

    def begin(self, checks, now):
        pass  # the journal read needs the unit's invocation id first

    def gather(self, checks, now, reporter):
        gather_units(checks, self.manager, now, reporter)

    def close(self):
        self.manager.close()

    def restart(self, c, st, settings, reporter):
        """systemctl restart, record it, confirm the unit is active with a
        new invocation id."""
        try:
            done = restart.restart_unit(self.manager, c.unit.name, c.unit.invocation_id,
                                        _record(st, c), settings.docker_timeout)
        finally:
            self.manager.close()
        if done.error:
            c.fail(done.error)
        if done.restarted:
            c.restarted = True
            c.new_started_at = done.new_started_at
            c.new_invocation_id = done.new_invocation_id
            reporter.debug("%s: running again since %s, invocation %s"
                           % (c.name, stamp(done.new_started_at), done.new_invocation_id))


BACKENDS = {"docker": DockerBackend, "systemd": SystemdBackend}


# ---------------------------------------------------------------- report


def _plural(count, word):
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def _jobs(names, what="running"):
    if len(names) == 1:
        return "job container %s %s" % (names[0], what)
    return "job containers %s and %d more %s" % (names[0], len(names) - 1, what)


def outcome(c, dry_run):
    from . import decide

    d = c.decision
    if d.kind == decide.HEALTHY:
        return "healthy"
    if d.kind == decide.RECOVERED:
        return "recovered: " + d.reason
    if d.kind == decide.REFUSED:
        detail = d.newest_error_detail
        return "refused by the server%s: the runner must be re-registered (a restart cannot " \
               "help)" % (" (%s)" % detail if detail else "")
    if d.kind == decide.SKIPPED_JOB:
        return "wedged, not restarted while a job runs: skipped"
    if d.kind == decide.SKIPPED_BUDGET:
        return "wedged, not restarted: " + d.reason
    if d.kind == decide.WEDGED:
        if dry_run:
            return "wedged: would restart (dry run)"
        if c.error:
            return "wedged: " + c.error
        return "restarted"
    return c.error or d.reason


def summary(c, dry_run):
    from . import decide

    d = c.decision
    if d.kind == decide.ERROR:
        return "%s: %s" % (c.name, c.error or d.reason)
    span = d.span if d.span is not None else d.window
    parts = ["%s in %ds (threshold %d)" % (_plural(d.errors, "fetch error"), round(span),
                                           d.threshold)]
    if d.newest_error_age is not None:
        parts.append("newest %ds ago" % max(0, round(d.newest_error_age)))
    if c.jobs_from_log:
        parts.append("no job running (no Docker engine; by the log)")
    elif c.jobs_checked:
        parts.append(_jobs(d.blocking) if d.blocking else "no job running")
    if d.orphans:
        parts.append(_jobs(d.orphans, "orphaned (from before the runner's start; ignored)"))
    return "%s: %s: %s" % (c.name, ", ".join(parts), outcome(c, dry_run))


def exit_status(c):
    from . import decide

    status = decide.exit_status(c.decision)
    if c.error:
        status = max(status, EXIT_FAILURE)
    return status


def document(checks, settings, now, status):
    from . import decide

    runners = []
    for c in checks:
        d = c.decision
        runners.append({
            "name": c.name,
            "backend": c.cfg.backend,
            "container": c.cfg.container if c.cfg.backend == "docker" else None,
            "unit": c.cfg.unit if c.cfg.backend == "systemd" else None,
            "invocation_id": c.unit.invocation_id if c.unit is not None else None,
            "new_invocation_id": c.new_invocation_id,
            "decision": d.kind,
            "restarted": c.restarted,
            "reason": d.reason,
            "error": c.error,
            "summary": summary(c, settings.dry_run),
            "errors": None if d.kind == decide.ERROR else d.errors,
            "threshold": c.cfg.threshold,
            "window": c.cfg.window,
            "span": None if d.span is None else round(d.span, 3),
            "recent": c.cfg.recent,
            "newest_error_age": None if d.newest_error_age is None else round(d.newest_error_age, 3),
            "newest_error": d.newest_error_detail or None,
            "job_start_age": None if d.job_start_age is None else round(d.job_start_age, 3),
            "job_running": d.job_running if c.jobs_checked else None,
            "blocking_jobs": list(d.blocking),
            "orphaned_jobs": list(d.orphans),
            "restarts_last_hour": d.restarts_last_hour,
            "last_restart_age": None if d.last_restart_age is None else round(d.last_restart_age, 3),
            "started_at": c.started_at,
            "new_started_at": c.new_started_at,
            "exit_status": exit_status(c),
        })
    return {
        "checked_at": now,
        "dry_run": settings.dry_run,
        "state_dir": settings.state_dir,
        "exit_status": status,
        "runners": runners,
    }


def samples(checks, st, now):
    from . import decide, metrics

    result = []
    for c in checks:
        d = c.decision
        up = d.kind != decide.ERROR
        result.append(metrics.Sample(
            container=c.target,
            up=up,
            fetch_errors=d.errors if up else None,
            threshold=c.cfg.threshold,
            wedged=(d.kind in (decide.WEDGED, decide.REFUSED, decide.SKIPPED_JOB,
                               decide.SKIPPED_BUDGET)) if up else None,
            restarts_total=st.restarts_total(c.name),
            last_check=now,
            last_restart=st.last_restart(c.name),
        ))
    return result


# ---------------------------------------------------------------- main


def check(settings, reporter):
    checks = [Check(cfg) for cfg in settings.runners]
    now = time.time()
    backends = {kind: BACKENDS[kind](settings.docker_timeout)
                for kind in dict.fromkeys(c.cfg.backend for c in checks)}
    try:
        return _check(settings, reporter, checks, now, backends)
    except BaseException:
        for backend in backends.values():  # nothing left running
            backend.close()
        raise


def _check(settings, reporter, checks, now, backends):
    kinds = list(backends)
    if kinds and kinds[0] == "docker":
        # Start the docker calls first: everything else (the state file,
        # the deciding and scanning modules) loads while they run.  Only
        # when docker comes first, so the log stream never waits at its
        # gate for another backend.
        backends["docker"].begin(checks, now)
    st = state.State.load(settings.state_dir, reporter.warning)
    from . import decide

    for kind, backend in backends.items():
        backend.gather([c for c in checks if c.cfg.backend == kind], now, reporter)
    engine = backends["docker"].engine if "docker" in backends else docker.Docker(settings.docker_timeout)
    for c in checks:
        if c.error is None:
            c.decision = decide.decide(c.evidence, now, c.cfg, (), st.history(c.name))
    for c in guard_jobs(checks, engine, reporter):
        if c.error is None:
            c.decision = decide.decide(c.evidence, now, c.cfg, c.blocking, st.history(c.name),
                                       orphans=c.orphans)
    for c in checks:
        if c.error is not None:
            c.decision = decide.decide(None, now, c.cfg, history=st.history(c.name), logs_ok=False)
        elif c.decision.restart and not settings.dry_run:
            backends[c.cfg.backend].restart(c, st, settings, reporter)
    status = EXIT_OK
    for c in checks:
        line = summary(c, settings.dry_run)
        code = exit_status(c)
        status = max(status, code)
        if code:
            reporter.error(line)
        else:
            reporter.info(line)
    if settings.metrics_file and not settings.dry_run:
        try:
            from . import metrics

            metrics.write(settings.metrics_file, samples(checks, st, now))
            reporter.debug("metrics: %s" % settings.metrics_file)
        except GuardError as exc:
            reporter.error(str(exc))
            status = max(status, exc.exit_code)
    if settings.json:
        print_json(document(checks, settings, now, status))
    return status


def _body(argv, reporter):
    args = build_parser().parse_args(argv)
    reporter.verbosity = cli.verbosity(args)
    settings = configure(args)
    for path in settings.config_files:
        reporter.debug("configuration: %s" % path)
    for text in filter(None, map(config.unreachable, settings.runners)):
        reporter.warning(text)
    if settings.dry_run:
        return check(settings, reporter)
    bound = max(10.0, 3 * settings.docker_timeout)
    with state.run_lock(settings.state_dir, bound,
                        lambda path: reporter.info("waiting for another watchdog run (%s)" % path)):
        return check(settings, reporter)


def main(argv=None):
    """Run the command; returns its exit status (see EXIT STATUS in --help)."""
    return cli.run(PROG, _body, argv)


def exit_now(status):
    """End the process with `status` once stdout and stderr are flushed,
    without the interpreter's teardown (bin/forgejo-runner-watchdog only;
    main() returns).  Nothing is left for the teardown to do: the calls
    have ended (every backend kills and waits for its own), files are
    written whole and synced, the lock goes with the process, and there
    are no atexit handlers; it costs ~30 ms after a check with sh 2.x
    (15 ms more than `import sh` alone pays), ~8 ms with sh 1.14 (measured).
    A flush that fails (stdout closed) takes the ordinary way out, which
    reports it as before."""
    import sys

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        sys.exit(status)
    os._exit(status)
