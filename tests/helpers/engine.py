"""A throwaway Docker engine and a busybox image, for tests, bench and demo.

No registry is reachable, so the image is made with `docker import` from a
rootfs holding the static busybox of Debian's busybox-static package.
The engine runs with vfs storage, no bridge and no iptables: containers
get `--network none` or the host's network, and nothing leaves the
machine.

    python3 tests/helpers/engine.py start DIR   # prints DOCKER_HOST=unix://DIR/docker.sock
    python3 tests/helpers/engine.py stop DIR

    with given_or_started():     # the benchmarks: DOCKER_HOST's engine, or
        ...                      # one of their own, stopped after

start(root, own_etc=True) runs dockerd in a private mount namespace whose
/etc is root/etc: a file `hosts` (returned by etc_hosts(root)) and a
symlink to the real entry for everything else.  Docker copies that
`hosts` into each host-network container it starts, and a test can
rewrite it (even by rename) without touching the machine's /etc/hosts.
"""

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

IMAGE = "frg-busybox:latest"
BUSYBOX = "/bin/busybox"  # Debian's busybox-static
APPLETS = ("sh", "sleep", "cat", "echo", "date", "printf", "true", "false", "seq", "kill", "trap")


class EngineError(RuntimeError):
    pass


def _docker(host, *args, timeout=60, **kwargs):
    env = dict(os.environ, DOCKER_HOST=host)
    return subprocess.run(
        ["docker", *args], env=env, timeout=timeout, capture_output=True, text=True, **kwargs
    )


def wait_ready(host, seconds=60.0):
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        try:
            result = _docker(host, "info", "--format", "{{.ServerVersion}}", timeout=10)
            if result.returncode == 0:
                return result.stdout.strip()
            last = result.stderr.strip()
        except subprocess.TimeoutExpired:
            last = "docker info timed out"
        time.sleep(0.2)
    raise EngineError("docker engine at %s not ready after %.0fs: %s" % (host, seconds, last))


def etc_hosts(root):
    """The hosts file an engine started with own_etc=True copies from."""
    return os.path.join(root, "etc", "hosts")


# In the engine's namespace: keep the real /etc reachable at root/realetc,
# then put root/etc over /etc, check that it took, and become dockerd.
_OWN_ETC = """set -e
mount --bind /etc "$R/realetc"
mount --bind "$R/etc" /etc
test -e /etc/.frg-engine-etc
exec "$@"
"""


def _own_etc(root):
    """root/etc: `hosts` plus a symlink for every other entry of /etc."""
    etc, real = os.path.join(root, "etc"), os.path.join(root, "realetc")
    os.makedirs(etc)
    os.makedirs(real)
    for name in os.listdir("/etc"):
        if name == "hosts":
            continue
        source = os.path.join("/etc", name)
        if os.path.islink(source):
            target = os.path.normpath(os.path.join("/etc", os.readlink(source)))
            if target == "/etc" or target.startswith("/etc/"):
                target = real + target[len("/etc"):]
        else:
            target = os.path.join(real, name)
        os.symlink(target, os.path.join(etc, name))
    open(os.path.join(etc, ".frg-engine-etc"), "w").close()
    with open(etc_hosts(root), "w") as handle:
        handle.write("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")


def start(root, own_etc=False):
    """Start dockerd under `root`; return its DOCKER_HOST.  own_etc: in a
    private mount namespace with root/etc as its /etc (see above)."""
    for tool in ("dockerd", "docker"):
        if not shutil.which(tool):
            raise EngineError("%s not found: install Debian's docker.io (make check does)" % tool)
    os.makedirs(root, exist_ok=True)
    host = "unix://%s/docker.sock" % root
    prefix = []
    if own_etc:
        _own_etc(root)
        prefix = ["env", "R=" + root, "unshare", "-m", "--propagation", "private",
                  "sh", "-c", _OWN_ETC, "sh"]
    log = open(os.path.join(root, "dockerd.log"), "ab")
    proc = subprocess.Popen(
        prefix + [
            "dockerd",
            "--storage-driver=vfs",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--bridge=none",
            "--data-root=%s/data" % root,
            "--exec-root=%s/exec" % root,
            "--pidfile=%s/pid" % root,
            "-H",
            host,
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    with open(os.path.join(root, "dockerd.pid"), "w") as handle:
        handle.write(str(proc.pid))
    try:
        wait_ready(host)
    except EngineError:
        stop(root)
        with open(os.path.join(root, "dockerd.log"), errors="replace") as handle:
            tail = handle.read()[-2000:]
        raise EngineError("dockerd did not start; its log ends:\n" + tail)
    return host


def stop(root):
    """Stop the engine started under `root` (its containers die with it)."""
    pidfile = os.path.join(root, "dockerd.pid")
    try:
        with open(pidfile) as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return
    host = "unix://%s/docker.sock" % root
    try:
        ids = _docker(host, "ps", "-aq", timeout=20).stdout.split()
        if ids:
            _docker(host, "rm", "-f", *ids, timeout=60)
    except (subprocess.TimeoutExpired, OSError):
        pass
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
                # reap it if it is our child
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            continue
        break
    os.unlink(pidfile)
    # the vfs data and the exec root's mounts go with the engine
    subprocess.run(["umount", "-R", "-l", "%s/exec" % root], capture_output=True)
    shutil.rmtree(os.path.join(root, "data"), ignore_errors=True)


@contextlib.contextmanager
def given_or_started():
    """The engine at DOCKER_HOST, or else a throwaway one started here and
    set as DOCKER_HOST, stopped and removed at the end; the image imported."""
    root = None
    if not os.environ.get("DOCKER_HOST"):
        root = tempfile.mkdtemp(prefix="frg-bench-engine-", dir="/tmp")
        os.environ["DOCKER_HOST"] = start(root)
        print("started a throwaway engine: %s" % os.environ["DOCKER_HOST"])
    try:
        ensure_image(os.environ["DOCKER_HOST"])
        yield os.environ["DOCKER_HOST"]
    finally:
        if root:
            stop(root)
            subprocess.run(["rm", "-rf", root])


def rootfs_tar(busybox=BUSYBOX):
    """A tar of a minimal rootfs: busybox and a few applet links."""
    if not os.path.exists(busybox):
        raise EngineError("%s not found: install Debian's busybox-static (make check does)" % busybox)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "tmp", "proc", "sys", "dev"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in APPLETS:
            info = tarfile.TarInfo("bin/" + applet)
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
    return buf.getvalue()


def ensure_image(host, image=IMAGE):
    if _docker(host, "image", "inspect", image).returncode == 0:
        return image
    result = subprocess.run(
        ["docker", "import", "--change", 'CMD ["/bin/sh"]', "-", image],
        input=rootfs_tar(),
        env=dict(os.environ, DOCKER_HOST=host),
        capture_output=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise EngineError("docker import failed: %s" % result.stderr.decode(errors="replace").strip())
    return image


class Relay:
    """A unix socket at `path` whose every connection is carried, byte for
    byte in both directions, to the engine's socket `target` (a path): so a
    booted test machine reaches the test engine through a socket inside its
    root.  stop() closes everything."""

    def __init__(self, path, target):
        import socket
        import threading

        self.path, self.target = path, target
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(path)
        self.server.listen(16)
        self.open = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        import socket
        import threading

        while True:
            try:
                client = self.server.accept()[0]
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            try:
                upstream.connect(self.target)
            except OSError:
                client.close()
                continue
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        import socket

        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stop(self):
        self.server.close()
        for sock in self.open:
            try:
                sock.close()
            except OSError:
                pass
        try:
            os.unlink(self.path)
        except OSError:
            pass


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        sys.stderr.write("usage: engine.py start|stop DIR\n")
        return 2
    root = os.path.abspath(argv[2])
    try:
        if argv[1] == "start":
            host = start(root)
            ensure_image(host)
            print("DOCKER_HOST=%s" % host)
        else:
            stop(root)
    except EngineError as exc:
        sys.stderr.write("engine.py: %s\n" % exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
