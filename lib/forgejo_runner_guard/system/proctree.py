"""Read a runner's processes from the host's /proc, for hostjobs.find().

    subtree(pid)        a process and all its descendants
    container(pid)      a container's processes: the subtree of its first
                        process (docker/podman inspect's State.Pid, a pid
                        of this host: the engine runs here), or ProcError
    cgroup(path)        the processes of a cgroup and its sub-cgroups: a
                        systemd unit's (`systemctl show -p ControlGroup`),
                        on the unified hierarchy (cgroup v2), the hybrid one
                        or v1's name=systemd hierarchy

Each process is a hostjobs.Proc from /proc/PID/stat and /proc/PID/cmdline.
A process that ends while it is read is left out.  ProcError (a
GuardError, exit 1) when /proc or the cgroup cannot be read at all: the
job guard must not guess.
"""

import errno
import os

from ..runners import hostjobs
from ..report import GuardError, why

PROC = "/proc"
CGROUP_FS = "/sys/fs/cgroup"


class ProcError(GuardError):
    pass


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def read(pid, proc=PROC):
    """hostjobs.Proc of one process, or None when it is gone."""
    try:
        pid_, comm, state, ppid = hostjobs.parse_stat(_read("%s/%d/stat" % (proc, pid)))
        args = hostjobs.parse_cmdline(_read("%s/%d/cmdline" % (proc, pid)))
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            return None
        raise ProcError("cannot read process %d in %s: %s" % (pid, proc, why(exc)))
    return hostjobs.Proc(pid_, ppid, comm, state, " ".join(args))


def _ppids(proc):
    """{pid: ppid} of every process on the host."""
    try:
        names = os.listdir(proc)
    except OSError as exc:
        raise ProcError("cannot list the processes in %s: %s" % (proc, why(exc)))
    result = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            stat = _read("%s/%s/stat" % (proc, name))
            pid, _comm, _state, ppid = hostjobs.parse_stat(stat)
        except (OSError, ValueError):
            continue  # gone meanwhile
        result[pid] = ppid
    return result


def subtree(root, proc=PROC):
    """The process `root` and its descendants (hostjobs.Proc list)."""
    ppids = _ppids(proc)
    if root not in ppids:
        return []
    children = {}
    for pid, ppid in ppids.items():
        children.setdefault(ppid, []).append(pid)
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, ()))
    return [p for p in (read(pid, proc) for pid in sorted(pids)) if p is not None]


def container(pid, proc=PROC):
    """A running container's processes: the subtree of its State.Pid.
    ProcError when there is no such process here: the engine runs on
    another host or in another pid namespace, and the jobs cannot be seen."""
    procs = subtree(pid, proc)
    if not procs:
        raise ProcError("the container's first process (pid %d) is not in %s: the watchdog "
                        "must run on the engine's host, in its pid namespace" % (pid, proc))
    return procs


def cgroup_dir(path, root=CGROUP_FS):
    """The directory of cgroup `path` ("/system.slice/x.service"): on the
    unified hierarchy when there is one, else on name=systemd (v1)."""
    rel = path.strip("/")
    for base in (root, os.path.join(root, "unified"), os.path.join(root, "systemd")):
        where = os.path.join(base, rel)
        if os.path.isfile(os.path.join(where, "cgroup.procs")):
            return where
    raise ProcError("cgroup %s not found under %s (neither cgroup v2 nor v1's systemd "
                    "hierarchy has it)" % (path, root))


def cgroup(path, root=CGROUP_FS, proc=PROC):
    """The processes of cgroup `path` and of its sub-cgroups."""
    top = cgroup_dir(path, root)
    pids = set()
    for where, _dirs, files in os.walk(top):
        if "cgroup.procs" not in files:
            continue
        try:
            text = _read(os.path.join(where, "cgroup.procs")).decode("ascii", "replace")
        except FileNotFoundError:
            continue  # a sub-cgroup removed meanwhile
        except OSError as exc:
            raise ProcError("cannot read %s/cgroup.procs: %s" % (where, why(exc)))
        pids.update(int(p) for p in text.split() if p.isdigit())
    return [p for p in (read(pid, proc) for pid in sorted(pids)) if p is not None]
