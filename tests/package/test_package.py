"""The .deb: built, linted, its units checked by systemd's own tools,
installed and purged in a clean Debian chroot, and booted under a real
systemd (issue 4).

One build per session (`make deb` into a temporary OUT, as a user would).
The chroots come from a debootstrap cache under /var/cache (pkg_chroot).
Nothing here touches the host's /etc/hosts or leaves anything mounted:
the chroot's /etc/hosts is a file inside the chroot, every chroot command
runs in a private mount namespace, and the booted container has only its
own loopback.
"""

import glob
import json
import os
import re
import shutil
import tempfile
import time
import uuid

import pytest

from helpers import forge, pkg_chroot
from helpers import pkg_nspawn
from helpers.tools import LIB, ROOT, run_tool

pytestmark = pytest.mark.package

VERSION = "0.1.0"
PKG = "forgejo-runner-guard"
UNITS = ("optimus-boot-reconcile.service", "forgejo-runner-watchdog.service", "forgejo-runner-watchdog.timer",
         "optimus-boot-reconcile.path")
SERVICES = UNITS[:2]
PATH_UNIT = UNITS[3]
TOOLS = ("optimus-boot-reconcile", "forgejo-runner-watchdog")
RUNBOOK = "08-forgejo-runner-lan-pin-and-watchdog.md"
DOC = "usr/share/doc/%s" % PKG
CONFFILE = "etc/forgejo-runner-guard/guard.conf"
MAX_EXPOSURE = 2.0

PIN_NAME, PIN_ADDRESS = "forge.azrak.io", "10.1.0.10"
HOSTS_GID = 4  # adm, in the chroot
# The chroot's own hosts file: a conflicting public address for the forge,
# which the pin switches off and the purge must switch back on.
CHROOT_HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "203.0.113.7\tforge.azrak.io\n"
)

# What a stand-in cloud-init.service (manage_etc_hosts: true) writes at
# every boot, in place, a second after it starts: the rendering of Debian's
# /etc/cloud/templates/hosts.debian.tmpl, plus a site line with the forge's
# public address.  A boot unit that ran before it would lose the pin.
CLOUD_HOSTS = (
    "# Your system has configured 'manage_etc_hosts' as True.\n"
    "# As a result, if you wish for changes to this file to persist\n"
    "# then you will need to either\n"
    "# a.) make changes to the master file in /etc/cloud/templates/hosts.debian.tmpl\n"
    "# b.) change or remove the value of 'manage_etc_hosts' in\n"
    "#     /etc/cloud/cloud.cfg or cloud-config from user-data\n"
    "#\n"
    "127.0.1.1 frg-test.localdomain frg-test\n"
    "127.0.0.1 localhost\n"
    "203.0.113.7 forge.azrak.io\n"
    "\n"
    "# The following lines are desirable for IPv6 capable hosts\n"
    "::1 localhost ip6-localhost ip6-loopback\n"
    "ff02::1 ip6-allnodes\n"
    "ff02::2 ip6-allrouters\n"
)
# Stand-ins, ordered as the real units are, in the booted chroot.  Neither
# is ordered against the boot unit: only the boot unit's own After=/Before=
# can put it between them.  The stand-in docker.service keeps the hosts
# file it saw when it started (Docker copies it into the runner then).
STAND_INS = {
    "cloud-init.service": (
        "[Unit]\nDescription=stand-in cloud-init (manage_etc_hosts)\nBefore=network-online.target\n\n"
        "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
        "ExecStart=/bin/sh -c 'sleep 1; cat /usr/local/lib/frg-cloud/hosts >/etc/hosts'\n\n"
        "[Install]\nWantedBy=multi-user.target\n"),
    "docker.service": (
        "[Unit]\nDescription=stand-in Docker\nAfter=network-online.target\nWants=network-online.target\n\n"
        "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
        "ExecStart=/bin/cp /etc/hosts /var/lib/frg-docker-saw-hosts\n\n"
        "[Install]\nWantedBy=multi-user.target\n"),
}

# apt and dpkg bookkeeping that an install followed by a purge rightly
# changes (fnmatch globs, `*` crosses "/").  Anything else that differs
# after the purge is something the package left behind.
APT_DPKG_BOOKKEEPING = (
    "var/lib/apt/lists/*",  # apt-get update
    "var/lib/apt/extended_states",  # auto-installed marks
    "var/cache/apt/*.bin",  # apt's binary caches
    "var/lib/dpkg/status",
    "var/lib/dpkg/status-old",
    "var/lib/dpkg/available",
    "var/lib/dpkg/lock*",
    "var/lib/dpkg/triggers/*",
    "var/cache/debconf/*.dat",
    "var/cache/debconf/*.dat-old",
    "var/log/apt/*",
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "etc/ld.so.cache",  # rebuilt by libc's trigger when libraries come and go
    "var/cache/ldconfig/aux-cache",
)


def sh(*cmd, timeout=300, check=True, **kwargs):
    return pkg_chroot.run(list(cmd), timeout=timeout, check=check, **kwargs)


# ------------------------------------------------------------ fixtures
# (packages and sources: tests/conftest.py)


def _extract(deb):
    tree = tempfile.mkdtemp(prefix="frg-tree-", dir="/tmp")
    sh("dpkg-deb", "-x", deb, tree)
    return tree


@pytest.fixture(scope="session")
def tree(packages):
    """The native package unpacked, plus systemd's own units under
    usr/lib/systemd/system (the targets the units' default dependencies
    name), so that systemd-analyze can load the units as installed."""
    tree = _extract(packages["native"])
    shutil.copytree("/usr/lib/systemd/system", os.path.join(tree, "usr/lib/systemd/system"), symlinks=True)
    yield tree
    shutil.rmtree(tree, ignore_errors=True)


def deb_paths(deb):
    """Paths in a .deb (no leading ./), with their tar mode string."""
    out = sh("dpkg-deb", "-c", deb).stdout
    paths = {}
    for line in out.splitlines():
        fields = line.split(None, 5)
        path = fields[5].split(" -> ")[0].lstrip(".").lstrip("/").rstrip("/")
        if path:
            paths[path] = fields[0]
    return paths


def control_file(deb, name):
    return sh("sh", "-c", 'dpkg-deb --ctrl-tarfile "$1" | tar -xOf - "./$2"', "-", deb, name).stdout


# ------------------------------------------------------------ 1. build and lint


def test_lintian_pedantic_has_no_errors_warnings_or_stale_overrides(packages):
    # The .changes covers the source package, the .deb and the buildinfo.
    proc = sh("lintian", "-I", "--pedantic", "--show-overrides", packages["changes"], check=False, timeout=300)
    tags = [line for line in proc.stdout.splitlines() if re.match(r"^[EWIPXON]: ", line)]
    bad = [t for t in tags if t.startswith(("E: ", "W: ")) or "unused-override" in t or "mismatched-override" in t]
    assert not bad, "\n".join(tags)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Every override is used (shown as O:) and carries a comment.
    overrides_file = os.path.join(ROOT, "debian", PKG + ".lintian-overrides")
    if os.path.exists(overrides_file):
        lines = open(overrides_file).read().splitlines()
        for number, line in enumerate(lines):
            if line.strip() and not line.startswith("#"):
                tag = line.split()[0]
                assert number and lines[number - 1].startswith("#"), "override without a comment: " + line
                assert any(t.startswith("O: ") and " %s " % tag in t + " " for t in tags), "unused: " + line


# Every module of the source tree, where the package installs it.
LIB_MODULES = tuple(sorted(
    "usr/lib/python3/dist-packages/" + os.path.relpath(os.path.join(d, f), LIB)
    for d, _, files in os.walk(os.path.join(LIB, "forgejo_runner_guard"))
    for f in files if f.endswith(".py")))


def test_native_package_contents(packages):
    paths = deb_paths(packages["native"])
    for path in (
        "usr/bin/optimus-boot-reconcile",
        "usr/bin/forgejo-runner-watchdog",
        *LIB_MODULES,
        CONFFILE,
        "etc/forgejo-runner-guard/guard.conf.d",
        "usr/share/man/man8/optimus-boot-reconcile.8.gz",
        "usr/share/man/man8/forgejo-runner-watchdog.8.gz",
        "%s/%s" % (DOC, RUNBOOK),  # uncompressed
        "%s/copyright" % DOC,
        "%s/examples/notify-failure@.service" % DOC,
        "%s/examples/onfailure.conf" % DOC,
        "%s/examples/notify-network.conf" % DOC,
        "%s/examples/forgejo-runner-guard.rules.yml" % DOC,  # Prometheus alert rules
        "%s/examples/podman.conf" % DOC,
    ) + tuple("lib/systemd/system/" + unit for unit in UNITS):
        assert path in paths, "%s is not in the package" % path
    for tool in TOOLS:
        assert paths["usr/bin/" + tool].startswith("-rwxr-xr-x"), paths["usr/bin/" + tool]
    for example in ("notify-ntfy", "notify-gotify", "notify-apprise", "notify-mail"):
        path = "%s/examples/%s" % (DOC, example)
        assert paths.get(path, "").startswith("-rwxr-xr-x"), (path, paths.get(path))
    # The Ansible role and its Molecule scenarios, every file as in the tree
    # (uncompressed: the role is copied into a roles path and used as is).
    examples = os.path.join(ROOT, "contrib", "ansible")
    shipped = {p for p in paths if p.startswith(DOC + "/examples/ansible/") and paths[p].startswith("-")}
    expected = {"%s/examples/ansible/%s" % (DOC, os.path.relpath(os.path.join(top, f), examples))
                for top, _, files in os.walk(examples) for f in files}
    assert "%s/examples/ansible/roles/forgejo_runner_guard/tasks/main.yml" % DOC in expected
    assert shipped == expected
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in paths)
    assert not [p for p in paths if p.startswith("usr/lib/python3/dist-packages/tests")]

    assert control_file(packages["native"], "conffiles").split() == ["/" + CONFFILE]
    fields = sh("dpkg-deb", "-f", packages["native"], "Architecture", "Section", "Depends", "Recommends").stdout
    assert "Architecture: all" in fields and "Section: admin" in fields
    assert re.search(r"Depends:.*python3-sh \(>= 1\.14\)", fields), fields
    assert re.search(r"Depends:.*python3-yaml\b", fields), fields  # the runner config reader
    assert re.search(r"Recommends:.*docker\.io", fields), fields


def test_stdeb_package_carries_the_same_files_and_scripts(packages):
    native, stdeb = packages["native"], packages["stdeb"]
    # The one expected difference: a native package's changelog is
    # changelog.gz, a non-native one's changelog.Debian.gz.
    rename = {"%s/changelog.Debian.gz" % DOC: "%s/changelog.gz" % DOC}
    theirs = {rename.get(p, p): mode for p, mode in deb_paths(stdeb).items()}
    assert theirs == deb_paths(native)
    for name in ("conffiles", "postinst", "prerm", "postrm"):
        assert control_file(stdeb, name) == control_file(native, name), name
    for path in ["lib/systemd/system/" + u for u in UNITS] + [CONFFILE, "usr/share/doc/%s/%s" % (PKG, RUNBOOK)]:
        a = sh("sh", "-c", 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - "./$2"', "-", native, path).stdout
        b = sh("sh", "-c", 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - "./$2"', "-", stdeb, path).stdout
        assert a == b, path
    fields = sh("dpkg-deb", "-f", stdeb, "Depends", "Architecture").stdout
    assert re.search(r"Depends:.*python3-sh \(>= 1\.14\)", fields) and "Architecture: all" in fields, fields
    assert re.search(r"Depends:.*python3-yaml\b", fields), fields


def test_postinst_enables_boot_unit_and_timer_starts_only_the_timer(packages):
    postinst = control_file(packages["native"], "postinst")
    enabled = set(re.findall(r"deb-systemd-helper enable '([^']+)'", postinst))
    started = re.findall(r"deb-systemd-invoke \$_dh_action ([^>]+)>", postinst)
    started += re.findall(r"deb-systemd-invoke start ([^>]+)>", postinst)
    # The path unit is enabled only where it already was (an upgrade keeps
    # the admin's choice): inside its `was-enabled` branch, never on a
    # first install.
    path_blocks = re.findall(r"^\tif deb-systemd-helper debian-installed '%s'; then\n(.*?)^\tfi$"
                             % re.escape(PATH_UNIT), postinst, re.S | re.M)
    assert len(path_blocks) == 1, postinst
    assert re.search(r"was-enabled '%s'; then\n\s*# [^\n]*\n\s*deb-systemd-helper enable '%s'"
                     % ((re.escape(PATH_UNIT),) * 2), path_blocks[0]), path_blocks[0]
    outside = postinst.replace(path_blocks[0], "")
    enabled = set(re.findall(r"deb-systemd-helper enable '([^']+)'", outside))
    assert enabled == {"optimus-boot-reconcile.service", "forgejo-runner-watchdog.timer"}, postinst
    assert [s.split() for s in started] == [["'forgejo-runner-watchdog.timer'"]], postinst
    # Removal stops it (an enabled path unit would start a unit that is gone).
    assert PATH_UNIT in control_file(packages["native"], "prerm")
    # Upgrades neither stop nor restart the boot unit: no preinst names it.
    members = sh("dpkg-deb", "-I", packages["native"]).stdout
    if re.search(r"^\s+\d+ bytes,\s+\d+ lines\s+\*?\s*preinst\b", members, re.M):
        assert "optimus-boot-reconcile" not in control_file(packages["native"], "preinst")
    assert "optimus-boot-reconcile" not in postinst.split("deb-systemd-invoke", 1)[-1]


# ------------------------------------------------------------ 2. units and man pages


def test_systemd_analyze_verify_prints_nothing(tree):
    proc = sh("systemd-analyze", "verify", "--man=no", "--root=" + tree, *UNITS, check=False, cwd="/")
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", proc.stdout + proc.stderr


def test_systemd_analyze_verify_would_complain(tree, tmp_path):
    # The check above can fail: an unknown key is reported on stderr.
    bad = os.path.join(tree, "lib/systemd/system/frg-selftest.timer")
    with open(os.path.join(tree, "lib/systemd/system/forgejo-runner-watchdog.timer")) as handle:
        text = handle.read()
    with open(bad, "w") as handle:
        handle.write(text.replace("[Timer]", "[Timer]\nOnBootSecs=5min"))
    try:
        proc = sh("systemd-analyze", "verify", "--man=no", "--root=" + tree, "frg-selftest.timer", check=False, cwd="/")
    finally:
        os.unlink(bad)
    assert "OnBootSecs" in proc.stderr


@pytest.mark.parametrize("unit", SERVICES)
def test_security_exposure_at_most_2(tree, unit):
    proc = sh("systemd-analyze", "security", "--offline=true", "--root=" + tree, unit, cwd="/")
    match = re.search(r"Overall exposure level for %s: (\d+\.\d+)" % re.escape(unit), proc.stdout)
    assert match, proc.stdout
    assert float(match.group(1)) <= MAX_EXPOSURE, proc.stdout
    # The same bound on systemd's own 0-100 scale: exit status 0 only if
    # the exposure is at most 20.
    proc = sh(
        "systemd-analyze", "security", "--offline=true", "--threshold=%d" % (MAX_EXPOSURE * 10),
        "--root=" + tree, unit, check=False, cwd="/",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_units_as_the_issue_asks(tree):
    def unit(name):
        with open(os.path.join(tree, "lib/systemd/system", name)) as handle:
            return handle.read()

    boot, wd, timer, path = (unit(u) for u in UNITS)
    for text in (boot, wd):
        assert "Type=oneshot" in text and re.search(r"^TimeoutStartSec=\S+", text, re.M)
    # After cloud-init's regeneration of /etc/hosts, before Docker; no
    # RemainAfterExit, so that the path unit can start it again.
    assert re.search(r"^Before=docker\.service$", boot, re.M) and re.search(r"^After=cloud-init\.service$", boot, re.M)
    assert not re.search(r"^RemainAfterExit=", boot, re.M)
    assert re.search(r"^PathChanged=/etc/hosts$", path, re.M) and not re.search(r"^Unit=", path, re.M)
    assert "WantedBy=multi-user.target" in boot
    assert "After=docker.service" in wd and not re.search(r"^\[Install\]", wd, re.M)
    assert "AccuracySec=1s" in timer and "WantedBy=timers.target" in timer
    assert re.search(r"^On(Active|Boot)Sec=5min$", timer, re.M) and "OnUnitActiveSec=5min" in timer
    for name, text in zip(UNITS, (boot, wd, timer, path)):
        docs = " ".join(re.findall(r"^Documentation=(.*)$", text, re.M)).split()
        assert "file:/%s/%s" % (DOC, RUNBOOK) in docs, name
        for doc in docs:
            if doc.startswith("man:"):
                page, section = re.fullmatch(r"man:([\w.-]+)\((\d)\)", doc).groups()
                assert os.path.exists(os.path.join(tree, "usr/share/man/man%s/%s.%s.gz" % (section, page, section))), doc
            else:
                assert os.path.isfile(os.path.join(tree, doc[len("file:/"):])), doc


@pytest.mark.parametrize("tool", TOOLS)
def test_man_page_renders_without_warnings(tree, tool):
    # As lintian's manpages check does it.
    page = os.path.join(tree, "usr/share/man/man8/%s.8.gz" % tool)
    env = dict(os.environ, LC_ALL="C.UTF-8", MANROFFSEQ="", MANWIDTH="80")
    proc = sh("man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", page, env=env)
    assert proc.stderr == "", proc.stderr
    assert tool in sh("man", "-l", page, env=env).stdout


# ------------------------------------------------------------ the conffile and postrm


def test_conffile_documents_every_key_and_its_default():
    from forgejo_runner_guard.config import config

    path = os.path.join(ROOT, "debian", "guard.conf")
    text = open(path).read()
    for section in ("reconcile", "watchdog", "notify"):
        for key in config._SCHEMA[section]:
            assert re.search(r"^#%s =" % key, text, re.M), "%s: [%s] %s is not documented" % (path, section, key)
    # As shipped it changes nothing ...
    assert config.load(path).reconcile == config.Config().reconcile
    assert config.load(path).watchdog == config.Config().watchdog
    assert config.load(path).notify == config.Config().notify
    # ... and the values it shows are the defaults: uncomment every setting.
    uncommented = re.sub(r"^#(?=\[|\w+ =|    \S)", "", text, flags=re.M)
    assert uncommented.count("\n#") < text.count("\n#")
    other = os.path.join(tempfile.mkdtemp(prefix="frg-conf-"), "guard.conf")
    try:
        with open(other, "w") as handle:
            handle.write(uncommented)
        loaded = config.load(other)
    finally:
        shutil.rmtree(os.path.dirname(other))
    assert loaded.reconcile == config.Config().reconcile
    assert loaded.watchdog == config.Config().watchdog
    assert loaded.notify == config.Config().notify


def _postrm_program(text):
    match = re.search(r"<<'PURGE_SED'\n(.*?)^PURGE_SED$", text, re.S | re.M)
    assert match, "no PURGE_SED here-document in postrm"
    return match.group(1)


def test_postrm_carries_the_librarys_purge_program(packages):
    from forgejo_runner_guard.pins import hostsfile

    source = open(os.path.join(ROOT, "debian", PKG + ".postrm")).read()
    assert _postrm_program(source).encode() == hostsfile.PURGE_SED.encode()
    assert _postrm_program(control_file(packages["native"], "postrm")) == hostsfile.PURGE_SED


# ------------------------------------------------------------ 3. install and purge in a clean chroot


def test_postrm_purge_unpins_a_bind_mounted_or_symlinked_hosts_file(packages, sources, tmp_path):
    # A hosts file pinned by the real tool (from the source tree) ...
    work = str(tmp_path)
    pinned_file = os.path.join(work, "pinned")
    with open(pinned_file, "w") as handle:
        handle.write(CHROOT_HOSTS)
    conf = os.path.join(work, "guard.conf")
    with open(conf, "w") as handle:
        handle.write("[reconcile]\nhosts_file = %s\nlock_file = %s/lock/hosts.lock\nstate_dir = %s/state\n"
                     % (pinned_file, work, work))
    os.makedirs(os.path.join(work, "lock"))  # the tool creates only the package's own directories
    proc = run_tool("optimus-boot-reconcile", "--config", conf)
    assert proc.returncode == 0, proc
    pinned = open(pinned_file).read()
    assert PIN_ADDRESS in pinned and pinned != CHROOT_HOSTS

    root = pkg_chroot.new_root(pkg_chroot.base_tarball(sources))
    try:
        with open(os.path.join(root, "tmp/postrm"), "w") as handle:
            handle.write(control_file(packages["native"], "postrm"))
        hosts = os.path.join(root, "etc/hosts")
        # ... bind-mounted over the chroot's /etc/hosts, as in a container:
        # no rename over it is possible, the purge rewrites it in place.
        bound = os.path.join(work, "bound")
        shutil.copy(pinned_file, bound)
        open(hosts, "w").close()
        pkg_chroot.in_chroot(root, "sh /tmp/postrm purge", binds=[(bound, "/etc/hosts")])
        assert open(bound).read() == CHROOT_HOSTS
        # ... and behind a symlink: the link stays, its target is restored.
        os.unlink(hosts)
        with open(os.path.join(root, "etc/hosts.real"), "w") as handle:
            handle.write(pinned)
        os.chmod(os.path.join(root, "etc/hosts.real"), 0o640)
        os.symlink("hosts.real", hosts)
        pkg_chroot.in_chroot(root, "sh /tmp/postrm purge")
        assert os.readlink(hosts) == "hosts.real"
        assert open(os.path.join(root, "etc/hosts.real")).read() == CHROOT_HOSTS
        assert os.stat(os.path.join(root, "etc/hosts.real")).st_mode & 0o777 == 0o640
        assert not [f for f in os.listdir(os.path.join(root, "etc")) if "forgejo-runner-guard" in f]
    finally:
        pkg_chroot.remove(root)



def _apt_install(root, deb):
    """apt-get install the .deb (copied into the chroot); dependencies come
    from the archive."""
    name = os.path.basename(deb)
    shutil.copy(deb, os.path.join(root, "tmp", name))
    try:
        return pkg_chroot.in_chroot(
            root, "apt-get install -y -q --no-install-recommends /tmp/%s" % name, timeout=600
        )
    finally:
        os.unlink(os.path.join(root, "tmp", name))


def _purge(root):
    return pkg_chroot.in_chroot(root, "apt-get purge -y -q --autoremove %s" % PKG, timeout=600)


def test_listing_diff_sees_what_a_package_could_leave(tmp_path):
    # The purge check below can fail: a new file, a removed one, a changed
    # mode or content all show, bookkeeping matched by the allowlist not.
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "etc"))
    os.makedirs(os.path.join(root, "var/lib/dpkg"))
    for name in ("etc/hosts", "etc/gone", "var/lib/dpkg/status"):
        with open(os.path.join(root, name), "w") as handle:
            handle.write("a\n")
    before = pkg_chroot.listing(root)
    with open(os.path.join(root, "etc/hosts"), "a") as handle:
        handle.write("b\n")
    os.unlink(os.path.join(root, "etc/gone"))
    os.makedirs(os.path.join(root, "var/lib/forgejo-runner-guard"))
    with open(os.path.join(root, "var/lib/dpkg/status"), "a") as handle:
        handle.write("b\n")
    os.chmod(os.path.join(root, "etc"), 0o700)
    added, removed, changed = pkg_chroot.listing_diff(before, pkg_chroot.listing(root), APT_DPKG_BOOKKEEPING)
    assert (added, removed, changed) == (["var/lib/forgejo-runner-guard"], ["etc/gone"], ["etc", "etc/hosts"])


def _assert_nothing_left(before, root, what):
    added, removed, changed = pkg_chroot.listing_diff(before, pkg_chroot.listing(root), APT_DPKG_BOOKKEEPING)
    assert not (added or removed or changed), "%s left the chroot changed:\nadded %s\nremoved %s\nchanged %s" % (
        what, added, removed, changed,
    )


def test_install_run_and_purge_in_a_clean_chroot(packages, sources):
    root = pkg_chroot.new_root(pkg_chroot.base_tarball(sources))
    try:
        hosts = os.path.join(root, "etc/hosts")
        with open(hosts, "w") as handle:
            handle.write(CHROOT_HOSTS)
        os.chmod(hosts, 0o644)
        pkg_chroot.in_chroot(root, "apt-get update -q", timeout=300)
        before = pkg_chroot.listing(root)

        _apt_install(root, packages["native"])
        run = lambda script, **kw: pkg_chroot.in_chroot(root, script, **kw)  # noqa: E731

        for tool in TOOLS:
            proc = run("%s --version" % tool)
            assert VERSION in proc.stdout + proc.stderr, proc

        # --diff shows the pin and writes nothing (exit 3: would change).
        proc = run("optimus-boot-reconcile --diff", check=False)
        assert proc.returncode == 3, proc
        assert re.search(r"^\+.*%s.*%s" % (re.escape(PIN_ADDRESS), re.escape(PIN_NAME)), proc.stdout, re.M), proc.stdout
        assert open(hosts).read() == CHROOT_HOSTS
        # The unit's command pins it, then the file is in sync.
        run("optimus-boot-reconcile")
        pinned = open(hosts).read()
        assert re.search(r"^%s\s+%s\b" % (re.escape(PIN_ADDRESS), re.escape(PIN_NAME)), pinned, re.M), pinned
        assert not re.search(r"^203\.0\.113\.7", pinned, re.M), pinned
        assert run("optimus-boot-reconcile --check", check=False).returncode == 0

        # No Docker engine (not even a client) here: exit 1, one line.
        proc = run("forgejo-runner-watchdog --dry-run", check=False)
        assert proc.returncode == 1, proc
        assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc
        assert "Traceback" not in proc.stderr

        _purge(root)
        assert open(hosts).read() == CHROOT_HOSTS, "purge did not restore the chroot's /etc/hosts"
        _assert_nothing_left(before, root, "install + purge of the native package")

        # The stdeb package installs too, runs, and purges as cleanly.
        _apt_install(root, packages["stdeb"])
        for tool in TOOLS:
            proc = run("%s --version" % tool)
            assert VERSION in proc.stdout + proc.stderr, proc
        _purge(root)
        _assert_nothing_left(before, root, "install + purge of the stdeb package")
    finally:
        pkg_chroot.remove(root)


# ------------------------------------------------------------ 4. boot it under systemd


@pytest.fixture(scope="module")
def machine(packages, sources):
    """The systemd chroot with the package installed (and the default pin
    configured), booted under systemd-nspawn."""
    root = pkg_chroot.new_root(pkg_chroot.systemd_tarball(sources))
    log = tempfile.mkstemp(prefix="frg-nspawn-", suffix=".log", dir="/tmp")[1]
    try:
        hosts = os.path.join(root, "etc/hosts")
        with open(hosts, "w") as handle:
            handle.write(CHROOT_HOSTS)
        # An owner group and an extended attribute that only a process
        # with CAP_CHOWN and an xattr-preserving rewrite can keep.
        os.chown(hosts, 0, HOSTS_GID)
        os.chmod(hosts, 0o664)
        os.setxattr(hosts, "user.frg-test", b"kept")
        _apt_install(root, packages["native"])
        # Installing changed nothing in the chroot's /etc/hosts.
        assert open(os.path.join(root, "etc/hosts")).read() == CHROOT_HOSTS
        os.makedirs(os.path.join(root, "usr/local/lib/frg-cloud"))
        with open(os.path.join(root, "usr/local/lib/frg-cloud/hosts"), "w") as handle:
            handle.write(CLOUD_HOSTS)
        wants = os.path.join(root, "etc/systemd/system/multi-user.target.wants")
        os.makedirs(wants, exist_ok=True)
        for name, text in STAND_INS.items():
            with open(os.path.join(root, "etc/systemd/system", name), "w") as handle:
                handle.write(text)
            os.symlink("/etc/systemd/system/" + name, os.path.join(wants, name))
        with pkg_nspawn.booted(root, log) as booted:
            booted.root = root
            yield booted
    finally:
        pkg_chroot.remove(root)
        os.unlink(log)


def test_boot_unit_ran_and_pinned(machine):
    show = machine.run("systemctl", "show", "-p", "ActiveState,Result,ExecMainStatus", UNITS[0], check=True).stdout
    assert "ActiveState=inactive" in show and "Result=success" in show and "ExecMainStatus=0" in show, show
    hosts = open(os.path.join(machine.root, "etc/hosts")).read()
    assert re.search(r"^%s\s+%s\b" % (re.escape(PIN_ADDRESS), re.escape(PIN_NAME)), hosts, re.M), hosts
    assert not re.search(r"^203\.0\.113\.7", hosts, re.M), hosts
    assert machine.run("optimus-boot-reconcile", "--check").returncode == 0
    assert machine.run("systemctl", "is-enabled", UNITS[0]).stdout.strip() == "enabled"
    # Rewritten by a rename inside the unit's sandbox, yet with the same
    # group, mode and extended attribute.
    st = os.stat(os.path.join(machine.root, "etc/hosts"))
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, HOSTS_GID, 0o664)
    assert os.getxattr(os.path.join(machine.root, "etc/hosts"), "user.frg-test") == b"kept"


def journal(machine, ready, *matches, seconds=30.0, settle=0.0):
    """journalctl -o cat MATCHES in the container, polled (pkg_nspawn.poll)
    until ready(text) or `seconds` pass."""
    return pkg_nspawn.poll(lambda: machine.run("journalctl", "--no-pager", "-o", "cat", *matches,
                                               check=True).stdout, ready, seconds, settle)


def _monotonic(machine, unit, *props):
    out = machine.run("systemctl", "show", "-p", ",".join(props), unit, check=True).stdout
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return [int(values[p]) for p in props]


def _pinned(text):
    from forgejo_runner_guard.config import config
    from forgejo_runner_guard.pins import hostsfile

    return hostsfile.plan(text.encode(), (config.Pin(PIN_NAME, PIN_ADDRESS),)).text.decode()


def test_boot_order_after_cloud_init_before_docker(machine):
    boot = UNITS[0]
    # After boot: cloud-init's file, pinned, every other byte as it wrote
    # it; and Docker saw exactly that.
    hosts = open(os.path.join(machine.root, "etc/hosts")).read()
    assert hosts == _pinned(CLOUD_HOSTS), hosts
    assert open(os.path.join(machine.root, "var/lib/frg-docker-saw-hosts")).read() == hosts
    after = machine.run("systemctl", "show", "-p", "After", "--value", boot, check=True).stdout.split()
    before = machine.run("systemctl", "show", "-p", "Before", "--value", boot, check=True).stdout.split()
    assert "cloud-init.service" in after and "docker.service" in before, (after, before)
    # cloud-init finished writing before the boot unit started, and the
    # boot unit finished before Docker started (monotonic microseconds).
    cloud_end, = _monotonic(machine, "cloud-init.service", "ExecMainExitTimestampMonotonic")
    start, end = _monotonic(machine, boot, "ExecMainStartTimestampMonotonic", "ExecMainExitTimestampMonotonic")
    docker_start, = _monotonic(machine, "docker.service", "ExecMainStartTimestampMonotonic")
    assert 0 < cloud_end <= start <= end <= docker_start, (cloud_end, start, end, docker_start)


def _runs(machine, unit):
    """The boot unit's summary lines in the journal (no prefix there)."""
    out = machine.run("journalctl", "--no-pager", "-o", "cat", "_SYSTEMD_UNIT=" + unit, check=True).stdout
    return [line for line in out.splitlines() if line.startswith("/etc/hosts: ")]


def test_path_unit_shipped_disabled_and_repins_a_rewritten_file(machine):
    unit, hosts = UNITS[0], os.path.join(machine.root, "etc/hosts")
    assert machine.run("systemctl", "is-enabled", PATH_UNIT).stdout.strip() == "disabled"
    assert machine.run("systemctl", "is-active", PATH_UNIT).stdout.strip() == "inactive"
    pinned_at_boot = open(hosts).read()
    # Another writer's version: the pin gone, the public address back, a
    # line of its own, CRLF on one line.  Written like an editor does it:
    # a new file renamed over the old one.
    edited = CLOUD_HOSTS + "198.51.100.20 intranet.example intranet\r\n"
    earlier = len(_runs(machine, unit))
    machine.run("systemctl", "enable", "--now", PATH_UNIT, check=True)
    try:
        with open(os.path.join(machine.root, "etc/hosts.frg-edit"), "w", newline="") as handle:
            handle.write(edited)
        started = time.monotonic()
        machine.run("mv", "/etc/hosts.frg-edit", "/etc/hosts", check=True)
        want = _pinned(edited)
        assert want != edited and "198.51.100.20 intranet.example intranet\r\n" in want
        while open(hosts, newline="").read() != want:
            assert time.monotonic() - started < 10, open(hosts, newline="").read()
            time.sleep(0.1)
        took = time.monotonic() - started
        # No loop: its own rename triggers at most one more run, which
        # finds the file in sync and writes nothing.
        inode = os.stat(hosts).st_ino
        time.sleep(2)
        lines = _runs(machine, unit)[earlier:]
        assert os.stat(hosts).st_ino == inode and open(hosts, newline="").read() == want
        assert 1 <= len(lines) <= 2 and "updated (atomic rename)" in lines[0], lines
        assert all(": in sync: " in line for line in lines[1:]), lines
        assert took < 5, took
    finally:
        machine.run("systemctl", "disable", "--now", PATH_UNIT, check=True)
        with open(hosts, "w") as handle:
            handle.write(pinned_at_boot)
    assert machine.run("systemctl", "is-enabled", PATH_UNIT).stdout.strip() == "disabled"


def test_timer_active_with_next_elapse(machine):
    unit = UNITS[2]
    assert machine.run("systemctl", "is-active", unit).stdout.strip() == "active"
    assert machine.run("systemctl", "is-enabled", unit).stdout.strip() == "enabled"
    show = machine.run("systemctl", "show", "-p", "NextElapseUSecMonotonic", unit, check=True).stdout.strip()
    value = show.split("=", 1)[1]
    assert value and value not in ("0", "infinity"), show
    listed = machine.run("systemctl", "list-timers", "--all", "--no-legend", unit, check=True).stdout
    assert unit in listed and not listed.lstrip().startswith("n/a"), listed
    # Nothing else failed while booting.
    failed = machine.run("systemctl", "list-units", "--failed", "--no-legend", "--plain").stdout
    assert "forgejo" not in failed and "optimus" not in failed, failed


def test_watchdog_without_engine_fails_cleanly(machine):
    unit = UNITS[1]
    since = time.time()
    proc = machine.run("systemctl", "start", unit, timeout=120)
    assert proc.returncode != 0, proc
    show = machine.run("systemctl", "show", "-p", "Result,ExecMainStatus", unit, check=True).stdout
    assert "Result=exit-code" in show and "ExecMainStatus=1" in show, show
    # The tool's own output (not systemd's messages about the unit).
    lines = [line for line in pkg_nspawn.run_lines(machine, unit, since, settle=0.5) if line.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0], lines
    whole = machine.run("journalctl", "--no-pager", "-o", "cat", "-u", unit, check=True).stdout
    assert "Traceback" not in whole, whole


# What the watchdog's sandbox must still allow, tried from inside it: the
# unit's own sandbox with only ExecStart= replaced by this probe (a
# runtime drop-in), against a stand-in for the Docker socket.
SANDBOX_PROBE = r"""
import os, socket, subprocess
s = socket.socket(socket.AF_UNIX)
s.connect("/run/docker.sock")
assert s.recv(16) == b"pong", "docker.sock"
for path in ("/var/lib/forgejo-runner-guard/probe", "/run/lock/forgejo-runner-guard/probe"):
    with open(path, "w") as f:
        f.write("ok")
    os.unlink(path)
out = subprocess.run(["systemctl", "show", "-p", "ActiveState", "--value", "forgejo-runner-watchdog.timer"],
                     capture_output=True, text=True)
assert out.stdout.strip() == "active", ("systemctl", out)
socket.socket(socket.AF_INET).close()  # the forge's Ping (verify = ping)
for denied in (lambda: open("/etc/frg-probe", "w"),
               lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW)):
    try:
        denied()
    except OSError:
        pass
    else:
        raise AssertionError("the sandbox allowed %r" % denied)
print("sandbox probe ok")
"""

FAKE_DOCKER = r"""
import os, socket
s = socket.socket(socket.AF_UNIX)
s.bind("/run/docker.sock")
s.listen(1)
while True:
    c, _ = s.accept()
    c.sendall(b"pong")
    c.close()
"""


def test_watchdog_sandbox_allows_docker_socket_state_lock_and_systemctl(machine):
    # (The container's /run is its own tmpfs: files for it go under /etc
    # and /usr/local, which are the chroot's.)
    unit = UNITS[1]
    dropin = os.path.join(machine.root, "etc/systemd/system/%s.d" % unit)
    scripts = os.path.join(machine.root, "usr/local/lib/frg")
    os.makedirs(scripts, exist_ok=True)
    with open(os.path.join(scripts, "probe.py"), "w") as handle:
        handle.write(SANDBOX_PROBE)
    with open(os.path.join(scripts, "fake-docker.py"), "w") as handle:
        handle.write(FAKE_DOCKER)
    machine.run("systemd-run", "--unit=frg-fake-docker", "/usr/bin/python3", "/usr/local/lib/frg/fake-docker.py",
                check=True)
    try:
        for _ in range(100):
            if machine.run("test", "-S", "/run/docker.sock").returncode == 0:
                break
            time.sleep(0.05)
        os.makedirs(dropin)
        with open(os.path.join(dropin, "probe.conf"), "w") as handle:
            handle.write("[Service]\nExecStart=\nExecStart=/usr/bin/python3 /usr/local/lib/frg/probe.py\n")
        machine.run("systemctl", "daemon-reload", check=True)
        since = time.time()
        proc = machine.run("systemctl", "start", unit, timeout=60)
        lines = pkg_nspawn.run_lines(machine, unit, since, lambda lines: "sandbox probe ok" in lines)
        assert proc.returncode == 0 and "sandbox probe ok" in lines, lines
    finally:
        shutil.rmtree(dropin, ignore_errors=True)
        shutil.rmtree(scripts, ignore_errors=True)
        machine.run("systemctl", "stop", "frg-fake-docker")
        machine.run("systemctl", "daemon-reload")


# ------------------------------------------------------------ 5. the watchdog's systemd backend (issue 6)

RUNNER_UNIT = "forgejo-runner.service"
FAKE_RUNNER = os.path.join(ROOT, "tests", "helpers", "fakerunner.sh")
HOST_RUNNER = os.path.join(ROOT, "tests", "helpers", "hostrunner.sh")
TEST_FORGE = os.path.join(ROOT, "tests", "helpers", "forge.py")
# The stand-in runner's forge, in the machine (its own network: only a
# loopback): the Ping as Forgejo answers it (tests/helpers/forge.py).
FORGE_URL = "http://127.0.0.1:3000/"
FORGE_SERVE = ("import sys, time; sys.path.insert(0, '/usr/local/lib/frg-native'); "
               "from forge import Forge; Forge('answer', '127.0.0.1', port=3000); time.sleep(86400)")
ANSWERED = r"\(forge answered Ping in \d+ ms at 127\.0\.0\.1: the runner's own connection is stuck\)$"
NATIVE_DROPIN = "etc/forgejo-runner-guard/guard.conf.d/50-native.conf"
NATIVE_CONF = "[watchdog]\nrunners = native\n\n[runner native]\nbackend = systemd\nunit = %s\n"


class NativeRunner:
    """A stand-in for a runner installed as a systemd service: the unit
    forgejo-runner.service runs tests/helpers/fakerunner.sh under the container's
    /bin/sh (dash), which writes real-format runner lines to stderr, so into
    the journal; its WorkingDirectory= holds the .runner its registration
    wrote, naming a forge that answers the Ping (FORGE_URL)."""

    def __init__(self, machine):
        self.machine = machine
        self.dir = os.path.join(machine.root, "usr/local/lib/frg-native")
        self.unit_file = os.path.join(machine.root, "etc/systemd/system", RUNNER_UNIT)

    def start(self, *steps, lines=0, service=None):
        """(Re)start the unit afresh with these fakerunner steps (or this
        [Service] section); wait until its journal has `lines` lines.
        -> its invocation id."""
        if service is None:
            service = "ExecStart=/bin/sh /usr/local/lib/frg-native/fakerunner.sh %s\n" % " ".join(steps)
        with open(self.unit_file, "w") as handle:
            handle.write("[Unit]\nDescription=stand-in Forgejo runner\n\n[Service]\n"
                         "WorkingDirectory=/usr/local/lib/frg-native/data\n" + service)
        self.machine.run("rm", "-f", "/tmp/.fakerunner-started", check=True)
        self.machine.run("systemctl", "daemon-reload", check=True)
        self.machine.run("systemctl", "restart", RUNNER_UNIT, check=True)
        invocation = self.invocation()
        deadline = time.monotonic() + 10
        while self.lines(invocation) < lines:
            assert time.monotonic() < deadline, "%s logged %d lines, not %d" % (RUNNER_UNIT, self.lines(invocation), lines)
            time.sleep(0.05)
        return invocation

    def invocation(self):
        return self.machine.run("systemctl", "show", "-p", "InvocationID", "--value", RUNNER_UNIT,
                                check=True).stdout.strip()

    def active(self):
        return self.machine.run("systemctl", "is-active", RUNNER_UNIT).stdout.strip()

    def lines(self, invocation):
        out = self.machine.run("journalctl", "--no-pager", "-o", "cat", "_SYSTEMD_INVOCATION_ID=" + invocation,
                               "_SYSTEMD_UNIT=" + RUNNER_UNIT, check=True).stdout
        return len(out.splitlines())

    def watchdog(self, *args, state=None):
        """Run the installed watchdog (Debian's python3, python3-sh 1.14)
        with --json; -> (exit status, the runner's JSON or None, stderr)."""
        state = state or "/var/lib/frg-native-%d" % time.monotonic_ns()
        self.machine.run("mkdir", "-p", state, check=True)  # only the package's own are created
        proc = self.machine.run("forgejo-runner-watchdog", "--json", "--state-dir", state, *args, timeout=60)
        assert "Traceback" not in proc.stderr, proc.stderr
        doc = json.loads(proc.stdout)["runners"][0] if proc.stdout.strip() else None
        return proc.returncode, doc, proc.stderr


@pytest.fixture
def native(machine):
    """The stand-in runner unit and a guard.conf drop-in naming it (runner
    "native", backend systemd); all removed afterwards."""
    runner = NativeRunner(machine)
    os.makedirs(os.path.join(runner.dir, "data"), exist_ok=True)
    shutil.copy(FAKE_RUNNER, os.path.join(runner.dir, "fakerunner.sh"))
    shutil.copy(TEST_FORGE, os.path.join(runner.dir, "forge.py"))
    with open(os.path.join(runner.dir, "data", ".runner"), "wb") as handle:
        handle.write(forge.registration(FORGE_URL))
    # a name of its own each time: a stopped transient unit's name is free again only later
    forge_unit = "frg-forge-%s.service" % uuid.uuid4().hex[:8]
    machine.run("systemd-run", "--collect", "--unit=" + forge_unit, "/usr/bin/python3", "-c",
                FORGE_SERVE, check=True)
    dropin = os.path.join(machine.root, NATIVE_DROPIN)
    os.makedirs(os.path.dirname(dropin), exist_ok=True)
    with open(dropin, "w") as handle:
        handle.write(NATIVE_CONF % RUNNER_UNIT)
    try:
        deadline = time.monotonic() + 30
        while machine.run("python3", "-c", "import socket; socket.create_connection(('127.0.0.1', "
                          "3000))").returncode:
            assert time.monotonic() < deadline, "the stand-in forge did not start"
            time.sleep(0.1)
        yield runner
    finally:
        machine.run("systemctl", "stop", RUNNER_UNIT, forge_unit)
        for path in (dropin, runner.unit_file):
            if os.path.exists(path):
                os.unlink(path)
        shutil.rmtree(runner.dir, ignore_errors=True)
        for state in glob.glob(os.path.join(machine.root, "var/lib/frg-native-*")):
            shutil.rmtree(state, ignore_errors=True)
        machine.run("systemctl", "daemon-reload")


def test_systemd_runner_jobs_read_from_its_execstart(machine):
    """--runners reads a systemd runner's config from its unit's ExecStart
    (with the installed package's python3-yaml)."""
    unit_file = os.path.join(machine.root, "etc/systemd/system", RUNNER_UNIT)
    files = {
        "usr/local/bin/forgejo-runner": "#!/bin/sh\nexec sleep 3600\n",
        "etc/frg-runner/config.yml": "container:\n  network: \"\"\n  options: --privileged\n",
        NATIVE_DROPIN: NATIVE_CONF % RUNNER_UNIT,
    }
    for path, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(machine.root, path)), exist_ok=True)
        with open(os.path.join(machine.root, path), "w") as handle:
            handle.write(text)
    os.chmod(os.path.join(machine.root, "usr/local/bin/forgejo-runner"), 0o755)
    with open(unit_file, "w") as handle:
        handle.write("[Service]\nExecStart=/usr/local/bin/forgejo-runner daemon --config /etc/frg-runner/config.yml\n")
    try:
        machine.run("systemctl", "daemon-reload", check=True)
        proc = machine.run("optimus-boot-reconcile", "--check", "--runners")
        assert proc.returncode == 3, proc.stderr
        assert proc.stderr.splitlines()[-1] == (
            "optimus-boot-reconcile: warning: runner native: forge.azrak.io -> 10.1.0.10: jobs NOT pinned: add "
            "--add-host=forge.azrak.io:10.1.0.10 to container.options in /etc/frg-runner/config.yml"), proc.stderr
        with open(os.path.join(machine.root, "etc/frg-runner/config.yml"), "w") as handle:
            handle.write("container:\n  options: --privileged --add-host=forge.azrak.io:10.1.0.10\n")
        proc = machine.run("optimus-boot-reconcile", "--check", "--runners")
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.splitlines()[-1].endswith(
            "runner native: forge.azrak.io -> 10.1.0.10: jobs pinned (container.options in "
            "/etc/frg-runner/config.yml)"), proc.stderr
    finally:
        for path in list(files) + [unit_file]:
            path = os.path.join(machine.root, path)
            if os.path.exists(path):
                os.unlink(path)
        machine.run("systemctl", "daemon-reload")


def test_systemd_backend_restarts_a_wedged_unit_and_counts_only_its_current_run(native):
    # After the restart the stand-in logs 30 more errors: the 150 of the
    # run before are in the window but belong to another invocation.
    old = native.start("wedged", "150", "on-restart", "errors", "30", "eof", lines=150)
    state = "/var/lib/frg-native-restart"
    status, doc, err = native.watchdog(state=state)
    assert status == 0 and doc["decision"] == "wedged" and doc["restarted"], (doc, err)
    assert doc["backend"] == "systemd" and doc["unit"] == RUNNER_UNIT and doc["errors"] == 150
    assert doc["invocation_id"] == old and doc["new_invocation_id"] == native.invocation() != old
    assert native.active() == "active"
    # its forge answered the Ping: the .runner in its WorkingDirectory= named it
    assert re.search(r"no job running \(no Docker engine; by the log\): restarted " + ANSWERED,
                     err.strip()), err
    assert (doc["forge"]["url"], doc["forge"]["address"], doc["forge"]["via"]) == (
        FORGE_URL, "127.0.0.1", "the URL")
    # Right after: a second run sees only the new run's 30 errors; no second restart.
    new = native.invocation()
    deadline = time.monotonic() + 10
    while native.lines(new) < 30:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status, doc, err = native.watchdog("--cooldown", "0", state=state)
    assert status == 0 and doc["decision"] == "healthy" and doc["errors"] == 30 and not doc["restarted"], (doc, err)
    assert native.invocation() == new
    assert len(err.splitlines()) == 1 and "native: 30 fetch errors in " in err, err


@pytest.mark.parametrize("steps", [("healthy",), ("errors", "39", "reset")])
def test_systemd_backend_leaves_a_healthy_unit_alone(native, steps):
    old = native.start(*steps, lines=int(steps[1]) if len(steps) > 1 else 3)
    status, doc, err = native.watchdog()
    assert status == 0 and doc["decision"] == "healthy" and not doc["restarted"], (doc, err)
    assert native.invocation() == old


def test_systemd_backend_job_start_after_the_errors_blocks_the_restart(native):
    # No Docker in the container: the log is the job guard.
    old = native.start("wedged", "150", "job", "9", lines=151)
    status, doc, err = native.watchdog()
    assert status == 0 and doc["decision"] == "recovered" and not doc["restarted"], (doc, err)
    assert doc["reason"] == "a job started after the newest error" and doc["job_start_age"] is not None
    assert native.invocation() == old


def host_runner_service(native, drain, job):
    """The [Service] lines of a unit running tests/helpers/hostrunner.sh installed as
    forgejo-runner (its command name), logging a wedge of 150 errors, with
    DRAIN and JOB as it takes them; its state dir (and FIFO) made once."""
    here = "/usr/local/lib/frg-native"
    daemon = os.path.join(native.dir, "forgejo-runner")
    if not os.path.exists(daemon):
        shutil.copy(HOST_RUNNER, daemon)
        os.chmod(daemon, 0o755)
        os.makedirs(os.path.join(native.dir, "state"))
        os.mkfifo(os.path.join(native.dir, "state", "fifo"))
    return ("Environment=FAKERUNNER=%s/fakerunner.sh\n"
            "ExecStart=%s/forgejo-runner %s/state %s %s wedged 150\n" % (here, here, here, drain, job))


def test_systemd_backend_a_job_without_a_container_blocks_the_restart(native):
    # The unit's daemon (tests/helpers/hostrunner.sh installed as forgejo-runner: its
    # command name) logs a wedge and has a child, a host job, in the unit's cgroup.
    old = native.start(lines=150, service=host_runner_service(native, 0, 3600))
    status, doc, err = native.watchdog()
    assert status == 0 and doc["decision"] == "skipped-job" and not doc["restarted"], (doc, err)
    assert len(doc["blocking_jobs"]) == 1, doc
    pid = re.fullmatch(r"pid (\d+) \(sleep 3600\)", doc["blocking_jobs"][0]).group(1)
    assert native.machine.run("cat", "/proc/%s/comm" % pid, check=True).stdout == "sleep\n"
    assert re.search(r"host job pid %s \(sleep 3600\) running: wedged, not restarted while a job "
                     r"runs: skipped " % pid + ANSWERED, err.strip()), err
    assert native.invocation() == old


def test_systemd_backend_restart_drains_or_reports_the_kill(native):
    # The unit's own TimeoutStopSec= governs its drain: a runner that drains in
    # 1 s within 5 s exits by itself; one that needs 5 s within 1 s is killed:
    # reported, exit 1.  (tests/helpers/hostrunner.sh writes what happened to events.)
    box = os.path.join(native.dir, "state")
    events = os.path.join(box, "events")
    for drain, timeout_stop, killed in ((1, 5, False), (5, 1, True)):
        native.machine.run("systemctl", "stop", RUNNER_UNIT)  # the run before, if any
        for name in ("started", "events"):
            if os.path.exists(os.path.join(box, name)):
                os.unlink(os.path.join(box, name))
        native.start(lines=150, service="TimeoutStopSec=%d\n" % timeout_stop
                     + host_runner_service(native, drain, "none"))
        status, doc, err = native.watchdog("--cooldown", "0")
        assert doc["restarted"] is True, (doc, err)
        assert "TimeoutStopSec=%ds, shorter than the runner's stop_timeout (600s)" % timeout_stop \
            in err
        lines = open(events).read().splitlines()
        if killed:
            assert status == 1 and ("restarted, but forgejo-runner.service did not stop within "
                                    "1s of SIGTERM: it was killed (SIGKILL)") in doc["error"], err
            assert lines[:2] == ["idle", "got TERM"] and "exited by itself" not in lines, lines
        else:
            assert status == 0 and doc["error"] is None, err
            assert lines[:3] == ["idle", "got TERM", "exited by itself"], lines


CTR_UNIT = "frg-ctr-runner.service"
# daemon = (none): the engine is the host's, in another pid namespace than the
# machine's, so the container's processes cannot be seen from here
# Beside it, runner "plain": a container whose log `docker logs` reads, in the same run.
CTR_CONF = ("[watchdog]\nrunners = ctr plain\ndaemon =\n\n[runner ctr]\ncontainer = %s\n"
            "logs = journal\njournal_match = %s\nstop_timeout = 5s\n\n[runner plain]\n"
            "container = %s\n")


@pytest.mark.docker
def test_a_container_runner_logging_only_to_the_journal(machine, docker_host):
    """logs = journal: the runner's container has no log (--log-driver none)
    and runs under a unit that attaches to it (`docker start --attach`,
    SyslogIdentifier=), as the popular Ansible role does.  The container is
    on the test engine, reached from the booted machine through a socket in
    its root (engine.Relay) with the host's docker CLI (one binary)."""
    from helpers import engine as test_engine

    here = os.path.join(machine.root, "usr/local/lib/frg-ctr")
    os.makedirs(here, exist_ok=True)
    shutil.copy("/usr/bin/docker", os.path.join(here, "docker"))
    relay = test_engine.Relay(os.path.join(here, "docker.sock"), docker_host[len("unix://"):])
    host_env = dict(os.environ, DOCKER_HOST=docker_host)
    name = "frg-ctr-" + uuid.uuid4().hex[:8]
    plain = name + "-plain"
    unit_file = os.path.join(machine.root, "etc/systemd/system", CTR_UNIT)
    conf = os.path.join(machine.root, "etc/frg-ctr.conf")
    inside = ["env", "DOCKER_HOST=unix:///usr/local/lib/frg-ctr/docker.sock",
              "PATH=/usr/local/lib/frg-ctr:/usr/sbin:/usr/bin:/sbin:/bin"]

    def watchdog(match, *args):
        with open(conf, "w") as handle:
            handle.write(CTR_CONF % (name, match, plain))
        machine.run("mkdir", "-p", "/var/lib/frg-ctr-state", check=True)  # only the package's own are created
        proc = machine.run(*inside, "forgejo-runner-watchdog", "--config", "/etc/frg-ctr.conf",
                           "--json", "--state-dir", "/var/lib/frg-ctr-state", *args, timeout=60)
        assert "Traceback" not in proc.stderr, proc.stderr
        docs = json.loads(proc.stdout)["runners"]
        assert [d["name"] for d in docs] == ["ctr", "plain"], docs
        assert (docs[1]["decision"], docs[1]["errors"]) == ("healthy", 0), docs
        return proc, docs[0]

    def started():
        return sh("docker", "inspect", "--format", "{{.State.StartedAt}}", name,
                  env=host_env).stdout.strip()

    try:
        sh("docker", "create", "--init", "--network", "none", "--log-driver", "none", "--name",
           name, "-v", "%s:/fakerunner.sh:ro" % FAKE_RUNNER, "frg-busybox:latest",
           "sh", "/fakerunner.sh", "wedged", "60", env=host_env)
        sh("docker", "run", "-d", "--init", "--network", "none", "--name", plain, "-v",
           "%s:/fakerunner.sh:ro" % FAKE_RUNNER, "frg-busybox:latest", "sh", "/fakerunner.sh",
           "healthy", env=host_env)
        with open(unit_file, "w") as handle:
            handle.write("[Service]\nSyslogIdentifier=frg-ctr\n"
                         "Environment=DOCKER_HOST=unix:///usr/local/lib/frg-ctr/docker.sock\n"
                         "ExecStart=/usr/local/lib/frg-ctr/docker start --attach %s\n" % name)
        machine.run("systemctl", "daemon-reload", check=True)
        machine.run("systemctl", "start", CTR_UNIT, check=True)
        journal(machine, lambda text: len(text.splitlines()) >= 60, "SYSLOG_IDENTIFIER=frg-ctr")
        before = started()
        # nothing in the journal under that name: an error naming the setting
        proc, doc = watchdog("SYSLOG_IDENTIFIER=nosuch", "--dry-run")
        assert proc.returncode == 1 and doc["decision"] == "error", proc.stderr
        assert "no journal entries match SYSLOG_IDENTIFIER=nosuch (logs = journal): set " \
            "journal_match" in proc.stderr
        proc, doc = watchdog("SYSLOG_IDENTIFIER=frg-ctr")
        assert proc.returncode == 0, proc.stderr
        assert doc["decision"] == "wedged" and doc["errors"] == 60 and doc["restarted"], doc
        assert started() != before
    finally:
        machine.run("systemctl", "stop", CTR_UNIT)
        for path in (unit_file, conf):
            if os.path.exists(path):
                os.unlink(path)
        machine.run("systemctl", "daemon-reload")
        machine.run("rm", "-rf", "/var/lib/frg-ctr-state")
        sh("docker", "rm", "-f", name, plain, env=host_env, check=False)
        relay.stop()
        shutil.rmtree(here, ignore_errors=True)


def test_systemd_backend_dry_run_changes_nothing(native):
    old = native.start("wedged", "150", lines=150)
    state = "/var/lib/frg-native-dry"
    status, doc, err = native.watchdog("--dry-run", "--metrics-file", state + "/m.prom", state=state)
    assert status == 0 and doc["decision"] == "wedged" and not doc["restarted"], (doc, err)
    assert "would restart (dry run)" in err
    assert native.invocation() == old
    # the state directory must exist (only the package's own are created): nothing in it
    assert os.listdir(os.path.join(native.machine.root, state.lstrip("/"))) == []


def test_systemd_backend_unit_missing_or_stopped_is_one_line_exit_1(native):
    conf = os.path.join(native.machine.root, "etc/frg-native-missing.conf")
    with open(conf, "w") as handle:
        handle.write(NATIVE_CONF % "nosuch.service")
    try:
        status, doc, err = native.watchdog("--config", "/etc/frg-native-missing.conf")
    finally:
        os.unlink(conf)
    assert status == 1 and doc["decision"] == "error" and len(err.splitlines()) == 1, err
    assert "unit nosuch.service does not exist" in err, err
    native.start("healthy", lines=3)
    native.machine.run("systemctl", "stop", RUNNER_UNIT, check=True)
    status, doc, err = native.watchdog()
    assert status == 1 and len(err.splitlines()) == 1, err
    assert "unit %s is inactive (dead): start it" % RUNNER_UNIT in err, err


def test_systemd_backend_a_crash_looping_unit_is_reported_with_its_cause(native):
    """A unit whose runner exits at every start (a Gitea runner the forge no
    longer knows: its real log bytes, tests/fixtures/logrus/terminal/) under
    Restart=always: systemd's activating (auto-restart); reported from the
    unit's last journal lines, never restarted (the invocation stays)."""
    fixture = os.path.join(ROOT, "tests/fixtures/logrus/terminal/gitea-unregistered-declare-text.stderr")
    shutil.copy(fixture, os.path.join(native.dir, "unregistered.stderr"))
    native.start(service="ExecStart=/bin/sh -c 'cat /usr/local/lib/frg-native/unregistered.stderr >&2; "
                         "exit 1'\nRestart=always\nRestartSec=1h\n")
    deadline = time.monotonic() + 20
    while native.active() != "activating":
        assert time.monotonic() < deadline, native.active()
        time.sleep(0.1)
    old = native.invocation()
    status, doc, err = native.watchdog()
    assert status == 1 and len(err.splitlines()) == 1, err
    assert (doc["decision"], doc["condition"], doc["cause"], doc["runner_state"]) == \
        ("refused", "crash-loop", "unregistered", "activating (auto-restart)"), doc
    assert doc["last_lines"][-1].endswith(" Error: unauthenticated: unregistered runner"), doc
    assert "unit %s is in a crash loop (activating (auto-restart), 0 restarts by Restart=): refused " \
           "by the server (unauthenticated: unregistered runner)" % RUNNER_UNIT in err, err
    assert native.invocation() == old and native.active() == "activating"
    # without a cause in its log: a crash loop
    native.start(service="ExecStart=/bin/sh -c 'echo boom >&2; exit 1'\nRestart=always\nRestartSec=1h\n")
    deadline = time.monotonic() + 20
    while native.active() != "activating":
        assert time.monotonic() < deadline, native.active()
        time.sleep(0.1)
    status, doc, err = native.watchdog()
    # the cause of its last run only: the earlier run's refusal is in the tail, not its cause
    assert (status, doc["decision"], doc["cause"]) == (1, "crash-loop", None), err
    assert err.rstrip("\n").endswith(" boom"), err
    assert any("fail to invoke Declare" in line for line in doc["last_lines"]), doc


def test_watchdog_unit_reads_the_journal_and_restarts_from_its_sandbox(native):
    # The packaged unit, sandbox and all, with the drop-in naming the native runner.
    old = native.start("wedged", "150", lines=150)
    machine = native.machine
    unit = UNITS[1]
    try:
        since = time.time()
        proc = machine.run("systemctl", "start", unit, timeout=120)
        # restarted, after a Ping from inside the unit's sandbox
        out = "\n".join(pkg_nspawn.run_lines(machine, unit, since, lambda lines: any(
            re.search(": restarted " + ANSWERED, line) for line in lines)))
        assert proc.returncode == 0, out
        # the stand-in unit keeps systemd's TimeoutStopSec (90s): shorter than stop_timeout, said first
        warning, summary = out.strip().splitlines()
        assert warning == ("native: unit forgejo-runner.service stops with TimeoutStopSec=90s, "
                           "shorter than the runner's stop_timeout (600s): systemd kills it sooner "
                           "(set TimeoutStopSec= in a drop-in)"), out
        assert re.search(": restarted " + ANSWERED, summary), out
        assert summary.startswith("native: 150 fetch errors"), out
        assert native.invocation() != old and native.active() == "active"
    finally:
        state = os.path.join(machine.root, "var/lib/forgejo-runner-guard/state.json")
        if os.path.exists(state):
            os.unlink(state)


def test_watchdog_unit_notifies_from_its_sandbox_and_the_onfailure_example_mails_its_journal(native):
    """The packaged unit runs a [notify] command inside its sandbox (a local
    one); the shipped OnFailure= drop-in and
    template unit, installed as the runbook says, mail the journal of a
    failed run (to a stand-in mail(1): the container has no MTA)."""
    machine = native.machine
    root = machine.root
    unit = UNITS[1]
    examples = os.path.join(root, DOC, "examples")
    files = {
        "usr/local/bin/frg-record": "#!/bin/sh\ncat >>/var/lib/forgejo-runner-guard/notified.jsonl\n",
        "usr/local/bin/mail": "#!/bin/sh\n{ printf '%s\\n' \"$@\"; cat; } >/var/tmp/frg-mail.txt\n",
        "etc/forgejo-runner-guard/guard.conf.d/60-notify.conf": "[notify]\ncommand = /usr/local/bin/frg-record\n",
        "etc/systemd/system/notify-failure@.service":
            open(os.path.join(examples, "notify-failure@.service")).read(),
        "etc/systemd/system/%s.d/onfailure.conf" % unit: open(os.path.join(examples, "onfailure.conf")).read(),
    }
    made = []
    try:
        for path, text in files.items():
            full = os.path.join(root, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as handle:
                handle.write(text)
            os.chmod(full, 0o755 if "/bin/" in path else 0o644)
            made.append(full)
        machine.run("systemctl", "daemon-reload", check=True)
        old = native.start("wedged", "150", lines=150)
        assert machine.run("systemctl", "start", unit, timeout=120).returncode == 0
        assert native.invocation() != old
        with open(os.path.join(root, "var/lib/forgejo-runner-guard/notified.jsonl")) as handle:
            [event] = [json.loads(line) for line in handle]
        assert (event["event"], event["runner"], event["decision"]) == ("restarted", "native", "wedged")
        assert len(event["evidence"]) == 5 and event["host"]
        # a failed run (the runner stopped: exit 1) starts notify-failure@ for it
        machine.run("systemctl", "stop", RUNNER_UNIT, check=True)
        assert machine.run("systemctl", "start", unit, timeout=120).returncode != 0
        mail = os.path.join(root, "var/tmp/frg-mail.txt")
        deadline = time.monotonic() + 15
        while not os.path.exists(mail) or "is inactive" not in open(mail).read():
            assert time.monotonic() < deadline, "notify-failure@%s.service sent nothing" % unit
            time.sleep(0.2)
        text = open(mail).read().splitlines()
        assert text[:3] == ["-s", "%s failed on %s" % (unit, machine.run("hostname").stdout.strip()), "root"]
        assert any("unit %s is inactive (dead)" % RUNNER_UNIT in line for line in text[3:]), text
    finally:
        for full in made + [os.path.join(root, p) for p in (
                "var/tmp/frg-mail.txt", "var/lib/forgejo-runner-guard/notified.jsonl",
                "var/lib/forgejo-runner-guard/state.json")]:
            if os.path.exists(full):
                os.unlink(full)
        machine.run("systemctl", "reset-failed")
        machine.run("systemctl", "daemon-reload")
