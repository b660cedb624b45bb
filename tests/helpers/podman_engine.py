"""A throwaway Podman for tests (Debian 12's podman 4.3.1), run as root
without systemd and without touching the machine's own containers.

Podman has no daemon: every `podman` command reads its configuration from
the files the environment names, so a Podman of the tests' own is two
files and a directory:

    storage.conf      driver "vfs" (no overlay mounts to leak), a private
                      graphroot and runroot under ROOT
    containers.conf   cgroup_manager "cgroupfs" and events_logger "file"
                      (no systemd, no journal), default_ulimits within this
                      machine's hard limits (podman's defaults exceed them
                      and runc refuses), base_hosts_file ROOT/hosts: what a
                      host-network container's /etc/hosts is made from at
                      each start, so a test can pin it without touching the
                      machine's /etc/hosts

env() names them (CONTAINERS_STORAGE_CONF, CONTAINERS_CONF) for every
podman a test runs, the tools included.  The busybox image is made with
`podman import` of tests/helpers/engine.py's rootfs; `--init` needs Debian's
catatonit.  serve() starts `podman system service --time 0
unix://ROOT/podman.sock`, Podman's Docker-compatible API: the Docker CLI
works against it as it is (DOCKER_HOST=unix://ROOT/podman.sock).
tests/conftest.py's session fixture `podman` is start() and stop().
"""

import os
import shutil
import signal
import subprocess
import time

from helpers import engine  # the rootfs and the image name

IMAGE = engine.IMAGE

STORAGE_CONF = """[storage]
driver = "vfs"
graphroot = "{root}/graph"
runroot = "{root}/run"
"""

CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
base_hosts_file = "{root}/hosts"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
"""

HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


class PodmanError(RuntimeError):
    pass


class Podman:
    """The Podman under `root`."""

    def __init__(self, root):
        self.root = root
        self.hosts = os.path.join(root, "hosts")
        self.socket = os.path.join(root, "podman.sock")
        self.docker_host = "unix://" + self.socket

    def env(self, extra=None):
        """What a podman command (or a tool running podman) needs."""
        env = {"CONTAINERS_STORAGE_CONF": os.path.join(self.root, "storage.conf"),
               "CONTAINERS_CONF": os.path.join(self.root, "containers.conf")}
        env.update(extra or {})
        return env

    def podman(self, *args, check=True, timeout=60, input=None):
        result = subprocess.run(["podman", *args], env=dict(os.environ, **self.env()),
                                capture_output=True, timeout=timeout, input=input,
                                text=input is None)
        if check and result.returncode != 0:
            raise PodmanError("podman %s: %s" % (" ".join(args), str(result.stderr).strip()))
        return result

    def setup(self):
        for tool in ("podman", "/usr/bin/catatonit"):
            if not shutil.which(tool):
                raise PodmanError("%s not found: install Debian's podman and catatonit "
                                  "(make check does)" % tool)
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, "storage.conf"), "w") as handle:
            handle.write(STORAGE_CONF.format(root=self.root))
        with open(os.path.join(self.root, "containers.conf"), "w") as handle:
            handle.write(CONTAINERS_CONF.format(root=self.root))
        with open(self.hosts, "w") as handle:
            handle.write(HOSTS)
        if self.podman("image", "exists", IMAGE, check=False).returncode != 0:
            result = self.podman("import", "--change", 'CMD ["/bin/sh"]', "-", IMAGE,
                                 input=engine.rootfs_tar(), timeout=120, check=False)
            if result.returncode != 0:
                raise PodmanError("podman import failed: %s"
                                  % result.stderr.decode(errors="replace").strip())
        return self

    def serve(self, seconds=30.0):
        """Start Podman's Docker-compatible API on ROOT/podman.sock."""
        log = open(os.path.join(self.root, "service.log"), "ab")
        proc = subprocess.Popen(["podman", "system", "service", "--time", "0", self.docker_host],
                                env=dict(os.environ, **self.env()), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True)
        with open(os.path.join(self.root, "service.pid"), "w") as handle:
            handle.write(str(proc.pid))
        deadline = time.monotonic() + seconds
        while True:
            ping = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                                  env=dict(os.environ, DOCKER_HOST=self.docker_host),
                                  capture_output=True, text=True, timeout=10)
            if ping.returncode == 0:
                return self.docker_host
            if proc.poll() is not None or time.monotonic() > deadline:
                raise PodmanError("podman system service did not answer: %s"
                                  % ping.stderr.strip())
            time.sleep(0.1)

    def clean(self):
        """Remove every container."""
        self.podman("rm", "-fa", "-t", "0", check=False, timeout=120)

    def stop(self):
        """Stop the service, remove the containers, unmount and delete
        what podman made under ROOT."""
        pidfile = os.path.join(self.root, "service.pid")
        if os.path.exists(pidfile):
            with open(pidfile) as handle:
                pid = int(handle.read().strip())
            try:
                os.killpg(pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(pid, 0)
                    try:
                        os.waitpid(pid, os.WNOHANG)
                    except ChildProcessError:
                        pass
                    time.sleep(0.05)
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.unlink(pidfile)
        if os.path.exists(os.path.join(self.root, "storage.conf")):
            self.clean()
        subprocess.run(["umount", "-R", "-l", os.path.join(self.root, "run")],
                       capture_output=True)
        subprocess.run(["rm", "-rf", self.root])


def start(root):
    """A Podman under `root` with the image and the Docker API served."""
    podman = Podman(root).setup()
    try:
        podman.serve()
    except BaseException:
        podman.stop()
        raise
    return podman

