"""The docker backend: runners in containers (backend = docker, engine =
docker or podman; the CLIs: engines.py).

The backend (class Backend, see backends/__init__.py): gather starts
`docker inspect` and `docker logs --timestamps` of every runner side by
side, before the state file and the deciding modules load (begin(); the
order is for speed, guarded by bench/bench_watchdog.py); the log waits at
a gate until inspect gives the runner's start and whether it has a TTY,
and is streamed through runnerlog.LogScan, never held whole.  The runner
logs to stderr and a job's output goes to stdout, so without a TTY only
stderr is scanned (no job can write a line there); with one, stdout is,
and only logrus's coloured lines count (runnerlog, source "tty").  A
runner whose log is the journal (logs = journal): journal.py.  The job
guard is the job containers and the jobs without a container, children
of the runner's daemon in its process tree (jobs.py, hostjobs.py); a
restart is `docker restart -t STOP_TIMEOUT`, confirmed by a new start
time (restart.py).  A container that is not running normally
(condition.py: restarting, paused, stopped, ...) is never restarted:
instead of the window, the last lines of its log are read (`docker logs
--tail`, logs/tail.py) for the report.
"""

import math
import threading
import time

from .. import condition, restart
from ...report import stamp
from ...system.engines import (ContainerMissing, DockerError, EngineUnreachable, Engines,
                               LogsUnreadable)

# ------------------------------------------------------------ the backend


class _Gate:
    """Holds the log streams (in sh's reader threads) until `docker
    inspect` has said where counting starts and whether the container has
    a TTY, then feeds the one stream that carries the runner's log to the
    scanner and drops the other.  So `docker logs` starts together with
    `docker inspect` instead of after it."""

    def __init__(self):
        self.ready = threading.Event()
        self.scan = None
        self.tty = False

    def open(self, scan, tty=False):
        self.scan = scan
        self.tty = tty
        self.ready.set()

    def out(self, chunk):
        """The container's stdout: the runner's log only with a TTY."""
        self.ready.wait()
        if self.scan is not None and self.tty:
            self.scan.feed(chunk)

    def err(self, chunk):
        """The container's stderr: the runner's log without a TTY."""
        self.ready.wait()
        if self.scan is not None and not self.tty:
            self.scan.feed(chunk)


class _Reading:
    """One runner's calls in flight (Check.work)."""

    def __init__(self, engine, container, since):
        self.gate = _Gate()
        self.inspect = engine.begin_inspect(container)
        self.logs = engine.begin_logs(container, since, self.gate.out, self.gate.err)
        self.tail = None  # (tail.Buffer, its call) of a container not running normally

    def begin_tail(self, engine, container, tty):
        """Drop the window's log; start `docker logs --tail` into a Buffer."""
        from ...logs import tail

        self.logs.kill()
        self.gate.open(None)
        buffer, gate = tail.Buffer(), _Gate()
        gate.open(buffer, tty)
        self.tail = (buffer, engine.begin_logs(container, None, gate.out, gate.err,
                                               tail=tail.TAIL_LINES))

    def end_tail(self, held, state):
        """The Condition with the Tail of its log, its cause from its last
        run (DockerError: unread)."""
        from ...logs import tail

        buffer, call = self.tail
        call.result()
        return held._replace(tail=tail.of_stream(buffer.data, "tty" if state.tty else "stderr",
                                                 last_run(state.started_at)))


class ContainerRestart:
    """The restart target (restart.py) of one container: docker restart
    with the runner's stop_timeout to drain, confirmed by a start time
    newer than before; killed() tells a runner the engine had to SIGKILL."""

    NOT_DONE = (EngineUnreachable, ContainerMissing)

    def __init__(self, engine, container, old_started_at, stop_timeout):
        self.engine = engine
        self.container = container
        self.old_started_at = old_started_at
        self.stop_timeout = math.ceil(stop_timeout)  # whole seconds, as the engine takes it
        self.began = None

    def begin(self):
        self.began = time.time()
        self.engine.restart(self.container, self.stop_timeout)

    def killed(self, container):
        """The message when the old run did not stop by itself, else None.
        The engine sends SIGKILL stop_timeout after the stop signal, which
        it sends after we asked: an old run that finished stop_timeout or
        more after the request was killed (inspect after a restart shows
        the new run's ExitCode, 0, so the time is what tells)."""
        return restart.killed_message(self.container, self.began, container.finished_at,
                                      self.stop_timeout)

    def look(self):
        return self.engine.inspect(self.container)

    def confirmed(self, container):
        new, old = container.started_at, self.old_started_at
        return bool(container.running and new and (old is None or new > old))

    def stuck(self, container):
        return ("restart failed: %s is %s, start time %s (before: %s)"
                % (self.container, container.status or "not running",
                   stamp(container.started_at), stamp(self.old_started_at)))


def _parse_launch(call, container):
    import json

    from .. import registration  # only --runners and the Ping of a wedged runner ask

    try:
        doc = json.loads(call.text("stdout"))[0]
        argv = [doc.get("Path") or ""] + list(doc.get("Args") or [])
        workdir = (doc.get("Config") or {}).get("WorkingDir") or "/"
        mounts = list(doc.get("Mounts") or [])
        host = doc.get("HostConfig") or {}
        network = str(host.get("NetworkMode") or "default")
        extra_hosts = tuple(str(e) for e in host.get("ExtraHosts") or ())
    except (ValueError, LookupError, TypeError, AttributeError):
        raise DockerError("docker inspect %s: unexpected output" % container)
    return registration.Launch(argv, workdir, mounts,
                               "the command line of container %s" % container,
                               network=network, extra_hosts=extra_hosts,
                               hosts_path=str(doc.get("HostsPath") or ""))


def last_run(started_at):
    """Where a stopped or crash-looping runner's last run began (its lines
    from there say why it ended), or None when it never started."""
    from ...logs.stamps import START_MARGIN

    return None if started_at is None else started_at - START_MARGIN


def hold(c, now):
    """c.held: the runner's Condition when its container is not running
    normally (condition.of_container); -> whether it is."""
    c.held = condition.of_container(c.state, c.cfg.container, now, c.cfg.engine)
    return c.held is not None


class Backend:
    """Runners in containers (backend = docker)."""

    EARLY = True  # begin() starts calls: gathered first, so no stream waits
    CONTAINER = True

    def __init__(self, timeout):
        self.engines = Engines(timeout)

    @staticmethod
    def target(cfg):
        return cfg.container

    @staticmethod
    def describe(c):
        state = c.state
        return {"container": c.cfg.container, "unit": None, "invocation_id": None,
                "new_invocation_id": None,
                "runner_state": state.status if state is not None else None,
                "restart_count": state.restart_count if state is not None else None}

    @staticmethod
    def begin_launch(cfg, timeout):
        """docker inspect: the container's command line (Path + Args),
        working directory and Mounts."""
        from ...system import engines

        return engines.Call(cfg.engine, "inspect", cfg.container,
                            ["inspect", "--type", "container", "--", cfg.container], timeout,
                            parse=lambda call: _parse_launch(call, cfg.container))

    def begin(self, checks, now):
        """Start docker inspect and docker logs of every runner, side by
        side; the logs wait at the gate until gather() knows where to
        count from (one second more than the window: the scanner draws
        the exact line)."""
        for c in checks:
            if c.work is None and c.error is None:
                try:
                    c.work = _Reading(self.engines.of(c.cfg), c.cfg.container,
                                      now - c.cfg.window - 1.0)
                except DockerError as exc:  # no CLI: this runner cannot be checked
                    c.fail(str(exc))

    def gather(self, checks, now, reporter):
        """Inspect and stream the logs (begin(), if not yet), then scan."""
        try:
            self.begin(checks, now)
            for c in checks:
                self._open(c, now, reporter)
            for c in checks:
                self._scan(c, reporter)
        finally:
            for c in checks:
                if c.work is not None and not c.work.gate.ready.is_set():
                    c.work.gate.open(None)
            self.engines.close()

    def _open(self, c, now, reporter):
        """inspect's answer -> where counting starts; open the log's gate."""
        from ...logs import runnerlog  # lazy: begin() starts the calls first
        from ...logs.failures import poll_model
        from ...logs.stamps import window_start

        work = c.work
        if work is None:
            return
        try:
            c.state = container = work.inspect.result()
        except DockerError as exc:
            c.fail(str(exc))
            work.logs.kill()
            work.gate.open(None)
            return
        if hold(c, now):
            reporter.debug("%s: %s: reading the last lines of its log" % (c.name, c.held.phrase))
            try:
                work.begin_tail(self.engines.of(c.cfg), c.cfg.container, container.tty)
            except DockerError as exc:
                reporter.warning("%s: cannot read its log: %s" % (c.name, exc))
            return
        c.since = window_start(now, c.cfg.window, container.started_at,
                                      container.finished_at)
        source = "tty" if container.tty else "stderr"
        work.gate.open(runnerlog.LogScan(c.since, source=source, model=poll_model(c.cfg)),
                       container.tty)
        reporter.debug("%s: container %s (%s), %s, started %s, counting from %s, reading its %s"
                       % (c.name, container.name, container.id[:12], container.status,
                          stamp(container.started_at), stamp(c.since),
                          "TTY stream" if container.tty else "stderr"))

    def _scan(self, c, reporter):
        """The log stream's end -> the evidence (or the error)."""
        if c.work is None:
            return
        if c.held is not None:
            if c.work.tail is not None:
                try:
                    c.held = c.work.end_tail(c.held, c.state)
                except DockerError as exc:
                    reporter.warning("%s: cannot read its log: %s" % (c.name, exc))
            return
        try:
            c.work.logs.result()
        except DockerError as exc:
            if c.error is None and c.state is not None and c.state.log_driver == "none":
                exc = LogsUnreadable(
                    "cannot read the logs of %s: its log driver is \"none\", which keeps "
                    "nothing; use json-file, local or journald, or read the journal "
                    "(logs = journal, journal_match)" % c.cfg.container)
            c.fail(str(exc))
            return
        if c.error is None:
            c.evidence = c.work.gate.scan.close()
            if c.evidence.untimed:
                reporter.warning("%s: %d log lines without a Docker timestamp ignored"
                                 % (c.name, c.evidence.untimed))

    def guard_jobs(self, checks, claims, reporter, runners=frozenset()):
        """The job containers on this engine, then the jobs without a
        container: live children of the daemon in the runner's own
        process tree (from State.Pid, in the host's /proc)."""
        from ...system import proctree
        from .. import jobs  # lazy: begin() starts the calls first

        for engine, group in self.engines.groups(checks):
            jobs.guard(group, engine, claims, reporter, runners=runners)
        jobs.guard_host(checks, lambda c: proctree.container(c.state.pid) if c.state.pid
                            else [], reporter)

    def restart(self, c, record, timeout, reporter):
        """Record it, docker restart, confirm it runs with a new start time."""
        done = restart.restart(ContainerRestart(self.engines.of(c.cfg), c.cfg.container,
                                                c.state.started_at, c.cfg.stop_timeout),
                               record, timeout)
        c.restarted_by(done)
        if done.restarted:
            reporter.debug("%s: running again since %s" % (c.name, stamp(done.new_started_at)))

    def close(self):
        self.engines.close()
