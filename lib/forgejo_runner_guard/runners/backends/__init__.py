"""One module per way of reaching a runner: the watchdog's backends.

A runner's `backend` key in guard.conf (config.BACKENDS) and its `logs`
key choose one of these modules (kind(cfg)): docker (a container, Docker
or Podman, its log from the engine), journal (a container whose log is in
the journal: logs = journal) and systemd (a unit).  load(kind) imports the
module and returns its Backend class, which follows the Backend protocol
below; the watchdog's loop and --runners know only that surface.

Adding a backend, e.g. `nomad`: write backends/nomad.py with a Backend
class of this shape, add "nomad" to config.BACKENDS (and the keys it
needs to the schema); nothing in the commands changes.
"""

import importlib
from typing import ClassVar, List, Protocol

# Which module serves a runner: its backend, but a container whose log
# is in the journal is read by the journal backend.
KINDS = ("docker", "journal", "systemd")


class Backend(Protocol):
    """What the commands call on a backend (one instance per run)."""

    EARLY: ClassVar[bool]  # True: begin() starts calls, so gather it first
    CONTAINER: ClassVar[bool]  # the runner has its own copy of /etc/hosts

    def __init__(self, timeout: float) -> None:  # seconds for every call
        ...

    def begin(self, checks: List["Check"], now: float) -> None:
        """Optional head start: start the calls gather() will wait for."""

    def gather(self, checks: List["Check"], now: float, reporter) -> None:
        """Fill each Check: state (.running, .started_at), since,
        evidence (runnerlog.Evidence); or held (runners/condition.py, with
        the tail of its log) for a runner not running normally; or
        fail(message)."""

    def guard_jobs(self, checks: List["Check"], claims: dict, reporter,
                   runners: frozenset = frozenset()) -> None:
        """Only for runners whose log says wedged: blocking, orphans,
        jobs_checked (and jobs_from_log), or fail(message).  runners: the
        run's runner containers (jobs.runner_containers), never jobs."""

    def restart(self, check: "Check", record, timeout: float, reporter) -> None:
        """restart.restart(target, record, timeout), `record` a
        restart.Record (saved before the restart); check.restarted_by()."""

    @staticmethod
    def target(cfg) -> str:
        """What is restarted (the metrics label): container or unit."""

    @staticmethod
    def describe(check: "Check") -> dict:
        """container, unit, invocation_id, new_invocation_id for --json."""

    @staticmethod
    def begin_launch(cfg, timeout: float):
        """Start asking how the runner was started -> a call whose
        result() is a registration.Launch (its command line, working
        directory and mounts: where its config.yml and .runner are)."""

    def close(self) -> None:
        """Kill whatever still runs."""


class Check:
    """Everything known about one runner in one watchdog run."""

    def __init__(self, cfg):
        self.cfg = cfg  # config.RunnerConfig
        self.work = None  # the backend's calls in flight
        self.state = None  # the backend's state of the runner (ContainerState, UnitState)
        self.since = None  # where counting starts (epoch seconds)
        self.evidence = None  # runnerlog.Evidence
        self.held = None  # condition.Condition: not running normally (never restarted)
        self.blocking = []  # jobs.JobContainer
        self.orphans = []
        self.jobs_checked = False  # the job guard ran (only for a wedged runner)
        self.jobs_from_log = False  # no Docker engine: the log is the job guard
        self.forge = None  # forge.ping.ForgeWord: what its forge said (verify = ping)
        self.view = None  # watchdog.forgeview.View: the forge's REST view (forge_token_file)
        self.decision = None  # decide.Decision
        self.error = None  # why the check (or the restart) failed
        self.restart = None  # restart.Restarted, after a restart

    @property
    def name(self):
        return self.cfg.name

    @property
    def started_at(self):
        """Epoch seconds of the runner's current start, or None."""
        return None if self.state is None else self.state.started_at

    @property
    def restarted(self):
        return self.restart is not None and self.restart.restarted

    @property
    def new_started_at(self):
        return None if self.restart is None else self.restart.new_started_at

    def fail(self, message):
        if self.error is None:
            self.error = message

    def restarted_by(self, done):
        """Take a restart.Restarted: its state, and its error if any."""
        self.restart = done
        if done.error:
            self.fail(done.error)


def kind(cfg):
    """The backend module that serves runner config `cfg` (one of KINDS)."""
    if cfg.backend == "docker" and cfg.logs == "journal":
        return "journal"
    return cfg.backend


def load(name):
    """The Backend class of backends/<name>.py."""
    return importlib.import_module("." + name, __name__).Backend


def of(cfg):
    """The Backend class that serves runner config `cfg`."""
    return load(kind(cfg))


def launches(checks, timeout, each):
    """Ask every check's backend how its runner was started, side by side
    (begin_launch()), and return {name: each(call)}, a call that could not
    start being its GuardError; whatever still runs after an unexpected
    error is killed.  timeout: for each call (docker_timeout)."""
    from ...report import GuardError

    calls = {}
    try:
        for c in checks:
            try:
                calls[c.name] = of(c.cfg).begin_launch(c.cfg, timeout)
            except GuardError as exc:
                calls[c.name] = exc
        return {c.name: each(calls[c.name]) for c in checks}
    finally:  # after an unexpected error: end what still runs
        for call in calls.values():
            if not isinstance(call, GuardError) and not call.done:
                call.kill()
