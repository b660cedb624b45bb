"""Stale pins inside running runner containers (optimus-boot-reconcile --runners).

Docker copies the host's /etc/hosts into a host-network container each
time it starts the container (to `docker inspect`'s HostsPath, a file on
the host that the container sees as its /etc/hosts), and never again: a
runner started before the pin still resolves the forge to its public
address.  For each runner this reads that copy and says:

  fresh           every pin of this run holds in the copy (the same rules
                  as in the hosts file: hostsfile.plan() would change nothing)
  stale           a pin is missing, maps another address, or another line
                  still maps the name
  refreshed       it was stale and --refresh-stale restarted it; the new
                  copy has the pins
  not-running     stopped or restarting: Docker gives it a fresh copy when it
                  starts; paused: never refreshed (the pause is not undone)
  not-applicable  a systemd-backend runner (it reads the host's file
                  itself), or a container not on the host network (Docker
                  writes its own hosts file for it; the host's pins never
                  reach it)
  error           Docker unreachable, container missing, copy unreadable,
                  restart failed

--refresh-stale restarts a stale runner under the watchdog's own rules:
never while a job container runs (an orphan from before the runner's
start does not block; without the runner's log there are no task claims,
so any other job container blocks every runner), within the same restart
budget (cooldown, hourly cap; the same state file), under the same run
lock, so the watchdog and this never both restart a runner.  The restart
is confirmed (a new start time) and the new copy is read again.

This module's top level is cheap: docker (and with it `sh`), decide,
state and restart are imported only when --runners is used.
"""

import dataclasses
import time
from typing import List, Optional

from ..config import selection
from . import hostsfile
from ..report import EXIT_DRIFT, EXIT_FAILURE, EXIT_OK, GuardError, UsageError, combine, why

FRESH = "fresh"
STALE = "stale"
REFRESHED = "refreshed"
NOT_RUNNING = "not-running"
NOT_APPLICABLE = "not-applicable"
ERROR = "error"


RUNNERS_HELP = """\
runner containers (--runners, --container, --refresh-stale):
  A host-network container gets a copy of /etc/hosts when it starts, and
  keeps it: a runner started before the pin does not see it.  --runners
  first reconciles the hosts file as usual (or checks it, with --check),
  then reads each runner container's own copy (docker inspect's HostsPath)
  and prints one line per runner: fresh, stale (a pin missing or
  different), refreshed, not-running (it gets a fresh copy when it
  starts), not-applicable (a systemd-backend runner reads the host's file
  itself; a container not on the host network never gets the host's
  pins), or an error.  The runners are the watchdog's: [watchdog] runners
  and their [runner NAME] container in guard.conf; --container NAME names
  a runner or container instead.

  --refresh-stale restarts a stale runner, under the watchdog's rules and
  lock: never while a job container runs (an orphan from before the
  runner's start does not block; any other blocks every runner) or a job
  without a container (a child of the runner's daemon), within the
  restart budget (cooldown, max_restarts per hour, the watchdog's state
  file), with the runner's stop_timeout to drain (docker restart -t), then
  confirms it runs with a new start time and that the new copy has the
  pins.  A restart helps only if the engine copies the file pinned (Docker:
  its daemon's /etc/hosts; Podman: base_hosts_file): when it copies
  another file, which lacks the pins, nothing is restarted and the line
  says which file that is.  --check, --diff and --probe change nothing:
  with them --refresh-stale only says what it would do.

  Exit status with --runners: 0 all fresh, refreshed, stopped or not
  applicable, and also a stale runner without --check (reported) or one
  a job holds (skipped; retry later); 3 a stale runner with --check or
  --diff; 1 Docker unreachable, container missing, copy unreadable,
  restart refused by the budget, restart failed or copy still stale.

  Never from the boot unit: at boot Docker is not up yet (and the
  containers get the new file when Docker starts them).  Run it by hand
  after changing a pin, or from your own timer."""


@dataclasses.dataclass(frozen=True)
class Settings:
    runners: tuple  # config.RunnerConfig
    refresh: bool
    state_dir: str
    docker_timeout: float


@dataclasses.dataclass
class RunnerPins:
    """What --runners found (and did) for one runner."""

    name: str
    container: str
    status: str = ERROR
    reason: str = ""  # why stale / not applicable / the error
    action: str = ""  # what --refresh-stale did or would do (stale runners)
    hosts_path: Optional[str] = None
    started_at: Optional[float] = None
    new_started_at: Optional[float] = None
    restarted: bool = False
    blocking_jobs: List[str] = dataclasses.field(default_factory=list)
    orphaned_jobs: List[str] = dataclasses.field(default_factory=list)
    exit_status: int = EXIT_OK
    jobs: Optional[dict] = None  # what its job containers get (job_pins.RunnerJobs)

    def summary(self):
        who = "runner %s" % self.name
        if self.container != self.name:
            who += " (container %s)" % self.container
        orphans = ""
        if self.orphaned_jobs:
            from ..runners.jobs import jobs_phrase  # only when there are jobs to name

            orphans = " (%s: from before the runner's start, ignored)" % jobs_phrase(
                self.orphaned_jobs, "orphaned")
        if self.status == STALE:
            text = "%s: stale: %s" % (who, self.reason)
            return text + (": " + self.action if self.action else "") + orphans
        if self.status == REFRESHED:
            return "%s: refreshed: was stale (%s): %s%s" % (who, self.reason, self.action,
                                                            orphans)
        if self.status == ERROR:
            return "%s: %s" % (who, self.reason or "error")
        return "%s: %s%s" % (who, self.status, ": " + self.reason if self.reason else "")

    def as_dict(self):
        doc = dataclasses.asdict(self)
        doc["summary"] = self.summary()
        return doc


# ---------------------------------------------------------------- pure


def stale_pins(text, pins):
    """Which pins do not hold in a hosts copy?  -> list of phrases, empty
    when every pin holds (hostsfile.plan would change nothing).  Pure."""
    pins = tuple(pins)
    if not pins:
        return []
    plan = hostsfile.plan(text, pins)
    if not plan.changed:
        return []
    lines = text.splitlines()
    problems = []
    for o in plan.outcomes:
        if o.outcome not in hostsfile.CHANGING or o.address is None:
            continue
        others = []
        numbers = list(o.switched_off) + list(o.removed)
        if o.outcome == hostsfile.REPLACED and o.line is not None:
            numbers.insert(0, o.line)  # the tool's own line, with another address
        for number in numbers:
            if 1 <= number <= len(lines):
                fields = lines[number - 1].split()
                if fields:
                    address = fields[0].decode("utf-8", "replace")
                    if address != o.address and address not in others:
                        others.append(address)
        what = "%s -> %s" % (o.name, o.address)
        if o.outcome == hostsfile.ADDED and not others:
            problems.append(what + " missing")
        elif o.outcome == hostsfile.ADDED or o.outcome == hostsfile.REPLACED:
            problems.append("%s missing, maps %s" % (what, ", ".join(others) or "another address"))
        else:
            problems.append("%s, but also %s" % (what, ", ".join(others) or "another line"))
    return problems or ["the pins do not hold"]


# ---------------------------------------------------------------- command line


def add_arguments(parser):
    group = parser.add_argument_group("runner containers (never from the boot unit)")
    group.add_argument(
        "--runners", action="store_true",
        help="after the hosts file, check the pins in each runner container's own copy "
        "of it (the watchdog's runners; see below)")
    group.add_argument(
        "--container", metavar="NAME", action="append", default=[],
        help="check this runner (a [runner NAME] of the configuration) or container "
        "instead; repeatable; implies --runners")
    group.add_argument(
        "--refresh-stale", action="store_true",
        help="restart a stale runner under the watchdog's job guard, budget and lock; "
        "implies --runners")


def settings(args, conf, mode):
    """Validated Settings, or None without --runners/--container/--refresh-stale.
    UsageError for a bad combination or name."""
    if not (args.runners or args.container or args.refresh_stale):
        return None
    option = "--refresh-stale" if args.refresh_stale else "--container" if args.container \
        else "--runners"
    if mode == "list" or args.unpin or args.unpin_all:
        raise UsageError("%s cannot be combined with --list, --unpin or --unpin-all" % option)
    wd = conf.watchdog
    runners = selection.select_runners(wd, args.container)
    selection.check_distinct(runners)
    return Settings(runners=tuple(runners), refresh=args.refresh_stale,
                    state_dir=wd.state_dir, docker_timeout=wd.docker_timeout)


# ---------------------------------------------------------------- checking


def read_copy(path):
    """The container's hosts copy -> (bytes, None) or (None, error)."""
    if not path:
        return None, "docker inspect gives no HostsPath for it"
    try:
        with open(path, "rb") as handle:
            return handle.read(), None
    except OSError as exc:
        return None, "cannot read its hosts copy %s: %s" % (path, why(exc))


def judge(r, container, pins):
    """Fill r from a ContainerState: not running, not applicable, or the
    copy read and judged fresh or stale."""
    r.started_at = container.started_at
    r.hosts_path = container.hosts_path or None
    if not container.running or container.status in ("paused", "restarting"):  # Docker: Running
        r.status = NOT_RUNNING
        r.reason = "%s: Docker gives it a fresh copy when it starts" % (container.status or "stopped")
        if container.status == "paused":
            r.reason = "paused: not refreshed, its pause is not undone"
        return
    if container.network_mode != "host":
        r.status = NOT_APPLICABLE
        r.reason = ("network mode %s: Docker writes its own hosts file for it, the host's "
                    "pins never reach it (use --add-host or extra_hosts)"
                    % (container.network_mode or "unknown"))
        return
    data, error = read_copy(container.hosts_path)
    if error:
        r.status, r.reason, r.exit_status = ERROR, error, EXIT_FAILURE
        return
    problems = stale_pins(data, pins)
    if problems:
        r.status, r.reason = STALE, ", ".join(problems)
    else:
        r.status, r.reason = FRESH, "its hosts copy has the pins"


def copied_elsewhere(engine, hosts_file, pins):
    """Why restarting a runner on `engine` would not give it the pins, or
    None: the engine copies another file than `hosts_file` (the one this
    run reconciles), and that file lacks the pins.  None too when it cannot
    be told which file the engine copies (hostssource.source)."""
    from ..system import hostssource

    src = hostssource.source(engine)
    if src is None or hostssource.same_file(hosts_file, src.path):
        return None
    data, error = read_copy(src.path)
    if error is not None or not stale_pins(data, pins):
        return None  # unreadable: cannot tell; has the pins: a restart gives them
    return ("a restart would copy %s again, which is not %s and lacks the pins: pin that file "
            "(--hosts-file names another)" % (src.what, hosts_file))


def check(pins, s, mode, host_in_sync, reporter, hosts_file="/etc/hosts"):
    """Check (and with --refresh-stale in a writing run, refresh) the
    runners.  -> list of RunnerPins.  Never raises for Docker's failures:
    they become the runners' errors.  hosts_file: the file this run
    reconciles (a restart helps only if the engine copies it)."""
    from ..system.engines import DockerError, Engines  # only now: they run docker through `sh`
    from ..runners import backends

    pins = tuple(pins or ())
    dry = mode != "apply"
    results = []
    engines = Engines(s.docker_timeout)
    calls = []
    for cfg in s.runners:
        backend = backends.of(cfg)
        r = RunnerPins(cfg.name, backend.target(cfg))
        results.append(r)
        if not backend.CONTAINER:
            r.status = NOT_APPLICABLE
            r.reason = ("%s backend: the runner reads the host's hosts file itself"
                        % cfg.backend)
            continue
        try:
            calls.append((r, cfg, engines.of(cfg).begin_inspect(cfg.container)))
        except DockerError as exc:
            r.reason, r.exit_status = str(exc), EXIT_FAILURE
    try:
        for r, cfg, call in calls:
            try:
                judge(r, call.result(), pins)
            except DockerError as exc:
                r.status, r.reason, r.exit_status = ERROR, str(exc), EXIT_FAILURE
            reporter.debug("runner %s: container %s, hosts copy %s" % (r.name, cfg.container,
                                                                    r.hosts_path or "-"))
        stale = _restart_helps([(r, cfg) for r, cfg, _ in calls if r.status == STALE], s, dry,
                               hosts_file, pins)
        if stale and s.refresh:
            if dry:
                _would_refresh(stale, engines, s, host_in_sync, reporter)
            else:
                _refresh(stale, engines, s, pins, reporter)
        stale = [(r, cfg) for r, cfg, _ in calls if r.status == STALE]
        for r, cfg in stale:
            if r.status == STALE and not r.action and not s.refresh:
                r.action = "restart it between jobs, or run with --refresh-stale"
            if r.status == STALE and mode in ("check", "diff") and r.exit_status != EXIT_FAILURE:
                r.exit_status = EXIT_DRIFT
    finally:
        engines.close()
    return results


def _restart_helps(stale, s, dry, hosts_file, pins):
    """The stale runners a restart would give the pins to.  For the others
    (their engine copies another file, which lacks the pins) the action
    says so, and a refresh asked for is refused (exit 1) or, read-only,
    would be."""
    elsewhere = {cfg.engine: copied_elsewhere(cfg.engine, hosts_file, pins) for _, cfg in stale}
    for r, cfg in stale:
        why_not = elsewhere[cfg.engine]
        if not why_not:
            continue
        if not s.refresh:
            r.action = why_not
        elif dry:
            r.action = "would not restart: %s (nothing changed)" % why_not
        else:
            r.action, r.exit_status = "not restarted: %s" % why_not, EXIT_FAILURE
    return [(r, cfg) for r, cfg in stale if not elsewhere[cfg.engine]]


def _holds(stale, engines, history, now):
    """Job guard and budget for each stale runner.  -> {runner name: (why
    not, exit status)} for the runners that must not be restarted now;
    fills blocking/orphans.  history(name) -> its restart times."""
    from ..runners import jobs, restart

    held = {}
    listed = {}  # engine kind -> its job containers, or the error listing them
    runners = {cfg.container for _, cfg in stale}  # a runner is never a job
    for r, cfg in stale:
        if cfg.engine not in listed:
            try:
                listed[cfg.engine] = jobs.list_jobs(
                    engines.of(cfg), [c for _, c in stale if c.engine == cfg.engine])
            except GuardError as exc:
                listed[cfg.engine] = exc
        if isinstance(listed[cfg.engine], GuardError):
            held[r.name] = ("cannot list the job containers: %s" % listed[cfg.engine],
                            EXIT_FAILURE)
            continue
        blocking, orphans = jobs.split(r.name, cfg, listed[cfg.engine], r.started_at, {},
                                       runners)
        try:
            blocking += jobs.container_host_jobs(engines.of(cfg), cfg)
        except GuardError as exc:
            held[r.name] = ("cannot list the runner's processes (for jobs without a "
                            "container): %s" % exc, EXIT_FAILURE)
            continue
        r.blocking_jobs = [j.name for j in blocking]
        r.orphaned_jobs = [j.name for j in orphans]
        if blocking:
            held[r.name] = ("not restarted while a job runs (%s): skipped"
                            % jobs.jobs_phrase(r.blocking_jobs), EXIT_OK)
            continue
        why_not = restart.budget_check(history(r.name), now, cfg.cooldown, cfg.max_restarts)
        if why_not:
            held[r.name] = ("not restarted: %s" % why_not, EXIT_FAILURE)
    return held


def _would_refresh(stale, engines, s, host_in_sync, reporter):
    """--check/--diff/--probe with --refresh-stale: decide, change nothing."""
    from ..runners import state

    history = state.State.load(s.state_dir, reporter.warning)
    held = _holds(stale, engines, history.history, time.time())
    for r, _ in stale:
        if r.name in held:
            why_not, _status = held[r.name]
            r.action = why_not.replace("not restarted", "would not restart", 1) + " (nothing changed)"
        elif host_in_sync:
            r.action = "would restart (nothing changed)"
        else:
            r.action = "would restart once the hosts file has the pins (nothing changed)"


def _refresh(stale, engines, s, pins, reporter):
    """Under the watchdog's run lock: fresh evidence, guard, budget,
    restart, confirm, read the new copy."""
    from ..runners import restart, state
    from ..runners.backends.docker import ContainerRestart
    from ..system.engines import DockerError

    bound = restart.lock_bound(s.docker_timeout, s.runners)
    with state.run_lock(s.state_dir, bound,
                        lambda path: reporter.info("waiting for the watchdog's run lock %s "
                                                   "(another run holds it)" % path)):
        history = state.State.load(s.state_dir, reporter.warning)
        # the watchdog may have restarted a runner while we waited: look again
        for r, cfg in stale:
            try:
                judge(r, engines.of(cfg).inspect(cfg.container), pins)
            except DockerError as exc:
                r.status, r.reason, r.exit_status = ERROR, str(exc), EXIT_FAILURE
        stale = [(r, cfg) for r, cfg in stale if r.status == STALE]
        if not stale:
            return
        held = _holds(stale, engines, history.history, time.time())
        for r, cfg in stale:
            if r.name in held:
                r.action, status = held[r.name]
                r.exit_status = max(r.exit_status, status)
                continue
            done = restart.restart(ContainerRestart(engines.of(cfg), cfg.container,
                                                           r.started_at,
                                                           cfg.stop_timeout),
                                   restart.Record(history, r.name),
                                   s.docker_timeout)
            r.restarted = done.restarted
            r.new_started_at = done.new_started_at
            if not done.restarted:
                r.action = ("not restarted: " if done.held else "") + "; ".join(done.errors)
                r.exit_status = EXIT_FAILURE
                continue
            before = r.reason
            try:
                judge(r, engines.of(cfg).inspect(cfg.container), pins)
            except DockerError as exc:
                r.status, r.reason = ERROR, "restarted, but: %s" % exc
            if r.status == FRESH:
                r.status, r.reason = REFRESHED, before
                r.action = "restarted, its new hosts copy has the pins"
            elif r.status == STALE:
                r.action = "restarted, but the new copy still lacks the pins (is the host's " \
                           "file the one Docker copies?)"
            if done.errors:  # e.g. the state file could not be written
                r.action += "; " + "; ".join(done.errors)
            if r.status not in (REFRESHED,) or done.errors:
                r.exit_status = EXIT_FAILURE


# ---------------------------------------------------------------- output


def log(results, reporter):
    for r in results:
        line = r.summary()
        if r.exit_status == EXIT_FAILURE:
            reporter.error(line)
        elif r.status == STALE:
            reporter.warning(line)
        else:
            reporter.info(line)


def exit_status(results):
    return combine(EXIT_OK, *(r.exit_status for r in results))
