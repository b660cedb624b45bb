"""Do the runners' job containers get the pins?  (--runners, issue 14)

Unmarked: runnerconfig's pure helpers over real command lines, real
`systemctl show` output and real runner config files.  Marked `docker`:
runner containers on the session's real engine, started from the busybox
image with a config file mounted and named on their command line (a
stand-in `forgejo-runner` that only sleeps; `--network none`, nothing
connects anywhere), and the tool reading each one.
"""

import hashlib
import json
import os
import subprocess
import sys
import uuid

import pytest
from helpers.tools import LIB, plain, run_tool

from forgejo_runner_guard.config import config
from forgejo_runner_guard.runners import registration
from forgejo_runner_guard.report import EXIT_DRIFT, EXIT_FAILURE, EXIT_OK

TOOL = "optimus-boot-reconcile"
IMAGE = "frg-busybox:latest"
PIN = config.Pin("forge.azrak.io", "10.1.0.10")
PINS = (PIN,)
HOSTS = "127.0.0.1\tlocalhost\n10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\n"
ADD = "--add-host=forge.azrak.io:10.1.0.10"
FIX = "add %s to container.options in" % ADD

# A config as `forgejo-runner generate-config` writes it (the container
# section of runner 6.x), with the options this test sets.
GENERATED = """\
log:
  level: info
runner:
  file: .runner
  capacity: 1
  timeout: 3h
  fetch_timeout: 5s
  fetch_interval: 2s
  labels: []
cache:
  enabled: true
container:
  # Specifies the network to which the container will connect.
  network: %(network)s
  privileged: false
  # And other options to be used when the container is started (eg, --add-host=my.gitea.url:host-gateway).
  options: %(options)s
  workdir_parent:
  valid_volumes: []
  docker_host: ""
host:
  workdir_parent:
"""


def generated(network='""', options=""):
    return GENERATED % {"network": network, "options": options}


# ---------------------------------------------------------------- pure: where the config is


@pytest.mark.parametrize("argv, path", [
    (["forgejo-runner", "daemon", "--config", "/data/config.yml"], "/data/config.yml"),
    (["/bin/forgejo-runner", "daemon", "-c", "config.yml"], "config.yml"),
    (["forgejo-runner", "--config", "runner-config.yaml", "daemon"], "runner-config.yaml"),
    (["forgejo-runner", "daemon", "--config=/etc/r.yml"], "/etc/r.yml"),
    (["forgejo-runner", "daemon", "-c=/etc/r.yml"], "/etc/r.yml"),
    (["forgejo-runner", "daemon", "-c/etc/r.yml"], "/etc/r.yml"),
    (["/sbin/tini", "--", "forgejo-runner", "daemon", "-c", "/d/c.yml"], "/d/c.yml"),
    # the compose examples: a shell script that waits, then runs the daemon
    (["/bin/sh", "-c", "sleep 5; forgejo-runner daemon --config config.yml"], "config.yml"),
    (["sh", "-ec", "while ! [ -f .runner ]; do sleep 1; done && exec forgejo-runner -c /data/c.yml daemon"],
     "/data/c.yml"),
    (["sh", "-c", "forgejo-runner register --no-interactive -c x.yml; forgejo-runner daemon -c y.yml"], "y.yml"),
    # no config named: the runner's defaults
    (["forgejo-runner", "daemon"], None),
    (["sleep", "3600"], None),
    (["sh", "-c", "forgejo-runner generate-config -c x.yml"], None),
    (["sh", "-c", "forgejo-runner daemon -c 'unbalanced"], None),
    ([], None),
])
def test_config_argument(argv, path):
    assert registration.config_argument(argv) == path


MOUNTS = [
    {"Type": "bind", "Source": "/srv/runner", "Destination": "/data"},
    {"Type": "bind", "Source": "/srv/special.yml", "Destination": "/data/special.yml"},
    {"Type": "volume", "Name": "v", "Source": "/var/lib/docker/volumes/v/_data", "Destination": "/etc/runner"},
    {"Type": "tmpfs", "Source": "", "Destination": "/tmp"},
]


@pytest.mark.parametrize("path, workdir, host", [
    ("/data/config.yml", "/", "/srv/runner/config.yml"),
    ("config.yml", "/data", "/srv/runner/config.yml"),
    ("../data/./sub/c.yml", "/data", "/srv/runner/sub/c.yml"),
    ("/data/special.yml", "/", "/srv/special.yml"),  # the deepest mount wins
    ("/etc/runner/config.yml", "/", "/var/lib/docker/volumes/v/_data/config.yml"),
    ("/database/config.yml", "/", None),  # not under /data
    ("/tmp/config.yml", "/", None),  # tmpfs: nothing on the host
    ("config.yml", "", None),  # "/config.yml": in the image
])
def test_host_path(path, workdir, host):
    assert registration.host_path(registration.in_container(path, workdir), MOUNTS) == host


# What `systemctl show -p ExecStart` prints (systemd 252).
SHOW = ("{ path=/usr/local/bin/forgejo-runner ; argv[]=/usr/local/bin/forgejo-runner daemon "
        "--config /etc/forgejo-runner/config.yml ; ignore_errors=no ; start_time=[n/a] ; "
        "stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }")


@pytest.mark.parametrize("text, argv", [
    (SHOW, ["/usr/local/bin/forgejo-runner", "daemon", "--config", "/etc/forgejo-runner/config.yml"]),
    (SHOW + "\n" + SHOW, None),  # two commands: not simple
    (SHOW.replace("/etc/forgejo-runner/config.yml", '"/etc/my runner.yml"'), None),
    (SHOW.replace("/etc/forgejo-runner/config.yml", "${CONFIG}"), None),
    ("", None),
])
def test_execstart_argv(text, argv):
    assert registration.execstart_argv(text) == argv


# ---------------------------------------------------------------- pure: judging the file


def verdicts(text, pins=PINS):
    return registration.judge(registration.load(text.encode()), pins, "/data/config.yml")


def test_generated_default_is_not_pinned_and_says_what_to_add():
    (v,) = verdicts(generated())
    assert v.status == registration.NOT_PINNED
    assert v.detail == "jobs NOT pinned: %s /data/config.yml" % FIX
    assert v.options == ADD and v.yaml == "container:\n  options: %s\n" % ADD
    # the YAML it gives, put in the file, pins the jobs
    assert [x.status for x in verdicts(v.yaml)] == [registration.PINNED]


@pytest.mark.parametrize("network, options, status", [
    ('""', ADD, registration.PINNED),
    ('""', "--privileged --add-host forge.azrak.io:10.1.0.10", registration.PINNED),
    ('""', "'--add-host=FORGE.azrak.io=10.1.0.10'", registration.PINNED),  # Docker 25's NAME=ADDRESS
    ("bridge", ADD + " --add-host=other.example:10.9.9.9", registration.PINNED),
    ("host", "", registration.HOST_NETWORK),
    ('""', "--network=host", registration.HOST_NETWORK),
    ("host", ADD, registration.PINNED),
    ('""', "", registration.NOT_PINNED),
    ("bridge", "--add-host=forge.azrak.io:host-gateway", registration.NOT_PINNED),
    ("host", "--add-host=forge.azrak.io:203.0.113.7", registration.NOT_PINNED),
    ('""', ADD + " --add-host=forge.azrak.io:203.0.113.7", registration.NOT_PINNED),
])
def test_judge(network, options, status):
    assert [v.status for v in verdicts(generated(network, options))] == [status]


def test_a_wrong_address_is_replaced_in_the_fix_and_other_options_kept():
    (v,) = verdicts(generated(options="--privileged --add-host forge.azrak.io:203.0.113.7 -e 'A=b c'"))
    assert v.detail == ("jobs NOT pinned: %s /data/config.yml (and remove "
                        "--add-host=forge.azrak.io:203.0.113.7)" % FIX)
    assert v.options == "--privileged -e 'A=b c' " + ADD
    assert registration.load(v.yaml.encode()) == {"container": {"options": v.options}}


def test_ipv6_pin_uses_the_form_every_docker_reads():
    pin = config.Pin("forge.azrak.io", "2001:db8::10")
    (v,) = verdicts(generated(), (pin,))
    assert v.options == "--add-host=forge.azrak.io:2001:db8::10"
    for spelled in ("forge.azrak.io:2001:db8::10", "forge.azrak.io:[2001:db8:0::10]", "forge.azrak.io=2001:db8::10"):
        assert [x.status for x in verdicts(generated(options="--add-host=" + spelled), (pin,))] == ["pinned"]


def test_older_network_mode_key_counts():
    assert [v.status for v in verdicts("container:\n  network_mode: host\n")] == [registration.HOST_NETWORK]


@pytest.mark.parametrize("data, message", [
    (b"container: [\n", "not valid YAML: expected the node content, but found '<stream end>' at line 2, column 1"),
    (b"container:\n  options: --add-host=a:1\n   bad: indent\n", "not valid YAML: "),
    (b"- a\n- b\n", "not a runner config: the document is a sequence, not a mapping"),
    (b"3\n", "not a runner config: the document is a number, not a mapping"),
    (b"true\n", "not a runner config: the document is a boolean, not a mapping"),
    (b"just words\n", "not a runner config: the document is a string, not a mapping"),
    (b"2024-01-01\n", "not a runner config: the document is a date, not a mapping"),
    (b"!!binary aGVsbG8=\n", "not a runner config: the document is binary data, not a mapping"),
    (b"!!set {a}\n", "not a runner config: the document is a set, not a mapping"),
    (b"container: host\n", "container: not a mapping (a string)"),
    (b"container:\n  - a\n", "container: not a mapping (a sequence)"),
    (b"container:\n  options: [--add-host=x:1]\n", "container.options: not a string (a sequence)"),
    (b"container:\n  network: 3\n", "container.network: not a string (a number)"),
    (b"container:\n  options: {a: 1}\n", "container.options: not a string (a mapping)"),
    (b"\xff\x00abc: 1\n", "not valid YAML: unacceptable character #x00ff"),
    (b"container:\n  options: \"--add-host='x\"\n", "container.options: cannot split it as shell words"),
    (b"\xff\xfe\x00", "not valid YAML"),
])
def test_bad_config_is_one_line(data, message):
    with pytest.raises(registration.RunnerConfigError) as info:
        registration.judge(registration.load(data), PINS, "x")
    assert str(info.value).startswith(message) and "\n" not in str(info.value), str(info.value)
    plain(str(info.value))


def test_empty_file_is_the_defaults():
    assert [v.status for v in verdicts("")] == [registration.NOT_PINNED]


# ---------------------------------------------------------------- the real engine


def _sha(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


class Runners:
    """Runner containers on the session's engine, each with its files in
    a directory of its own under tmp_path."""

    def __init__(self, docker_host, tmp_path):
        self.host = docker_host
        self.tmp = tmp_path
        self.names = []
        self.hosts = str(tmp_path / "hosts")
        with open(self.hosts, "w") as handle:
            handle.write(HOSTS)  # in sync: the exit status is the jobs'
        self.conf = str(tmp_path / "guard.conf")
        with open(self.conf, "w") as handle:
            handle.write("[reconcile]\nhosts_file = %s\nlock_file = %s.lock\nstate_dir = %s\n"
                         "pins = forge.azrak.io 10.1.0.10\n[watchdog]\nstate_dir = %s\n"
                         "docker_timeout = 20s\n" % (self.hosts, self.hosts, tmp_path, tmp_path))
        # a stand-in forgejo-runner: it sleeps, whatever its arguments
        self.binary = str(tmp_path / "forgejo-runner")
        with open(self.binary, "w") as handle:
            handle.write("#!/bin/sh\nexec sleep 3600\n")
        os.chmod(self.binary, 0o755)

    def docker(self, *args):
        proc = subprocess.run(["docker", *args], env=dict(os.environ, DOCKER_HOST=self.host),
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def start(self, *command, config=None, mount="/data", file="config.yml", workdir=None):
        """A runner container: `config` (text, or a callable making the
        file) written to DIR/FILE and DIR mounted at `mount`."""
        name = "frg-jp-" + uuid.uuid4().hex[:8]
        data = self.tmp / name
        data.mkdir()
        args = ["run", "-d", "--init", "--network", "none", "--name", name,
                "-v", "%s:/usr/bin/forgejo-runner:ro" % self.binary]
        if config is not None:
            path = str(data / file)
            if callable(config):
                config(path)
            else:
                with open(path, "w") as handle:
                    handle.write(config)
            args += ["-v", "%s:%s" % (data, mount)]
        if workdir:
            args += ["-w", workdir]
        self.docker(*args, IMAGE, *command)
        self.names.append(name)
        return name, str(data / file)

    def run(self, *args, names=None):
        containers = [a for n in (names or self.names) for a in ("--container", n)]
        proc = run_tool(TOOL, "--config", self.conf, "--runners", *containers, *args,
                        env={"DOCKER_HOST": self.host})
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def lines(self, proc, name):
        return [ln for ln in proc.stderr.splitlines() if ": runner %s: " % name in ln and ": jobs" in ln]

    def clean(self):
        if self.names:
            self.docker("rm", "-f", *self.names)


@pytest.fixture
def runners(docker_host, tmp_path):
    r = Runners(docker_host, tmp_path)
    yield r
    r.clean()


@pytest.mark.docker
def test_real_runners_pinned_host_network_not_pinned_and_unknown(runners):
    pinned, pinned_file = runners.start("forgejo-runner", "daemon", "--config", "/data/config.yml",
                                        config=generated(options=ADD))
    # the compose example's form, a relative path from the working directory
    bare, bare_file = runners.start("sh", "-c", "sleep 3600; forgejo-runner daemon -c config.yml",
                                    config=generated(options="--privileged"), workdir="/data")
    # a single file mounted where the runner reads it
    host, host_file = runners.start("forgejo-runner", "-c", "/etc/runner/config.yml", "daemon",
                                    config=generated(network="host"), mount="/etc/runner")
    unknown, _ = runners.start("forgejo-runner", "daemon")
    files = {path: (_sha(path), os.stat(path).st_mtime_ns) for path in (pinned_file, bare_file, host_file)}

    proc = runners.run("--check", "--json")
    assert proc.returncode == EXIT_DRIFT, proc.stderr
    prefix = "%s: runner %%s: forge.azrak.io -> 10.1.0.10: " % TOOL
    assert runners.lines(proc, pinned) == [
        prefix % pinned + "jobs pinned (container.options in /data/config.yml)"]
    assert runners.lines(proc, bare) == [
        "%s: warning: runner %s: forge.azrak.io -> 10.1.0.10: jobs NOT pinned: %s /data/config.yml "
        "(the host's %s)" % (TOOL, bare, FIX, bare_file)]
    assert runners.lines(proc, host) == [
        prefix % host + "jobs use host network (container.network in /etc/runner/config.yml)"]
    (line,) = runners.lines(proc, unknown)
    assert line.startswith("%s: warning: runner %s: jobs unknown: no -c/--config on the command line "
                           "of container %s (forgejo-runner daemon): the runner's built-in defaults give each job a "
                           "network of its own" % (TOOL, unknown, unknown)), line
    doc = {r["name"]: r["jobs"] for r in json.loads(proc.stdout)["runners"]}
    assert doc[pinned]["status"] == "pinned" and doc[pinned]["host_file"] == pinned_file
    assert doc[bare]["status"] == "not-pinned" and doc[bare]["exit_status"] == EXIT_DRIFT
    assert doc[bare]["config"] == "/data/config.yml" and doc[bare]["host_file"] == bare_file
    assert doc[bare]["pins"][0]["yaml"] == "container:\n  options: --privileged %s\n" % ADD
    assert doc[host]["status"] == "host-network"
    assert doc[unknown]["status"] == "unknown" and doc[unknown]["config"] is None
    assert doc[unknown]["exit_status"] == EXIT_OK

    # Without --check the missing pin is reported, not drift.
    proc = runners.run()
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "jobs NOT pinned" in runners.lines(proc, bare)[0]
    # Only --check's drift came from the jobs: without the bare runner it is 0.
    proc = runners.run("--check", names=[pinned, host, unknown])
    assert proc.returncode == EXIT_OK, proc.stderr
    # The runner's config is only ever read.
    assert files == {path: (_sha(path), os.stat(path).st_mtime_ns) for path in files}


@pytest.mark.docker
@pytest.mark.parametrize("make, message", [
    (os.mkdir, "cannot read its config /data/config.yml (the host's %s): Is a directory"),
    ("container:\n  options: [\n", "its config /data/config.yml (the host's %s): not valid YAML: "),
])
def test_real_runner_config_unreadable_or_unparsable_is_one_line_exit_1(runners, make, message):
    name, path = runners.start("forgejo-runner", "daemon", "--config", "/data/config.yml", config=make)
    proc = runners.run("--check")
    assert proc.returncode == EXIT_FAILURE, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ": error: " in ln]
    assert errors == runners.lines(proc, name) and len(errors) == 1, proc.stderr
    assert errors[0].startswith("%s: error: runner %s: jobs: %s" % (TOOL, name, message % path)), errors


@pytest.mark.docker
def test_real_runner_config_in_the_image_is_unknown(runners):
    name, _ = runners.start("forgejo-runner", "daemon", "-c", "/etc/config.yml")
    proc = runners.run("--check")
    assert proc.returncode == EXIT_OK, proc.stderr
    assert runners.lines(proc, name) == [
        "%s: warning: runner %s: jobs unknown: its config /etc/config.yml is in the container's own "
        "filesystem (no mount holds it): cannot read it from the host" % (TOOL, name)]


# ---------------------------------------------------------------- command line


def test_help_names_the_job_lines():
    proc = run_tool(TOOL, "--help")
    assert proc.returncode == 0
    for text in ("job containers (with --runners)", "jobs pinned", "jobs use host network",
                 "jobs NOT pinned: add --add-host=NAME:ADDRESS to container.options", "jobs unknown",
                 "never edited"):
        assert text in " ".join(proc.stdout.split()), text


def test_without_runners_yaml_is_not_imported(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    code = ("import sys; from forgejo_runner_guard.pins import command as reconcile; "
            "status = reconcile.main(['--hosts-file', sys.argv[1], '--check']); "
            "assert 'yaml' not in sys.modules, 'yaml imported'; sys.exit(status)")
    proc = subprocess.run([sys.executable, "-c", code, str(hosts)],
                          env=dict(os.environ, PYTHONPATH=LIB),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
