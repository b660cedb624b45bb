"""forgejo-runner-watchdog: restart a wedged Forgejo runner, never mid-job,
never in a loop.

One run, for every runner it checks:

    configure  command line over guard.conf -> RunnerConfig per runner
    lock       <state_dir>/watchdog.lock: one run at a time (--dry-run takes
               none, but fails as the real run would where it cannot be had)
    gather     each runner's backend (backends/: docker, systemd) reads its
               state and its log into runnerlog.Evidence; backends that
               start calls early (docker inspect and docker logs, side by
               side) do so before the state file and the deciding modules
               load (the order is for speed: bench/bench_watchdog.py)
    forge view for runners with a forge_token_file, whatever their log
               says: the forge's REST API, read-only (forgeview.py): is
               it offline, or idle while a job it could take waits?
    verify     only for runners whose log (or the forge's view) says
               wedged (verify = ping, the default): ask their forge with
               its Ping at the address a restarted runner would connect
               to (verify.py)
    decide     decide.needs_job_guard(): only runners whose log says wedged
               and whose forge answered (or was not asked) get the job
               guard (backend.guard_jobs, runners/jobs.py); then
               decide.decide() once per runner, with_view() and
               with_forge(): healthy, recovered, wedged, refused,
               misconfigured, forge-error, forge-unreachable, skipped-job,
               skipped-budget, error; a runner not running normally
               (runners/condition.py) decide.decide_held(): crash-loop,
               paused, refused, misconfigured or error, never a restart
    act        backend.restart(): record the restart in the state file
               (none is made that cannot be recorded first), restart,
               confirm a new run (restart.py, shared with
               optimus-boot-reconcile --refresh-stale)
    report     one summary line per runner on stderr, --json on stdout,
               --metrics-file (output.py); with [notify] commands, one
               notification per event (notify.py, imported only then)

The pure halves live in runnerlog.py (what a line means) and decide.py
(what to do); each backend module is the only one that runs its CLI.

Stable interface: main(argv=None) -> exit status; bin/ ends with
exit_now(main()).
"""

import argparse
import dataclasses
import os
import sys
import time
from typing import NamedTuple, Optional

from .. import cli
from ..config import config, selection
from ..report import EXIT_FAILURE, EXIT_OK, GuardError, UsageError, combine, print_json, why
from ..runners import backends, restart, state

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
  runner logs none.  A runner counts as wedged when either holds:
    * at least THRESHOLD such lines in the last WINDOW (default 40 in 5m;
      a wedged runner logs about 150), counting only lines of the
      container's current run (times come from Docker, not the text),
      the newest younger than RECENT (default 60s; older: "recovered");
    * every poll failed for the last SUSTAIN (guard.conf sustain, 3m) and
      the newest failure is recent by the runner's polling model
      (fetch_interval, fetch_timeout, flavour, fetch_interval_max): a
      forge that hangs fails once every fetch_timeout, never 40 times;
  and no job start ("task N repo is ...") was logged after it.  Only the
  runner's own lines on its stderr count (with a TTY: only those in
  logrus's own colours): job output never does.

  A wedged runner is restarted (docker restart -t STOP_TIMEOUT: SIGTERM,
  then stop_timeout, default 10m, to drain its jobs before SIGKILL; one
  that had to be killed is reported, exit 1), unless:
    * a job container runs (FORGEJO-ACTIONS-TASK-*, GITEA-ACTIONS-TASK-*),
      or a job without a container (host labels: a child process of the
      runner's daemon, forgejo-runner, gitea-runner or act_runner): skipped,
      exit 0.
      A job container created before the runner's current start is an
      orphan of an earlier run: reported, not blocking;
    * the server refuses the runner (unauthenticated, unregistered):
      a restart cannot help, re-register it; exit 1;
    * the failure is the forge's own error (internal: ...): a restart
      cannot help ("forge-error"); exit 1;
    * the log ends in a state a restart never fixes: no longer registered
      ("refused"), another process on its runner file or a forge URL it
      cannot use ("misconfigured"); exit 1;
    * the forge does not answer its Ping (below): the forge or the path to
      it is down, a restart cannot help ("forge-unreachable"); exit 1;
    * the restart budget is spent: COOLDOWN since the last restart (with
      30s of slack) or MAX_RESTARTS in the last hour; exit 1;
    * the restart cannot be recorded first in STATE_DIR/state.json (a full
      disk, a file that cannot be read or replaced): "wedged, not
      restarted: ...", naming the file; exit 1.  Every restart is in the
      history before it is made, so the budget holds whatever the disk does.

  A runner that is not running normally is never restarted and never
  healthy: a crash loop (Docker's "restarting", Podman's RestartCount
  rising, a unit's auto-restart) is "crash-loop", a paused container (a
  frozen unit) "paused", anything else stopped an error; the last lines
  of its log are read and a cause in them decides ("refused",
  "misconfigured"); exit 1.

asking the forge first (verify = ping, the default):
  Before it restarts a runner whose log says wedged, the watchdog asks the
  forge the runner talks to with its Actions Ping (POST
  URL/api/actions/ping.v1.PingService/Ping, {"data":"..."} -> 200
  {"data":"Hello, ...!"}; no token, changes nothing), a fresh HTTP/1.1
  connection per attempt, a few attempts within ping_timeout (10s), TLS
  verified against the system store (forge_ca_file: a private CA; not with
  the runner's runner.insecure: true).  URL: the runner's .runner (or its
  config's server.connections), found through its mounts as --runners
  finds its config; forge = URL names it instead.  The address asked is
  the one a restarted runner would use: the container's --add-host entry
  for the forge's name, else the host's resolver now.  The forge answers:
  restart, "(forge answered Ping in 23 ms at 10.1.0.10: the runner's own
  connection is stuck)".  It does not (refused, reset, timeout, TLS, DNS,
  any HTTP status but 200, another body): no restart, "forge-unreachable",
  exit 1, the reason classed (transport, tls, http 502, timeout, dns).
  No .runner found: the log alone decides (one warning line says why).
  verify = none: the log alone decides.  --dry-run asks the forge too.

  A runner installed as a systemd service (backend = systemd, unit = NAME
  in its [runner NAME] section) is read from the journal of the unit's
  current run (journalctl, _SYSTEMD_INVOCATION_ID) and restarted with
  systemctl restart; its job guard is the job containers on the host's
  Docker engine, or, without one, the log (a job start after the newest
  fetch error: "recovered").

  A container runner whose log is only in the journal (log driver none
  under a unit with SyslogIdentifier=, or the journald log driver):
  logs = journal, journal_match = SYSLOG_IDENTIFIER=NAME (or
  _SYSTEMD_UNIT=UNIT; default CONTAINER_NAME=<container>).  Podman:
  DOCKER_HOST=<Podman's socket> for the docker CLI, or engine = podman
  for the podman CLI (from the timer: the example drop-in podman.conf,
  CONTAINER_HOST=<Podman's socket>).

  The forge's own view (some wedges write nothing to the log): with
  forge_token_file (a read-only API token, root-only file) and
  forge_scope (repo OWNER/REPO, org ORG, user, admin) the watchdog reads
  the forge's runner list and waiting jobs (GET only; forge_api auto,
  forgejo, gitea).  A runner whose log shows nothing is wedged when the
  forge calls it offline and its process has run over 2 minutes, or idle
  while a job its labels match has waited queue_wait (5m); then the
  Ping, the job guard and the budget, as for any wedge.  A failing API
  is one error line and exit 1, never a restart.

examples:
  forgejo-runner-watchdog --dry-run        what would it do now?  (changes nothing)
  forgejo-runner-watchdog                  check and heal the configured runners
  forgejo-runner-watchdog --container forgejo_runner --threshold 20 --window 2m
  forgejo-runner-watchdog --json --dry-run | jq '.runners[] | {name, decision, errors}'
  journalctl -u forgejo-runner-watchdog.service    what the timer's runs said
  forgejo-runner-watchdog --notify-test    send a test event through every [notify] command

notifications ([notify] in guard.conf):
  Each command runs once per event, without a shell, with the event in
  GUARD_EVENT, GUARD_RUNNER, GUARD_HOST, GUARD_DECISION, GUARD_SUMMARY,
  GUARD_ERROR, GUARD_EVIDENCE (the last fetch-error lines) and as one JSON
  document on stdin.  Events: restarted, restart-failed, refused,
  misconfigured, server-error, crash-loop, budget-exhausted,
  forge-unreachable, and recovered (the first healthy check after any of
  them); a condition that persists is notified once when it starts and
  once when it ends.  A failing command is one warning line: it never
  changes what the check does or its exit status; so is a mistake in
  [notify] (a bad key or value, a missing program): only --notify-test
  and --check-config stop on it.  --dry-run sends nothing and says what it
  would send.  Examples:
  /usr/share/doc/forgejo-runner-guard/examples/

exit status:
  0  healthy, recovered, restarted, or skipped because a job runs
  1  refused by the server, misconfigured, the forge's own error, the forge
     unreachable (its Ping failed), a crash loop, paused, Docker
     unreachable, a Docker call timed out,
     container (or unit) missing or not running, logs unreadable, restart failed,
     restart budget exhausted, state or metrics file not writable, the
     forge's view failed (API unreachable, token refused or unsafe, scope)
  2  usage or configuration error
  Several runners: the worst of them.
  --notify-test: 0 when every command succeeded, 1 when one failed, 2 when
  [notify] has no command.

files:
  /etc/forgejo-runner-guard/guard.conf (and guard.conf.d/*.conf): [watchdog]
  defaults, [runner NAME] per runner.  STATE_DIR/state.json: restart history
  and the conditions notified;
  STATE_DIR/watchdog.lock: one run at a time (a second run waits for the
  first, then decides afresh)."""



def _arg(parse):
    """argparse type from a config parser: ValueError -> one-line usage error."""
    def convert(text):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc))

    return convert


def _container_name(text):
    if not selection.CONTAINER_NAME.match(text or ""):
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
                        "its directory must exist; a symlink is followed, a path that is not a "
                        "regular file, such as /dev/null, is refused)")
    parser.add_argument("--docker-timeout", metavar="DURATION", type=_arg(config.setting("docker_timeout")),
                        help="kill any docker call that takes longer (a log read: that "
                        "long without output) (default 30s; at most 1h)")
    parser.add_argument("--dry-run", action="store_true",
                        help="decide and report, change nothing: no restart, no state, no metrics, "
                        "no notification (it says what it would send); fails where the real run "
                        "would (state directory, metrics file)")
    parser.add_argument("--notify-test", action="store_true",
                        help="send one test event through every [notify] command, report each "
                        "result and exit (checks no runner)")
    return parser


# ---------------------------------------------------------------- configure


class Settings(NamedTuple):
    """One run's settings: the runners and what applies to all of them."""

    runners: tuple  # config.RunnerConfig
    state_dir: str
    metrics_file: Optional[str]
    docker_timeout: float
    dry_run: bool
    json: bool
    config_files: tuple = ()
    notify: config.NotifyConfig = config.NotifyConfig()
    notify_test: bool = False
    warnings: tuple = ()  # printed before the run (cli.main)


_OVERRIDES = (
    ("threshold", "threshold"),
    ("window", "window"),
    ("recent", "recent"),
    ("cooldown", "cooldown"),
    ("max_restarts", "max_restarts"),
)


def configure(args):
    # a check depends on [watchdog] and [runner NAME]; a mistake in [notify]
    # (which only sends notifications) or [reconcile] is a warning, but for
    # --notify-test, which is all about [notify]
    conf = config.load(args.config, used=("watchdog", "runner") + (("notify",) if args.notify_test
                                                                   else ()))
    wd = conf.watchdog
    runners = selection.select_runners(wd, args.container)
    overrides = {field: getattr(args, dest) for dest, field in _OVERRIDES
                 if getattr(args, dest) is not None}
    if overrides:
        runners = [dataclasses.replace(r, **overrides) for r in runners]
    selection.check_distinct(runners)
    _check_ca_files(runners)
    return Settings(
        runners=tuple(runners),
        state_dir=args.state_dir or wd.state_dir,
        metrics_file=args.metrics_file or wd.metrics_file,
        docker_timeout=args.docker_timeout or wd.docker_timeout,
        dry_run=args.dry_run,
        json=args.json,
        config_files=conf.files,
        notify=conf.notify,
        notify_test=args.notify_test,
        warnings=conf.warnings + tuple(filter(None, map(selection.unreachable, runners))),
    )


def _check_ca_files(runners):
    """UsageError (exit 2, nothing checked) for a forge_ca_file the Ping
    could not use: better now than a forge that never seems to answer."""
    for ca_file in dict.fromkeys(r.forge_ca_file for r in runners
                                 if r.verify == "ping" and r.forge_ca_file):
        from ..forge.connection import make_context  # ssl: only with a CA file

        try:
            make_context(ca_file)
        except ValueError as exc:
            raise UsageError("forge_ca_file: %s" % exc)


# ---------------------------------------------------------------- main


def check(settings, reporter):
    checks = [backends.Check(cfg) for cfg in settings.runners]
    now = time.time()
    # backends that start calls early come first, so no stream waits
    kinds = sorted(dict.fromkeys(backends.kind(c.cfg) for c in checks),
                   key=lambda kind: not backends.load(kind).EARLY)
    active = {kind: backends.load(kind)(settings.docker_timeout) for kind in kinds}
    try:
        return _check(settings, reporter, checks, now, active)
    except BaseException:
        for backend in active.values():  # nothing left running
            backend.close()
        raise


def _check(settings, reporter, checks, now, active):
    def each(kind, which=lambda c: True):
        return [c for c in checks if backends.kind(c.cfg) == kind and which(c)]

    for kind, backend in active.items():
        backend.begin(each(kind), now)
    history = state.State.load(settings.state_dir, reporter.warning)
    from . import decide

    for kind, backend in active.items():
        backend.gather(each(kind), now, reporter)
    claims = {c.name: c.evidence.claimed_tasks for c in checks if c.evidence is not None}
    if any(c.cfg.forge_token_file for c in checks):
        from . import forgeview  # the forge's own view: every runner with a token

        forgeview.look(checks, now, history, settings.docker_timeout, reporter)
    asked = [c for c in checks if c.error is None and c.held is None and c.cfg.verify == "ping"
             and (decide.wedged_by_log(c.evidence, now, c.cfg)
                  or c.view is not None and c.view.rule)]
    if asked:
        from . import verify  # only for a wedged runner; before the jobs are listed

        verify.ask(asked, settings.docker_timeout, reporter)
    from ..runners import jobs  # lazy: after the calls began, as the backends' own

    runners = jobs.runner_containers(checks)  # a runner is never a job, whatever its name
    for kind, backend in active.items():
        backend.guard_jobs(each(kind, lambda c: c.error is None and
                                decide.needs_job_guard(c.evidence, now, c.cfg, c.forge, c.view)),
                           claims, reporter, runners)
    for c in checks:
        if c.held is not None:  # not running normally: never restarted
            c.decision = decide.decide_held(c.held, now, c.cfg, history.history(c.name))
        elif c.error is None:
            c.decision = decide.decide(c.evidence, now, c.cfg, c.blocking, history.history(c.name),
                                       orphans=c.orphans)
            if c.view is not None:
                c.decision = decide.with_view(c.decision, c.view.verdict, history.history(c.name),
                                              now, c.cfg)
            c.decision = decide.with_forge(c.decision, c.forge)
        else:
            c.decision = decide.decide(None, now, c.cfg, history=history.history(c.name),
                                       logs_ok=False)
    for c in checks:
        if c.decision.restart and not settings.dry_run:
            active[backends.kind(c.cfg)].restart(c, restart.Record(history, c.name),
                                                 settings.docker_timeout, reporter)
    if not settings.dry_run and any(c.view is not None for c in checks):
        _remember(checks, history, now, reporter)
    return _report(settings, reporter, checks, now, history)


def _remember(checks, history, now, reporter):
    """Keep what the forge showed (the first sighting of each waiting job)
    for the next run; a failure only makes the waits start afresh."""
    from . import forgeview

    if forgeview.remember(checks, history):
        try:
            history.save(now)
        except GuardError as exc:
            reporter.warning("%s: the jobs the forge lists as waiting are timed afresh next run" % exc)


def _report(settings, reporter, checks, now, history):
    from . import output

    status = EXIT_OK
    for c in checks:
        line = output.summary(c, settings.dry_run)
        status = combine(status, output.exit_status(c))
        if output.exit_status(c, view=False):  # a failed forge view had its own error line
            reporter.error(line)
        else:
            reporter.info(line)
    if settings.notify.commands:
        _notify(settings, reporter, checks, now, history)
    if settings.metrics_file and settings.dry_run:
        from ..system import safewrite

        problem = safewrite.write_problem(settings.metrics_file)
        if problem is not None:  # what the real run would report here
            reporter.error("cannot write the metrics file %s: %s"
                           % (settings.metrics_file, why(problem)))
            status = combine(status, EXIT_FAILURE)
    elif settings.metrics_file:
        try:
            from . import metrics

            metrics.write(settings.metrics_file, output.samples(checks, history, now))
            reporter.debug("metrics: %s" % settings.metrics_file)
        except GuardError as exc:
            reporter.error(str(exc))
            status = combine(status, exc.exit_code)
    if settings.json:
        print_json(output.document(checks, settings, now, status))
    return status


def _notify(settings, reporter, checks, now, history):
    """The events of this run, sent once each condition is recorded (a
    failure is a warning: never the check's exit status)."""
    from . import output
    from .. import notify

    docs, changed = output.notify_events(checks, history, settings.dry_run, now, PROG)
    if changed and not settings.dry_run:
        try:
            history.save(now)
        except GuardError as exc:
            reporter.warning("%s: a condition may be notified again" % exc)
    notify.send(settings.notify.commands, docs, settings.notify.timeout, reporter,
                settings.dry_run)


def _execute(settings, reporter):
    if settings.notify_test:
        from .. import notify

        status, document = notify.notify_test(settings.notify, settings.runners, reporter,
                                              time.time(), PROG, settings.dry_run)
        if settings.json:
            print_json(document)
        return status
    if settings.dry_run:
        state.check_writable(settings.state_dir)  # where the real run would stop, it stops
        return check(settings, reporter)
    bound = restart.lock_bound(settings.docker_timeout, settings.runners)
    with state.run_lock(settings.state_dir, bound,
                        lambda path: reporter.info("waiting for another watchdog run (%s)" % path)):
        return check(settings, reporter)


def main(argv=None):
    """Run the command; returns its exit status (see EXIT STATUS in --help)."""
    return cli.main(PROG, build_parser, configure, _execute, argv)


def exit_now(status):
    """End the process with `status` once stdout and stderr are flushed,
    without the interpreter's teardown (bin/forgejo-runner-watchdog only;
    main() returns).  Nothing is left for the teardown to do: the calls
    have ended (every backend kills and waits for its own), files are
    written whole and synced, the lock goes with the process, and there
    are no atexit handlers; the teardown it skips is measurable in a
    small check (bench/README.md).
    A flush that fails (stdout closed) takes the ordinary way out, which
    reports it as before."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        sys.exit(status)
    os._exit(status)
