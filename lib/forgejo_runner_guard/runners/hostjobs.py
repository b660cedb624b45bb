"""Jobs without containers: which processes of a runner are jobs (pure).

A job with a `host` (or `self-hosted`, `lxc`) label runs no job
container: act runs its steps as child processes of the runner's daemon.
So a runner runs such a job while its daemon process has a live child.
The daemon is found by its command name (`forgejo-runner`, `gitea-runner`
or `act_runner` by default: the runner's `daemon` key), never by being PID
1: compose files often start it from a shell, and `--init` puts docker-init
first.

    procs = [Proc(...), ...]      # the runner's processes (proctree.py
                                  # reads them: a container's process tree,
                                  # a unit's cgroup)
    found = find(procs, ("forgejo-runner", "gitea-runner", "act_runner"))
    found.daemons                 # pids of the topmost daemon processes
    found.jobs                    # HostJob per live child of a daemon

A process is the daemon when its command name (/proc/PID/stat's comm:
the executable's or script's file name, 15 bytes at most) or the file
name of its argv[0] is one of the names.  A job is a live (not zombie)
child of a daemon that has no daemon above it; it is named by its pid and
command line, and everything below it belongs to it.

parse_stat() and parse_cmdline() read what /proc/PID/stat and
/proc/PID/cmdline hold.  No I/O here.
"""

import os
from typing import NamedTuple, Tuple

# the Forgejo runner; Gitea's since v1.0.0 (image gitea/runner); Gitea's before
# (act_runner <= v0.6.x): each fits the kernel's 15 bytes of a command name
DEFAULT_DAEMONS = ("forgejo-runner", "gitea-runner", "act_runner")
COMM_MAX = 15  # the kernel keeps this many bytes of a command name
ARGS_MAX = 120  # characters of a job's command line in a report


class Proc(NamedTuple):
    pid: int
    ppid: int
    comm: str  # /proc/PID/stat's command name
    state: str  # R, S, D, Z, ...
    args: str  # the command line, arguments joined by spaces ("" for a kernel thread)


class HostJob(NamedTuple):
    """A running job without a container: a live child of the daemon."""

    pid: int
    command: str

    @property
    def name(self):
        """How reports name it ("pid 4711 (bash -e /tmp/step.sh)");
        decide.jobs_phrase tells it from a job container by the "pid "."""
        return "pid %d (%s)" % (self.pid, self.command)


class Found(NamedTuple):
    daemons: Tuple[int, ...]
    jobs: Tuple[HostJob, ...]


def parse_stat(text):
    """/proc/PID/stat -> (pid, comm, state, ppid); ValueError otherwise.
    The command name sits in parentheses and may hold spaces and
    parentheses itself: it ends at the LAST ")"."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    head, sep, rest = text.rpartition(")")
    pid, paren, comm = head.partition(" (")
    fields = rest.split()
    if not sep or not paren or len(fields) < 2:
        raise ValueError("not a /proc/PID/stat line: %r" % text[:80])
    return int(pid), comm, fields[0], int(fields[1])


def parse_cmdline(data):
    """/proc/PID/cmdline (arguments each ended by NUL) -> the arguments."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    return [arg.decode("utf-8", "replace") for arg in data.rstrip(b"\0").split(b"\0")] \
        if data.strip(b"\0") else []


def is_daemon(proc, names):
    """Is this the runner's daemon?  By its command name or argv[0]."""
    if proc.state == "Z":
        return False
    wanted = set(names)
    if proc.comm in wanted or proc.comm in {n[:COMM_MAX] for n in wanted if len(n) > COMM_MAX}:
        return True
    argv0 = proc.args.split(" ", 1)[0] if proc.args else ""
    return bool(argv0) and os.path.basename(argv0) in wanted


def _short(args):
    args = " ".join(args.split())
    return args if len(args) <= ARGS_MAX else args[: ARGS_MAX - 3] + "..."


def find(procs, names=DEFAULT_DAEMONS):
    """The daemons among `procs` (Proc list) and their live children, the
    host jobs, in pid order."""
    by_pid = {p.pid: p for p in procs}
    daemons = {p.pid for p in procs if is_daemon(p, names)}

    def under_daemon(proc):
        seen = set()
        pid = proc.ppid
        while pid in by_pid and pid not in seen:
            if pid in daemons:
                return True
            seen.add(pid)
            pid = by_pid[pid].ppid
        return False

    top = sorted(pid for pid in daemons if not under_daemon(by_pid[pid]))
    jobs = tuple(HostJob(p.pid, _short(p.args) or "[%s]" % p.comm)
                 for p in sorted(procs) if p.ppid in top and p.state != "Z"
                 and p.pid not in top)
    return Found(tuple(top), jobs)


def summary(found, names):
    """A debug line: what was found."""
    if not found.daemons:
        return "no daemon process (%s) found: no host jobs looked for" % ", ".join(names)
    return "daemon pid %s, %d host job%s" % (
        ", ".join(str(p) for p in found.daemons), len(found.jobs),
        "" if len(found.jobs) == 1 else "s")
