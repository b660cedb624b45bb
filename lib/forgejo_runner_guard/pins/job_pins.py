"""Do the runners' job containers get the pins?  (--runners, the I/O half)

For each runner --runners checks, this finds the runner's config file on
its command line, reads it and says, for each pin, what its job
containers get (registration.py judges; this module asks and reads):

  a container      its backend's begin_launch(): `docker inspect` of the
                   runner container: its command line (Path + Args),
                   working directory and Mounts; the file named by
                   -c/--config is read on the host through the mount
                   that holds it
  a systemd unit   `systemctl show -p ExecStart -p WorkingDirectory` of
                   the unit, when its ExecStart is simple (one command, no
                   quoting); the file is read directly

and adds one line per pin to the runner's report:

  runner NAME: forge.azrak.io -> 10.1.0.10: jobs pinned (...)
  runner NAME: forge.azrak.io -> 10.1.0.10: jobs use host network (...)
  runner NAME: forge.azrak.io -> 10.1.0.10: jobs NOT pinned: add
      --add-host=forge.azrak.io:10.1.0.10 to container.options in PATH

or one line for the runner: `jobs unknown` (no config named, or not on a
mount), or an error (the file cannot be read or parsed: exit 1).  With
--check or --diff a job path without a pin is drift (exit 3).  The
runner's config is only ever read.

Top level cheap: docker, systemd (and `sh`) and yaml are imported only
when --runners runs.
"""

import dataclasses
from typing import List, Optional

from . import runner_copies
from ..report import EXIT_DRIFT, EXIT_FAILURE, EXIT_OK, GuardError, combine, why
from ..runners import registration
from ..system import signals

UNKNOWN = "unknown"
ERROR = "error"
# The runner's overall status: the worst of its pins'.
_RANK = (registration.PINNED, registration.HOST_NETWORK, registration.NOT_PINNED)

JOBS_HELP = """\
job containers (with --runners):
  A job container on the runner's own job network gets a hosts file
  Docker writes for it, without the host's pins.  For each runner --runners
  also reads the runner's config file (named by -c/--config on its command
  line: the container's, through its mounts, or a systemd unit's simple
  ExecStart) and prints, for each pin: jobs pinned (an --add-host for it
  in container.options), jobs use host network (container.network: host),
  or jobs NOT pinned: add --add-host=NAME:ADDRESS to container.options in
  PATH; or jobs unknown when no config is named.  --check and --diff count
  a job path without a pin as drift (exit 3); a config that cannot be read
  or parsed is exit 1.  The runner's config is never edited."""


@dataclasses.dataclass
class RunnerJobs:
    """What one runner's job containers get."""

    status: str = UNKNOWN  # pinned, host-network, not-pinned, unknown, error
    config: Optional[str] = None  # as the runner opens it (in its container)
    host_file: Optional[str] = None  # the file read on the host
    source: str = ""  # where the path was found
    reason: str = ""  # unknown / error: why
    pins: List[dict] = dataclasses.field(default_factory=list)  # registration.JobPin
    exit_status: int = EXIT_OK  # 1 error; 3 a pin missing, with --check or --diff

    def lines(self, who):
        """[(level, text)] for the log: "error", "warning" or "info"."""
        if self.status == ERROR:
            return [("error", "%s: jobs: %s" % (who, self.reason))]
        if self.status == UNKNOWN:
            return [("warning", "%s: jobs unknown: %s" % (who, self.reason))]
        out = []
        for pin in self.pins:
            level = "warning" if pin["status"] == registration.NOT_PINNED else "info"
            detail = pin["detail"]
            if pin["status"] == registration.NOT_PINNED and self.host_file != self.config:
                detail += " (the host's %s)" % self.host_file
            out.append((level, "%s: %s -> %s: %s" % (who, pin["name"], pin["address"], detail)))
        return out


# ---------------------------------------------------------------- asking


def _begin(cfg, timeout):
    """Start asking how the runner was started -> a call (its backend's)."""
    from ..runners import backends

    return backends.of(cfg).begin_launch(cfg, timeout)


def _locate(launch, jobs):
    """Fill jobs.config/host_file/source from the runner's
    registration.Launch; False (with jobs.reason) when no config can be
    located."""
    argv, workdir, mounts = launch.argv, launch.workdir, launch.mounts
    jobs.source = launch.source
    if argv is None:
        jobs.reason = launch.reason
        return False
    path = registration.config_argument(argv)
    if path is None:
        jobs.reason = ("no -c/--config on %s (%s): the runner's built-in defaults give each "
                       "job a network of its own" % (jobs.source, " ".join(argv)[:200]))
        return False
    jobs.config = registration.in_container(path, workdir)
    if mounts is None:
        jobs.host_file = jobs.config
        return True
    jobs.host_file = registration.host_path(jobs.config, mounts)
    if jobs.host_file is None:
        jobs.reason = ("its config %s is in the container's own filesystem (no mount holds "
                       "it): cannot read it from the host" % jobs.config)
        return False
    return True


def _read(jobs, pins):
    where = jobs.config if jobs.host_file == jobs.config else "%s (the host's %s)" % (
        jobs.config, jobs.host_file)
    try:
        with open(jobs.host_file, "rb") as handle:
            data = handle.read(registration.MAX_CONFIG + 1)
    except OSError as exc:
        jobs.status = ERROR
        jobs.reason = "cannot read its config %s: %s" % (where, why(exc))
        return
    try:
        verdicts = registration.judge(registration.load(data), pins, jobs.config)
    except registration.RunnerConfigError as exc:
        jobs.status = ERROR
        jobs.reason = "its config %s: %s" % (where, exc)
        return
    jobs.pins = [v.as_dict() for v in verdicts]
    jobs.status = max((v.status for v in verdicts), key=_RANK.index)


def check(results, s, pins, mode):
    """Fill each runner's `jobs` (runner_copies.RunnerPins, in the order of
    s.runners; exit_status() sums them up).  A runner whose container
    could not be inspected already says why and is skipped.  Never raises
    for Docker's or systemd's failures."""
    pins = tuple(pins or ())
    if not pins:
        return
    started = []
    try:
        for r, cfg in zip(results, s.runners):
            if r.status == runner_copies.ERROR:  # its container could not be inspected
                continue
            jobs = RunnerJobs()
            try:
                with signals.deferred():  # a signal waits until the call is listed, to be ended
                    started.append((r, cfg, jobs, _begin(cfg, s.docker_timeout)))
            except GuardError as exc:
                jobs.status, jobs.reason = ERROR, str(exc)
                started.append((r, cfg, jobs, None))
        for r, cfg, jobs, call in started:
            if call is not None:
                try:
                    if _locate(call.result(), jobs):
                        _read(jobs, pins)
                except GuardError as exc:
                    jobs.status, jobs.reason = ERROR, str(exc)
            jobs.exit_status = _exit_status(jobs, mode)
            r.jobs = dataclasses.asdict(jobs)
    finally:  # after an unexpected error: end what still runs
        for _, _, _, call in started:
            if call is not None and not call.done:
                call.kill()
                try:
                    call.result()
                except Exception:
                    pass


def _exit_status(jobs, mode):
    if jobs.status == ERROR:
        return EXIT_FAILURE
    if jobs.status == registration.NOT_PINNED and mode in ("check", "diff"):
        return EXIT_DRIFT
    return EXIT_OK


# ---------------------------------------------------------------- output


def exit_status(results):
    return combine(EXIT_OK, *(r.jobs["exit_status"] for r in results if r.jobs))


def log(results, reporter):
    for r in results:
        if r.jobs is None:
            continue
        jobs = RunnerJobs(**r.jobs)
        for level, text in jobs.lines("runner %s" % r.name):
            getattr(reporter, level)(text)
