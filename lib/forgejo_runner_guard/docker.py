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
kills it at its deadline (no _timeout: it costs 85 ms).  Logs go to a
non-callable object with a write() method, which sh hands the raw bytes
(a callable would get them decoded), in 256 KiB chunks, with _no_out (sh
keeps nothing) and stdin on /dev/null (no 0.1 s input poll).  stderr is
merged into stdout by the CLI's own single writer (_err_to_out): the
runner logs to stderr, and one pipe keeps lines whole; the CLI's own error
message is told apart by its lack of a timestamp.
"""

import dataclasses
import os
import re
import threading
import time
from typing import List, Optional

from . import runnerlog
from .report import GuardError

LOG_CHUNK = 256 * 1024  # bytes handed to on_chunk at a time
STREAM_CAP = 10  # a log stream may take this many times the timeout in all
DEFAULT_TIMEOUT = 30.0
DEFAULT_HOST = "unix:///var/run/docker.sock"

_sh = None
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
    global _sh, _docker
    if _docker is None:
        try:
            import sh
        except ImportError as exc:  # pragma: no cover - a packaging fault
            raise DockerError("cannot import the sh library: %s (install python3-sh)" % exc)
        _sh = sh
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
    seconds = runnerlog.parse_time(text or "")
    if seconds is None or seconds <= 0:
        return None
    return seconds


# ------------------------------------------------------------ results


@dataclasses.dataclass(frozen=True)
class ContainerState:
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


@dataclasses.dataclass(frozen=True)
class JobRecord:
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


class _Watch(threading.Thread):
    """Kills a docker CLI at its deadline: `timeout` after the start, or,
    for a stream, after `timeout` seconds without output (and STREAM_CAP
    times `timeout` in all)."""

    def __init__(self, timeout, stream):
        super().__init__(name="docker-deadline", daemon=True)
        self.timeout = timeout
        self.stream = stream
        self.started = self.last = time.monotonic()
        self.done = threading.Event()
        self.proc = None
        self.fired = None  # why it killed the CLI

    def touch(self):
        self.last = time.monotonic()

    def _due(self):
        if not self.stream:
            return self.started + self.timeout
        return min(self.last + self.timeout, self.started + STREAM_CAP * self.timeout)

    def run(self):
        while True:
            if self.done.wait(max(0.0, self._due() - time.monotonic())):
                return
            if time.monotonic() < self._due():
                continue  # output arrived meanwhile
            if self.stream and time.monotonic() < self.started + STREAM_CAP * self.timeout:
                self.fired = "no output for %gs" % self.timeout
            else:
                self.fired = "no answer within %gs" % (
                    STREAM_CAP * self.timeout if self.stream else self.timeout
                )
            kill(self.proc)
            return


def kill(proc):
    """SIGKILL a running sh command (no-op once it has ended)."""
    if proc is None:
        return
    try:
        if proc.process.exit_code is None:
            proc.process.kill()
    except (OSError, AttributeError):
        pass


class _Sink:
    """sh's _out target for a stream: not callable, so sh hands write()
    the raw bytes.  Keeps the last bytes for the CLI's error message and
    any exception of on_chunk for the caller."""

    TAIL = 4096

    def __init__(self, on_chunk, watch):
        self.on_chunk = on_chunk
        self.watch = watch
        self.tail = b""
        self.error = None
        self.bytes = 0

    def write(self, chunk):
        self.watch.touch()
        self.bytes += len(chunk)
        self.tail = (self.tail + chunk[-self.TAIL :])[-self.TAIL :]
        if self.error is not None:
            return
        try:
            self.on_chunk(chunk)
        except BaseException as exc:  # re-raised by Call.result() in the caller's thread
            self.error = exc
            kill(self.watch.proc)


class Call:
    """One docker CLI run in the background; result() waits for it."""

    def __init__(self, what, container, args, timeout, on_chunk=None, parse=None):
        self.what = what
        self.container = container
        self.parse = parse
        self.watch = _Watch(timeout, stream=on_chunk is not None)
        self.sink = _Sink(on_chunk, self.watch) if on_chunk is not None else None
        self._done = False
        self._result = None
        docker = _command()
        kwargs = dict(
            _bg=True,
            _bg_exc=False,
            _tty_out=False,
            _ok_code=list(range(0, 256)),
        )
        if self.sink is not None:
            kwargs.update(_out=self.sink, _out_bufsize=LOG_CHUNK, _no_out=True, _err_to_out=True)
        with open(os.devnull, "rb") as null:
            try:
                self.proc = docker(*args, _in=null, **kwargs)
            except OSError as exc:
                raise DockerError("cannot run docker %s: %s" % (what, exc.strerror or exc))
        self.watch.proc = self.proc
        self.watch.start()

    def kill(self):
        kill(self.proc)

    def result(self):
        """Wait; return the parsed result or raise DockerError."""
        if self._done:
            return self._result
        try:
            try:
                self.proc.wait()
            except _sh.ErrorReturnCode:
                pass  # killed by a signal: told apart below
        finally:
            self.watch.done.set()
        self._done = True
        if self.sink is not None and self.sink.error is not None:
            raise self.sink.error
        code = self.proc.process.exit_code
        if self.watch.fired:
            raise DockerTimeout(
                "docker %s%s timed out (%s; engine at %s): killed it"
                % (self.what, " " + self.container if self.container else "", self.watch.fired, host())
            )
        if code != 0:
            if self.sink is not None:
                message = _cli_message(self.sink.tail.decode("utf-8", "replace"))
            else:
                message = _first_line(self._text("stderr")) or _first_line(self._text("stdout"))
            raise _error(self.what, self.container, message, code)
        self._result = self.parse(self) if self.parse else None
        return self._result

    def _text(self, stream):
        data = getattr(self.proc, stream, b"") or b""
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        return data


class Docker:
    """docker calls with one timeout (seconds) for each."""

    def __init__(self, timeout=DEFAULT_TIMEOUT):
        self.timeout = float(timeout)
        self.calls = []

    def _start(self, *args, **kwargs):
        call = Call(*args, **kwargs)
        self.calls.append(call)
        return call

    def close(self):
        """Kill whatever is still running (after an error elsewhere)."""
        for call in self.calls:
            call.kill()
        for call in self.calls:
            if not call._done:
                try:
                    call.result()
                except (GuardError, Exception):
                    pass
        self.calls = []

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
        streams, to on_chunk(bytes) in chunks of up to LOG_CHUNK bytes
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
            parse=lambda call: call._text("stdout"),
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
        for line in call._text("stdout").splitlines():
            fields = line.split(None, 3)
            if len(fields) != 4 or fields[1] != "true":
                continue
            created = parse_time(fields[2])
            jobs.append(JobRecord(fields[0], fields[3].lstrip("/"), created or 0.0))
        return jobs


def _parse_inspect(call, container):
    import json

    try:
        doc = json.loads(call._text("stdout"))[0]
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
