"""One module per way of reaching a runner: the watchdog's backends.

A runner's `backend` key in guard.conf names a module of this package
(config.BACKENDS lists them); load(kind) imports it and returns its
Backend class.  The watchdog's loop knows only this surface:

    class Backend:
        EARLY = False              # True: begin() starts calls, gather me first
        def __init__(self, timeout)            # seconds for every call
        def begin(self, checks, now)           # optional head start
        def gather(self, checks, now, reporter)
            # fill each Check: state (.running, .started_at), since,
            # evidence (runnerlog.Evidence), or fail(message)
        def guard_jobs(self, checks, claims, reporter)
            # only for runners whose log says wedged: blocking, orphans,
            # jobs_checked (and jobs_from_log), or fail(message)
        def restart(self, check, record, timeout, reporter)
            # restart.restart(target, record, timeout); check.restarted_by()
        @staticmethod target(cfg) -> str       # what is restarted (metrics label)
        @staticmethod describe(check) -> dict  # container, unit, invocation_id,
                                               # new_invocation_id for --json
        def close(self)                        # kill whatever still runs

Adding a backend, e.g. `nomad`: write backends/nomad.py with that class,
add "nomad" to config.BACKENDS (and the keys it needs to the schema);
nothing in watchdog.py changes.
"""

import importlib


class Check:
    """Everything known about one runner in one watchdog run."""

    def __init__(self, cfg):
        self.cfg = cfg  # config.RunnerConfig
        self.work = None  # the backend's calls in flight
        self.state = None  # the backend's state of the runner (ContainerState, UnitState)
        self.since = None  # where counting starts (epoch seconds)
        self.evidence = None  # runnerlog.Evidence
        self.blocking = []  # decide.JobContainer
        self.orphans = []
        self.jobs_checked = False  # the job guard ran (only for a wedged runner)
        self.jobs_from_log = False  # no Docker engine: the log is the job guard
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


def load(kind):
    """The Backend class of backends/<kind>.py."""
    return importlib.import_module("." + kind, __name__).Backend
