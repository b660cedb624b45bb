"""The docker backend: runners in containers (backend = docker), and the
only place that runs `docker`, through the `sh` library.

The CLI, four calls: inspect a container, list the running job
containers, stream a container's log, restart a container.  Each call can
be started in the background (`begin_*`, returning a Call whose result()
waits) so that the calls one check needs run side by side; the plain
methods wait.  Every call has a deadline (calls.py): a plain call may take
`timeout` seconds in all; a log stream may be silent for `timeout` seconds
at a time and take ten times `timeout` in all.  Every failure is a
DockerError (a GuardError, exit 1) with one line that says what went
wrong: engine unreachable, container missing, timed out, logs unreadable.

Logs go to two Sinks (calls.py) in 256 KiB chunks, stdin on /dev/null:
`docker logs` writes the container's stdout on its stdout and the
container's stderr on its stderr; with a TTY (Config.Tty) the container
has one stream, on stdout.  The runner logs to stderr and a job's output
goes to stdout, so without a TTY only stderr is scanned (no job can write
a line there); with one, stdout is, and only logrus's coloured lines count
(runnerlog, source "tty").  The CLI's own error message comes on stderr,
told apart by its lack of a timestamp.
Why each sh option, with the figures: bench/README.md.

The backend (class Backend, see backends/__init__.py): gather starts
`docker inspect` and `docker logs --timestamps` of every runner side by
side, before the state file and the deciding modules load (begin(); the
order is for speed, guarded by bench/bench_watchdog.py); the log waits at
a gate until inspect gives the runner's start and is streamed through
runnerlog.LogScan, never held whole.  The job guard is the job containers
(jobguard.py); a restart is `docker restart`, confirmed by a new start
time (restart.py).
"""

import os
import re
import threading
from typing import NamedTuple, Optional

from .. import calls, jobguard, restart
from ..report import GuardError, why
from ..restart import stamp

DEFAULT_HOST = "unix:///var/run/docker.sock"

_docker = None


class DockerError(GuardError):
    """A docker call failed; the message is one line (exit 1)."""


class EngineUnreachable(DockerError):
    pass


class ContainerMissing(DockerError):
    pass


class DockerMissing(EngineUnreachable):
    """No docker CLI on this host (so no engine to ask)."""


class DockerTimeout(DockerError):
    pass


class LogsUnreadable(DockerError):
    pass


def host():
    """The engine the CLI talks to, for messages."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def _command():
    """sh's docker command, imported on first use (import sh costs 25-80 ms)."""
    global _docker
    if _docker is None:
        try:
            import sh
        except ImportError as exc:  # pragma: no cover - a packaging fault
            raise DockerError("cannot import the sh library: %s (install python3-sh)" % exc)
        try:
            _docker = sh.Command("docker")
        except sh.CommandNotFound:
            raise DockerMissing("docker: command not found (install docker.io or docker-ce-cli)")
    return _docker


# ------------------------------------------------------------ times


def parse_time(text):
    """Docker's RFC 3339 time -> epoch seconds (float), read exactly as the
    log scanner reads log stamps; None for Docker's zero time (0001-01-01,
    a container never stopped) or an empty value."""
    from .. import runnerlog  # not at import: the calls start before it loads

    seconds = runnerlog.parse_time(text or "")
    if seconds is None or seconds <= 0:
        return None
    return seconds


# ------------------------------------------------------------ results
#
# Immutable records.  NamedTuple, not a frozen dataclass: a check pays for
# the class at import, and NamedTuple costs a fifth of a frozen dataclass
# (bench/README.md).


class ContainerState(NamedTuple):
    """What `docker inspect` says about one container."""

    name: str
    id: str
    running: bool
    status: str  # running, exited, restarting, paused, ...
    exit_code: int
    started_at: Optional[float]  # epoch seconds; None if never started
    finished_at: Optional[float]  # None if never stopped
    log_driver: str
    hosts_path: str
    restart_count: int
    network_mode: str = ""  # HostConfig.NetworkMode: "host" copies the host's /etc/hosts
    tty: bool = False  # Config.Tty: one merged stream, on `docker logs`' stdout


class JobRecord(NamedTuple):
    """A running container whose name starts with a job prefix."""

    id: str
    name: str
    created: float  # epoch seconds


# ------------------------------------------------------------ errors


def _first_line(text):
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return line
    return ""


_STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def _cli_message(text):
    """The CLI's own error in merged output: its last un-timestamped line."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    for line in reversed(lines):
        if not _STAMPED.match(line):
            return line
    return lines[-1] if lines else ""


def _error(what, container, message, exit_code):
    """Map the docker CLI's failure to a DockerError with one clear line."""
    message = " ".join((message or "").split())
    low = message.lower()
    if (
        "cannot connect to the docker daemon" in low
        or "error during connect" in low
        or "connection refused" in low
        or ("dial unix" in low and "no such file" in low)
    ):
        return EngineUnreachable(
            "Docker engine unreachable at %s: %s" % (host(), message)
        )
    if "permission denied" in low and "docker" in low and "socket" in low:
        return EngineUnreachable("no permission to use the Docker engine at %s (%s)" % (host(), message))
    if "no such container" in low or "no such object" in low:
        return ContainerMissing("container %s does not exist (%s)" % (container, message))
    if "does not support reading" in low:
        return LogsUnreadable(
            "cannot read the logs of %s: its log driver keeps nothing `docker logs` can read "
            "(%s); use json-file, local or journald" % (container, message)
        )
    return DockerError(
        "docker %s%s failed (exit status %s): %s"
        % (what, " " + container if container else "", exit_code, message or "no message")
    )


# ------------------------------------------------------------ calls


class Call(calls.Call):
    """One docker CLI run in the background; result() waits for it."""

    def __init__(self, what, container, args, timeout, on_chunk=None, parse=None, on_err_chunk=None):
        self.what = what
        self.container = container
        super().__init__(_command(), args, timeout, on_chunk=on_chunk, parse=parse,
                         on_err_chunk=on_err_chunk)

    def _subject(self):
        return "docker %s%s" % (self.what, " " + self.container if self.container else "")

    def launch_error(self, exc):
        return DockerError("cannot run docker %s: %s" % (self.what, why(exc)))

    def timed_out(self, reason):
        return DockerTimeout("%s timed out (%s; engine at %s): killed it"
                             % (self._subject(), reason, host()))

    def failed(self, exit_code):
        if self.err_sink is not None:
            message = _cli_message(self.err_sink.tail.decode("utf-8", "replace"))
        else:
            message = _first_line(self.text("stderr")) or _first_line(self.text("stdout"))
        return _error(self.what, self.container, message, exit_code)


class Docker(calls.Calls):
    """docker calls with one timeout (seconds) for each."""

    call_class = Call

    # -- inspect

    def begin_inspect(self, container):
        return self._start(
            "inspect",
            container,
            ["inspect", "--type", "container", "--", container],
            self.timeout,
            parse=lambda call: _parse_inspect(call, container),
        )

    def inspect(self, container):
        return self.begin_inspect(container).result()

    # -- job containers

    def begin_job_containers(self, prefixes):
        return _JobList(self, tuple(prefixes))

    def job_containers(self, prefixes):
        return self.begin_job_containers(prefixes).result()

    # -- logs

    def begin_logs(self, container, since, on_chunk, on_err_chunk):
        """Stream `docker logs --timestamps --since SINCE CONTAINER`: the
        container's stdout to on_chunk(bytes), its stderr to
        on_err_chunk(bytes), in chunks of up to calls.LOG_CHUNK bytes
        (called from sh's reader threads).  since: epoch seconds or None."""
        args = ["logs", "--timestamps"]
        if since is not None:
            args += ["--since", "%.9f" % max(0.0, since)]
        args += ["--", container]
        return self._start("logs", container, args, self.timeout, on_chunk=on_chunk,
                           on_err_chunk=on_err_chunk)

    # -- restart

    def restart(self, container):
        self._start("restart", container, ["restart", "--", container], self.timeout).result()


class _JobList:
    """`docker ps` for the names, then `docker inspect` of the matching
    ones for their creation times to the nanosecond (ps gives seconds)."""

    def __init__(self, engine, prefixes):
        self.engine = engine
        self.prefixes = prefixes
        self.ps = engine._start(
            "ps",
            None,
            ["ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}"],
            engine.timeout,
            parse=lambda call: call.text("stdout"),
        )

    def kill(self):
        self.ps.kill()

    def result(self):
        ids = []
        for line in self.ps.result().splitlines():
            fields = line.split()
            if len(fields) < 2:
                continue
            names = fields[1].split(",")
            if any(n.startswith(p) for n in names for p in self.prefixes if p):
                ids.append(fields[0])
        if not ids:
            return []
        call = Call(
            "inspect",
            None,
            ["inspect", "--type", "container", "--format",
             "{{.Id}} {{.State.Running}} {{.Created}} {{.Name}}", "--"] + ids,
            self.engine.timeout,
        )
        try:
            call.result()
        except ContainerMissing:
            pass  # a job ended between ps and inspect: what was printed still counts
        jobs = []
        for line in call.text("stdout").splitlines():
            fields = line.split(None, 3)
            if len(fields) != 4 or fields[1] != "true":
                continue
            created = parse_time(fields[2])
            jobs.append(JobRecord(fields[0], fields[3].lstrip("/"), created or 0.0))
        return jobs


def _parse_inspect(call, container):
    import json

    try:
        doc = json.loads(call.text("stdout"))[0]
        state = doc["State"]
    except (ValueError, LookupError, TypeError):
        raise DockerError("docker inspect %s: unexpected output" % container)
    return ContainerState(
        name=str(doc.get("Name", container)).lstrip("/"),
        id=str(doc.get("Id", "")),
        running=bool(state.get("Running")),
        status=str(state.get("Status", "")),
        exit_code=int(state.get("ExitCode") or 0),
        started_at=parse_time(state.get("StartedAt")),
        finished_at=parse_time(state.get("FinishedAt")),
        log_driver=str(((doc.get("HostConfig") or {}).get("LogConfig") or {}).get("Type", "")),
        hosts_path=str(doc.get("HostsPath") or ""),
        restart_count=int(doc.get("RestartCount") or 0),
        network_mode=str((doc.get("HostConfig") or {}).get("NetworkMode") or ""),
        tty=bool((doc.get("Config") or {}).get("Tty")),
    )


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


class ContainerRestart:
    """The restart target (restart.py) of one container: docker restart,
    confirmed by a start time newer than before."""

    NOT_DONE = (EngineUnreachable, ContainerMissing)

    def __init__(self, engine, container, old_started_at):
        self.engine = engine
        self.container = container
        self.old_started_at = old_started_at

    def begin(self):
        self.engine.restart(self.container)

    def look(self):
        return self.engine.inspect(self.container)

    def confirmed(self, container):
        new, old = container.started_at, self.old_started_at
        return bool(container.running and new and (old is None or new > old))

    def stuck(self, container):
        return ("restart failed: %s is %s, start time %s (before: %s)"
                % (self.container, container.status or "not running",
                   stamp(container.started_at), stamp(self.old_started_at)))


class Backend:
    """Runners in containers (backend = docker)."""

    EARLY = True  # begin() starts calls: gathered first, so no stream waits

    def __init__(self, timeout):
        self.engine = Docker(timeout)

    @staticmethod
    def target(cfg):
        return cfg.container

    @staticmethod
    def describe(c):
        return {"container": c.cfg.container, "unit": None, "invocation_id": None,
                "new_invocation_id": None}

    def begin(self, checks, now):
        """Start docker inspect and docker logs of every runner, side by
        side; the logs wait at the gate until gather() knows where to
        count from (one second more than the window: the scanner draws
        the exact line)."""
        for c in checks:
            if c.work is None:
                c.work = _Reading(self.engine, c.cfg.container, now - c.cfg.window - 1.0)

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
            self.engine.close()
        for c in checks:
            if c.error is None and not c.state.running:
                c.fail("container %s is not running (%s, exit code %d): start it; the watchdog "
                       "only restarts a running runner" % (c.cfg.container, c.state.status or
                                                           "stopped", c.state.exit_code))

    def _open(self, c, now, reporter):
        """inspect's answer -> where counting starts; open the log's gate."""
        from .. import decide, runnerlog

        work = c.work
        try:
            c.state = container = work.inspect.result()
        except DockerError as exc:
            c.fail(str(exc))
            work.logs.kill()
            work.gate.open(None)
            return
        c.since = decide.window_start(now, c.cfg.window, container.started_at,
                                      container.finished_at)
        source = "tty" if container.tty else "stderr"
        work.gate.open(runnerlog.LogScan(c.since, source=source, model=decide.poll_model(c.cfg)),
                       container.tty)
        reporter.debug("%s: container %s (%s), %s, started %s, counting from %s, reading its %s"
                       % (c.name, container.name, container.id[:12], container.status,
                          stamp(container.started_at), stamp(c.since),
                          "TTY stream" if container.tty else "stderr"))

    def _scan(self, c, reporter):
        """The log stream's end -> the evidence (or the error)."""
        try:
            c.work.logs.result()
        except DockerError as exc:
            if c.error is None and c.state is not None and c.state.log_driver == "none":
                exc = LogsUnreadable(
                    "cannot read the logs of %s: its log driver is \"none\", which keeps "
                    "nothing; use json-file, local or journald" % c.cfg.container)
            c.fail(str(exc))
            return
        if c.error is None:
            c.evidence = c.work.gate.scan.close()
            if c.evidence.untimed:
                reporter.warning("%s: %d log lines without a Docker timestamp ignored"
                                 % (c.name, c.evidence.untimed))

    def guard_jobs(self, checks, claims, reporter):
        """The job containers on this engine."""
        jobguard.guard(checks, self.engine, claims, reporter)

    def restart(self, c, record, timeout, reporter):
        """docker restart, record it, confirm it runs with a new start time."""
        done = restart.restart(ContainerRestart(self.engine, c.cfg.container,
                                                c.state.started_at), record, timeout)
        c.restarted_by(done)
        if done.restarted:
            reporter.debug("%s: running again since %s" % (c.name, stamp(done.new_started_at)))

    def close(self):
        self.engine.close()
