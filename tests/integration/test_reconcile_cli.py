"""optimus-boot-reconcile as a real subprocess on temp files.

Never the real /etc/hosts, never the real lock (/run/lock/...): every
run gets a guard.conf in a temp dir naming its hosts file, lock file and
state dir."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zlib

import pytest
from helpers.tools import ROOT, copy_tools, one_line, run_tool, tool_env, write_conf

from forgejo_runner_guard.pins import hostsfile as hf
from forgejo_runner_guard.system import safewrite

TOOL = "optimus-boot-reconcile"
PIN_LINE = "10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\n"
ADMIN = "127.0.0.1\tlocalhost\n# keep me\n203.0.113.5 www forge.azrak.io\n"


class Site:
    """A temp dir with guard.conf, hosts, lock and state dir."""

    def __init__(self, root, pins="forge.azrak.io 10.1.0.10", hosts=ADMIN):
        self.root = str(root)
        self.hosts = os.path.join(self.root, "etc", "hosts")
        self.lock = os.path.join(self.root, "run", "hosts.lock")
        self.state = os.path.join(self.root, "state")
        self.conf = os.path.join(self.root, "guard.conf")
        os.makedirs(os.path.dirname(self.hosts))
        os.makedirs(os.path.dirname(self.lock))  # only the package's own directories are
        os.makedirs(self.state)  # created by the tool
        write_conf(self.conf, {"reconcile": {"hosts_file": self.hosts, "lock_file": self.lock,
                                             "state_dir": self.state, "pins": pins}})
        if hosts is not None:
            self.write(hosts)

    def write(self, text):
        with open(self.hosts, "wb") as handle:
            handle.write(text.encode() if isinstance(text, str) else text)

    def read(self):
        with open(self.hosts, "rb") as handle:
            return handle.read().decode()

    def run(self, *args, env=None):
        return run_tool(TOOL, "--config", self.conf, *args, env=env)

    def temps(self):
        return [n for n in os.listdir(os.path.dirname(self.hosts)) if n.startswith(".frg-tmp.")]


@pytest.fixture
def site(tmp_path):
    return Site(tmp_path)


# ---------------------------------------------------------------- exit 0


def test_pins_then_in_sync_without_writing(site):
    proc = site.run()
    assert proc.returncode == 0, proc.stderr
    assert "updated (atomic rename)" in one_line(proc)
    text = site.read()
    assert text.startswith("127.0.0.1\tlocalhost\n# keep me\n" + PIN_LINE)
    assert "203.0.113.5\twww # forgejo-runner-guard keep\n" in text
    before = os.stat(site.hosts)
    time.sleep(0.01)
    again = site.run()
    assert again.returncode == 0 and "in sync" in one_line(again)
    after = os.stat(site.hosts)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert site.temps() == []


def test_unpin_restores_and_not_pinned_is_exit_0(site):
    assert site.run().returncode == 0
    proc = site.run("--unpin", "forge.azrak.io")
    assert proc.returncode == 0 and "unpinned" in one_line(proc)
    assert site.read() == ADMIN
    proc = site.run("--unpin", "forge.azrak.io")
    assert proc.returncode == 0 and "not-pinned" in proc.stderr and site.read() == ADMIN


def test_unpin_all_matches_purge_sed(site):
    assert site.run("--pin", "forge.azrak.io=10.1.0.10", "--pin", "www=192.0.2.1").returncode == 0
    pinned = site.read().encode()
    purged = subprocess.run(["sed", "-e", hf.PURGE_SED], input=pinned, capture_output=True,
                            env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"}, check=True).stdout
    proc = site.run("--unpin-all")
    assert proc.returncode == 0, proc.stderr
    assert site.read() == ADMIN == purged.decode()


def test_list_and_json(site):
    site.run("--pin", "forge.azrak.io=10.1.0.10", "--pin", "forge.azrak.io=2001:db8::10")
    proc = site.run("--list")
    assert proc.returncode == 0
    assert proc.stdout == "forge.azrak.io 10.1.0.10\nforge.azrak.io 2001:db8::10\n"
    doc = json.loads(site.run("--list", "--json").stdout)
    assert [(o["name"], o["address"]) for o in doc["owned"]] == [
        ("forge.azrak.io", "10.1.0.10"), ("forge.azrak.io", "2001:db8::10")]
    # a pin no longer asked for is reported, not removed
    site.run("--pin", "forge.azrak.io=10.1.0.10", "--pin", "www.example=192.0.2.1")
    proc = site.run("--json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0 and not doc["changed"] and not doc["written"]
    assert [(p["name"], p["outcome"]) for p in doc["pins"]] == [
        ("forge.azrak.io", "present"), ("www.example", "unwanted")]
    assert "not asked for by this run" in proc.stderr and "192.0.2.1" in site.read()


def test_dropping_one_address_of_a_pinned_name_removes_the_tools_line(site):
    site.run("--pin", "forge.azrak.io=10.1.0.10", "--pin", "forge.azrak.io=2001:db8::10")
    proc = site.run("--json")
    doc = json.loads(proc.stdout)
    assert [(p["outcome"], p["removed"]) for p in doc["pins"]] == [("corrected", [4])]
    assert "2001:db8::10" not in site.read() and "own line 4 removed" in proc.stderr


def test_the_docs_say_what_happens_to_a_pinned_names_other_family(site):
    """The man page said both that every other mapping of a pinned name is
    switched off and that a pin no longer asked for is never removed; the
    tool removes its own line of an address no longer pinned for a name
    still pinned, and keeps the pins of a name no longer pinned at all.
    The man page and --help now say exactly that, in one place each."""
    site.run("--pin", "forge.azrak.io=10.1.0.10", "--pin", "forge.azrak.io=2001:db8::10",
             "--pin", "www.example=192.0.2.1")
    proc = site.run("--pin", "forge.azrak.io=10.1.0.10")  # v6 dropped, www not named
    assert proc.returncode == 0, proc.stderr
    assert "own line 4 removed: no longer pinned for forge.azrak.io" in proc.stderr
    assert "2001:db8::10" not in site.read() and "192.0.2.1\twww.example" in site.read()
    removed = ("A name still pinned gets exactly the addresses asked for: the tool's own line "
               "of an address no longer pinned for it (its IPv6 line when only an IPv4 address "
               "is pinned now) is removed, with a warning")
    kept = ("A name no longer pinned at all (gone from the configuration, or not named by this "
            "run's --pin) keeps its pins: they are reported, never removed; only --unpin and "
            "--unpin-all remove the pins of a name.")
    page = os.path.join(ROOT, "debian", "man", "optimus-boot-reconcile.8")
    env = dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="1000")
    man = subprocess.run(["man", "-l", page], env=env, capture_output=True, text=True,
                         timeout=60).stdout
    for text in (man, run_tool(TOOL, "--help").stdout):
        text = " ".join(re.sub("[\u2010\u00ad]\\s*", "", text).split())  # lines joined
        assert kept in text and removed in text
        assert "A pin no longer asked for" not in text


def test_json_reports_each_pin(site):
    doc = json.loads(site.run("--json").stdout)
    assert doc["file"] == site.hosts and doc["changed"] and doc["written"]
    assert doc["method"] == "rename"
    (pin,) = doc["pins"]
    assert (pin["name"], pin["address"], pin["outcome"], pin["switched_off"]) == (
        "forge.azrak.io", "10.1.0.10", "added", [3])


def test_verbose_says_more_and_quiet_says_nothing(site):
    proc = site.run("-v", "--check")
    assert len(proc.stderr.splitlines()) > 2 and "switched off" in proc.stderr
    assert site.run("-q").stderr == ""


# ---------------------------------------------------------------- exit 3


def test_check_and_diff_find_drift_and_write_nothing(site):
    before = os.stat(site.hosts)
    check = site.run("--check")
    assert check.returncode == 3 and "not in sync" in one_line(check) and check.stdout == ""
    diff = site.run("--diff")
    assert diff.returncode == 3
    assert diff.stdout.startswith("--- %s\n+++ %s (reconciled)\n@@ -1,3 +1,5 @@\n" % (site.hosts, site.hosts))
    assert "-203.0.113.5 www forge.azrak.io\n+" + PIN_LINE in diff.stdout
    after = os.stat(site.hosts)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert site.read() == ADMIN
    # the diff applies with patch(1)-free means: its + lines are the new file's lines
    site.run()
    assert site.run("--check").returncode == 0 and site.run("--diff").stdout == ""


def test_diff_of_a_file_without_final_newline(site):
    site.write("203.0.113.5 forge.azrak.io")
    diff = site.run("--diff")
    assert diff.returncode == 3
    assert diff.stdout.endswith("\\ No newline at end of file\n")


# ---------------------------------------------------------------- exit 2


@pytest.mark.parametrize("args,message", [
    (["--pin", "forge.azrak.io=10.1.0.256"], "'10.1.0.256'"),
    (["--pin", "forge.azrak.io=10.1.0"], "'10.1.0'"),
    (["--pin", "forge.azrak.io="], "bad address ''"),
    (["--pin", "forge..io=10.1.0.10"], "'forge..io': empty label"),
    (["--pin=-forge.io=10.1.0.10"], "'-forge.io'"),
    (["--pin", "forge#io=10.1.0.10"], "'forge#io'"),
    (["--pin", "forge.azrak.io"], "expected NAME=ADDRESS"),
    (["--pin", "forge.azrak.io=fe80::1%eth0"], "zone index (%eth0)"),
    (["--pin", "10.1.0.10=forge.azrak.io"], "name and address swapped?"),
    (["--pin", "FORGE.AZRAK.IO.=10.1.0.10"], "a trailing dot is not allowed"),
    (["--pin", "1.2.3.4=10.1.0.10"], "bad host name '1.2.3.4': inet_aton reads it as the IPv4 "
     "address 1.2.3.4, so a resolver answers it itself and never looks it up in a hosts file"),
    (["--pin", "0x7f.1=10.1.0.10"], "'0x7f.1': inet_aton reads it as the IPv4 address 127.0.0.1"),
    (["--unpin", "017700000001"], "'017700000001': inet_aton reads it as the IPv4 address "
     "127.0.0.1"),
    (["--pin", "a.io=10.1.0.10", "--unpin", "A.io"], "both pinned and unpinned"),
    (["--pin", "a.io=10.1.0.10", "--unpin-all"], "--unpin-all"),
    (["--unpin", "a/b"], "'a/b'"),
    (["--pin", "bücher.example=10.1.0.10"], "not ASCII; pin its ASCII form 'xn--bcher-kva.example'"),
    (["--unpin", "bücher.example"], "not ASCII; pin its ASCII form 'xn--bcher-kva.example'"),
    (["--list", "--unpin", "a"], "--list"),
    (["--check", "--diff"], "not allowed with"),
    (["--bogus"], "unrecognized"),
    (["--config", ""], "error: --config: empty path"),
])
def test_usage_errors_exit_2_and_change_nothing(site, args, message):
    proc = site.run(*args)
    assert proc.returncode == 2, proc.stderr
    assert message in one_line(proc)
    assert site.read() == ADMIN


def test_localhost_is_refused_unless_forced(site):
    site.write("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    before = site.read()
    for name in ("localhost", "LOCALHOST", "ci.localhost", "ip6-loopback"):
        proc = site.run("--pin", "%s=10.1.0.10" % name)
        assert proc.returncode == 2, proc.stderr
        assert one_line(proc).endswith(
            ": a pin would switch off the stock lines that map it (127.0.0.1 localhost, ::1 "
            "ip6-localhost ...); add --force to pin it anyway")
        assert site.read() == before
    proc = site.run("--force")
    assert proc.returncode == 2 and one_line(proc).endswith("error: --force goes only with --pin")
    with open(site.conf) as handle:
        conf = handle.read()
    with open(site.conf, "a") as handle:  # in guard.conf: refused, with file and line
        handle.write("    localhost 10.1.0.10\n")
    proc = site.run()
    assert proc.returncode == 2 and one_line(proc).startswith(
        "%s: error: %s:5: [reconcile] pins: localhost is a loopback name" % (TOOL, site.conf))
    assert site.read() == before
    with open(site.conf, "w") as handle:
        handle.write(conf)
    proc = site.run("--pin", "localhost=10.1.0.10", "--force")  # forced: done as asked
    assert proc.returncode == 0, proc.stderr
    assert site.read() == ("10.1.0.10\tlocalhost # forgejo-runner-guard pin\n"
                           "#forgejo-runner-guard off localhost %08x: 127.0.0.1\tlocalhost\n"
                           "::1\tip6-localhost ip6-loopback # forgejo-runner-guard keep\n"
                           "#forgejo-runner-guard off localhost %08x: ::1\tlocalhost "
                           "ip6-localhost ip6-loopback\n"
                           % (zlib.crc32(b"127.0.0.1\tlocalhost"),
                              zlib.crc32(b"::1\tlocalhost ip6-localhost ip6-loopback")))


def test_configuration_errors_exit_2(site, tmp_path):
    with open(site.conf, "a") as handle:
        handle.write("colour = red\n")
    proc = site.run()
    assert proc.returncode == 2 and "colour" in one_line(proc) and site.conf in proc.stderr
    bad = Site(tmp_path / "bad", pins="forge.azrak.io 10.1.0.256")
    proc = bad.run()
    assert proc.returncode == 2 and "10.1.0.256" in one_line(proc) and bad.read() == ADMIN
    proc = run_tool(TOOL, "--config", str(tmp_path / "missing.conf"))
    assert proc.returncode == 2 and "missing.conf" in one_line(proc)


def test_a_broken_watchdog_section_does_not_stop_the_boot_pin(site):
    with open(site.conf, "a") as handle:
        handle.write("[watchdog]\nthreshold = forty\n")
    proc = site.run()
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == ("%s: warning: %s:7: [watchdog] threshold: not a whole number: 'forty' "
                        "(ignored: this command does not use [watchdog])" % (TOOL, site.conf))
    assert PIN_LINE in site.read() and len(lines) == 2
    # the commands that read [watchdog] still stop on it
    proc = site.run("--runners")
    assert proc.returncode == 2 and "threshold: not a whole number" in one_line(proc)
    proc = run_tool("forgejo-runner-watchdog", "--config", site.conf, "--dry-run")
    assert proc.returncode == 2 and "threshold: not a whole number" in one_line(proc)


# ---------------------------------------------------------------- exit 1


def test_missing_directory_is_exit_1(site):
    proc = site.run("--hosts-file", os.path.join(site.root, "nodir", "hosts"))
    assert proc.returncode == 1 and "does not exist" in one_line(proc)
    assert not os.path.exists(os.path.join(site.root, "nodir"))


def test_unreadable_hosts_file_is_exit_1(site):
    proc = site.run("--hosts-file", site.root)  # a directory
    assert proc.returncode == 1 and "cannot read" in one_line(proc)


@pytest.mark.parametrize("kind", ["chr", "fifo", "fifo-link"])
@pytest.mark.parametrize("mode", [[], ["--check"], ["--unpin-all"]])
def test_a_device_or_fifo_is_refused_and_left_as_it_is(site, kind, mode):
    """A copy of /dev/null made with mknod, a FIFO (which would block a
    reader forever), a symlink to a FIFO: one line, exit 1, untouched."""
    node = os.path.join(site.root, "etc", "node")
    if kind == "chr":
        os.mknod(node, stat.S_IFCHR | 0o644, os.makedev(1, 3))
    else:
        os.mkfifo(node, 0o644)
    path = node
    if kind == "fifo-link":
        path = os.path.join(site.root, "etc", "link")
        os.symlink("node", path)
    before = os.lstat(node)
    proc = run_tool(TOOL, "--config", site.conf, "--hosts-file", path, *mode, timeout=30)
    what = "a character device" if kind == "chr" else "a FIFO"
    assert proc.returncode == 1
    assert "cannot read %s: it is %s, not a regular file" % (path, what) in one_line(proc)
    after = os.lstat(node)
    assert (after.st_ino, after.st_mode, after.st_rdev) == (before.st_ino, before.st_mode,
                                                             before.st_rdev)
    assert sorted(os.listdir(os.path.dirname(node))) == sorted(
        ["hosts", "node"] + (["link"] if kind == "fifo-link" else []))


def test_the_lock_backup_and_state_files_that_are_not_regular_are_refused(site):
    """Every file reconcile writes besides the hosts file: its lock, the
    in-place backup, reconcile.json.  A device node (made here: c 1 7, a
    full device) or a FIFO is refused in one line and left as it is."""
    os.mkfifo(site.lock)
    proc = run_tool(TOOL, "--config", site.conf, timeout=30)
    assert proc.returncode == 1
    assert one_line(proc) == ("%s: error: cannot open lock file %s: it is a FIFO, not a regular "
                              "file; left as it is" % (TOOL, site.lock))
    assert stat.S_ISFIFO(os.lstat(site.lock).st_mode) and site.read() == ADMIN
    os.remove(site.lock)
    backup = safewrite.backup_path(site.hosts, site.state)
    os.mknod(backup, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    proc = site.run(env={"FRG_TEST_FAIL": "ebusy"})  # the in-place path, as a bind mount takes
    assert proc.returncode == 1
    assert one_line(proc) == ("%s: error: cannot save a backup of %s to %s before rewriting it in "
                              "place: it is a character device, not a regular file; left as it "
                              "is; the file is unchanged" % (TOOL, site.hosts, backup))
    assert stat.S_ISCHR(os.lstat(backup).st_mode) and site.read() == ADMIN
    os.remove(backup)
    with open(site.conf, "a") as handle:
        handle.write("[notify]\ncommand = /bin/true\n")
    state = os.path.join(site.state, "reconcile.json")
    os.mkfifo(state)
    proc = run_tool(TOOL, "--config", site.conf, "--check", timeout=30)  # would block on the FIFO
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.splitlines()[1:] == [
        "%s: warning: cannot read %s: it is a FIFO, not a regular file; left as it is: history "
        "unknown" % (TOOL, state),
        "%s: warning: cannot write the state file %s: it could not be read, so it is not "
        "replaced: a condition may be notified again" % (TOOL, state)]
    assert stat.S_ISFIFO(os.lstat(state).st_mode) and sorted(os.listdir(site.state)) == [
        "reconcile.json"]


def test_json_document_is_printed_with_the_error(site):
    os.chmod(site.hosts, 0o640)
    proc = site.run("--json", env={"FRG_TEST_FAIL": "rename"})
    assert proc.returncode == 1 and "injected" in one_line(proc)
    doc = json.loads(proc.stdout)
    assert doc["error"] == proc.stderr.split(": error: ", 1)[1].rstrip("\n")
    assert (doc["file"], doc["mode"], doc["changed"], doc["written"]) == (site.hosts, "apply",
                                                                          True, False)
    assert [p["outcome"] for p in doc["pins"]] == ["added"] and site.read() == ADMIN
    # failing before there is a plan: the document says so
    proc = site.run("--json", "--hosts-file", site.root)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["changed"] is None and doc["pins"] == [] and "it is a directory" in doc["error"]
    assert "error" not in json.loads(site.run("--json").stdout)


def test_a_permission_error_not_as_root_says_so(tmp_path):
    """As nobody (setpriv): the lock cannot be created in root's directory.
    nobody runs a copy of bin/ and lib/ in a directory it can read, never
    the checkout, which may be anywhere (under /root, in `mktemp -d`)."""
    top = tempfile.mkdtemp(prefix="frg-nonroot-", dir="/tmp")
    try:
        os.chmod(top, 0o755)
        tools, lib = copy_tools(os.path.join(top, "tree"))
        site = Site(top)
        os.chmod(site.conf, 0o644)
        proc = subprocess.run(
            # Debian's python3: nobody may not reach a venv's interpreter (pyenv under /root)
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
             os.path.join(tools, TOOL), "--config", site.conf],
            env=tool_env({"PYTHONPATH": lib}), cwd=top, capture_output=True, text=True,
            timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert one_line(proc) == ("%s: error: cannot open lock file %s: Permission denied "
                                  "(not running as root: try sudo)" % (TOOL, site.lock))
        assert site.read() == ADMIN
        proc = site.run("--hosts-file", os.path.join(top, "nodir", "x"))  # root: no hint
        assert "sudo" not in proc.stderr
    finally:
        shutil.rmtree(top)


def test_the_run_as_nobody_does_not_depend_on_where_the_checkout_is():
    """The test above, from a copy of the tree in a directory only root
    can read (as `make check` on a clone in `mktemp -d` or under /root)."""
    clone = tempfile.mkdtemp(prefix="frg-clone-")  # mode 0700
    try:
        assert stat.S_IMODE(os.stat(clone).st_mode) == 0o700
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        for name in ("bin", "lib", "tests"):
            shutil.copytree(os.path.join(ROOT, name), os.path.join(clone, name), ignore=ignore)
        shutil.copy(os.path.join(ROOT, "setup.cfg"), clone)
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
             "tests/integration/test_reconcile_cli.py", "-k", "permission_error"],
            cwd=clone, env=dict(os.environ, PYTHONPATH=os.path.join(clone, "lib")),
            capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr
    finally:
        shutil.rmtree(clone)


def test_lock_failure_is_exit_1(site):
    blocker = os.path.join(site.root, "notadir")
    open(blocker, "w").close()
    with open(site.conf) as handle:
        text = handle.read().replace(site.lock, blocker + "/hosts.lock")
    with open(site.conf, "w") as handle:
        handle.write(text)
    proc = site.run()
    assert proc.returncode == 1 and "lock" in one_line(proc) and site.read() == ADMIN


@pytest.mark.parametrize("point", ["rename", "fsync"])
def test_injected_failure_leaves_the_original_intact(site, point):
    os.chmod(site.hosts, 0o640)
    before = os.stat(site.hosts)
    proc = site.run(env={"FRG_TEST_FAIL": point})
    assert proc.returncode == 1 and "injected" in one_line(proc) and "unchanged" in proc.stderr
    after = os.stat(site.hosts)
    assert site.read() == ADMIN and after.st_ino == before.st_ino
    assert stat.S_IMODE(after.st_mode) == 0o640
    assert site.temps() == []


def test_crash_before_rename_leaves_old_file_and_next_run_cleans_up(site):
    proc = site.run(env={"FRG_TEST_FAIL": "crash"})
    assert proc.returncode == 137
    assert site.read() == ADMIN
    (temp,) = site.temps()
    assert temp.startswith(".frg-tmp.hosts.")
    # the temp file is complete (fsynced before the crash point) but never renamed
    proc = site.run()
    assert proc.returncode == 0 and "interrupted run" in proc.stderr
    assert site.temps() == [] and PIN_LINE in site.read()


# ---------------------------------------------------------------- files


def test_symlink_mode_owner_and_xattr_are_kept(site):
    real_dir = os.path.join(site.root, "real")
    os.makedirs(real_dir)
    target = os.path.join(real_dir, "hosts.real")
    shutil.move(site.hosts, target)
    os.symlink(os.path.relpath(target, os.path.dirname(site.hosts)), site.hosts)
    os.chown(target, 1234, 1234)
    os.chmod(target, 0o640)
    os.setxattr(target, "user.frg-test", b"label")
    old_ino = os.stat(target).st_ino
    proc = site.run()
    assert proc.returncode == 0 and "atomic rename" in proc.stderr, proc.stderr
    assert os.path.islink(site.hosts)
    st = os.stat(target)
    assert st.st_ino != old_ino  # really replaced by rename
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 1234, 0o640)
    assert os.getxattr(target, "user.frg-test") == b"label"
    assert PIN_LINE in site.read()
    assert os.listdir(real_dir) == ["hosts.real"]


def test_missing_hosts_file_is_created_0644(tmp_path):
    site = Site(tmp_path, hosts=None)
    # under a umask that would narrow it
    proc = subprocess.run(["sh", "-c", 'umask 077; exec "$@"', "sh", sys.executable,
                           os.path.join(ROOT, "bin", TOOL), "--config", site.conf],
                          env=tool_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "created" in proc.stderr, proc.stderr
    assert stat.S_IMODE(os.stat(site.hosts).st_mode) == 0o644
    assert site.read() == PIN_LINE
    # --check on a missing file reports drift, creates nothing
    os.unlink(site.hosts)
    assert site.run("--check").returncode == 3 and not os.path.exists(site.hosts)


def test_injected_ebusy_takes_the_in_place_path(site):
    os.chown(site.hosts, 1234, 1234)
    ino = os.stat(site.hosts).st_ino
    proc = site.run(env={"FRG_TEST_FAIL": "ebusy"})
    assert proc.returncode == 0, proc.stderr
    assert "in place, not atomically" in proc.stderr
    assert os.stat(site.hosts).st_ino == ino and PIN_LINE in site.read()
    with open(safewrite.backup_path(site.hosts, site.state)) as handle:
        assert handle.read() == ADMIN
    assert site.temps() == []


def test_bind_mounted_hosts_file_is_rewritten_in_place(site):
    """A private mount namespace; the bind mount covers a temp file only."""
    source = os.path.join(site.root, "bind-source")
    with open(source, "w") as handle:
        handle.write(ADMIN)
    site.write("placeholder\n")
    script = 'mount --bind "$1" "$2" && exec "$3" "$4" --config "$5"'
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", source,
         site.hosts, sys.executable, os.path.join(ROOT, "bin", TOOL), site.conf],
        env=tool_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "rewritten in place, not atomically" in proc.stderr and "Device or resource busy" in proc.stderr
    with open(source) as handle:  # written through the bind mount, in place
        assert PIN_LINE in handle.read()
    assert site.read() == "placeholder\n"  # the mount was private to that namespace
    with open(safewrite.backup_path(site.hosts, site.state)) as handle:
        assert handle.read() == ADMIN
    assert site.temps() == []


# Runs a command and prints its exit status and peak RSS (KiB).  A child
# counts the memory of the process it was forked from: this small launcher,
# not the test's own (large) process, is that process.
_LAUNCH = ("import os, subprocess, sys\n"
           "proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, "
           "stderr=subprocess.DEVNULL)\n"
           "_, status, usage = os.wait4(proc.pid, 0)\n"
           "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n")


def _peak_rss(site, *args):
    """-> (exit status, peak RSS in bytes) of one run."""
    proc = subprocess.run([sys.executable, "-c", _LAUNCH, sys.executable,
                           os.path.join(ROOT, "bin", TOOL), "--config", site.conf, *args],
                          env=tool_env(), capture_output=True, text=True, timeout=120)
    status, peak = proc.stdout.split()
    return int(status), int(peak) * 1024


def test_a_12_mb_single_line_hosts_file_takes_a_few_times_its_size(site):
    """700,000 names on one line, the pinned name among them (so the line
    is switched off: the new file is twice the old).  It took 300 MB and
    more (a list of the names); now at most four times the file over what
    a run on a small file takes, written, checked, diffed and in sync."""
    names = b" ".join(b"host%d.example.org" % i for i in range(560000))
    data = b"0.0.0.0 " + names + b" forge.azrak.io " + names[:40]  # no final newline either
    assert 11e6 < len(data) < 13e6
    site.write("127.0.0.1 localhost\n")
    base = max(_peak_rss(site, "--check")[1], _peak_rss(site)[1])
    limit = base + 4 * len(data)
    for args, status in ((["--check"], 3), (["--diff"], 3), ([], 0), ([], 0), (["--check"], 0)):
        if status == 3:
            site.write(data)
        got, peak = _peak_rss(site, *args)
        assert got == status, args
        assert peak < limit, (args, peak // 2 ** 20, limit // 2 ** 20)
    assert "forge.azrak.io # forgejo-runner-guard pin" in site.read()


def test_twenty_concurrent_runs_all_land(site):
    procs = [subprocess.Popen([sys.executable, os.path.join(ROOT, "bin", TOOL), "--config",
                               site.conf, "-q", "--pin", "n%d.example=192.0.2.%d" % (i, i + 1)],
                              env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(20)]
    for proc in procs:
        proc.wait(timeout=60)
        assert proc.returncode == 0, proc.stderr.read()
    text = site.read()
    for i in range(20):
        assert "192.0.2.%d\tn%d.example # forgejo-runner-guard pin\n" % (i + 1, i) in text
    assert text.count("# forgejo-runner-guard pin") == 20 and text.startswith(ADMIN[:30])
    assert site.temps() == []


# ---------------------------------------------------------------- logging, help, imports


def test_journal_priority_prefixes(site, tmp_path):
    log = tmp_path / "stderr.log"
    with open(log, "w") as handle:
        st = os.fstat(handle.fileno())
        env = tool_env({"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
        for args in ([], ["--pin", "bad..name=1.2.3.4"], ["--pin", "x.example=192.0.2.9"]):
            subprocess.run([sys.executable, os.path.join(ROOT, "bin", TOOL), "--config", site.conf]
                           + args, env=env, stderr=handle, stdout=subprocess.DEVNULL, timeout=60)
    lines = log.read_text().splitlines()
    assert lines[0].startswith("<6>") and "updated" in lines[0]
    assert lines[1].startswith("<3>") and "bad..name" in lines[1]
    assert lines[2].startswith("<4>") and "not asked for" in lines[2]
    assert lines[3].startswith("<6>")
    # a JOURNAL_STREAM naming another stream: plain lines
    proc = site.run("--check", env={"JOURNAL_STREAM": "1:1"})
    assert proc.stderr.startswith(TOOL + ": ")


def test_help_teaches_examples_exit_codes_and_in_place_fallback():
    proc = run_tool(TOOL, "--help")
    assert proc.returncode == 0
    for text in ("examples:", "exit status:", "--unpin forge.azrak.io", "NOT atomic",
                 "bind-mounted", "hosts.before-in-place", "3  --check or --diff"):
        assert text in proc.stdout, text


def test_does_not_import_sh(site):
    code = ("import sys; from forgejo_runner_guard.pins import command as reconcile; "
            "status = reconcile.main(['--config', sys.argv[1], '--check']); "
            "assert 'sh' not in sys.modules, 'imported sh'; sys.exit(status)")
    proc = subprocess.run([sys.executable, "-c", code, site.conf], env=tool_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr


def test_man_page_is_lint_clean():
    page = os.path.join(ROOT, "debian", "man", "optimus-boot-reconcile.8")
    env = dict(os.environ, LC_ALL="C.UTF-8", MANROFFSEQ="", MANWIDTH="80")
    proc = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", page],
                          env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr.decode()
    text = subprocess.run(["man", "-l", page], env=dict(env, MANPAGER="cat", PAGER="cat"),
                          capture_output=True, text=True, timeout=60).stdout
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "FILES",
                    "ENVIRONMENT", "EXAMPLES", "SEE ALSO"):
        assert "\n" + section + "\n" in text, section
    for option in ("--hosts-file", "--pin", "--unpin-all", "--list", "--check", "--diff",
                   "--json", "JOURNAL_STREAM", "forgejo-runner-watchdog", "hosts.before-in-place"):
        assert option in text, option


def test_man_pages_say_what_the_tools_do():
    """The --json outcomes the page lists are the ones the tool prints;
    `man -k forgejo` finds both pages (lexgrog reads what mandb indexes);
    the docs name the Docker socket the tool uses by default."""
    page = os.path.join(ROOT, "debian", "man", "optimus-boot-reconcile.8")
    with open(page) as handle:
        text = handle.read()
    listed = text.split(".TP\n.B \\-\\-json\n", 1)[1].split(".TP", 1)[0]  # the option
    outcomes = {re.sub(r"^\.(?:RB|BR|B) (\( )?", "", line).split()[0].replace("\\-", "-")
                for line in listed.splitlines() if line.startswith((".RB (", ".BR ", ".B "))}
    assert outcomes == {hf.PRESENT, hf.UNMANAGED, hf.ADDED, hf.REPLACED, hf.CORRECTED,
                        hf.UNPINNED, hf.NOT_PINNED, hf.UNWANTED}
    for name in ("optimus-boot-reconcile", "forgejo-runner-watchdog"):
        proc = subprocess.run(["lexgrog", os.path.join(ROOT, "debian", "man", name + ".8")],
                              capture_output=True, text=True, timeout=60, check=True)
        assert "forgejo" in proc.stdout.split(" - ", 1)[1].lower(), proc.stdout
    from forgejo_runner_guard.system import engines

    runbook = os.path.join(ROOT, "runbook", "08-forgejo-runner-lan-pin-and-watchdog.md")
    for path in (runbook, page, os.path.join(ROOT, "debian", "man", "forgejo-runner-watchdog.8")):
        with open(path) as handle:
            sockets = set(re.findall(r"unix://[\w/.\\-]*docker\.sock", handle.read()))
        assert {s.replace("\\-", "-") for s in sockets} <= {engines.DEFAULT_HOST}, (path, sockets)
