"""The forge token's file: read only when only its owner (the
watchdog's user, root) may read it; anything else is one line and no
byte read."""

import os

import pytest

from forgejo_runner_guard.report import GuardError
from forgejo_runner_guard.system import secretfile

TOKEN = "0123456789abcdef0123456789abcdef01234567"


def token_file(tmp_path, text=TOKEN + "\n", mode=0o600):
    path = tmp_path / "forge-token"
    path.write_text(text)
    os.chmod(str(path), mode)
    return str(path)


def refused(path):
    with pytest.raises(GuardError) as info:
        secretfile.read_token(path)
    assert info.value.exit_code == 1 and "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_a_private_file(tmp_path, mode):
    assert secretfile.read_token(token_file(tmp_path, mode=mode)) == TOKEN
    assert secretfile.read_token(token_file(tmp_path, "  %s\r\n\n" % TOKEN)) == TOKEN


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o610, 0o601])
def test_group_or_world_access_is_refused(tmp_path, mode):
    path = token_file(tmp_path, mode=mode)
    assert refused(path) == (
        "forge_token_file %s: mode %04o lets group or others read it: refused; chmod 600 %s (and make a "
        "new token: this one may have been read)" % (path, mode, path))


def test_another_owner_is_refused(tmp_path):
    path = token_file(tmp_path)
    os.chown(path, 1000, 1000)
    assert refused(path) == "forge_token_file %s: owned by uid 1000, not root: refused; chown root %s" % (
        path, path)


def test_missing_empty_or_not_one_token(tmp_path):
    missing = str(tmp_path / "nope")
    assert refused(missing) == ("forge_token_file %s: cannot read: No such file or directory: put a "
                                "read-only token there (chmod 600, owned by root)" % missing)
    path = token_file(tmp_path, "\n")
    assert refused(path) == "forge_token_file %s: empty: it must hold the token alone" % path
    path = token_file(tmp_path, "token: %s\n" % TOKEN)
    assert refused(path) == "forge_token_file %s: not one token: it must hold the token alone" % path
    path = token_file(tmp_path, "x" * 5000)
    assert refused(path).endswith("not one token: it must hold the token alone")


def test_a_directory_or_a_fifo(tmp_path):
    assert refused(str(tmp_path)) == "forge_token_file %s: not a regular file: refused" % tmp_path
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo, 0o600)
    assert refused(fifo) == "forge_token_file %s: not a regular file: refused" % fifo


def test_a_symlink_is_judged_by_its_target(tmp_path):
    target = token_file(tmp_path, mode=0o644)
    link = str(tmp_path / "link")
    os.symlink(target, link)
    assert "mode 0644 lets group or others read it" in refused(link)
