"""engine = podman from the packaged timer's unit, on a Podman host without
Docker, under a real systemd (issue 22, part 1).

The machine: the packaging tests' systemd chroot with Debian 12's podman
4.3.1 and catatonit (pkg_chroot.podman_tarball, cached like the others),
the .deb installed, booted under systemd-nspawn with the cgroup v2
hierarchy alone, as a Debian 12 host has it.  Podman keeps its own
defaults there (Debian's podman.socket enabled, events and container logs
in the journal: log_driver journald) except what this machine forces
(PODMAN_FACTS).  No Docker, no docker CLI.

The runner is tests/helpers/fakerunner.sh in the busybox image, started
with the podman CLI (--network none, --init = catatonit), its log in the
journal.  The watchdog runs as the timer runs it: `systemctl start
forgejo-runner-watchdog.service`, the packaged unit with the drop-in
the runbook installs (debian/examples/podman.conf, copied from the
installed package's examples).
"""

import json
import os
import re
import shutil
import tempfile
import time

import pytest

from helpers import engine, pkg_chroot, pkg_nspawn
from helpers.tools import ROOT

pytestmark = pytest.mark.package

UNIT = "forgejo-runner-watchdog.service"
DOC = "usr/share/doc/forgejo-runner-guard"
DROPIN = "etc/systemd/system/%s.d/override.conf" % UNIT  # what systemctl edit writes
GUARD_DROPIN = "etc/forgejo-runner-guard/guard.conf.d/50-podman.conf"
RUNNER = "forgejo_runner"
FAKE_RUNNER = os.path.join(ROOT, "tests", "helpers", "fakerunner.sh")
HERE = "/usr/local/lib/frg-podman"  # in the machine: the fake runner and the image

# What this machine forces on Podman; everything else is Podman's default.
#   storage vfs         no overlay mounts inside the nspawn container
#   cgroups disabled    crun's device filter on cgroup v2 is a BPF program,
#                       and crun raises RLIMIT_MEMLOCK to load it, which
#                       this VM forbids (CAP_SYS_RESOURCE is not in its
#                       bounding set); the machine has no D-Bus for the
#                       systemd cgroup manager either (cgroupfs)
#   default_ulimits     within this VM's hard limits (podman_engine.py)
# nspawn's own seccomp filter forbids the keyring calls crun makes for
# every container: the machine is booted with --system-call-filter=@keyring.
PODMAN_FACTS = {
    "etc/containers/storage.conf": '[storage]\ndriver = "vfs"\ngraphroot = "/var/lib/containers/storage"\n'
                                   'runroot = "/run/containers/storage"\n',
    "etc/containers/containers.conf": '[containers]\ncgroups = "disabled"\n'
                                      'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n\n'
                                      '[engine]\ncgroup_manager = "cgroupfs"\n',
}


class PodmanMachine:
    def __init__(self, machine, root):
        self.machine = machine
        self.root = root

    def run(self, *cmd, **kwargs):
        return self.machine.run(*cmd, **kwargs)

    def podman(self, *args, check=True, timeout=60):
        return self.machine.run("podman", *args, check=check, timeout=timeout)

    def started(self, name=RUNNER):
        return self.podman("inspect", "--format", "{{.State.StartedAt}}", name).stdout.strip()

    def runner(self, *steps, lines):
        """A fresh runner container (fakerunner.sh STEPS), its log in the
        journal (Podman's default log driver here); waits for `lines` lines
        of its log as `podman logs` reads it."""
        self.podman("rm", "-f", "-t", "0", RUNNER, check=False)
        self.podman("run", "-d", "--init", "--network", "none", "--name", RUNNER, "-v",
                    "%s/fakerunner.sh:/fakerunner.sh:ro" % HERE, engine.IMAGE, "sh",
                    "/fakerunner.sh", *steps)
        deadline = time.monotonic() + 20
        while True:
            got = self.podman("logs", RUNNER).stderr.count("\n")
            if got >= lines:
                return self.started()
            assert time.monotonic() < deadline, "%s logged %d lines, not %d" % (RUNNER, got, lines)
            time.sleep(0.1)

    def watchdog_unit(self):
        """Start the packaged unit as its timer does; -> (exit status of
        `systemctl start`, the lines the run logged)."""
        self.run("rm", "-f", "/var/lib/forgejo-runner-guard/state.json", check=True)
        since = time.time()
        proc = self.run("systemctl", "start", UNIT, timeout=120)
        lines = pkg_nspawn.run_lines(self, UNIT, since, lambda lines: any(
            line.startswith(RUNNER + ": ") for line in lines), seconds=60)
        return proc.returncode, [line for line in lines if line.strip()]

    def write(self, path, text, mode=0o644):
        full = os.path.join(self.root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as handle:
            handle.write(text)
        os.chmod(full, mode)


@pytest.fixture(scope="module")
def podman_machine(packages, sources):
    started = time.monotonic()
    root = pkg_chroot.new_root(pkg_chroot.podman_tarball(sources))
    log = tempfile.mkstemp(prefix="frg-nspawn-podman-", suffix=".log", dir="/tmp")[1]
    try:
        deb = os.path.basename(packages["native"])
        shutil.copy(packages["native"], os.path.join(root, "tmp", deb))
        # its dependencies are in the root already: no download, so not
        # the shared apt cache either (whose lock another chroot may hold)
        pkg_chroot.in_chroot(root, "apt-get install -y -q --no-install-recommends /tmp/%s; rm /tmp/%s"
                             % (deb, deb), timeout=600, apt_cache=False)
        made = PodmanMachine(None, root)
        for path, text in PODMAN_FACTS.items():
            made.write(path, text)
        made.write(HERE.lstrip("/") + "/fakerunner.sh", open(FAKE_RUNNER).read())
        with open(os.path.join(root, HERE.lstrip("/"), "busybox.tar"), "wb") as handle:
            handle.write(engine.rootfs_tar())
        with pkg_nspawn.booted(root, log, extra=("--system-call-filter=@keyring",),
                               unified=True) as machine:
            made.machine = machine
            made.podman("import", "--change", 'CMD ["/bin/sh"]', HERE + "/busybox.tar", engine.IMAGE,
                        timeout=120)
            print("podman machine ready in %.1fs" % (time.monotonic() - started))
            yield made
    finally:
        pkg_chroot.remove(root)
        os.unlink(log)


def runbook_steps():
    """The runbook's steps in its section "A runner under Podman": the
    guard.conf drop-in (its ```ini block: path, text) and the unit's
    drop-in (the ```sh line `systemctl edit UNIT  # paste examples/NAME`:
    the command, NAME)."""
    with open(os.path.join(ROOT, "runbook", "08-forgejo-runner-lan-pin-and-watchdog.md")) as handle:
        text = handle.read()
    section = text[text.index("### A runner under Podman"):]
    section = section[:section.index("\n### ")]
    ini = re.search(r"^```ini\n# (/\S+)\n(.*?)^```$", section, re.S | re.M)
    edit = re.search(r"^(systemctl edit \S+)\s+# paste examples/(\S+)$", section, re.M)
    return ini.group(1), ini.group(2), edit.group(1), edit.group(2)


@pytest.fixture
def podman_host(podman_machine):
    """The machine with engine = podman in a guard.conf.d drop-in and the
    example unit drop-in, installed as the runbook says; removed after."""
    m = podman_machine
    path, text, edit, example = runbook_steps()
    assert (path, text, example) == ("/" + GUARD_DROPIN, "[watchdog]\nengine = podman\n", "podman.conf")
    # no forge in this machine: the subject is Podman, not the Ping
    m.write(GUARD_DROPIN, text + "verify = none\n")
    # systemctl edit (on a terminal: script(1) gives it one), the example
    # pasted: the editor copies it in
    m.run("script", "-qec", "SYSTEMD_EDITOR='cp /%s/examples/%s' %s" % (DOC, example, edit), "/dev/null",
          check=True)
    # (systemctl edit drops the file's last newline)
    assert open(os.path.join(m.root, DROPIN)).read() == open(os.path.join(ROOT, "debian", "examples",
                                                                           example)).read().rstrip("\n")
    try:
        yield m
    finally:
        m.podman("rm", "-f", "-t", "0", "-a", check=False, timeout=120)
        for path in (GUARD_DROPIN, DROPIN):
            if os.path.exists(os.path.join(m.root, path)):
                os.unlink(os.path.join(m.root, path))
        m.run("systemctl", "reset-failed")
        m.run("systemctl", "daemon-reload")


def test_podman_host_as_debian_sets_it_up(podman_machine):
    m = podman_machine
    assert m.run("sh", "-c", "command -v docker").returncode != 0  # no Docker here
    info = json.loads(m.podman("info", "--format", "json").stdout)
    assert info["version"]["Version"] == "4.3.1"
    assert (info["host"]["logDriver"], info["host"]["eventLogger"]) == ("journald", "journald")
    assert m.run("systemctl", "is-enabled", "podman.socket").stdout.strip() == "enabled"
    assert m.run("systemctl", "is-active", "podman.socket").stdout.strip() == "active"


def test_shipped_unit_alone_cannot_run_podman(podman_machine):
    """Without the drop-in the podman CLI runs locally inside the sandbox:
    one line naming podman's failure, exit 1, nothing restarted."""
    m = podman_machine
    m.write(GUARD_DROPIN, "[watchdog]\nengine = podman\nverify = none\n")
    try:
        before = m.runner("wedged", "60", lines=60)
        status, lines = m.watchdog_unit()
        assert status != 0 and len(lines) >= 1, lines
        tool = [line for line in lines if line.startswith(RUNNER + ": ")]
        assert len(tool) == 1 and "podman inspect %s failed" % RUNNER in tool[0], lines
        assert m.started() == before
    finally:
        os.unlink(os.path.join(m.root, GUARD_DROPIN))
        m.podman("rm", "-f", "-t", "0", "-a", check=False, timeout=120)
        m.run("systemctl", "reset-failed")


def test_the_unit_with_the_dropin_restarts_a_wedged_podman_runner(podman_host):
    m = podman_host
    before = m.runner("wedged", "60", lines=60)
    assert m.podman("inspect", "--format", "{{.HostConfig.LogConfig.Type}}", RUNNER).stdout.strip() \
        == "journald"
    # its log is in the journal (Podman's default here), and `podman logs`
    # reads it from there: by hand (the podman CLI on this host's storage,
    # the journal's own times) every line counts
    ident = m.podman("inspect", "--format", "{{.Id}}", RUNNER).stdout.strip()
    journal = m.run("journalctl", "--no-pager", "-o", "cat", "CONTAINER_ID_FULL=" + ident, check=True).stdout
    assert journal.count("failed to fetch task") == 60, journal
    m.run("mkdir", "-p", "/var/lib/frg-podman-dry", check=True)
    proc = m.run("forgejo-runner-watchdog", "--dry-run", "--json", "--state-dir", "/var/lib/frg-podman-dry")
    doc = json.loads(proc.stdout)["runners"][0]
    assert (doc["decision"], doc["errors"], doc["log_source"]) == ("wedged", 60, "stderr"), proc.stderr
    # the timer's run, through Podman's service: its times are whole
    # seconds, so lines of the runner's first second may not count
    status, lines = m.watchdog_unit()
    assert status == 0, lines
    match = re.fullmatch(
        r"%s: (\d+) fetch errors in \d+s \(threshold 40\), newest \ds ago \(transport: connection reset\), "
        r"no job running: restarted" % RUNNER, lines[0] if len(lines) == 1 else "")
    assert match and 40 <= int(match.group(1)) <= 60, (
        lines, m.run("journalctl", "--no-pager", "-n", "30", "-u", UNIT).stdout)
    print("through the service: %s of 60 errors counted" % match.group(1))
    after = m.started()
    assert after != before
    # The runner outlives the run that restarted it: Podman's service
    # started it, outside the watchdog's unit and its sandbox.
    time.sleep(2)
    state = m.podman("inspect", "--format", "{{.State.Status}} {{.State.StartedAt}} {{.State.Pid}}",
                     RUNNER).stdout.split(" ", 1)
    assert state[0] == "running" and state[1].startswith(after), state
    pid = state[1].split()[-1]
    cgroup = m.run("cat", "/proc/%s/cgroup" % pid, check=True).stdout
    assert UNIT not in cgroup and "podman.service" in cgroup, cgroup
    status = m.run("grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/%s/status" % pid, check=True).stdout
    assert "NoNewPrivs:\t0" in status, status  # the unit's NoNewPrivileges= is not the runner's


def test_a_podman_job_container_blocks_the_restart(podman_host):
    m = podman_host
    before = m.runner("wedged", "60", lines=60)
    job = "FORGEJO-ACTIONS-TASK-7_WORKFLOW-build_JOB-test"
    m.podman("run", "-d", "--network", "none", "--name", job, engine.IMAGE, "sleep", "3600")
    status, lines = m.watchdog_unit()
    assert status == 0, lines
    assert len(lines) == 1 and lines[0].endswith(
        "job container %s running: wedged, not restarted while a job runs: skipped" % job), lines
    assert m.started() == before
    # the job ends: the next run restarts
    m.podman("rm", "-f", "-t", "0", job)
    status, lines = m.watchdog_unit()
    assert status == 0 and lines[0].endswith(": restarted"), lines
    assert m.started() != before


def _exposure(tree, unit=UNIT):
    proc = pkg_chroot.run(["systemd-analyze", "security", "--offline=true", "--root=" + tree, unit], cwd="/")
    match = re.search(r"Overall exposure level for %s: (\d+\.\d+)" % re.escape(unit), proc.stdout)
    assert match, proc.stdout
    failed = {line.split()[1] for line in proc.stdout.splitlines() if line.startswith("\u2717 ")}
    return float(match.group(1)), failed


def test_the_dropin_widens_the_sandbox_by_setrlimit_alone(packages, tmp_path):
    """systemd-analyze security of the unit as installed, then with the
    drop-in: the one check that changes is @resources (setrlimit)."""
    tree = str(tmp_path / "tree")
    pkg_chroot.run(["dpkg-deb", "-x", packages["native"], tree])
    shutil.copytree("/usr/lib/systemd/system", os.path.join(tree, "usr/lib/systemd/system"), symlinks=True)
    plain, plain_failed = _exposure(tree)
    os.makedirs(os.path.dirname(os.path.join(tree, DROPIN)))
    shutil.copy(os.path.join(tree, DOC, "examples", "podman.conf"), os.path.join(tree, DROPIN))
    widened, widened_failed = _exposure(tree)
    print("exposure: %s %.1f, with the podman drop-in %.1f" % (UNIT, plain, widened))
    assert widened_failed - plain_failed == {"SystemCallFilter=~@resources"}, widened_failed
    assert plain_failed <= widened_failed
    assert plain < widened <= 2.0
