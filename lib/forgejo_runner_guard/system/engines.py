"""The docker and podman CLIs, through the `sh` library: the only place
that runs them (the docker and journal backends and --runners use
them).

Four calls: inspect a container, list the running job containers, stream
a container's log, restart a container.  Each call can be started in the
background (`begin_*`, returning a Call whose result() waits) so that the
calls one check needs run side by side; the plain methods wait.  Every
call has a deadline (calls.py): a plain call may take `timeout` seconds in
all; a log stream may be silent for `timeout` seconds at a time and take
ten times `timeout` in all.  Every failure is a DockerError (a GuardError,
exit 1) with one line that says what went wrong: engine unreachable,
container missing, timed out, logs unreadable.

Logs go to two Sinks (calls.py) in 256 KiB chunks, stdin on /dev/null:
`docker logs` writes the container's stdout on its stdout and the
container's stderr on its stderr; with a TTY (Config.Tty) the container
has one stream, on stdout.  The CLI's own error message comes on stderr,
told apart by its lack of a timestamp.  Why each sh option, with the
figures: bench/README.md.

Podman (engine = podman) takes the same arguments; what differs is in the
parsers (the times its --format prints) and the error mapping.
"""

import math
import os
import re
from typing import NamedTuple, Optional

from . import calls
from ..report import GuardError, why

DEFAULT_HOST = "unix:///var/run/docker.sock"
PACKAGES = {"docker": "docker.io or docker-ce-cli", "podman": "podman"}


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


def host(program="docker"):
    """The engine the CLI talks to, for messages."""
    if program == "podman":
        return os.environ.get("CONTAINER_HOST") or "this host (podman, no service)"
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


_TITLES = {"docker": "Docker engine", "podman": "Podman"}


def _command(program="docker"):
    """sh's docker (or podman) command (calls.command)."""
    return calls.command(program, DockerError, lambda: DockerMissing(
        "%s: command not found (install %s)" % (program, PACKAGES.get(program, program))))


# ------------------------------------------------------------ times


_GO_TIME = re.compile(r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?) ([+-]\d\d)(\d\d)(?: \S+)?$")


def parse_time(text):
    """Docker's RFC 3339 time -> epoch seconds (float), read exactly as the
    log scanner reads log stamps; None for Docker's zero time (0001-01-01,
    a container never stopped) or an empty value.  Also the form podman's
    --format prints a time in (Go's time.String(): "2026-11-29
    13:18:10.276386383 +0000 UTC")."""
    from ..logs import stamps  # not at import: the calls start before it loads

    text = (text or "").strip()
    go = _GO_TIME.match(text)
    if go:
        text = "%sT%s%s:%s" % go.groups()
    seconds = stamps.parse_time(text)
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
    pid: int = 0  # State.Pid: its first process, on this host (0: not running)
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


def _error(what, container, message, exit_code, program="docker"):
    """Map the docker (podman) CLI's failure to a DockerError with one
    clear line."""
    message = " ".join((message or "").split())
    low = message.lower()
    if (
        "cannot connect to the docker daemon" in low
        or "cannot connect to podman" in low
        or "unable to connect to podman" in low
        or "error during connect" in low
        or "connection refused" in low
        or ("dial unix" in low and "no such file" in low)
    ):
        return EngineUnreachable(
            "%s unreachable at %s: %s" % (_TITLES.get(program, program), host(program), message)
        )
    if "permission denied" in low and program in low and "socket" in low:
        return EngineUnreachable("no permission to use the %s at %s (%s)"
                                 % (_TITLES.get(program, program), host(program), message))
    if "no such container" in low or "no such object" in low:
        return ContainerMissing("container %s does not exist (%s)" % (container, message))
    if "does not support reading" in low or "cannot read logs" in low:
        return LogsUnreadable(
            "cannot read the logs of %s: its log driver keeps nothing `%s logs` can read "
            "(%s); use %s, or logs = journal" % (
                container, program, message,
                "k8s-file or journald" if program == "podman" else "json-file, local or journald")
        )
    return DockerError(
        "%s %s%s failed (exit status %s): %s"
        % (program, what, " " + container if container else "", exit_code,
           message or "no message")
    )


# ------------------------------------------------------------ calls


class Call(calls.Call):
    """One docker (podman) CLI run in the background; result() waits for it."""

    def __init__(self, program, what, container, args, timeout, **options):
        """options: calls.Call's on_chunk, on_err_chunk, parse."""
        self.program = program
        self.what = what
        self.container = container
        super().__init__(_command(program), args, timeout, **options)

    def _subject(self):
        return "%s %s%s" % (self.program, self.what,
                            " " + self.container if self.container else "")

    def launch_error(self, exc):
        return DockerError("cannot run %s %s: %s" % (self.program, self.what, why(exc)))

    def timed_out(self, reason):
        return DockerTimeout("%s timed out (%s; engine at %s): killed it"
                             % (self._subject(), reason, host(self.program)))

    def failed(self, exit_code):
        if self.err_sink is not None:
            message = _cli_message(self.err_sink.tail.decode("utf-8", "replace"))
        else:
            message = _first_line(self.text("stderr")) or _first_line(self.text("stdout"))
        return _error(self.what, self.container, message, exit_code, self.program)


class Docker(calls.Calls):
    """docker calls with one timeout (seconds) for each.  The Docker CLI
    also reaches Podman's Docker-compatible service (DOCKER_HOST=
    unix:///run/podman/podman.sock) as it is."""

    call_class = Call
    program = "docker"

    def _start(self, *args, **kwargs):
        return super()._start(self.program, *args, **kwargs)

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

    def begin_logs(self, container, since, on_chunk, on_err_chunk, tail=None):
        """Stream `docker logs --timestamps --since SINCE CONTAINER`: the
        container's stdout to on_chunk(bytes), its stderr to
        on_err_chunk(bytes), in chunks of up to calls.LOG_CHUNK bytes
        (called from sh's reader threads).  since: epoch seconds or None;
        tail: only the last this many lines (`--tail`)."""
        args = ["logs", "--timestamps"]
        if since is not None:
            args += ["--since", "%.9f" % max(0.0, since)]
        if tail is not None:
            args += ["--tail", str(int(tail))]
        args += ["--", container]
        return self._start("logs", container, args, self.timeout, on_chunk=on_chunk,
                           on_err_chunk=on_err_chunk)

    # -- restart

    def restart(self, container, stop_timeout):
        """Restart: the engine sends the stop signal (SIGTERM), waits
        `stop_timeout` seconds for the container to exit, then SIGKILLs
        it.  -t (--time before Docker 25, --timeout after; podman: --time)
        so the engine's 10 s default never applies; the call may take
        that long and its own timeout more."""
        seconds = int(math.ceil(stop_timeout))
        self._start("restart", container, ["restart", "-t", str(seconds), "--", container],
                    self.timeout + seconds).result()


class Podman(Docker):
    """The same calls through the podman CLI (engine = podman): the same
    arguments; what differs is in the parsers (parse_time reads the times
    podman's --format prints) and the error mapping (_error)."""

    program = "podman"


ENGINES = {"docker": Docker, "podman": Podman}


class Engines:
    """One Docker or Podman per engine kind a run uses (a runner's
    `engine` key), made on first use; close() ends all their calls."""

    def __init__(self, timeout):
        self.timeout = timeout
        self.made = {}

    def of(self, cfg):
        kind = getattr(cfg, "engine", "docker")
        if kind not in self.made:
            self.made[kind] = ENGINES[kind](self.timeout)
        return self.made[kind]

    def groups(self, checks):
        """[(engine, checks on it)] for backends.Check objects."""
        kinds = {}
        for c in checks:
            kinds.setdefault(getattr(c.cfg, "engine", "docker"), []).append(c)
        return [(self.of(group[0].cfg), group) for group in kinds.values()]

    def close(self):
        for engine in self.made.values():
            engine.close()


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
        call = self.engine._start(
            "inspect",
            None,
            ["inspect", "--type", "container", "--format",
             "{{.Id}} {{.State.Running}} {{.Name}} {{.Created}}", "--"] + ids,
            self.engine.timeout,
        )
        try:
            call.result()
        except ContainerMissing:
            pass  # a job ended between ps and inspect: what was printed still counts
        jobs = []
        for line in call.text("stdout").splitlines():
            # the time last: podman prints it with spaces (parse_time)
            fields = line.split(None, 3)
            if len(fields) != 4 or fields[1] != "true":
                continue
            created = parse_time(fields[3])
            jobs.append(JobRecord(fields[0], fields[2].lstrip("/"), created or 0.0))
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
        pid=int(state.get("Pid") or 0),
        tty=bool((doc.get("Config") or {}).get("Tty")),
    )
