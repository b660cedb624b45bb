"""optimus-boot-reconcile: pin names to addresses in /etc/hosts, exactly.

The command body is a pipeline over one `Run` object:

    configure  (command line + guard.conf -> Run; usage errors exit 2)
    read       (the hosts file; under the lock when the run may write)
    plan       (hostsfile.plan: pure)
    act        (write + verify, or print the diff, or nothing)
    report     (one summary line on stderr, warnings, --json on stdout)

Later steps slot in after `act`, outside the hosts-file lock: --resolve
(resolve.py: what the system resolver returns for each pinned name),
--probe (probe.py) and --runners/--refresh-stale (runner_copies.py, which
checks the runner containers' own hosts copies after the file is
reconciled, then job_pins.py, which reads each runner's config for what
its job containers get).  Without --runners this command runs no other
program: it does not import `sh` (runner_copies and job_pins import the
backends only when used).

Stable interface: main(argv=None) -> exit status.
"""

import dataclasses
import os
import time
from typing import List, Optional, Tuple

from .. import cli
from ..config import config, pinrules
from . import hostsfile, job_pins, probe, resolve, runner_copies
from ..system import safewrite
from ..report import (EXIT_DRIFT, EXIT_OK, GuardError, UsageError, combine, print_json,
                      write_stdout)

PROG = "optimus-boot-reconcile"

DESCRIPTION = """\
Pin host names to addresses in the hosts file, idempotently and exactly:
each pinned name ends up mapped by one line per pinned address (a line
the tool owns, marked "# forgejo-runner-guard pin", or one the admin
wrote that already does it) and by no other active line.  Conflicting
lines are switched off with a "#forgejo-runner-guard off" record that
--unpin restores byte for byte.  Every other byte of the file is kept.
Pins come from the configuration's [reconcile] pins unless --pin is given."""

EPILOG = """\
examples:
  optimus-boot-reconcile              apply the configured pins (the boot unit runs this)
  optimus-boot-reconcile --check      exit 3 when the file is not in sync; writes nothing
  optimus-boot-reconcile --diff       show, as a unified diff, what a run would change
  optimus-boot-reconcile --pin forge.azrak.io=10.1.0.10 --pin forge.azrak.io=2001:db8::10
                                      pin one IPv4 and one IPv6 address (replaces the
                                      configured pins for this run)
  optimus-boot-reconcile --unpin forge.azrak.io
                                      remove the pin, restore the lines it switched off
  optimus-boot-reconcile --unpin-all  remove every pin the tool owns
  optimus-boot-reconcile --list --json
                                      the pins the tool owns, as JSON
  optimus-boot-reconcile --check --probe
                                      is the file in sync, and does each pinned address
                                      prove its name over TLS?  (writes nothing)
  optimus-boot-reconcile --check --resolve
                                      is the file in sync, and does the system resolver
                                      return exactly the pinned address for each name?
  optimus-boot-reconcile --runners --refresh-stale
                                      apply the pins, then restart each runner container
                                      whose own hosts copy lacks them (between jobs, within
                                      the watchdog's budget); not from the boot unit

exit status:
  0  in sync (whether or not this run wrote)
  1  runtime failure: cannot read, lock or write the file; with --runners also:
     Docker unreachable, a runner container missing or its copy unreadable,
     a runner's config unreadable or not valid,
     --refresh-stale refused by the restart budget or failed (wins over 3 and 4)
  2  usage or configuration error (bad name or address, ...): nothing written
  3  --check or --diff found something to change (with --runners: also a
     runner container whose own hosts copy is stale, or a runner whose job
     containers do not get a pin); --resolve: a pinned name does not
     resolve to exactly its pinned addresses
  4  --probe: a pinned address failed its probe (wins only over 0)

notifications:
  With [notify] commands in guard.conf (see forgejo-runner-watchdog(8)):
  pin-drift when --check, --diff or --probe finds the file not in sync,
  stale-pin for a runner whose hosts copy lacks the pins (--runners), and
  recovered when a later run finds it in sync; each once, kept in
  STATE_DIR/reconcile.json.  A failing command is a warning only, and
  so is a mistake in [notify]: it never stops the pin.

writing:
  The hosts file is replaced atomically: a temporary file beside it gets
  the original's owner, mode and extended attributes (SELinux label), is
  fsynced and renamed over it, and the directory is fsynced; a symlinked
  file keeps its symlink (the target is replaced).  All of it happens
  under a lock (lock_file in guard.conf).  When the file is already in
  sync it is not written at all.

  In-place fallback (NOT atomic): where rename cannot work -- a
  bind-mounted /etc/hosts, as in containers (EBUSY), or a directory this
  process may not write -- the file is rewritten in place instead, after
  its old contents are saved to STATE_DIR/etc-hosts.before-in-place
  (state_dir in guard.conf, default /var/lib/forgejo-runner-guard; the
  file's whole path, escaped as systemd-escape --path does).  A crash in
  the middle of that rewrite can leave a partial file: restore it from
  that copy.  Where the file cannot be opened for writing either (a
  read-only mount, an immutable file) nothing is written and no copy is
  made.  A rewrite that fails (a full file system) puts the old bytes
  back and says the file is unchanged; only when that fails too does it
  name the copy to restore from.

  A name no longer pinned at all (gone from the configuration, or not
  named by this run's --pin) keeps its pins: they are reported, never
  removed; only --unpin and --unpin-all remove the pins of a name.  A name
  still pinned gets exactly the addresses asked for: the tool's own line
  of an address no longer pinned for it (its IPv6 line when only an IPv4
  address is pinned now) is removed, with a warning.  --unpin restores a
  switched-off line only if it is still exactly as the tool left it;
  otherwise it warns."""


@dataclasses.dataclass
class Run:
    """Everything one run knows, filled in step by step."""

    mode: str  # "apply", "check", "diff", "list" or "probe" (--probe alone: read-only)
    hosts_file: str
    pins: Optional[Tuple[config.Pin, ...]]  # None: this run reconciles no pins
    unpins: Tuple[str, ...]
    unpin_all: bool
    lock_file: str
    state_dir: str
    json: bool
    config_files: Tuple[str, ...] = ()
    warnings: Tuple[str, ...] = ()  # errors in sections this command does not use
    existed: bool = True
    old: bytes = b""
    plan: Optional[hostsfile.Plan] = None
    written: bool = False
    method: Optional[str] = None
    detail: str = ""
    removed_temps: List[str] = dataclasses.field(default_factory=list)
    probe_settings: Optional[probe.Settings] = None  # --probe (see probe.py)
    probe_results: Optional[Tuple[probe.ProbeResult, ...]] = None
    runner_settings: Optional[runner_copies.Settings] = None  # --runners (see runner_copies.py)
    want_resolve: bool = False  # --resolve (see resolve.py)
    resolve_results: Optional[Tuple[resolve.Resolved, ...]] = None
    runner_results: Optional[List[runner_copies.RunnerPins]] = None
    notify: Optional[config.NotifyConfig] = None  # [notify]: pin-drift, stale-pin (notify.py)


def build_parser():
    parser = cli.make_parser(PROG, DESCRIPTION, EPILOG + "\n\n" + probe.PROBE_HELP
                             + "\n" + resolve.RESOLVE_HELP + "\n\n" + runner_copies.RUNNERS_HELP
                             + "\n\n" + job_pins.JOBS_HELP)
    parser.add_argument("--hosts-file", metavar="PATH",
                        help="the hosts file (default: hosts_file in guard.conf, /etc/hosts)")
    parser.add_argument("--pin", metavar="NAME=ADDRESS", action="append", default=[],
                        help="pin NAME to ADDRESS (IPv4 or IPv6); repeatable; replaces the "
                        "configured pins (a numeric NAME such as 1.2.3.4, which the resolver "
                        "never looks up in a hosts file, is refused)")
    parser.add_argument("--force", action="store_true",
                        help="with --pin: pin a name the system resolves for itself anyway "
                        "(localhost, NAME.localhost, ip6-localhost, ...; refused otherwise)")
    parser.add_argument("--unpin", metavar="NAME", action="append", default=[],
                        help="remove the pin of NAME and restore what it switched off; repeatable")
    parser.add_argument("--unpin-all", action="store_true",
                        help="remove every pin the tool owns")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--list", action="store_true", help="show the pins the tool owns")
    modes.add_argument("--check", action="store_true",
                       help="write nothing; exit 3 when the file is not in sync")
    modes.add_argument("--diff", action="store_true",
                       help="write nothing; print a unified diff of what a run would change; "
                       "exit 3 when there is one")
    resolve.add_arguments(parser)
    probe.add_arguments(parser)
    runner_copies.add_arguments(parser)
    return parser


# ---------------------------------------------------------------- steps


def configure(args):
    """Command line + configuration -> Run.  Raises UsageError (exit 2)."""
    # the boot pin depends only on [reconcile]: a broken [watchdog] is a
    # warning here (--runners reads the watchdog's sections too), and so is a
    # mistake in [notify], which only sends notifications
    runners = args.runners or args.container or args.refresh_stale
    conf = config.load(args.config, used=("reconcile",) + (("watchdog", "runner") if runners else ()))
    mode = "list" if args.list else "check" if args.check else "diff" if args.diff else "apply"
    if mode == "list" and (args.pin or args.unpin or args.unpin_all):
        raise UsageError("--list cannot be combined with --pin, --unpin or --unpin-all")
    probe_settings = probe.settings(args)  # None without --probe; UsageError for bad values
    if probe_settings is not None:
        if args.list or args.unpin or args.unpin_all:
            raise UsageError("--probe cannot be combined with --list, --unpin or --unpin-all")
        if mode == "apply":
            mode = "probe"  # --probe never writes: it reads and plans like --check
    runner_settings = runner_copies.settings(args, conf, mode)  # None without --runners
    if args.resolve and (args.list or args.unpin or args.unpin_all):
        raise UsageError("--resolve cannot be combined with --list, --unpin or --unpin-all")
    if args.force and not args.pin:
        raise UsageError("--force goes only with --pin")
    if args.pin:
        pins = tuple(_parse_pin(text, args.force) for text in args.pin)
    elif args.unpin or args.unpin_all or mode == "list":
        pins = None  # an unpin run pins nothing it was not told to
    else:
        pins = conf.reconcile.pins  # checked by config.load, with file and line
    if pins is not None:
        pinrules.normalize_pins(pins)
    for name in args.unpin:
        pinrules.validate_name(name)
    hosts = args.hosts_file if args.hosts_file is not None else conf.reconcile.hosts_file
    if not hosts:
        raise UsageError("--hosts-file: empty path")
    run = Run(mode=mode, hosts_file=hosts, pins=pins, unpins=tuple(args.unpin),
              unpin_all=args.unpin_all, lock_file=conf.reconcile.lock_file,
              state_dir=conf.reconcile.state_dir, json=args.json, config_files=conf.files,
              warnings=conf.warnings,
              probe_settings=probe_settings, runner_settings=runner_settings,
              want_resolve=args.resolve, notify=conf.notify)
    # contradictions (--pin X --unpin X, --unpin-all with --pin) are caught here,
    # on an empty file, before anything is locked or read
    hostsfile.plan(b"", run.pins, run.unpins, run.unpin_all)
    return run


def _parse_pin(text, force=False):
    name, sep, address = text.partition("=")
    if not sep:
        raise UsageError("--pin %r: expected NAME=ADDRESS" % text)
    pin = config.Pin(*pinrules.validate_pin(name, address))
    special = pinrules.special_name(pin.name)
    if special and not force:
        raise UsageError("--pin %s: %s: a pin would switch off the stock lines that map it "
                         "(127.0.0.1 localhost, ::1 ip6-localhost ...); add --force to pin it "
                         "anyway" % (text, special))
    return pin


def read(run, reporter):
    if run.mode == "apply":
        for path in safewrite.remove_stale_temps(os.path.realpath(run.hosts_file)):
            reporter.info("removed %s, left behind by an interrupted run" % path)
    data = safewrite.read_file(run.hosts_file)
    run.existed = data is not None
    run.old = b"" if data is None else data


def plan(run):
    run.plan = hostsfile.plan(run.old, run.pins, run.unpins, run.unpin_all)


def act(run, reporter):
    if run.mode == "diff" and run.plan.changed:
        from . import diff  # only with --diff (difflib with it)

        for piece in diff.pieces(run.old, run.plan.text, run.hosts_file):  # never the whole diff
            write_stdout(piece, "the diff")
    if run.mode != "apply" or not run.plan.changed:
        return
    run.method, run.detail = safewrite.replace_file(run.hosts_file, run.plan.text, run.state_dir)
    run.written = True
    run.old = b""  # not needed any more: keeps the peak at two copies of the file
    if run.method == "in-place":
        reporter.warning("%s rewritten in place, not atomically: %s" % (run.hosts_file, run.detail))
    verify(run)


def verify(run):
    """Re-read the file: it must hold what was written (compared a block at
    a time), and be in sync."""
    if not safewrite.holds(run.hosts_file, run.plan.text):
        raise GuardError("%s: after writing, the file does not hold what was written "
                         "(changed by another program?)" % run.hosts_file)
    if hostsfile.plan(run.plan.text, run.pins, run.unpins, run.unpin_all).changed:
        raise GuardError("%s: after writing, the pins do not hold" % run.hosts_file)


def report(run, reporter):
    p = run.plan
    for outcome in p.outcomes:
        for text in _details(outcome):
            reporter.debug(text)
        if outcome.removed and outcome.address is not None:
            reporter.warning("%s: the tool's own line %s removed: no longer pinned for %s"
                             % (run.hosts_file, ", ".join(map(str, outcome.removed)), outcome.name))
        if outcome.outcome == hostsfile.UNWANTED:
            reporter.warning("%s -> %s (line %d) is pinned but not asked for by this run; left "
                             "in place (remove it with --unpin %s)"
                             % (outcome.name, outcome.address, outcome.line, outcome.name))
    for text in p.warnings:
        reporter.warning("%s: %s" % (run.hosts_file, text))
    if run.mode == "list":
        if not run.json and p.owned:
            write_stdout("".join("%s %s\n" % (name, address) for name, address, _ in p.owned),
                         "the list of pins")
        reporter.info("%s: %d pin(s) owned by the tool" % (run.hosts_file, len(p.owned)))
    else:
        reporter.info(summary(run))
    if run.resolve_results is not None:
        resolve.log(run.resolve_results, reporter)
    if run.probe_results is not None:
        probe.log(run.probe_results, reporter)
    if run.runner_results is not None:
        runner_copies.log(run.runner_results, reporter)
        job_pins.log(run.runner_results, reporter)
    if run.json:
        print_json(document(run))
    if run.mode in ("check", "diff") and p.changed:
        status = EXIT_DRIFT
    elif run.probe_results is not None:
        status = probe.exit_status(run.probe_results)
    else:
        status = EXIT_OK
    if run.runner_results is not None:
        status = combine(status, runner_copies.exit_status(run.runner_results),
                                    job_pins.exit_status(run.runner_results))
    if run.resolve_results is not None:
        status = combine(status, resolve.exit_status(run.resolve_results))
    if run.notify is not None and run.notify.commands:
        notify_events(run, reporter)
    return status


def notify_kinds():
    """reconcile's kinds, for notify.transition()."""
    from .. import notify
    from ..config.values import PIN_DRIFT, STALE_PIN

    return notify.Kinds(problems={"stale": STALE_PIN, "drift": PIN_DRIFT},
                        fine=("fresh", "in-sync"))


def notify_events(run, reporter):
    """pin-drift (the hosts file not in sync, seen by a read-only run) and
    stale-pin (a runner's hosts copy), once when each starts and, as
    recovered, once when it ends; conditions in STATE_DIR/reconcile.json.
    A failure is a warning: never the exit status."""
    from .. import notify
    from ..runners import state

    subjects = []
    if run.pins is not None and not run.unpins and not run.unpin_all and run.mode != "list":
        drift = run.plan.changed and run.mode != "apply"
        # keyed by the file itself: two different ./hosts are two subjects
        subjects.append(notify.Subject("hosts:" + os.path.realpath(run.hosts_file), "",
                                       "drift" if drift else "in-sync", summary(run)))
    for r in run.runner_results or ():
        kind = {runner_copies.STALE: "stale", runner_copies.FRESH: "fresh",
                runner_copies.REFRESHED: "fresh"}.get(r.status, r.status)
        subjects.append(notify.Subject("runner:" + r.name, r.name, kind, r.summary(), r.reason))
    history = state.State.load(run.state_dir, reporter.warning, notify.RECONCILE_STATE)
    now = time.time()
    docs, changed = notify.subject_events(subjects, history, now, PROG, notify_kinds())
    if changed:
        try:
            history.save(now)
        except GuardError as exc:
            reporter.warning("%s: a condition may be notified again" % exc)
    notify.send(run.notify.commands, docs, run.notify.timeout, reporter)


# ---------------------------------------------------------------- output


def summary(run):
    p = run.plan
    parts = []
    for o in p.outcomes:
        if o.outcome == hostsfile.UNWANTED:
            continue
        what = o.name if o.address is None else "%s -> %s" % (o.name, o.address)
        parts.append("%s %s" % (what, o.outcome))
    off = sum(len(o.switched_off) for o in p.outcomes)
    if off:
        parts.append("%d line(s) switched off" % off)
    if not parts:
        parts.append("no pins")
    if not p.changed:
        state = "in sync"
    elif run.mode == "apply":
        state = "updated (%s)" % {"rename": "atomic rename", "created": "created"}.get(
            run.method, "in place, not atomic")
    else:
        state = "not in sync, would change"
    return "%s: %s: %s" % (run.hosts_file, state, ", ".join(parts))


def _details(o):
    what = o.name if o.address is None else "%s -> %s" % (o.name, o.address)
    yield "%s: %s%s" % (what, o.outcome, "" if o.line is None else " (line %d)" % o.line)
    for key in ("switched_off", "removed", "restored"):
        lines = getattr(o, key)
        if lines:
            yield "%s: line(s) %s %s" % (what, ", ".join(map(str, lines)), key.replace("_", " "))


def document(run, error=None):
    """The --json document; `error`: the failure that ended the run (exit
    1), with what was known by then (no plan yet: no pins)."""
    p = run.plan
    doc = {
        "file": run.hosts_file,
        "mode": run.mode,
        "existed": run.existed,
        "changed": p.changed if p is not None else None,
        "written": run.written,
        "method": run.method,
        "pins": [dataclasses.asdict(o) for o in p.outcomes] if p is not None else [],
        "owned": [{"name": n, "address": a, "line": line} for n, a, line in p.owned]
        if p is not None else [],
        "warnings": list(p.warnings) if p is not None else [],
    }
    if run.resolve_results is not None:
        doc["resolved"] = [result.as_dict() for result in run.resolve_results]
    if error is not None:
        doc["error"] = error
    if run.probe_results is not None:
        doc["probes"] = [result.as_dict() for result in run.probe_results]
    if run.runner_results is not None:
        doc["runners"] = [result.as_dict() for result in run.runner_results]
    return doc


# ---------------------------------------------------------------- main


def _execute(run, reporter):
    try:
        return _steps(run, reporter)
    except GuardError as exc:
        if run.json:  # the document, with the error, as far as the run got
            print_json(document(run, error=str(exc)))
        raise


def _steps(run, reporter):
    if run.mode == "apply":
        reporter.debug("lock: %s" % run.lock_file)
        with safewrite.lock(run.lock_file):
            read(run, reporter)
            plan(run)
            act(run, reporter)
    else:
        read(run, reporter)  # read-only: a rename-replaced file is never seen half-written
        plan(run)
        act(run, reporter)
    if run.want_resolve:  # outside the lock, after the write: what programs see now
        run.resolve_results = resolve.resolve_pins(run.pins)
    if run.probe_settings is not None:  # outside the lock: never holds up a writer
        s = run.probe_settings
        run.probe_results = probe.probe_pins(run.pins, s.port, s.timeout, s.ca_file)
    if run.runner_settings is not None:  # after the file: a refresh copies the file as it is now
        in_sync = run.written or not run.plan.changed
        run.runner_results = runner_copies.check(run.pins, run.runner_settings, run.mode, in_sync,
                                                 reporter, run.hosts_file)
        job_pins.check(run.runner_results, run.runner_settings, run.pins, run.mode)
    return report(run, reporter)


def main(argv=None):
    """Run the command; returns its exit status (see EXIT STATUS in --help)."""
    return cli.main(PROG, build_parser, configure, _execute, argv)
