"""Runner stand-ins on the tests' real Docker engine: fake runners
(fakerunner.sh in the busybox image, --init, --network none) that write
real-format runner lines, job containers named as the runners name them,
and the watchdog run against them."""

import json
import os
import subprocess
import time
import uuid

from helpers.tools import HELPERS, run_tool

TOOL = "forgejo-runner-watchdog"
IMAGE = "frg-busybox:latest"
FAKE = os.path.join(HELPERS, "fakerunner.sh")
HOSTRUNNER = os.path.join(HELPERS, "hostrunner.sh")
DAEMON = "/usr/local/bin/forgejo-runner"
class Engine:
    """docker calls for the tests, and cleanup of what they started."""

    def __init__(self, host):
        self.host = host
        self.env = dict(os.environ, DOCKER_HOST=host)
        self.names = []

    def docker(self, *args, check=True, timeout=60):
        result = subprocess.run(["docker", *args], env=self.env, capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError("docker %s: %s" % (" ".join(args), result.stderr.strip()))
        return result

    def name(self, what):
        name = "frg-%s-%s" % (what, uuid.uuid4().hex[:8])
        self.names.append(name)
        return name

    def runner(self, *steps, lines=0, options=(), name=None):
        """Start a fake runner (named `name`, or frg-runner-...); wait until
        it has logged `lines` lines."""
        if name is None:
            name = self.name("runner")
        else:
            self.names.append(name)
        self.docker("run", "-d", "--init", "--network", "none", "--name", name, *options,
                    "-v", "%s:/fakerunner.sh:ro" % FAKE, IMAGE, "sh", "/fakerunner.sh", *steps)
        if lines:
            self.wait_lines(name, lines)
        return name

    def job(self, task=7, job="build"):
        name = "FORGEJO-ACTIONS-TASK-%d_WORKFLOW-%s_JOB-%s" % (task, uuid.uuid4().hex[:8], job)
        self.names.append(name)
        self.docker("run", "-d", "--init", "--network", "none", "--name", name, IMAGE,
                    "sleep", "3600")
        return name

    def started_at(self, name):
        return self.docker("inspect", "--format", "{{.State.StartedAt}}", name).stdout.strip()

    def wait_lines(self, name, count, since=None, seconds=10.0):
        """Until the container's log (since `since`) has `count` lines."""
        deadline = time.monotonic() + seconds
        args = ["logs"] + (["--since", since] if since else []) + [name]
        while True:
            result = self.docker(*args, check=False)
            have = len((result.stdout + result.stderr).splitlines())
            if have >= count:
                return
            if time.monotonic() > deadline:
                raise AssertionError("%s logged %d lines, not %d" % (name, have, count))
            time.sleep(0.05)

    def cleanup(self):
        if self.names:
            self.docker("rm", "-f", *self.names, check=False)


def watchdog(eng, state_dir, *args, env=None):
    extra = {"DOCKER_HOST": eng.host}
    extra.update(env or {})
    # the tool creates only the package's own directories (and a dry run
    # checks the state directory as the real run would use it)
    os.makedirs(str(state_dir), exist_ok=True)
    return run_tool(TOOL, "--state-dir", str(state_dir), *args, env=extra, timeout=60)


def as_json(result):
    doc = json.loads(result.stdout)
    assert len(doc["runners"]) == 1, doc
    return doc["runners"][0]


def restarts_in_state(state_dir, runner):
    with open(os.path.join(str(state_dir), "state.json")) as handle:
        return json.load(handle)["runners"][runner]["restarts_total"]


def host_runner(eng, tmp_path, drain, job, *steps, lines=0):
    """Start a host-job runner; -> (container name, its events file)."""
    box = tmp_path / ("box-%d" % len(eng.names))
    box.mkdir()
    os.mkfifo(str(box / "fifo"))
    name = eng.name("hostrunner")
    eng.docker("run", "-d", "--init", "--network", "none", "--name", name,
               "-v", "%s:/state" % box, "-v", "%s:%s:ro" % (HOSTRUNNER, DAEMON),
               "-v", "%s:/fakerunner.sh:ro" % FAKE, IMAGE,
               DAEMON, "/state", str(drain), str(job), *steps)
    if lines:
        eng.wait_lines(name, lines)
    wait_for(box / "events", "idle")
    return name, box / "events"


def host_job_pid(eng, container):
    """The host pid of the container's `sleep` (the host job), by docker top."""
    top = eng.docker("top", container, "-eo", "pid,ppid,comm,args").stdout.splitlines()
    pids = [line.split()[0] for line in top[1:] if line.split()[2] == "sleep"]
    assert len(pids) == 1, top
    return int(pids[0])


def wait_for(path, text, seconds=10.0, count=1):
    """Until `path` holds `text` (count times)."""
    deadline = time.monotonic() + seconds
    while True:
        if path.exists() and path.read_text().count(text) >= count:
            return
        if time.monotonic() > deadline:
            raise AssertionError("%s: no %r in %r" % (path, text, path.read_text()
                                                      if path.exists() else None))
        time.sleep(0.05)
