"""Boot a chroot under a real systemd with systemd-nspawn, and reach it.

    with booted(root) as machine:
        machine.run("systemctl", "is-active", "foo.timer")

The container gets --private-network (only its own loopback: nothing it
does can leave it), is not registered with machined (--register=no) and
stays in the caller's cgroup (--keep-unit): this host has no systemd as
PID 1.  Commands run inside through `nsenter -t PID -a`, PID being the
container's init as seen from the host.
"""

import contextlib
import json
import os
import signal
import subprocess
import time

BOOT_TIMEOUT = 60


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as handle:
            return [int(x) for x in handle.read().split()]
    except OSError:
        return []


def _find_init(nspawn_pid):
    """The container's PID 1: the descendant of nspawn running systemd in
    a PID namespace of its own."""
    host_ns = os.readlink("/proc/self/ns/pid")
    todo = _children(nspawn_pid)
    while todo:
        pid = todo.pop(0)
        try:
            comm = open("/proc/%d/comm" % pid).read().strip()
            ns = os.readlink("/proc/%d/ns/pid" % pid)
        except OSError:
            continue
        if comm == "systemd" and ns != host_ns:
            return pid
        todo += _children(pid)
    return None


class Machine:
    def __init__(self, proc, log_path):
        self.proc = proc
        self.log_path = log_path
        self.pid = None

    def log(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()

    def run(self, *cmd, timeout=60, check=False):
        proc = subprocess.run(
            ["nsenter", "-t", str(self.pid), "-a", "/usr/bin/env", "-i",
             "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", "SYSTEMD_PAGER=", *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                "%s: exit %d\n%s%s" % (" ".join(cmd), proc.returncode, proc.stdout, proc.stderr)
            )
        return proc

    def wait_booted(self, timeout=BOOT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("systemd-nspawn exited %s:\n%s" % (self.proc.returncode, self.log()[-4000:]))
            if self.pid is None:
                self.pid = _find_init(self.proc.pid)
            if self.pid is not None:
                state = self.run("systemctl", "is-system-running").stdout.strip()
                if state in ("running", "degraded"):
                    return state
            time.sleep(0.2)
        raise AssertionError("the container did not finish booting in %ss:\n%s" % (timeout, self.log()[-4000:]))

    def poweroff(self, timeout=30):
        if self.proc.poll() is None:
            if self.pid is not None:
                self.run("systemctl", "poweroff", "--no-block")
            else:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


def run_lines(machine, unit, since, ready=bool, seconds=30.0, settle=0.0):
    """The lines one run of `unit` (its full name) wrote to the journal:
    since `since` (epoch seconds, taken before the run began; the
    machine's clock is the host's), those its unit wrote that carry the
    run's invocation id (read now, after the run) or none.  journald looks
    a line's invocation id up by the unit's name
    (/run/systemd/units/invocation:UNIT), which systemd removes when the
    unit stops: a line read after that carries none, as under load most
    of a short run's lines do (17 of 40 one-line runs of a unit here).
    Polled (poll()) until ready(lines) or `seconds` pass."""
    invocation = machine.run("systemctl", "show", "-p", "InvocationID", "--value", unit,
                             check=True).stdout.strip()
    assert invocation, "%s has no invocation id" % unit

    def read():
        out = machine.run("journalctl", "--no-pager", "--output=json",
                          "--output-fields=MESSAGE,_SYSTEMD_INVOCATION_ID",
                          "--since=@%.6f" % since, "_SYSTEMD_UNIT=" + unit, check=True).stdout
        entries = [json.loads(line) for line in out.splitlines() if line.strip()]
        return [bytes(e["MESSAGE"]).decode(errors="replace") if isinstance(e["MESSAGE"], list)
                else e["MESSAGE"]
                for e in entries if e.get("_SYSTEMD_INVOCATION_ID", invocation) == invocation]

    return poll(read, ready, seconds, settle)


def poll(read, ready, seconds=30.0, settle=0.0):
    """read() until ready(what it read) or `seconds` pass: journald reads
    a service's output stream on its own schedule, so a line may land a
    moment after the unit has finished.  settle: read once more after
    that long, so a late extra line is seen.  -> the last read."""
    deadline = time.monotonic() + seconds
    got = read()
    while not ready(got) and time.monotonic() < deadline:
        time.sleep(0.2)
        got = read()
    if settle:
        time.sleep(settle)
        got = read()
    return got


@contextlib.contextmanager
def booted(root, log_path, extra=(), unified=False):
    """extra: more systemd-nspawn options; unified: the container gets the
    cgroup v2 hierarchy alone (this host's unified one, no controllers in
    it), as a Debian 12 host has, instead of nspawn's default here (the
    host's hybrid layout, v1 controllers read-only)."""
    env = dict(os.environ)
    if unified:
        env["SYSTEMD_NSPAWN_UNIFIED_HIERARCHY"] = "1"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                "systemd-nspawn", "--quiet", "-D", root, "--register=no", "--keep-unit",
                "--console=passive", "--private-network", "--link-journal=no",
                "--resolv-conf=off", "--timezone=off", *extra, "-b",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    machine = Machine(proc, log_path)
    try:
        machine.wait_booted()
        yield machine
    finally:
        machine.poweroff()
