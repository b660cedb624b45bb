"""The only place that runs `docker`, through the `sh` library.

Four things: inspect a container, list the running job containers, stream
a container's log, restart a container.  Each call can be started in the
background (`begin_*`, returning a Call whose result() waits) so that the
calls one check needs run side by side; the plain functions wait.

Every call has a deadline.  A docker CLI that hangs (an engine that
accepts and never answers) is killed when it passes: a plain call may
take `timeout` seconds in all; a log stream may be silent for `timeout`
seconds at a time and take ten times `timeout` in all.  Every failure is a
DockerError (a GuardError, exit 1) with one line that says what went
wrong: engine unreachable, container missing, timed out, logs unreadable.

How sh is used, and why (measured here with sh 2.4.0 and 1.14.2 on this
2-core machine; the docker CLI alone takes ~20-25 ms a call):

  docker inspect, foreground                           27 ms  (sh 1.14: 22 ms)
  ... with _timeout=30                                108 ms  (117 ms): sh polls every 0.1 s
  ... _bg=True, then wait()                            28 ms  (35 ms)
  ... _bg=True, wait(), a threading.Timer kill         30 ms  (35 ms)   <- used
  ... _bg=True, wait(timeout=30) (sh 2 only)          120 ms: polls every 0.1 s
  docker logs, an _out callback, no _in               109 ms  (113 ms): the 0.1 s poll again
  ... the same with _in=<file on /dev/null>            26 ms  (30 ms)   <- used
  1,000,000 lines: _iter in 64 KiB chunks              13.2 s, 231 MB peak: sh keeps a copy
  ... _out=<object with write()> in 256 KiB chunks     13-16 s, 25 MB peak (sh 1.14: 11-14 s,
                                                       16 MB); `docker logs | grep -c` took
                                                       12-22 s side by side (busy machine)
  _out_bufsize=0 reads one byte per os.read(): never.

So: every call runs with _bg=True and is waited for; a small watch thread
kills it at its deadline (calls.py, shared with systemd.py) (no _timeout: it costs 85 ms).  Logs go to a
non-callable object with a write() method, which sh hands the raw bytes
(a callable would get them decoded), in 256 KiB chunks, with _no_out (sh
keeps nothing) and stdin on /dev/null (no 0.1 s input poll).  stderr is
merged into stdout by the CLI's own single writer (_err_to_out): the
runner logs to stderr, and one pipe keeps lines whole; the CLI's own error
message is told apart by its lack of a timestamp.
"""

import os
import re
from typing import List, NamedTuple, Optional

from . import calls
from .report import GuardError

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
    from . import runnerlog  # not at import: the calls start before it loads

    seconds = runnerlog.parse_time(text or "")
    if seconds is None or seconds <= 0:
        return None
    return seconds


# ------------------------------------------------------------ results
#
# Immutable records.  NamedTuple, not a frozen dataclass: a check pays for
# the class at import, and these two cost 0.45 ms as NamedTuple against
# 2.2 ms as frozen dataclasses (measured, sh 1.14 venv).


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

    def __init__(self, what, container, args, timeout, on_chunk=None, parse=None):
        self.what = what
        self.container = container
        extra = {"_err_to_out": True} if on_chunk is not None else {}
        super().__init__(_command(), args, timeout, on_chunk=on_chunk, parse=parse, **extra)

    def _subject(self):
        return "docker %s%s" % (self.what, " " + self.container if self.container else "")

    def launch_error(self, exc):
        return DockerError("cannot run docker %s: %s" % (self.what, exc.strerror or exc))

    def timed_out(self, why):
        return DockerTimeout("%s timed out (%s; engine at %s): killed it"
                             % (self._subject(), why, host()))

    def failed(self, exit_code):
        if self.sink is not None:
            message = _cli_message(self.sink.tail.decode("utf-8", "replace"))
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

    def begin_logs(self, container, since, on_chunk):
        """Stream `docker logs --timestamps --since SINCE CONTAINER`, both
        streams, to on_chunk(bytes) in chunks of up to calls.LOG_CHUNK bytes
        (called from sh's reader thread).  since: epoch seconds or None."""
        args = ["logs", "--timestamps"]
        if since is not None:
            args += ["--since", "%.9f" % max(0.0, since)]
        args += ["--", container]
        return self._start("logs", container, args, self.timeout, on_chunk=on_chunk)

    def stream_logs(self, container, since, on_chunk):
        return self.begin_logs(container, since, on_chunk).result()

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
    )


# ------------------------------------------------------------ module level

_default = None


def _engine(timeout=None):
    global _default
    if timeout is not None:
        return Docker(timeout)
    if _default is None:
        _default = Docker()
    return _default


def inspect(container, timeout=None) -> ContainerState:
    return _engine(timeout).inspect(container)


def job_containers(prefixes, timeout=None) -> List[JobRecord]:
    return _engine(timeout).job_containers(prefixes)


def stream_logs(container, since, on_chunk, timeout=None):
    return _engine(timeout).stream_logs(container, since, on_chunk)


def restart(container, timeout=None):
    return _engine(timeout).restart(container)
