"""A secret in a file only its owner may read: the forge token
(forge_token_file, issue 20).

read_token(path) opens the file once and judges what it opened (fstat of
the open file, so a swap between the check and the read changes
nothing): a regular file, owned by the user the watchdog runs as (root),
with no permission for group or others.  Anything else is refused with
one line that says how to fix it, before a byte is read.
"""

import os
import stat

from ..report import GuardError, why

MAX_TOKEN = 4096  # bytes: a token is 40 hex digits; more is not a token
KEY = "forge_token_file"


def _owner(uid):
    return "root" if uid == 0 else "uid %d" % uid


def read_token(path):
    """The token in `path` (its one word).  GuardError (exit 1), one line,
    when the file is missing, unsafe, empty or not one word."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        raise GuardError("%s %s: cannot read: %s: put a read-only token there (chmod 600, "
                         "owned by %s)" % (KEY, path, why(exc), _owner(os.geteuid())))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise GuardError("%s %s: not a regular file: refused" % (KEY, path))
        if st.st_uid != os.geteuid():
            raise GuardError("%s %s: owned by %s, not %s: refused; chown %s %s"
                             % (KEY, path, _owner(st.st_uid), _owner(os.geteuid()),
                                _owner(os.geteuid()).replace("uid ", ""), path))
        if st.st_mode & 0o077:
            raise GuardError("%s %s: mode %04o lets group or others read it: refused; chmod 600 %s "
                             "(and make a new token: this one may have been read)"
                             % (KEY, path, stat.S_IMODE(st.st_mode), path))
        data = os.read(fd, MAX_TOKEN + 1)
    except OSError as exc:
        raise GuardError("%s %s: cannot read: %s" % (KEY, path, why(exc)))
    finally:
        os.close(fd)
    words = data.decode("ascii", "replace").split()
    if len(data) > MAX_TOKEN or len(words) != 1 or not words[0].isprintable() or "\ufffd" in words[0]:
        raise GuardError("%s %s: %s: it must hold the token alone"
                         % (KEY, path, "empty" if not words else "not one token"))
    return words[0]
