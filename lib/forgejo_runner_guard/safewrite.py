"""I/O: locks and writes that are never left half-done.

atomic_write(): temporary file in the same directory, fsync, rename over
the target, fsync the directory.  A crash at any point leaves the old
file or the new one, never a mix.

lock(): an exclusive flock on a separate lock file, held for a whole
read-modify-write (the target's own inode changes on every rename, so it
cannot carry the lock itself).
"""

import contextlib
import errno
import fcntl
import os

from .report import GuardError

TEMP_PREFIX = ".frg-tmp."


def fsync_dir(directory):
    fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, data, mode=0o644):
    """Write bytes `data` to `path` atomically (temp + fsync + rename).

    Raises OSError; on failure the temporary file is removed and `path`
    is as it was.
    """
    directory = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(directory, "%s%s.%d" % (TEMP_PREFIX, os.path.basename(path), os.getpid()))
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask must not narrow it
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    fsync_dir(directory)


@contextlib.contextmanager
def lock(path, wait=True):
    """Hold an exclusive flock on `path` (created, with its directory).

    wait=False raises GuardError at once when another process holds it.
    """
    directory = os.path.dirname(path)
    try:
        if directory:
            os.makedirs(directory, mode=0o755, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise GuardError("cannot open lock file %s: %s" % (path, exc.strerror or exc))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise GuardError("another run holds the lock %s" % path)
            raise GuardError("cannot lock %s: %s" % (path, exc.strerror or exc))
        yield
    finally:
        os.close(fd)
