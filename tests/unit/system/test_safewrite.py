"""safewrite.replace_file and friends, on real files (and a real
read-only mount in a private mount namespace)."""

import errno
import os
import stat
import subprocess
import sys
import textwrap

import pytest
from helpers.tools import tool_env

from forgejo_runner_guard.system import safewrite
from forgejo_runner_guard.report import GuardError


def write(path, data):
    with open(path, "wb") as handle:
        handle.write(data)


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def test_replace_follows_a_symlink_chain_and_keeps_attributes(tmp_path):
    target = tmp_path / "real" / "hosts"
    target.parent.mkdir()
    write(target, b"old\n")
    os.symlink(str(target), str(tmp_path / "link1"))
    os.symlink("link1", str(tmp_path / "hosts"))
    os.chown(target, 1234, 4321)
    os.chmod(target, 0o604)
    os.setxattr(target, "user.a", b"1")
    os.setxattr(target, "user.b", b"")
    method, detail = safewrite.replace_file(str(tmp_path / "hosts"), b"new\n", str(tmp_path / "st"))
    assert (method, detail) == ("rename", "")
    assert os.readlink(str(tmp_path / "hosts")) == "link1" and read(target) == b"new\n"
    st = os.stat(target)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 4321, 0o604)
    assert os.getxattr(target, "user.a") == b"1" and os.getxattr(target, "user.b") == b""
    assert not (tmp_path / "st").exists()  # no backup on the atomic path


def test_created_file_gets_mode_despite_umask(tmp_path):
    old = os.umask(0o077)
    try:
        method, _ = safewrite.replace_file(str(tmp_path / "hosts"), b"x\n", str(tmp_path / "st"))
    finally:
        os.umask(old)
    assert method == "created" and stat.S_IMODE(os.stat(tmp_path / "hosts").st_mode) == 0o644


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(GuardError, match="does not exist"):
        safewrite.replace_file(str(tmp_path / "no" / "hosts"), b"x", str(tmp_path))
    assert safewrite.read_file(str(tmp_path / "hosts")) is None
    with pytest.raises(GuardError, match="does not exist"):
        safewrite.read_file(str(tmp_path / "no" / "hosts"))


def test_remove_stale_temps_removes_only_the_targets_own(tmp_path):
    names = [".frg-tmp.hosts.123", ".frg-tmp.hosts.9", ".frg-tmp.hosts.x", ".frg-tmp.hostsX.1",
             ".frg-tmp.other.5", "hosts"]
    for name in names:
        write(tmp_path / name, b"")
    removed = safewrite.remove_stale_temps(str(tmp_path / "hosts"))
    assert sorted(os.path.basename(p) for p in removed) == [".frg-tmp.hosts.123", ".frg-tmp.hosts.9"]
    assert sorted(os.listdir(tmp_path)) == sorted(set(names) - {".frg-tmp.hosts.123", ".frg-tmp.hosts.9"})


def test_in_place_truncates_and_backs_up(tmp_path):
    write(tmp_path / "hosts", b"a much longer old content\n")
    (tmp_path / "st").mkdir()
    ino = os.stat(tmp_path / "hosts").st_ino
    backup = safewrite.write_in_place(str(tmp_path / "hosts"), b"short\n", str(tmp_path / "st"))
    assert read(tmp_path / "hosts") == b"short\n" and os.stat(tmp_path / "hosts").st_ino == ino
    assert read(backup) == b"a much longer old content\n"
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    assert backup == safewrite.backup_path(str(tmp_path / "hosts"), str(tmp_path / "st"))


def test_backups_are_named_by_the_whole_path(tmp_path):
    """A test file named hosts never overwrites the backup of /etc/hosts."""
    assert safewrite.backup_path("/etc/hosts", "/b") == "/b/etc-hosts.before-in-place"
    assert safewrite.backup_path("/srv/test/hosts", "/b") == "/b/srv-test-hosts.before-in-place"
    assert safewrite.backup_path("/a-b/c", "/b") != safewrite.backup_path("/a/b/c", "/b")
    # the same text as systemd-escape --path
    paths = ["/etc/hosts", "/tmp/a-b/.x/c d/ü", "/", "/x//y/"]
    proc = subprocess.run(["systemd-escape", "--path", *paths], capture_output=True, text=True,
                          check=True)
    assert [safewrite.escape_path(p) for p in paths] == proc.stdout.split()


def test_a_backup_directory_that_is_missing_fails_before_anything_is_written(tmp_path):
    write(tmp_path / "hosts", b"old\n")
    with pytest.raises(GuardError) as info:
        safewrite.write_in_place(str(tmp_path / "hosts"), b"new\n", str(tmp_path / "no" / "st"))
    assert str(info.value).endswith("directory %s does not exist; the file is unchanged"
                                    % (tmp_path / "no" / "st"))
    assert read(tmp_path / "hosts") == b"old\n" and os.listdir(tmp_path) == ["hosts"]


@pytest.mark.parametrize("fail, unchanged", [("write", True), ("fsync", False)])
def test_a_failed_in_place_write_says_what_is_true(tmp_path, mocker, fail, unchanged):
    """Faults injected after the file is open: a write that fails before
    any byte lands leaves the file as it was (the backup goes); one that
    fails later keeps the backup and names it."""
    write(tmp_path / "hosts", b"old\n")
    (tmp_path / "st").mkdir()
    real = getattr(os, fail)
    target = os.open(str(tmp_path / "hosts"), os.O_RDONLY)
    target_ino = os.fstat(target).st_ino
    os.close(target)

    def failing(fd, *args):
        if os.fstat(fd).st_ino == target_ino:
            raise OSError(5, "Input/output error")
        return real(fd, *args)

    mocker.patch("os." + fail, side_effect=failing)
    backup = safewrite.backup_path(str(tmp_path / "hosts"), str(tmp_path / "st"))
    with pytest.raises(GuardError) as info:
        safewrite.write_in_place(str(tmp_path / "hosts"), b"new\n", str(tmp_path / "st"))
    if unchanged:
        assert str(info.value) == ("cannot rewrite %s in place: Input/output error; the file is "
                                   "unchanged" % (tmp_path / "hosts"))
        assert read(tmp_path / "hosts") == b"old\n" and os.listdir(tmp_path / "st") == []
    else:
        assert str(info.value) == ("cannot rewrite %s in place: Input/output error; it may be "
                                   "partly written: restore it from %s" % (tmp_path / "hosts", backup))
        assert read(backup) == b"old\n"


def test_only_the_packages_own_directories_are_created(tmp_path, monkeypatch):
    own = tmp_path / "var" / "lib" / "forgejo-runner-guard"
    monkeypatch.setattr(safewrite, "OWN_DIRECTORIES", (str(own),))
    with pytest.raises(OSError) as info:
        safewrite.ensure_directory(str(own))  # its parent is missing: not created either
    assert (info.value.errno, info.value.strerror) == (
        errno.ENOENT, "directory %s does not exist" % own.parent)
    own.parent.mkdir(parents=True)
    safewrite.ensure_directory(str(own) + "/")
    assert own.is_dir() and stat.S_IMODE(own.stat().st_mode) == 0o755
    safewrite.ensure_directory(str(own))  # exists: fine
    with pytest.raises(OSError, match="directory %s does not exist" % (tmp_path / "typo")):
        safewrite.ensure_directory(str(tmp_path / "typo"))
    with pytest.raises(GuardError, match="directory %s does not exist" % (tmp_path / "x")):
        with safewrite.lock(str(tmp_path / "x" / "l.lock")):
            pass
    with pytest.raises(OSError, match="directory %s does not exist" % (tmp_path / "x")):
        safewrite.atomic_write(str(tmp_path / "x" / "f"), b"")
    assert sorted(os.listdir(tmp_path)) == ["var"]


def test_injected_failures_raise_and_leave_the_file(tmp_path, monkeypatch):
    write(tmp_path / "hosts", b"old\n")
    for point in ("fsync", "rename"):
        monkeypatch.setenv(safewrite.FAIL_ENV, point)
        with pytest.raises(GuardError, match="injected"):
            safewrite.replace_file(str(tmp_path / "hosts"), b"new\n", str(tmp_path / "st"))
        assert read(tmp_path / "hosts") == b"old\n" and os.listdir(tmp_path) == ["hosts"]


@pytest.mark.child
def test_read_only_directory_with_a_bind_mounted_file_falls_back_in_place(tmp_path):
    """/etc read-only, /etc/hosts a writable bind mount: EROFS on the temp file."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (tmp_path / "st").mkdir()
    write(etc / "hosts", b"placeholder\n")
    source = tmp_path / "source"
    write(source, b"old\n")
    code = textwrap.dedent("""
        import sys
        from forgejo_runner_guard.system import safewrite
        print(*safewrite.replace_file(sys.argv[1], b"new\\n", sys.argv[2]), sep="|")
    """)
    script = ('mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && '
              'mount --bind "$2" "$1/hosts" && exec "$3" -c "$4" "$1/hosts" "$5"')
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                           str(etc), str(source), sys.executable, code, str(tmp_path / "st")],
                          env=tool_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    method, detail = proc.stdout.strip().split("|")
    assert method == "in-place" and "Read-only file system" in detail
    backup = safewrite.backup_path(str(etc / "hosts"), str(tmp_path / "st"))
    assert read(source) == b"new\n" and read(backup) == b"old\n"
    assert read(etc / "hosts") == b"placeholder\n"


@pytest.mark.child
def test_an_in_place_rewrite_on_a_full_file_system_puts_the_old_bytes_back(tmp_path):
    """A hosts file bind-mounted from a full tmpfs, as Docker's (rename:
    EBUSY): the new, longer text needs one more page than the file has,
    the write stops at the page's end, mid-line; the old bytes go back
    where they were and the backup goes."""
    for name in ("fs", "st", "etc"):
        (tmp_path / name).mkdir()
    write(tmp_path / "etc" / "hosts", b"placeholder\n")
    old = b"".join(b"10.0.%d.%d host-%05d.example.org\n" % (i // 250, i % 250, i)
                   for i in range(8190 // 33)).ljust(8190, b"#")[:8189] + b"\n"
    assert len(old) == 8190
    new = old + b"10.1.0.10 forge.azrak.io # forgejo-runner-guard pin\n"
    code = textwrap.dedent("""
        import sys
        from forgejo_runner_guard.system import safewrite
        from forgejo_runner_guard.report import GuardError
        try:
            safewrite.replace_file(sys.argv[1], open(sys.argv[3], "rb").read(), sys.argv[2])
        except GuardError as exc:
            print(exc)
    """)
    write(tmp_path / "old", old)
    write(tmp_path / "new", new)
    script = ('mount -t tmpfs -o size=12k tmpfs "$1" && cp "$2" "$1/hosts" && '
              '(dd if=/dev/zero of="$1/filler" bs=4096 2>/dev/null || true) && '
              'mount --bind "$1/hosts" "$8/hosts" && "$3" -c "$4" "$8/hosts" "$5" "$6" && '
              'cat "$1/hosts" > "$7" && df -B1 --output=avail "$1" | tail -1')
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                           str(tmp_path / "fs"), str(tmp_path / "old"), sys.executable, code,
                           str(tmp_path / "st"), str(tmp_path / "new"), str(tmp_path / "after"),
                           str(tmp_path / "etc")],
                          env=tool_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    message, avail = proc.stdout.splitlines()
    assert message == ("cannot rewrite %s in place: No space left on device; the file is "
                       "unchanged" % (tmp_path / "etc" / "hosts"))
    assert read(tmp_path / "after") == old and avail.strip() == "0"
    assert os.listdir(str(tmp_path / "st")) == []  # the backup is gone: nothing to restore
    assert read(tmp_path / "etc" / "hosts") == b"placeholder\n"
    assert sorted(os.listdir(str(tmp_path / "etc"))) == ["hosts"]  # no temporary file left


@pytest.mark.child
def test_a_read_only_bind_mounted_file_is_refused_without_a_backup(tmp_path):
    """The file itself is a read-only bind mount (rename: EBUSY; open for
    writing: EROFS): nothing is written, no backup is left."""
    write(tmp_path / "hosts", b"old\n")
    (tmp_path / "st").mkdir()
    code = textwrap.dedent("""
        import sys
        from forgejo_runner_guard.system import safewrite
        from forgejo_runner_guard.report import GuardError
        try:
            safewrite.replace_file(sys.argv[1], b"new\\n", sys.argv[2])
        except GuardError as exc:
            print(exc)
    """)
    script = ('mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && '
              'exec "$2" -c "$3" "$1" "$4"')
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                           str(tmp_path / "hosts"), sys.executable, code, str(tmp_path / "st")],
                          env=tool_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ("cannot rewrite %s in place either: Read-only file system; the file is "
                           "unchanged\n" % (tmp_path / "hosts"))
    assert read(tmp_path / "hosts") == b"old\n" and os.listdir(tmp_path / "st") == []
    assert sorted(os.listdir(tmp_path)) == ["hosts", "st"]


def test_replace_refuses_what_is_not_a_regular_file(tmp_path):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)  # the FIFO would block a reader forever
    with pytest.raises(GuardError, match="cannot write .*fifo: it is a FIFO, not a regular file"):
        safewrite.replace_file(fifo, b"x\n", str(tmp_path))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(str(tmp_path)) == ["fifo"]
    with pytest.raises(GuardError, match="cannot read .*: it is a directory, not a regular file"):
        safewrite.read_file(str(tmp_path))


def test_atomic_write_gives_the_mode_despite_umask_077(tmp_path):
    old = os.umask(0o077)
    try:
        safewrite.atomic_write(str(tmp_path / "f"), b"x\n", mode=0o644)
        safewrite.atomic_write(str(tmp_path / "g"), b"y\n", mode=0o600)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "f").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "g").st_mode) == 0o600
    assert read(tmp_path / "f") == b"x\n" and sorted(os.listdir(tmp_path)) == ["f", "g"]


def test_a_failed_atomic_write_leaves_no_temporary_file(tmp_path):
    (tmp_path / "sub").mkdir()
    os.chmod(str(tmp_path / "sub"), 0o755)
    write(tmp_path / "sub" / "target", b"old\n")
    os.symlink("sub/target", str(tmp_path / "link"))
    with pytest.raises(OSError, match="Input/output error"):
        with unittest_mock_fsync_failing():
            safewrite.atomic_write(str(tmp_path / "link"), b"x\n")
    assert sorted(os.listdir(tmp_path)) == ["link", "sub"]
    assert os.listdir(tmp_path / "sub") == ["target"] and read(tmp_path / "link") == b"old\n"


def unittest_mock_fsync_failing():
    from unittest import mock

    return mock.patch("os.fsync", side_effect=OSError(errno.EIO, "Input/output error"))


# Every file the tools write (the metrics file, state.json, reconcile.json,
# the in-place backup, the lock files): a symlink is followed and stays a
# symlink; anything that is not a regular file is refused and left as it is.

def _not_regular_files(tmp_path):
    """{name: kind}: a character device (c 1 7, a full device, made here:
    never the real /dev/full), a block device, a FIFO, a directory, a
    socket; and the socket to close."""
    import socket

    os.mknod(str(tmp_path / "full"), stat.S_IFCHR | 0o666, os.makedev(1, 7))
    os.mknod(str(tmp_path / "null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(str(tmp_path / "blk"), stat.S_IFBLK | 0o600, os.makedev(7, 200))
    os.mkfifo(str(tmp_path / "fifo"))
    (tmp_path / "dir").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    return {"full": "a character device", "null": "a character device", "blk": "a block device",
            "fifo": "a FIFO", "dir": "a directory", "sock": "a socket"}, sock


def _listing(path):
    return sorted((name, stat.S_IFMT(os.lstat(os.path.join(path, name)).st_mode))
                  for name in os.listdir(path))


def test_atomic_write_and_lock_refuse_what_is_not_a_regular_file(tmp_path):
    kinds, sock = _not_regular_files(tmp_path)
    for name in list(kinds):  # and through a symlink to each
        os.symlink(name, str(tmp_path / ("link-" + name)))
        kinds["link-" + name] = kinds[name]
    before = _listing(str(tmp_path))
    try:
        for name, kind in kinds.items():
            path = str(tmp_path / name)
            with pytest.raises(OSError) as info:
                safewrite.atomic_write(path, b"x\n")
            assert type(info.value).__name__ == "NotRegular"
            assert info.value.strerror == "it is %s, not a regular file; left as it is" % kind
            with pytest.raises(GuardError) as info:
                with safewrite.lock(path):
                    pass
            assert str(info.value) == ("cannot open lock file %s: it is %s, not a regular file; "
                                       "left as it is" % (path, kind))
    finally:
        sock.close()
    assert _listing(str(tmp_path)) == before and os.listdir(str(tmp_path / "dir")) == []


def test_atomic_write_and_lock_follow_a_symlink_and_keep_it(tmp_path):
    (tmp_path / "real").mkdir()
    write(tmp_path / "real" / "state.json", b"old\n")
    os.symlink("real/state.json", str(tmp_path / "state.json"))
    os.symlink("real/new.prom", str(tmp_path / "dangling.prom"))  # its target is created
    safewrite.atomic_write(str(tmp_path / "state.json"), b"new\n", 0o600)
    safewrite.atomic_write(str(tmp_path / "dangling.prom"), b"m\n")
    for link, target, data in (("state.json", "state.json", b"new\n"),
                               ("dangling.prom", "new.prom", b"m\n")):
        assert os.readlink(str(tmp_path / link)) == "real/" + target
        assert read(tmp_path / "real" / target) == data
    assert stat.S_IMODE(os.stat(str(tmp_path / "real" / "state.json")).st_mode) == 0o600
    os.symlink("real/x.lock", str(tmp_path / "x.lock"))
    with safewrite.lock(str(tmp_path / "x.lock")):
        assert os.path.islink(str(tmp_path / "x.lock"))
    assert sorted(os.listdir(str(tmp_path))) == ["dangling.prom", "real", "state.json", "x.lock"]
    assert sorted(os.listdir(str(tmp_path / "real"))) == ["new.prom", "state.json", "x.lock"]


def test_atomic_write_never_writes_through_a_leftover_temporary_name(tmp_path):
    """A leftover of our own temporary name (a dead process of this pid):
    removed, never opened, even as a symlink to another file."""
    write(tmp_path / "victim", b"keep\n")
    temp = safewrite.temp_name(str(tmp_path / "state.json"))
    os.symlink(str(tmp_path / "victim"), temp)
    safewrite.atomic_write(str(tmp_path / "state.json"), b"new\n")
    assert read(tmp_path / "victim") == b"keep\n" and read(tmp_path / "state.json") == b"new\n"
    assert sorted(os.listdir(str(tmp_path))) == ["state.json", "victim"]


@pytest.mark.parametrize("how", ["atomic_write", "replace_file", "created"])
def test_the_file_is_fsynced_then_renamed_then_its_directory_fsynced(tmp_path, mocker, how):
    """A spy on os.fsync and os.rename (the fault injection raises before
    fsync, so it cannot show the order)."""
    target = tmp_path / "hosts"
    if how == "replace_file":
        write(target, b"old\n")
    events = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):  # the target's own directory, not another
            events.append(("fsync", "dir", st.st_ino == os.stat(str(tmp_path)).st_ino))
        else:
            events.append(("fsync", "file", st.st_size))
        return real_fsync(fd)

    def rename(src, dst):
        events.append(("rename", os.path.basename(src).startswith(".frg-tmp.hosts."),
                       str(dst) == str(target)))
        return real_rename(src, dst)

    mocker.patch("os.fsync", side_effect=fsync)
    mocker.patch("os.rename", side_effect=rename)
    if how == "atomic_write":
        safewrite.atomic_write(str(target), b"new\n")
    else:
        safewrite.replace_file(str(target), b"new\n", str(tmp_path))
    assert events == [("fsync", "file", 4), ("rename", True, True), ("fsync", "dir", True)]
    assert read(target) == b"new\n"


# ------------------------------------------------------------ in-process paths the mutation run found
# untested (the command-line tests reach them only in a subprocess)


@pytest.fixture
def immutable():
    """chattr +i on paths (root cannot write them either); undone after."""
    paths = []

    def make(path):
        subprocess.run(["chattr", "+i", str(path)], check=True)
        paths.append(str(path))

    yield make
    for path in paths:
        subprocess.run(["chattr", "-i", path], check=True)


def test_read_file_reads_bytes_and_names_what_it_cannot_read(tmp_path):
    write(tmp_path / "hosts", b"a\r\nb\xff\n")
    os.symlink("hosts", str(tmp_path / "link"))
    assert safewrite.read_file(str(tmp_path / "link")) == b"a\r\nb\xff\n"
    assert safewrite.read_file(str(tmp_path / "missing")) is None
    with pytest.raises(GuardError) as info:
        safewrite.read_file(str(tmp_path / "no" / "hosts"))
    assert str(info.value) == "cannot read %s: directory %s does not exist" % (
        tmp_path / "no" / "hosts", tmp_path / "no")
    os.symlink("loop", str(tmp_path / "loop"))
    with pytest.raises(GuardError) as info:
        safewrite.read_file(str(tmp_path / "loop"))
    assert str(info.value) == "cannot read %s: Too many levels of symbolic links" % (tmp_path / "loop")


def test_every_kind_of_file_that_is_not_regular_is_named(tmp_path):
    import socket

    os.mknod(str(tmp_path / "chr"), stat.S_IFCHR | 0o600, os.makedev(1, 3))
    os.mknod(str(tmp_path / "blk"), stat.S_IFBLK | 0o600, os.makedev(7, 200))
    os.mkfifo(str(tmp_path / "fifo"))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    (tmp_path / "dir").mkdir()
    kinds = {"chr": "a character device", "blk": "a block device", "fifo": "a FIFO",
             "sock": "a socket", "dir": "a directory"}
    try:
        for name, kind in kinds.items():
            path = str(tmp_path / name)
            with pytest.raises(GuardError) as info:
                safewrite.read_file(path)
            assert str(info.value) == ("cannot read %s: it is %s, not a regular file; left as it is"
                                       % (path, kind))
            with pytest.raises(GuardError) as info:
                safewrite.check_regular(path, os.stat(path))
            assert str(info.value) == ("cannot use %s: it is %s, not a regular file; left as it is"
                                       % (path, kind))
            if name != "dir":
                with pytest.raises(GuardError) as info:
                    safewrite.replace_file(path, b"x", str(tmp_path))
                assert str(info.value).startswith("cannot write %s: it is %s," % (path, kind))
        assert safewrite._kind(0) == "not a regular file"
    finally:
        sock.close()
    assert sorted(os.listdir(str(tmp_path))) == sorted(kinds)


@pytest.mark.parametrize("points, message", [
    ("fsync", "Input/output error (injected by FRG_TEST_FAIL=fsync)"),
    ("x,rename", "Input/output error (injected by FRG_TEST_FAIL=rename)"),
])
def test_injected_failures_exactly(tmp_path, monkeypatch, points, message):
    write(tmp_path / "hosts", b"old\n")
    monkeypatch.setenv(safewrite.FAIL_ENV, points)
    with pytest.raises(GuardError) as info:
        safewrite.replace_file(str(tmp_path / "hosts"), b"new\n", str(tmp_path))
    assert str(info.value) == "cannot write %s: %s; the file is unchanged" % (tmp_path / "hosts",
                                                                            message)
    assert os.listdir(str(tmp_path)) == ["hosts"] and read(tmp_path / "hosts") == b"old\n"


def test_injected_ebusy_rewrites_in_place_in_process(tmp_path, monkeypatch):
    big = b"".join(b"192.0.2.%d host%d\n" % (n % 250, n) for n in range(10000))  # > 64 KiB
    write(tmp_path / "hosts", big)
    (tmp_path / "st").mkdir()
    ino = os.stat(tmp_path / "hosts").st_ino
    monkeypatch.setenv(safewrite.FAIL_ENV, "ebusy")
    method, detail = safewrite.replace_file(str(tmp_path / "hosts"), b"new\n", str(tmp_path / "st"))
    backup = safewrite.backup_path(str(tmp_path / "hosts"), str(tmp_path / "st"))
    assert (method, detail) == ("in-place", "rename impossible (Device or resource busy (injected "
                                "by FRG_TEST_FAIL=ebusy)); old contents saved to %s" % backup)
    assert read(tmp_path / "hosts") == b"new\n" and os.stat(tmp_path / "hosts").st_ino == ino
    assert read(backup) == big
    # a file that does not exist yet cannot be rewritten in place
    with pytest.raises(GuardError) as info:
        safewrite.replace_file(str(tmp_path / "new"), b"x\n", str(tmp_path / "st"))
    assert str(info.value) == ("cannot write %s: Device or resource busy (injected by "
                               "FRG_TEST_FAIL=ebusy); the file is unchanged" % (tmp_path / "new"))
    assert sorted(os.listdir(str(tmp_path))) == ["hosts", "st"]


def test_injected_crash_exits_137_after_the_temporary_file_is_complete(tmp_path, monkeypatch,
                                                                      mocker):
    write(tmp_path / "hosts", b"old\n")
    monkeypatch.setenv(safewrite.FAIL_ENV, "crash")
    temp = safewrite.temp_name(str(tmp_path / "hosts"))
    assert os.path.basename(temp) == ".frg-tmp.hosts.%d" % os.getpid()
    seen = []

    def fake_exit(code):  # what the real exit would leave behind
        seen.append((code, read(temp), read(tmp_path / "hosts")))
        raise SystemExit(code)

    mocker.patch("os._exit", side_effect=fake_exit)
    with pytest.raises(SystemExit):
        safewrite.replace_file(str(tmp_path / "hosts"), b"new\n", str(tmp_path))
    assert seen == [(137, b"new\n", b"old\n")]


def test_an_immutable_directory_creates_nothing_and_rewrites_in_place(tmp_path, immutable):
    """chattr +i: rename (and creating the temporary file) fail with EPERM."""
    d = tmp_path / "etc"
    d.mkdir()
    write(d / "hosts", b"old\n")
    (tmp_path / "st").mkdir()
    immutable(d)
    with pytest.raises(GuardError) as info:
        safewrite.replace_file(str(d / "new"), b"x\n", str(tmp_path / "st"))
    assert str(info.value) == "cannot create %s: Operation not permitted" % (d / "new")
    method, detail = safewrite.replace_file(str(d / "hosts"), b"new\n", str(tmp_path / "st"))
    assert method == "in-place" and detail.startswith("rename impossible (Operation not permitted)")
    assert read(d / "hosts") == b"new\n" and sorted(os.listdir(str(d))) == ["hosts"]


def test_an_immutable_file_is_refused_without_a_backup(tmp_path, immutable):
    write(tmp_path / "hosts", b"old\n")
    (tmp_path / "st").mkdir()
    immutable(tmp_path / "hosts")
    with pytest.raises(GuardError) as info:
        safewrite.replace_file(str(tmp_path / "hosts"), b"new\n", str(tmp_path / "st"))
    assert str(info.value) == ("cannot rewrite %s in place either: Operation not permitted; the "
                               "file is unchanged" % (tmp_path / "hosts"))
    assert read(tmp_path / "hosts") == b"old\n" and os.listdir(str(tmp_path / "st")) == []
    assert sorted(os.listdir(str(tmp_path))) == ["hosts", "st"]


def test_replace_file_errors_exactly(tmp_path):
    with pytest.raises(GuardError) as info:
        safewrite.replace_file(str(tmp_path / "no" / "hosts"), b"x", str(tmp_path))
    assert str(info.value) == "cannot write %s: directory %s does not exist" % (
        tmp_path / "no" / "hosts", tmp_path / "no")
    os.symlink("loop", str(tmp_path / "loop"))
    with pytest.raises(GuardError) as info:
        safewrite.replace_file(str(tmp_path / "loop"), b"x", str(tmp_path))
    assert str(info.value) == "cannot write %s: Too many levels of symbolic links" % (tmp_path / "loop")


def test_relative_paths_use_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    safewrite.fsync_dir("")
    safewrite.atomic_write("f", b"x\n")
    write(tmp_path / (".frg-tmp.hosts.%d" % (os.getpid() + 1)), b"")
    assert safewrite.remove_stale_temps("hosts") == [".frg-tmp.hosts.%d" % (os.getpid() + 1)]
    assert sorted(os.listdir(str(tmp_path))) == ["f"]


def test_modes_and_a_stale_temporary_file_under_umask_0(tmp_path, monkeypatch):
    old = os.umask(0)
    try:
        own = tmp_path / "own"
        monkeypatch.setattr(safewrite, "OWN_DIRECTORIES", (str(own),))
        safewrite.ensure_directory(str(own))
        assert stat.S_IMODE(own.stat().st_mode) == 0o755
        write(safewrite.temp_name(str(tmp_path / "f")), b"a much longer stale content\n")
        safewrite.atomic_write(str(tmp_path / "f"), b"x\n")
        assert stat.S_IMODE(os.stat(tmp_path / "f").st_mode) == 0o644
        assert read(tmp_path / "f") == b"x\n"
    finally:
        os.umask(old)
    with pytest.raises(OSError) as info:
        safewrite.ensure_directory(str(tmp_path / "typo"))
    assert info.value.errno == errno.ENOENT
    assert info.value.strerror == "directory %s does not exist" % (tmp_path / "typo")
    with pytest.raises(OSError) as info:
        safewrite.atomic_write(str(tmp_path / "typo" / "f"), b"")
    assert (info.value.errno, info.value.strerror) == (
        errno.ENOENT, "directory %s does not exist" % (tmp_path / "typo"))


def test_escape_path_keeps_capital_x():
    assert safewrite.escape_path("/Xa/X") == "Xa-X"
    assert safewrite.escape_path("/a:b_c/.d.e") == "a:b_c-.d.e"
    assert safewrite.escape_path("/.x/a") == "\\x2ex-a"


def test_write_problem_finds_what_a_write_would_meet_without_writing(tmp_path, monkeypatch, immutable):
    def problem(path):
        found = safewrite.write_problem(str(path))
        return None if found is None else (found.errno, found.strerror)

    write(tmp_path / "state.json", b"{}")
    os.symlink("state.json", str(tmp_path / "link"))
    assert problem(tmp_path / "state.json") is None and problem(tmp_path / "link") is None
    assert problem(tmp_path / "new.json") is None  # created by the real run
    assert problem(tmp_path / "no" / "x.json") == (
        errno.ENOENT, "directory %s does not exist" % (tmp_path / "no"))
    os.mkfifo(str(tmp_path / "fifo"))
    (tmp_path / "dir").mkdir()
    for path, kind in ((tmp_path / "fifo", "a FIFO"), (tmp_path / "dir", "a directory"),
                       ("/dev/null", "a character device")):
        found = safewrite.write_problem(str(path))
        assert isinstance(found, safewrite.NotRegular), path
        assert found.strerror == "it is %s, not a regular file; left as it is" % kind
    # the package's own directory is created by the real run: its parent must be there
    own = tmp_path / "var" / "lib" / "forgejo-runner-guard"
    monkeypatch.setattr(safewrite, "OWN_DIRECTORIES", (str(own),))
    assert problem(own / "state.json") == (
        errno.ENOENT, "directory %s does not exist" % own.parent)
    own.parent.mkdir(parents=True)
    assert problem(own / "state.json") is None
    immutable(own.parent)  # where the real run would create it cannot be written
    assert problem(own / "state.json") == (errno.EACCES, os.strerror(errno.EACCES))
    # a file, or the directory, that cannot be written (root too: immutable)
    immutable(tmp_path / "state.json")
    assert problem(tmp_path / "state.json") == (errno.EACCES, os.strerror(errno.EACCES))
    assert problem(tmp_path / "link") == (errno.EACCES, os.strerror(errno.EACCES))
    (tmp_path / "ro").mkdir()
    immutable(tmp_path / "ro")
    assert problem(tmp_path / "ro" / "x.json") == (errno.EACCES, os.strerror(errno.EACCES))
    assert os.listdir(str(tmp_path / "ro")) == [] and not own.exists()


def test_denied_is_erofs_on_a_read_only_mount(tmp_path, monkeypatch):
    real = os.statvfs(str(tmp_path))
    assert not real.f_flag & os.ST_RDONLY
    found = safewrite._denied(str(tmp_path))
    assert (found.errno, found.strerror) == (errno.EACCES, os.strerror(errno.EACCES))
    fields = list(real[:10])
    fields[8] |= os.ST_RDONLY  # f_flag
    monkeypatch.setattr(safewrite.os, "statvfs", lambda path: os.statvfs_result(fields))
    found = safewrite._denied(str(tmp_path))
    assert (found.errno, found.strerror) == (errno.EROFS, os.strerror(errno.EROFS))


def test_holds_compares_a_block_at_a_time(tmp_path, monkeypatch):
    data = bytes(range(256)) * 4099  # over one block of 1 MiB
    write(tmp_path / "hosts", data)
    os.symlink("hosts", str(tmp_path / "link"))
    assert safewrite.holds(str(tmp_path / "hosts"), data) is True
    assert safewrite.holds(str(tmp_path / "link"), data) is True
    assert safewrite.holds(str(tmp_path / "hosts"), data[:-1]) is False  # the file is longer
    assert safewrite.holds(str(tmp_path / "hosts"), data + b"\n") is False  # shorter
    assert safewrite.holds(str(tmp_path / "hosts"), data[:-1] + b"\0") is False  # the last byte
    assert safewrite.holds(str(tmp_path / "hosts"), b"\1" + data[1:]) is False  # the first byte
    changed = bytearray(data)
    changed[1 << 20] ^= 1  # the first byte of the second block
    assert safewrite.holds(str(tmp_path / "hosts"), bytes(changed)) is False
    write(tmp_path / "empty", b"")
    assert safewrite.holds(str(tmp_path / "empty"), b"") is True
    assert safewrite.holds(str(tmp_path / "empty"), b"x") is False
    with pytest.raises(GuardError) as info:
        safewrite.holds(str(tmp_path / "missing"), b"")
    assert str(info.value) == "cannot read %s: No such file or directory" % (tmp_path / "missing")
    os.mkfifo(str(tmp_path / "fifo"))
    with pytest.raises(GuardError) as info:
        safewrite.holds(str(tmp_path / "fifo"), b"")  # never opened for reading: no hang
    assert str(info.value).startswith("cannot read %s: " % (tmp_path / "fifo"))
    assert "FIFO" in str(info.value) or "fifo" in str(info.value)


def test_an_in_place_write_cut_short_by_a_full_file_system_puts_the_old_bytes_back(tmp_path,
                                                                                  mocker):
    """In process, what the child-process test shows on a real full tmpfs:
    the file's own bytes can be rewritten (its blocks are its own), a byte
    past them meets ENOSPC.  The longer new text stops mid-line; the old
    bytes go back, the file reads as it was, and the backup goes."""
    old = b"192.0.2.1 a.example.org\n192.0.2.2 b.example.org\n"
    new = b"10.1.0.10 forge.azrak.io # forgejo-runner-guard pin\n" + old
    write(tmp_path / "hosts", old)
    (tmp_path / "st").mkdir()
    ino = os.stat(tmp_path / "hosts").st_ino
    real = os.write
    written = []

    def full(fd, data):
        if os.fstat(fd).st_ino != ino:
            return real(fd, data)
        room = len(old) - os.lseek(fd, 0, os.SEEK_CUR)
        if room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(bytes(data[:room]))
        return real(fd, data[:room])

    mocker.patch("os.write", side_effect=full)
    with pytest.raises(GuardError) as info:
        safewrite.write_in_place(str(tmp_path / "hosts"), new, str(tmp_path / "st"))
    assert str(info.value) == ("cannot rewrite %s in place: No space left on device; the file is "
                               "unchanged" % (tmp_path / "hosts"))
    assert written == [new[:len(old)], old]  # cut short, then the old bytes back
    assert read(tmp_path / "hosts") == old and os.stat(tmp_path / "hosts").st_ino == ino
    assert os.listdir(str(tmp_path / "st")) == []  # nothing to restore: no backup kept


def test_a_pause_comes_with_the_temporary_file_complete_before_the_rename(tmp_path, monkeypatch,
                                                                         mocker):
    """FRG_TEST_FAIL=pause: 5 s for a signal to arrive, with the temporary
    file complete and the target still old; then the write completes."""
    write(tmp_path / "hosts", b"old\n")
    monkeypatch.setenv(safewrite.FAIL_ENV, "pause")
    temp = safewrite.temp_name(str(tmp_path / "hosts"))
    seen = []
    mocker.patch("time.sleep", side_effect=lambda seconds: seen.append(
        (seconds, read(temp), read(tmp_path / "hosts"))))
    assert safewrite.replace_file(str(tmp_path / "hosts"), b"new\n", str(tmp_path)) == ("rename", "")
    assert seen == [(5, b"new\n", b"old\n")]
    assert read(tmp_path / "hosts") == b"new\n" and os.listdir(str(tmp_path)) == ["hosts"]


def test_not_regular_carries_the_errno_opening_it_for_writing_would(tmp_path):
    """EISDIR for a directory (what open(2) for writing says), EINVAL for
    the rest, with the text naming what it is."""
    os.mkfifo(str(tmp_path / "fifo"))
    (tmp_path / "dir").mkdir()
    for name, code, kind in (("dir", errno.EISDIR, "a directory"), ("fifo", errno.EINVAL, "a FIFO")):
        with pytest.raises(safewrite.NotRegular) as info:
            safewrite.regular_or_missing(str(tmp_path / name))
        assert (info.value.errno, info.value.strerror) == (
            code, "it is %s, not a regular file; left as it is" % kind)
        found = safewrite.write_problem(str(tmp_path / name))
        assert (found.errno, found.strerror) == (code, info.value.strerror)
    assert safewrite.regular_or_missing(str(tmp_path / "missing")) is None
    write(tmp_path / "f", b"x")
    assert safewrite.regular_or_missing(str(tmp_path / "f")).st_size == 1


def test_holds_keeps_one_block_of_a_large_file_in_memory(tmp_path):
    """No second copy of the file in memory: comparing a 4 MiB file holds
    1 MiB blocks, at most two at once (the next is read while the last is
    still referenced), never the whole file."""
    import tracemalloc

    data = bytes(range(256)) * (4 << 12)  # 4 MiB
    write(tmp_path / "big", data)
    tracemalloc.start()
    try:
        assert safewrite.holds(str(tmp_path / "big"), data) is True
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (1 << 20) <= peak < (3 << 20), peak
