"""Containers in each state, on the tests' Docker engine or Podman (an
Engine of helpers/runners.py, or test_podman's Way: anything with
docker(), name()): a crash loop (`--restart always`, exits at once), a
paused runner, one created and never started, one that exited; each
writing the bytes the runners really write (tests/fixtures/logrus/)."""

import json
import time

from helpers.logrus import HERE
from helpers.runners import IMAGE

STARTING = 'time="2026-06-29T10:00:00Z" level=info msg="Starting runner daemon"'


def start(engine, script, restart=None, create=False):
    """A busybox container running `script` (sh -c) with the logrus
    fixtures at /f; restart: its restart policy; create: never started."""
    name = engine.name("state")
    engine.docker("create" if create else "run", *([] if create else ["-d"]), "--network", "none",
                  "--name", name, *(["--restart", restart] if restart else []),
                  "-v", "%s:/f:ro" % HERE, IMAGE, "sh", "-c", script)
    return name


def replay(fixture, then="exit 1"):
    """A script writing a terminal fixture's stdout and stderr, then `then`."""
    return "cat /f/terminal/{0}.stdout; cat /f/terminal/{0}.stderr >&2; {1}".format(fixture, then)


def inspect(engine, name):
    return json.loads(engine.docker("inspect", name).stdout)[0]


def wait(engine, name, predicate, what, seconds=60.0):
    """Until predicate(inspect document) holds; -> the document."""
    deadline = time.monotonic() + seconds
    while True:
        doc = inspect(engine, name)
        if predicate(doc):
            return doc
        if time.monotonic() > deadline:
            raise AssertionError("%s never %s: %s" % (name, what, doc["State"]))
        time.sleep(0.1)


def crash_loop(engine, script, restarts=3):
    """A container whose every run exits at once, restarted by its policy
    (`--restart always`) at least `restarts` times so far."""
    name = start(engine, script, restart="always")
    wait(engine, name, lambda doc: doc["RestartCount"] >= restarts, "restarted %d times" % restarts)
    return name


def exited(engine, script):
    """A container that ran `script` once and exited (no restart policy)."""
    name = start(engine, script)
    wait(engine, name, lambda doc: doc["State"]["Status"] == "exited", "exited")
    return name
