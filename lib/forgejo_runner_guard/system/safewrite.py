"""I/O: locks and writes that are never left half-done.

atomic_write(): temporary file in the same directory, fsync, rename over
the target, fsync the directory.  A crash at any point leaves the old
file or the new one, never a mix.

replace_file(): the same for an existing file, keeping its owner, mode,
extended attributes and symlink, with an in-place fallback (not atomic,
after a backup) where rename cannot work, e.g. a bind-mounted file.
read_file(), remove_stale_temps(): the rest of a read-modify-write.

lock(): an exclusive flock on a separate lock file, held for a whole
read-modify-write (the target's own inode changes on every rename, so it
cannot carry the lock itself).
"""

import contextlib
import errno
import fcntl
import os
import stat
import time

from ..config.config import OWN_DIRECTORIES
from ..report import GuardError, why
from . import signals

TEMP_PREFIX = ".frg-tmp."


def fsync_dir(directory):
    fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_directory(directory):
    """Make sure `directory` exists.  Only the package's own directories
    (config.OWN_DIRECTORIES) are created, and only their last component: any
    other directory that is missing (a typo such as /nonexistent/x) is an
    OSError "directory ... does not exist"."""
    if os.path.isdir(directory):
        return
    if os.path.normpath(directory) in OWN_DIRECTORIES:
        parent = os.path.dirname(os.path.normpath(directory))
        if not os.path.isdir(parent):
            raise OSError(errno.ENOENT, "directory %s does not exist" % parent)
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, 0o755)
        return
    raise OSError(errno.ENOENT, "directory %s does not exist" % directory)


def atomic_write(path, data, mode=0o644):
    """Write bytes `data` to `path` atomically (temp + fsync + rename).

    A symlink is followed: its final target is replaced and the link
    stays.  Anything there that is not a regular file (a device such as
    /dev/null, a FIFO, a directory, a socket) is refused with NotRegular
    and left as it is.  Raises OSError; on failure the temporary file is
    removed and `path` is as it was.  The directory must exist.
    """
    regular_or_missing(path)
    target = os.path.realpath(path)
    temp = temp_name(target)
    if not os.path.isdir(os.path.dirname(temp)):
        raise OSError(errno.ENOENT, "directory %s does not exist" % os.path.dirname(temp))
    with signals.deferred():  # a signal waits for the write: no temporary file left behind
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)  # left by a dead process of our pid: never written through
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        try:
            try:
                os.fchmod(fd, mode)  # the umask must not narrow it
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        fsync_dir(os.path.dirname(temp))


def write_problem(path):
    """The OSError that opening (lock) or atomically replacing `path`
    would raise, found without writing anything, or None: for a dry run,
    which must find what the real run would.  The directory must exist
    (or be one of the package's own, with its parent there) and be
    writable; `path`, if there, must be a regular file this process may
    write."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        parent = os.path.dirname(directory)
        if os.path.normpath(directory) not in OWN_DIRECTORIES or not os.path.isdir(parent):
            return OSError(errno.ENOENT, "directory %s does not exist"
                           % (directory if os.path.normpath(directory) not in OWN_DIRECTORIES
                              else parent))
        directory = parent  # created by the real run
    else:
        try:
            if regular_or_missing(path) is not None and not os.access(path, os.W_OK):
                return _denied(path)
        except OSError as exc:  # NotRegular: what the real run says of it
            return exc
    if not os.access(directory, os.W_OK | os.X_OK):
        return _denied(directory)
    return None


def _denied(path):
    """EROFS on a read-only mount, else EACCES (what a write would get)."""
    code = errno.EROFS if os.statvfs(path).f_flag & os.ST_RDONLY else errno.EACCES
    return OSError(code, os.strerror(code))


class LockBusy(GuardError):
    """Another process holds the lock (lock(wait=False))."""


@contextlib.contextmanager
def lock(path, wait=True):
    """Hold an exclusive flock on `path` (created, with its directory).

    A symlink is followed and stays; anything that is not a regular file
    is refused (GuardError naming it) and left as it is.
    wait=False raises LockBusy at once when another process holds it.
    """
    directory = os.path.dirname(path)
    try:
        if directory:
            ensure_directory(directory)
        regular_or_missing(path)  # a device or FIFO is never opened
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                     0o600)
    except OSError as exc:
        raise GuardError("cannot open lock file %s: %s" % (path, why(exc)))
    try:
        try:
            check_regular(path, os.fstat(fd), "lock")  # replaced since the stat above
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise LockBusy("another run holds the lock %s" % path)
            raise GuardError("cannot lock %s: %s" % (path, why(exc)))
        yield
    finally:
        os.close(fd)


# ---------------------------------------------------------------- replacing a file in place of another
#
# Test hook: FRG_TEST_FAIL (test-only, read nowhere else) is a comma list
# of failure points to inject into replace_file(): "fsync" (fsync of the
# temporary file fails, EIO), "rename" (the rename fails, EIO), "ebusy"
# (the rename fails with EBUSY, as over a bind mount), "crash" (the
# process dies with status 137 after the temporary file is complete and
# before the rename, leaving the temporary file behind), "pause" (5 s with
# the temporary file complete, before the rename: for a signal to arrive
# then; it changes nothing written).  An environment
# variable rather than a mock because the tests run the real command as a
# subprocess, where no mock reaches; it can only make a run fail, never
# change what it writes.

FAIL_ENV = "FRG_TEST_FAIL"

# rename cannot work here; rewrite in place instead (see replace_file)
FALLBACK_ERRNOS = frozenset((errno.EBUSY, errno.EXDEV, errno.EACCES, errno.EPERM, errno.EROFS))


def _inject(point):
    if point in os.environ.get(FAIL_ENV, "").split(","):
        if point == "crash":
            os._exit(137)
        if point == "pause":
            time.sleep(5)  # for a signal to arrive now: what is written stays the same
            return
        code = errno.EBUSY if point == "ebusy" else errno.EIO
        raise OSError(code, "%s (injected by %s=%s)" % (os.strerror(code), FAIL_ENV, point))


class _Fallback(Exception):
    """Rename cannot be used for this file; carries the OSError."""


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"))


def _kind(mode):
    """What a file of `mode` is, when it is not a regular file."""
    return next((text for test, text in _KINDS if test(mode)), "not a regular file")


class NotRegular(OSError):
    """A path the tools would write is there and is not a regular file (a
    device, FIFO, directory or socket): it is never replaced or opened."""


def _not_regular_text(mode):
    return "it is %s, not a regular file; left as it is" % _kind(mode)


def regular_or_missing(path):
    """os.stat() of `path` (symlinks followed), or None when nothing is
    there.  Raises NotRegular (an OSError whose text says what the file
    is) for anything but a regular file, or another OSError."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise NotRegular(errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL,
                         _not_regular_text(st.st_mode))
    return st


def check_regular(path, st, verb="use"):
    """GuardError (exit 1) unless `st` (of `path`, symlinks followed) is a
    regular file: a device, FIFO or directory is never read or replaced."""
    if not stat.S_ISREG(st.st_mode):
        raise GuardError("cannot %s %s: %s" % (verb, path, _not_regular_text(st.st_mode)))


def read_file(path):
    """The bytes of `path`, or None when it does not exist (its directory
    must).  Raises GuardError (exit 1) for anything else, including a
    path that is not a regular file (or a symlink to one): a FIFO is
    opened without blocking and refused, a device is never read."""
    try:
        check_regular(path, os.stat(path), "read")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb") as handle:
            check_regular(path, os.fstat(fd), "read")  # replaced since the stat above
            return handle.read()
    except FileNotFoundError:
        directory = os.path.dirname(os.path.realpath(path))  # realpath: absolute
        if not os.path.isdir(directory):
            raise GuardError("cannot read %s: directory %s does not exist" % (path, directory))
        return None
    except OSError as exc:
        raise GuardError("cannot read %s: %s" % (path, why(exc)))


def holds(path, data):
    """Does `path` hold exactly the bytes `data`?  Read and compared a
    block at a time: no second copy of the file in memory.  GuardError as
    read_file() (a file that is not regular is never read)."""
    view = memoryview(data)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb") as handle:
            check_regular(path, os.fstat(fd), "read")
            at = 0
            for block in iter(lambda: handle.read(1 << 20), b""):
                if view[at:at + len(block)] != block:
                    return False
                at += len(block)
            return at == len(view)
    except OSError as exc:
        raise GuardError("cannot read %s: %s" % (path, why(exc)))


def temp_name(target):
    return os.path.join(os.path.dirname(target), "%s%s.%d" % (
        TEMP_PREFIX, os.path.basename(target), os.getpid()))


def remove_stale_temps(target):
    """Remove the temporary files a crashed run left beside `target`
    (call it under the lock).  Returns the paths removed."""
    directory, base = os.path.split(target)
    prefix = TEMP_PREFIX + base + "."
    removed = []
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return removed
    for name in names:
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            path = os.path.join(directory, name)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed.append(path)
    return removed


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _copy_attributes(fd, target, st):
    """Owner, mode and extended attributes (SELinux label, ACLs) of the
    original onto the new file; any failure means rename would lose them."""
    try:
        if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
            os.fchown(fd, st.st_uid, st.st_gid)
        os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after chown, which clears set-id bits
        try:
            names = os.listxattr(target)
        except OSError as exc:
            if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            names = []
        for name in names:
            os.setxattr(fd, name, os.getxattr(target, name))
    except OSError as exc:
        raise _Fallback(exc)


def _replace_by_rename(target, data, st, mode):
    temp = temp_name(target)
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno in FALLBACK_ERRNOS:
            raise _Fallback(exc)
        raise
    try:
        try:
            if st is not None:
                _copy_attributes(fd, target, st)
            else:
                os.fchmod(fd, mode)  # the umask must not narrow it
            _write_all(fd, data)
            _inject("fsync")
            os.fsync(fd)
        finally:
            os.close(fd)
        _inject("crash")
        _inject("pause")
        try:
            _inject("ebusy")
            _inject("rename")
            os.rename(temp, target)
        except OSError as exc:
            if exc.errno in FALLBACK_ERRNOS and st is not None:
                raise _Fallback(exc)
            raise
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    fsync_dir(os.path.dirname(target))


def backup_path(target, backup_dir):
    """The in-place backup of `target` (an absolute path): named by the
    whole path, escaped as systemd-escape --path does, so no two files
    share one: /etc/hosts -> BACKUP_DIR/etc-hosts.before-in-place."""
    return os.path.join(backup_dir, escape_path(target) + ".before-in-place")


def escape_path(path):
    """systemd-escape --path: '/' between components becomes '-', and any
    byte but ASCII letters, digits, ':', '_' and a non-leading '.' becomes
    \\xNN ('-' included), so the name is unambiguous."""
    text = os.path.normpath(path).strip("/") or "-"
    if text == "-":
        return "-"
    out = []
    for index, byte in enumerate(os.fsencode(text)):
        char = chr(byte)
        if char == "/":
            out.append("-")
        elif (char.isascii() and (char.isalnum() or char in ":_")) or (char == "." and index):
            out.append(char)
        else:
            out.append("\\x%02x" % byte)
    return "".join(out)


def write_in_place(target, data, backup_dir):
    """Rewrite `target` in place (same inode): NOT atomic.  Returns the
    backup's path.  Raises GuardError saying what is true of the file.

    The file is opened for writing first: where that fails (a read-only
    mount, an immutable file) nothing is written, no backup either.  Then
    its old contents are saved (atomically) to backup_path(), and it is
    overwritten from offset 0, truncated and fsynced.  When that fails (a
    full file system, an I/O error) the old bytes, still in memory, are
    written back where they were (they fit: their blocks are the file's
    own) and the file is read back: as it was, the backup is removed;
    otherwise the backup is kept and the message names it."""
    backup = backup_path(target, backup_dir)
    try:
        fd = os.open(target, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise GuardError("cannot rewrite %s in place either: %s; the file is unchanged"
                         % (target, why(exc)))
    try:
        try:
            old = _read_all(fd)
            ensure_directory(backup_dir)
            atomic_write(backup, old, mode=0o600)
        except OSError as exc:
            raise GuardError("cannot save a backup of %s to %s before rewriting it in place: %s; "
                             "the file is unchanged" % (target, backup, why(exc)))
        try:
            _overwrite(fd, data)
        except OSError as exc:
            raise _failed_in_place(fd, target, old, backup, exc)
    finally:
        os.close(fd)
    return backup


def _overwrite(fd, data):
    """The whole file of `fd` becomes `data`, fsynced."""
    os.lseek(fd, 0, os.SEEK_SET)
    _write_all(fd, data)
    os.ftruncate(fd, len(data))
    os.fsync(fd)


def _read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _failed_in_place(fd, target, old, backup, exc):
    """The GuardError for a failed in-place rewrite, after putting the
    old bytes back and reading the file back: unchanged (backup removed)
    or not (backup kept)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        unchanged = _read_all(fd) == old
        if not unchanged:
            _overwrite(fd, old)
            os.lseek(fd, 0, os.SEEK_SET)
            unchanged = _read_all(fd) == old
    except OSError:
        unchanged = False
    if unchanged:
        with contextlib.suppress(OSError):
            os.unlink(backup)
        return GuardError("cannot rewrite %s in place: %s; the file is unchanged"
                          % (target, why(exc)))
    return GuardError("cannot rewrite %s in place: %s; it may be partly written: restore it from "
                      "%s" % (target, why(exc), backup))


def replace_file(path, data, backup_dir, mode=0o644):
    """Make `path` hold the bytes `data`, never half-written on the normal path.

    A symlink is followed: its final target is replaced and the link
    stays.  Normal path ("rename", or "created" when there was no file,
    with `mode`): a temporary file beside the target gets the original's
    owner, mode and extended attributes, is written and fsynced, renamed
    over the target, and the directory is fsynced; a crash leaves the old
    file or the new one.  Where that cannot work (EBUSY from a
    bind-mounted file, EXDEV, EACCES/EPERM/EROFS from a directory the
    process may not write, or attributes that cannot be copied) the file
    is rewritten in place instead ("in-place", not atomic, after a backup
    in `backup_dir`; see write_in_place).  Call it under the lock, after
    remove_stale_temps().  Returns (method, detail): detail is the OSError
    that forced the fallback and the backup's path, or "".
    Raises GuardError (exit 1) on failure, with `path` as it was.
    """
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise GuardError("cannot write %s: directory %s does not exist" % (path, directory))
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise GuardError("cannot write %s: %s" % (path, why(exc)))
    if st is not None:
        check_regular(path, st, "write")
    with signals.deferred():  # a signal waits: never a temporary file left, nor half a rewrite
        try:
            _replace_by_rename(target, data, st, mode)
            return ("rename" if st is not None else "created"), ""
        except _Fallback as fallback:
            reason = fallback.args[0]
            if st is None:
                raise GuardError("cannot create %s: %s" % (path, why(reason)))
        except OSError as exc:
            raise GuardError("cannot write %s: %s; the file is unchanged" % (path, why(exc)))
        backup = write_in_place(target, data, backup_dir)
    return "in-place", "rename impossible (%s); old contents saved to %s" % (why(reason), backup)
