"""make check-fleet: ansible-lint on the role, then its Molecule scenarios
on a systemd host.

    python3 tests/package/fleet.py [SCENARIO ...]     (default: every scenario)

What it needs, each cached under CACHE (/var/cache/forgejo-runner-guard)
as the packaging tests cache their chroots:

  fleet-venv-<key>/                  a venv (Debian's python3) with the pinned
                                     contrib/ansible/requirements.txt from PyPI:
                                     ansible, molecule, molecule-plugins[docker],
                                     ansible-lint; <key> hashes that file
  bookworm-fleet-<key>.root.tar      the packaging tests' systemd chroot
                                     (tests/helpers/pkg_chroot.py) + systemd-sysv,
                                     python3-apt, python3-yaml and dbus: a Debian
                                     host Ansible can manage, made without any
                                     registry; <key> hashes the systemd root's
                                     name, FLEET_VERSION and those packages

First `ansible-lint --offline --profile production` runs in contrib/ansible
(the role, site.yml and the Molecule scenarios, with the role on
ANSIBLE_ROLES_PATH): a change that breaks Ansible's own conventions fails
check-fleet there, as a failing scenario does (the scenarios still run).
--offline: it installs nothing and asks no server for newer releases or
schemas; its caches go to a temporary ANSIBLE_HOME and XDG_CACHE_HOME and
the venv (VIRTUAL_ENV), not to ~/.ansible or the tree.

Then it builds the .deb (`make deb`, into a temporary OUT; FRG_DEB=PATH
uses that one instead), starts the
tests' own throwaway dockerd (tests/helpers/engine.py: vfs, no bridge, no
iptables), `docker import`s the tarball as frg-fleet-bookworm:latest and
runs `molecule test -s SCENARIO` against it with DOCKER_HOST pointing at
that engine.  The instances run /lib/systemd/systemd as PID 1 without
--privileged (tmpfs /run and /run/lock, /sys/fs/cgroup read-only,
container=docker) and with --network none: the hosts file the role pins is
the container's own /etc/hosts, never this machine's, and nothing leaves
the machine.  Prints how long each step took.
"""

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TESTS)
sys.path.insert(0, TESTS)

from helpers import engine, pkg_chroot  # noqa: E402

CACHE = pkg_chroot.CACHE
FLEET_VERSION = "1"
IMAGE = "frg-fleet-bookworm:latest"
ANSIBLE_DIR = os.path.join(ROOT, "contrib", "ansible")
REQUIREMENTS = os.path.join(ANSIBLE_DIR, "requirements.txt")
SCENARIOS = ("default", "bad_pin")
# What a host Ansible manages needs beyond the packaging tests' systemd root.
FLEET_PACKAGES = ("systemd-sysv", "python3-apt", "python3-yaml", "dbus")
SYSPY = "/usr/bin/python3"


def step(label, started):
    print("check-fleet: %s: %.0fs" % (label, time.monotonic() - started), flush=True)


def venv():
    """The cached venv with the pinned Ansible and Molecule -> its bin/."""
    with open(REQUIREMENTS, "rb") as handle:
        key = hashlib.sha256(handle.read() + SYSPY.encode()).hexdigest()[:12]
    path = os.path.join(CACHE, "fleet-venv-%s" % key)
    with pkg_chroot._cache_lock():
        if not os.path.exists(os.path.join(path, ".stamp")):
            shutil.rmtree(path, ignore_errors=True)
            pkg_chroot.run([SYSPY, "-m", "venv", path])
            pkg_chroot.run(
                [os.path.join(path, "bin", "pip"), "install", "-q", "--disable-pip-version-check",
                 "-r", REQUIREMENTS],
                timeout=1200,
            )
            open(os.path.join(path, ".stamp"), "w").close()
    return os.path.join(path, "bin")


def lint(bindir):
    """ansible-lint's production profile on contrib/ansible -> its exit status."""
    home = tempfile.mkdtemp(prefix="frg-fleet-lint-", dir="/tmp")
    env = dict(os.environ)
    env.update(
        PATH=bindir + os.pathsep + env.get("PATH", ""),
        VIRTUAL_ENV=os.path.dirname(bindir),  # ansible-compat's cache: in the venv
        ANSIBLE_HOME=home,
        XDG_CACHE_HOME=home,
        ANSIBLE_ROLES_PATH=os.path.join(ANSIBLE_DIR, "roles"),
        ANSIBLE_NOCOLOR="1",
        NO_COLOR="1",
    )
    env.pop("PYTHONPATH", None)
    try:
        return subprocess.run(
            [os.path.join(bindir, "ansible-lint"), "--offline", "--profile", "production"],
            cwd=ANSIBLE_DIR, env=env, timeout=600,
        ).returncode
    finally:
        shutil.rmtree(home, ignore_errors=True)


def image_tarball():
    """The cached root of the managed host (see the module's docstring)."""
    base = pkg_chroot.systemd_tarball(pkg_chroot.host_debian_sources())
    # keyed by the root it grows from (whose name carries the apt sources and
    # its own packages), the recipe's version and the packages it adds
    key = hashlib.sha256(
        (os.path.basename(base) + FLEET_VERSION + " ".join(FLEET_PACKAGES)).encode()
    ).hexdigest()[:12]
    tarball = os.path.join(CACHE, "%s-fleet-%s.root.tar" % (pkg_chroot.SUITE, key))
    with pkg_chroot._cache_lock():
        if os.path.exists(tarball):
            return tarball
        root = pkg_chroot.new_root(base)
        try:
            pkg_chroot.in_chroot(
                root,
                "apt-get update -q && apt-get install -y -q --no-install-recommends %s"
                " && apt-get clean && rm -rf /var/lib/apt/lists/*"
                # what `docker import` would otherwise carry from this machine
                " && : > /etc/machine-id && rm -f /etc/hostname"
                % " ".join(FLEET_PACKAGES),
                timeout=900,
            )
            pkg_chroot._save(root, tarball)
        finally:
            pkg_chroot.remove(root)
    return tarball


def import_image(host, tarball):
    with open(tarball, "rb") as handle:
        result = subprocess.run(
            ["docker", "import", "--change", 'CMD ["/lib/systemd/systemd"]', "-", IMAGE],
            stdin=handle, env=dict(os.environ, DOCKER_HOST=host),
            capture_output=True, text=True, timeout=600,
        )
    if result.returncode != 0:
        raise SystemExit("check-fleet: docker import failed: %s" % result.stderr.strip())


def build_deb(out):
    subprocess.run(["make", "-s", "deb", "OUT=" + out], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    (deb,) = [f for f in os.listdir(out) if f.endswith("_all.deb")]
    return os.path.join(out, deb)


@contextlib.contextmanager
def throwaway_engine():
    root = tempfile.mkdtemp(prefix="frg-fleet-engine-", dir="/tmp")
    try:
        yield engine.start(root)
    finally:
        engine.stop(root)
        shutil.rmtree(root, ignore_errors=True)


def molecule(bindir, host, deb, scenario):
    env = dict(os.environ)
    env.update(
        PATH=bindir + os.pathsep + env.get("PATH", ""),
        DOCKER_HOST=host,
        FRG_DEB=deb,
        FRG_IMAGE=IMAGE,
        ANSIBLE_ROLES_PATH=os.path.join(ANSIBLE_DIR, "roles"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PY_COLORS="0",
        MOLECULE_NO_LOG="false",
        # one `docker exec` per task instead of a temp dir, a copy and an exec
        ANSIBLE_PIPELINING="True",
    )
    env.pop("PYTHONPATH", None)  # the role tests the package, not the tree
    return subprocess.run([os.path.join(bindir, "molecule"), "test", "-s", scenario],
                          cwd=ANSIBLE_DIR, env=env).returncode


def main(argv):
    scenarios = argv[1:] or list(SCENARIOS)
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        sys.stderr.write("fleet.py: unknown scenario %s (known: %s)\n" % (unknown, ", ".join(SCENARIOS)))
        return 2
    total = time.monotonic()
    started = time.monotonic()
    bindir = venv()
    step("venv (ansible, molecule, ansible-lint)", started)
    failed = []
    started = time.monotonic()
    if lint(bindir) != 0:
        failed.append("ansible-lint")
    step("ansible-lint --profile production", started)
    started = time.monotonic()
    tarball = image_tarball()
    step("systemd host image tarball", started)
    out = tempfile.mkdtemp(prefix="frg-fleet-deb-", dir="/tmp")
    try:
        started = time.monotonic()
        deb = os.environ.get("FRG_DEB") or build_deb(out)
        step("make deb" if not os.environ.get("FRG_DEB") else "given .deb " + deb, started)
        with throwaway_engine() as host:
            started = time.monotonic()
            import_image(host, tarball)
            step("docker import", started)
            for scenario in scenarios:
                started = time.monotonic()
                if molecule(bindir, host, deb, scenario) != 0:
                    failed.append(scenario)
                step("molecule test -s %s" % scenario, started)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print("check-fleet: %s in %.0fs" % ("FAILED: " + " ".join(failed) if failed
                                       else "ansible-lint and all scenarios passed",
                                       time.monotonic() - total))
    # the closing tally (ansible-lint and each scenario), in the plain form
    # test runners' readers know
    print("check-fleet: %d passed, %d failed" % (1 + len(scenarios) - len(failed), len(failed)), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
