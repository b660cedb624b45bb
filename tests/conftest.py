"""Shared fixtures: the source tree and tests/ on sys.path (helpers/ is
the one place for what several tests use), a real Docker engine and a
real Podman started for the test session, and the runner stand-ins."""

import os
import subprocess
import sys
import tempfile

import pytest

_TESTS = os.path.dirname(os.path.abspath(__file__))
for _path in (os.path.join(os.path.dirname(_TESTS), "lib"), _TESTS):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from helpers import engine  # noqa: E402
from hypothesis import settings  # noqa: E402

# make mutation (setup.cfg [mutmut]): every mutant meets the same examples
settings.register_profile("mutation", derandomize=True, database=None)


def pytest_configure(config):
    config.addinivalue_line("markers", "docker: needs the real Docker engine (started by the fixture)")
    config.addinivalue_line("markers", "podman: needs the real Podman (set up by the fixture)")
    config.addinivalue_line("markers", "package: builds, lints and installs the .deb; boots systemd")
    config.addinivalue_line("markers", "child: runs the library in a child process (make mutation "
                            "leaves it out: a mutant is not seen there)")
    config.addinivalue_line("markers", "early: runs first in the session (it starts what a late "
                            "test needs to have aged)")
    config.addinivalue_line("markers", "late: runs last in the session (it needs what an early "
                            "test started to have aged; no sleep where the session took as long)")


def pytest_collection_modifyitems(items):
    """`early` tests first, `late` ones last; otherwise the order stays."""
    rank = {"early": 0, "late": 2}
    items.sort(key=lambda item: min([rank[m.name] for m in item.iter_markers() if m.name in rank]
                                    or [1]))


@pytest.fixture(scope="session")
def docker_host():
    """DOCKER_HOST of a throwaway engine with the busybox image imported.

    FRG_TEST_DOCKER_HOST names an engine to reuse (it must have no
    containers the tests could confuse with theirs)."""
    given = os.environ.get("FRG_TEST_DOCKER_HOST")
    if given:
        engine.wait_ready(given)
        engine.ensure_image(given)
        yield given
        return
    root = tempfile.mkdtemp(prefix="frg-engine-", dir="/tmp")
    try:
        host = engine.start(root)
        engine.ensure_image(host)
        yield host
    finally:
        engine.stop(root)
        subprocess.run(["rm", "-rf", root])


@pytest.fixture
def eng(docker_host):
    """The tests' docker calls on that engine; removes what the test started."""
    from helpers.runners import Engine

    made = Engine(docker_host)
    yield made
    made.cleanup()


@pytest.fixture(scope="session")
def podman():
    """A throwaway Podman (helpers/podman_engine.py): private storage and
    configuration, the busybox image, and its Docker-compatible API served
    on a socket of its own (podman.docker_host)."""
    from helpers import podman_engine

    root = tempfile.mkdtemp(prefix="frg-podman-", dir="/tmp")
    made = podman_engine.start(root)
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A CA and the forge's certificate (helpers/tlsserver.py)."""
    from helpers import tlsserver

    return tlsserver.make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="session")
def packages():
    """`make deb` into a temporary OUT, once a session for every packaging
    test: {native, changes, stdeb, out}."""
    import glob
    import shutil

    from helpers import pkg_chroot
    from helpers.tools import ROOT

    pkg, version = "forgejo-runner-guard", "0.1.0"
    out = tempfile.mkdtemp(prefix="frg-out-", dir="/tmp")
    try:
        env = dict(os.environ)
        env.pop("MAKEFLAGS", None)
        env.pop("MAKELEVEL", None)
        pkg_chroot.run(["make", "-C", ROOT, "--no-print-directory", "deb", "OUT=" + out],
                       timeout=600, env=env)
        native = os.path.join(out, "%s_%s_all.deb" % (pkg, version))
        stdeb = glob.glob(os.path.join(out, "stdeb", "%s_%s-*_all.deb" % (pkg, version)))
        changes = glob.glob(os.path.join(out, "%s_%s_*.changes" % (pkg, version)))
        assert os.path.isfile(native), os.listdir(out)
        assert len(stdeb) == 1, os.listdir(os.path.join(out, "stdeb"))
        assert len(changes) == 1, os.listdir(out)
        yield {"native": native, "stdeb": stdeb[0], "changes": changes[0], "out": out}
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="session")
def sources():
    """The host's Debian apt sources, for the chroots (helpers/pkg_chroot.py)."""
    from helpers import pkg_chroot

    return pkg_chroot.host_debian_sources()
