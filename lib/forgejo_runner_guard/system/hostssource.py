"""Which hosts file a container engine copies into a host-network
container when it starts one (--refresh-stale: would a restart give the
runner the pins?).

Docker copies /etc/hosts as the daemon sees it: the daemon's own mount
namespace, reached from here as /proc/PID/root/etc/hosts, PID from the
peer credentials of its socket (DOCKER_HOST, default
/var/run/docker.sock; a socket systemd activates gives systemd's PID 1,
whose /etc/hosts the daemon shares).  Podman makes it from
containers.conf's base_hosts_file (default /etc/hosts) as the podman
process sees it: the podman CLI is this process's own child; `podman
system service` behind DOCKER_HOST is found as Docker's daemon is, and
its environment (CONTAINERS_CONF) read from /proc/PID/environ.

source(program) -> Source(path, what) or None when it cannot be told: a
remote engine (tcp://, ssh://, CONTAINER_HOST), a socket that does not
answer, a base_hosts_file of "image" or "none" (the host's pins never
reach such a container).  Reads only; never raises.
"""

import glob
import os
import re
import socket
import struct
from typing import NamedTuple

from .engines import DEFAULT_HOST

# containers.conf as Podman reads it when CONTAINERS_CONF does not name one
CONTAINERS_CONFS = ("/usr/share/containers/containers.conf", "/etc/containers/containers.conf")
CONTAINERS_CONF_D = "/etc/containers/containers.conf.d"


class Source(NamedTuple):
    path: str  # as this process opens it
    what: str  # for messages: "/etc/hosts of the Docker daemon (pid 812)"


def source(program="docker", environ=None):
    """The hosts file the engine `program` (docker or podman) copies, or None."""
    environ = os.environ if environ is None else environ
    if program == "podman":
        if environ.get("CONTAINER_HOST"):
            return None  # a remote Podman
        return _podman("", environ, "")
    host = environ.get("DOCKER_HOST") or DEFAULT_HOST
    if not host.startswith("unix://"):
        return None
    pid = peer_pid(host[len("unix://"):])
    if pid is None:
        return None
    root = "/proc/%d/root" % pid
    if _comm(pid).startswith("podman"):
        return _podman(root, _environ(pid), "the Podman service (pid %d)" % pid)
    return Source(root + "/etc/hosts", "/etc/hosts of the Docker daemon (pid %d)" % pid)


def peer_pid(path, timeout=2.0):
    """The PID of the process that listens on the unix socket `path`
    (SO_PEERCRED), or None."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    pid = struct.unpack("3i", creds)[0]
    return pid if pid > 0 else None


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _environ(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as handle:
            data = handle.read()
    except OSError:
        return {}
    pairs = (item.decode("utf-8", "replace").partition("=") for item in data.split(b"\0") if item)
    return {key: value for key, _, value in pairs}


def _podman(root, environ, who):
    """Podman's base_hosts_file under `root` (the podman process's root)."""
    named = environ.get("CONTAINERS_CONF")
    files = [named] if named else (list(CONTAINERS_CONFS)
                                   + sorted(glob.glob(root + CONTAINERS_CONF_D + "/*.conf")))
    value = ""
    for path in files:
        found = base_hosts_file(_read(root + path if not path.startswith(root) else path))
        if found is not None:
            value = found
    if value in ("image", "none"):
        return None
    path = value or "/etc/hosts"
    if not value:
        return Source(root + path, "/etc/hosts of %s" % who if who else path)
    return Source(root + path, "%s (base_hosts_file of %s)" % (path, who or "Podman"))


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


_TABLE = re.compile(r"^\s*\[([^\]]*)\]\s*(?:#.*)?$")
_BASE = re.compile(r"""^\s*base_hosts_file\s*=\s*(?:"([^"]*)"|'([^']*)')\s*(?:#.*)?$""")


def base_hosts_file(text):
    """base_hosts_file in the [containers] table of a containers.conf
    (TOML) text, or None when it is not set there.  Pure."""
    table = None
    value = None
    for line in text.splitlines():
        header = _TABLE.match(line)
        if header:
            table = header.group(1).strip()
            continue
        match = _BASE.match(line)
        if match and table == "containers":
            value = match.group(1) if match.group(1) is not None else match.group(2)
    return value


def same_file(a, b):
    """Are paths `a` and `b` one file (symbolic links followed)?"""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
