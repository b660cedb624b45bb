"""Shared fixtures: the source tree on sys.path, the tools as real
subprocesses, and a real Docker engine started for the test session."""

import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import engine  # noqa: E402  (tests/engine.py)


def pytest_configure(config):
    config.addinivalue_line("markers", "docker: needs the real Docker engine (started by the fixture)")
    config.addinivalue_line("markers", "podman: needs the real Podman (set up by the fixture)")
    config.addinivalue_line("markers", "package: builds, lints and installs the .deb; boots systemd")


def tool_env(extra=None):
    """Environment for running the tools from the source tree."""
    env = dict(os.environ)
    env["PYTHONPATH"] = LIB + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("JOURNAL_STREAM", None)
    env.update(extra or {})
    return env


def run_tool(name, *args, env=None, timeout=120, input=None):
    """Run bin/NAME with this interpreter; returns CompletedProcess (text)."""
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "bin", name), *args],
        env=tool_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


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


@pytest.fixture(scope="session")
def podman():
    """A throwaway Podman (tests/podman_engine.py): private storage and
    configuration, the busybox image, and its Docker-compatible API served
    on a socket of its own (podman.docker_host)."""
    import podman_engine

    root = tempfile.mkdtemp(prefix="frg-podman-", dir="/tmp")
    made = podman_engine.start(root)
    try:
        yield made
    finally:
        made.stop()
