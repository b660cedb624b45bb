"""The watchdog asks the forge before it restarts (issue 19), against the
real Docker engine and a test forge on loopback (tests/helpers/forge.py,
which answers the Ping as Forgejo and connect-go do).

The engine is one of this module's own (engine.start(own_etc=True)): it
runs in a private mount namespace whose /etc/hosts is a temp file, which
it copies into every host-network container it (re)starts.  The watchdog
runs in a private mount namespace of its own where that same file is
/etc/hosts (and resolv.conf names a loopback server nobody runs): so
"the host's hosts file as it is now", which a restarted runner would
copy, is the file the test writes, and the machine's own /etc/hosts is
neither read nor written (checked byte for byte at the end).  The forge's
name maps to 127.0.0.x there; nothing leaves the machine.  The Ping is
made by the watchdog, on the host, at the address the restarted runner
would resolve: the runners themselves only write log lines
(tests/helpers/fakerunner.sh installed as their forgejo-runner binary,
started as `forgejo-runner daemon -c /data/config.yml`, their .runner and
config.yml in their /data mount as registration writes them).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from helpers import engine
from helpers.forge import Forge, runner_files
from helpers.runners import FAKE, IMAGE, TOOL, Engine
from helpers.tools import ROOT, tool_env

pytestmark = pytest.mark.docker

NAME = "forge.azrak.io"
FORGE = "127.0.0.3"  # where the forge answers (the pin)
HAIRPIN = "127.0.0.2"  # nothing listens there: the dead hairpin
BASE = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

# In the watchdog's namespace: the engine's hosts file is the host's, and DNS
# goes nowhere.
NAMESPACE = """set -e
mount --bind "$1" /etc/hosts
mount --bind "$2" /etc/resolv.conf
shift 2
exec "$@"
"""


class Site:
    """The engine of this module and the watchdog run beside it."""

    def __init__(self, root):
        self.root = root
        self.host = engine.start(root, own_etc=True)
        engine.ensure_image(self.host)
        self.hosts = engine.etc_hosts(root)
        self.resolv = os.path.join(root, "resolv.conf")
        with open(self.resolv, "w") as handle:
            handle.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")

    def pin(self, address):
        """The host's hosts file maps the forge's name to `address` (written
        in place: the engine and the watchdog see this very file)."""
        with open(self.hosts, "w") as handle:
            handle.write(BASE + "%s\t%s # forgejo-runner-guard pin\n" % (address, NAME))


def machine_hosts():
    with open("/etc/hosts", "rb") as handle:
        return handle.read()


@pytest.fixture(scope="module")
def site():
    before = machine_hosts()
    root = tempfile.mkdtemp(prefix="frg-forge-", dir="/tmp")
    try:
        yield Site(root)
    finally:
        engine.stop(root)
        shutil.rmtree(root, ignore_errors=True)
        assert machine_hosts() == before, "the machine's /etc/hosts changed"


@pytest.fixture
def eng(site):
    site.pin(FORGE)
    made = Engine(site.host)
    yield made
    made.cleanup()


def start(eng, data, *steps, add_hosts=(), network="host", lines=60):
    """A runner container: /data mounted from `data`, workdir /data, the
    fake runner as its forgejo-runner, named on its command line."""
    name = eng.name("runner")
    args = ["run", "-d", "--init", "--name", name, "--network", network, "-w", "/data",
            "-v", "%s:/data" % data, "-v", "%s:/usr/local/bin/forgejo-runner:ro" % FAKE]
    for entry in add_hosts:
        args += ["--add-host", entry]
    eng.docker(*args, IMAGE, "/usr/local/bin/forgejo-runner", "daemon", "-c", "/data/config.yml",
               *(steps or ("wedged", "60")))
    eng.wait_lines(name, lines)
    return name


def data_dir(tmp_path, address, **options):
    path = tmp_path / ("data-%d" % len(list(tmp_path.glob("data-*"))))
    path.mkdir()
    return runner_files(str(path), address, **options)


def conf(tmp_path, runners, pki=None, **keys):
    """A guard.conf for these {name: container} (or {name: {key: value}})."""
    path = tmp_path / "guard.conf"
    lines = ["[watchdog]", "runners = %s" % " ".join(runners)]
    if pki is not None:
        lines.append("forge_ca_file = %s" % pki["ca"])
    lines += ["%s = %s" % kv for kv in keys.items()]
    for name, section in runners.items():
        section = {"container": section} if isinstance(section, str) else section
        lines.append("[runner %s]" % name)
        lines += ["%s = %s" % kv for kv in section.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def watchdog(site, tmp_path, config, *args):
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    command = ["unshare", "-m", "--propagation", "private", "sh", "-c", NAMESPACE, "sh",
               site.hosts, site.resolv, sys.executable, os.path.join(ROOT, "bin", TOOL),
               "--state-dir", str(state), "--config", config, "--json", *args]
    return subprocess.run(command, env=tool_env({"DOCKER_HOST": site.host}), capture_output=True,
                          text=True, timeout=120)


def runners(result):
    return {r["name"]: r for r in json.loads(result.stdout)["runners"]}


def lines(result):
    return [line.partition(": ")[2] for line in result.stderr.splitlines()]


# ---------------------------------------------------------------- the forge answers


def test_host_network_forge_answers_dry_run_then_restart(site, eng, tmp_path, pki):
    with Forge("answer", FORGE, cert=pki["forge"]) as forge:
        url = forge.url()
        runner = start(eng, data_dir(tmp_path, url))
        before = eng.started_at(runner)
        config = conf(tmp_path, {"r": runner}, pki)
        dry = watchdog(site, tmp_path, config, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert eng.started_at(runner) == before and len(forge.requests) == 1  # asked, too
        doc = runners(dry)["r"]
        assert doc["summary"].endswith(
            "no job running: wedged: would restart (dry run) (forge answered Ping in %d ms at %s: "
            "the runner's own connection is stuck)" % (doc["forge"]["ms"], FORGE))
        metrics = tmp_path / "watchdog.prom"
        run = watchdog(site, tmp_path, config, "--metrics-file", str(metrics))
    assert run.returncode == 0, run.stderr
    assert eng.started_at(runner) != before
    doc = runners(run)["r"]
    assert (doc["decision"], doc["restarted"], doc["exit_status"]) == ("wedged", True, 0)
    forge_doc = doc["forge"]
    assert {k: forge_doc[k] for k in ("asked", "url", "address", "via", "result", "class",
                                       "status", "attempts", "why")} == {
        "asked": True, "url": url, "address": FORGE, "via": "the host's resolver",
        "result": "answered", "class": None, "status": 200, "attempts": 1, "why": None}
    assert isinstance(forge_doc["ms"], int) and forge_doc["ms"] >= 0
    assert lines(run) == [doc["summary"]]
    assert doc["summary"].endswith("no job running: restarted (forge answered Ping in %d ms at %s: "
                                   "the runner's own connection is stuck)" % (forge_doc["ms"], FORGE))
    assert 'forgejo_runner_watchdog_forge_unreachable{container="%s"} 0\n' % runner \
        in metrics.read_text()
    [request, _] = forge.requests  # the dry run's and this run's: a Ping each, nothing else
    assert (request["method"], request["version"]) == ("POST", "HTTP/1.1")
    assert request["path"] == "/api/actions/ping.v1.PingService/Ping"


def test_own_network_asks_its_add_host_entry(site, eng, tmp_path):
    """A container with its own network resolves the forge by its --add-host
    entry, not by the host's file (which points at the dead hairpin here)."""
    site.pin(HAIRPIN)
    with Forge("answer", "127.0.0.4") as forge:
        runner = start(eng, data_dir(tmp_path, forge.url()), network="none",
                       add_hosts=["%s:127.0.0.4" % NAME])
        before = eng.started_at(runner)
        result = watchdog(site, tmp_path, conf(tmp_path, {"r": runner}))
    assert result.returncode == 0, result.stderr
    doc = runners(result)["r"]
    assert (doc["decision"], doc["restarted"]) == ("wedged", True)
    assert (doc["forge"]["address"], doc["forge"]["via"], doc["forge"]["result"]) == (
        "127.0.0.4", "its --add-host", "answered")
    assert eng.started_at(runner) != before


# ---------------------------------------------------------------- the forge does not answer


@pytest.mark.parametrize("mode, tls, label, reason", [
    ("refuse", True, "transport", "connection refused"),
    ("reset", False, "transport", "connection reset while waiting for the reply"),
    ("502", True, "http 502", "Bad Gateway"),
    ("other", False, "http 200", "not the Ping's reply (text/html, 124 bytes)"),
])
def test_forge_down_is_not_restarted(site, eng, tmp_path, pki, mode, tls, label, reason):
    with Forge(mode, FORGE, cert=pki["forge"] if tls else None) as forge:
        url = forge.url()
        runner = start(eng, data_dir(tmp_path, url))
        before = eng.started_at(runner)
        metrics = tmp_path / "watchdog.prom"
        result = watchdog(site, tmp_path, conf(tmp_path, {"r": runner}, pki),
                          "--metrics-file", str(metrics))
    assert result.returncode == 1, result.stderr
    assert eng.started_at(runner) == before
    doc = runners(result)["r"]
    assert (doc["decision"], doc["restarted"], doc["exit_status"]) == ("forge-unreachable", False, 1)
    assert (doc["forge"]["result"], doc["forge"]["reason"], doc["forge"]["attempts"]) == (
        "failed", reason, 3)
    assert doc["forge"]["class"] == label.split()[0]
    assert doc["job_running"] is None  # a restart cannot help: no need to list the jobs
    assert lines(result) == ["error: " + doc["summary"]]
    assert doc["summary"] == (
        "r: 60 fetch errors in %ds (threshold 40), newest %ds ago (transport: connection reset): "
        "forge unreachable: Ping to %s at %s (the host's resolver) failed 3 times (%s: %s): a "
        "restart cannot help, not restarted" % (round(doc["span"]), round(doc["newest_error_age"]),
                                                url, FORGE, label, reason))
    text = metrics.read_text()
    assert 'forgejo_runner_watchdog_forge_unreachable{container="%s"} 1\n' % runner in text
    assert 'forgejo_runner_watchdog_restarts_total{container="%s"} 0\n' % runner in text


def test_a_hanging_forge_ends_within_ping_timeout(site, eng, tmp_path, pki):
    with Forge("hang", FORGE, cert=pki["forge"]) as forge:
        runner = start(eng, data_dir(tmp_path, forge.url()))
        config = conf(tmp_path, {"r": runner}, pki, ping_timeout="2s")
        started = time.monotonic()
        result = watchdog(site, tmp_path, config)
        took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    doc = runners(result)["r"]
    assert (doc["decision"], doc["forge"]["class"]) == ("forge-unreachable", "timeout")
    assert doc["forge"]["reason"] == "timed out after 0.7 s while waiting for the reply"
    assert 2.0 < took < 2.0 + 4.0, took  # ping_timeout plus the rest of a check


# ---------------------------------------------------------------- the origin case


def test_stale_copy_of_the_hosts_file_fixed_on_the_host_is_restarted(site, eng, tmp_path, pki):
    """The runner started while the host's file sent the forge's name to the
    hairpin, which is dead: its copy still does.  While the host's file says
    the same, a restart could not help (the new copy would be as dead): not
    restarted.  Once the host's file has the pin and the forge answers there,
    the restart is the fix: restarted, and the new copy has the pin."""
    site.pin(HAIRPIN)
    with Forge("answer", FORGE, cert=pki["forge"]) as forge:
        runner = start(eng, data_dir(tmp_path, forge.url()))
        before = eng.started_at(runner)
        copy = eng.docker("inspect", "--format", "{{.HostsPath}}", runner).stdout.strip()
        config = conf(tmp_path, {"r": runner}, pki)
        hairpin = watchdog(site, tmp_path, config)
        assert hairpin.returncode == 1, hairpin.stderr
        doc = runners(hairpin)["r"]
        assert (doc["decision"], doc["forge"]["address"], doc["forge"]["reason"]) == (
            "forge-unreachable", HAIRPIN, "connection refused")
        site.pin(FORGE)
        with open(copy) as handle:
            assert "%s\t%s" % (HAIRPIN, NAME) in handle.read()  # the runner's copy: still stale
        pinned = watchdog(site, tmp_path, config)
    assert pinned.returncode == 0, pinned.stderr
    doc = runners(pinned)["r"]
    assert (doc["decision"], doc["restarted"], doc["forge"]["address"]) == ("wedged", True, FORGE)
    assert eng.started_at(runner) != before
    with open(eng.docker("inspect", "--format", "{{.HostsPath}}", runner).stdout.strip()) as handle:
        assert "%s\t%s" % (FORGE, NAME) in handle.read()  # the fix: the new copy has the pin


# ---------------------------------------------------------------- settings


def test_verify_none_restarts_as_before(site, eng, tmp_path):
    with Forge("refuse", FORGE) as forge:
        runner = start(eng, data_dir(tmp_path, forge.url()))
        before = eng.started_at(runner)
        result = watchdog(site, tmp_path, conf(tmp_path, {"r": runner}, verify="none"))
    assert result.returncode == 0, result.stderr
    doc = runners(result)["r"]
    assert (doc["decision"], doc["restarted"]) == ("wedged", True)
    assert (doc["forge"]["asked"], doc["forge"]["why"]) == (False, "verify = none")
    assert doc["summary"].endswith("no job running: restarted")
    assert eng.started_at(runner) != before and forge.connections == 0


def test_forge_given_overrides_the_runners_own(site, eng, tmp_path):
    with Forge("answer", FORGE) as forge, Forge("refuse", FORGE) as dead:
        runner = start(eng, data_dir(tmp_path, dead.url()))  # its .runner names a dead port
        result = watchdog(site, tmp_path, conf(tmp_path, {"r": {"container": runner,
                                                                 "forge": forge.url()}}))
    assert result.returncode == 0, result.stderr
    doc = runners(result)["r"]
    assert (doc["decision"], doc["restarted"], doc["forge"]["url"]) == ("wedged", True, forge.url())


def test_forge_given_for_a_runner_without_files(site, eng, tmp_path):
    with Forge("502", FORGE) as forge:
        runner = start(eng, str(tmp_path))  # nothing in its /data
        before = eng.started_at(runner)
        result = watchdog(site, tmp_path, conf(tmp_path, {"r": {"container": runner,
                                                                 "forge": forge.url()}}))
    assert result.returncode == 1, result.stderr
    assert runners(result)["r"]["decision"] == "forge-unreachable"
    assert eng.started_at(runner) == before


def test_no_runner_file_the_log_alone_decides(site, eng, tmp_path):
    data = data_dir(tmp_path, None)  # config.yml, but no .runner
    runner = start(eng, data)
    before = eng.started_at(runner)
    result = watchdog(site, tmp_path, conf(tmp_path, {"r": runner}))
    assert result.returncode == 0, result.stderr
    doc = runners(result)["r"]
    assert (doc["decision"], doc["restarted"]) == ("wedged", True)
    why = "no .runner: /data/.runner (the host's %s/.runner): No such file or directory" % data
    assert (doc["forge"]["asked"], doc["forge"]["why"]) == (False, why)
    assert lines(result) == [
        "warning: r: forge not asked: %s: the log alone decides (forge = URL in [runner r] names "
        "it)" % why,
        doc["summary"]]
    assert doc["summary"].endswith("no job running: restarted (forge not asked)")
    assert eng.started_at(runner) != before


def test_a_name_only_the_containers_network_knows(site, eng, tmp_path):
    """`http://forgejo:3000/` (a forge in the runner's compose project):
    the host's resolver does not know the name.  For a container with a
    network of its own that proves nothing (Docker's DNS may know it): not
    asked, the log decides.  A host-network runner would resolve it as the
    host does: no restart can help it, forge-unreachable."""
    own = start(eng, data_dir(tmp_path, "http://forgejo:3000/"), network="none")
    host = start(eng, data_dir(tmp_path, "http://forgejo:3000/"))
    before = eng.started_at(host)
    result = watchdog(site, tmp_path, conf(tmp_path, {"own": own, "host": host}))
    assert result.returncode == 1, result.stderr
    docs = runners(result)
    assert (docs["own"]["decision"], docs["own"]["restarted"]) == ("wedged", True)
    why = "forgejo does not resolve on the host (the container's own network may resolve it: " \
          "Docker's DNS)"
    assert (docs["own"]["forge"]["asked"], docs["own"]["forge"]["why"]) == (False, why)
    assert "warning: own: forge not asked: %s: the log alone decides" % why in result.stderr
    assert (docs["host"]["decision"], docs["host"]["forge"]["class"]) == ("forge-unreachable", "dns")
    assert docs["host"]["forge"]["reason"].startswith("cannot resolve forgejo: ")
    assert eng.started_at(host) == before


# ---------------------------------------------------------------- notifications, the fleet


def test_forge_unreachable_is_notified_once_and_ends(site, eng, tmp_path):
    out = tmp_path / "events.jsonl"
    record = tmp_path / "record"
    record.write_text("#!/bin/sh\ncat >>%s\necho >>%s\n" % (out, out))
    record.chmod(0o755)
    with Forge("502", FORGE) as forge:
        runner = start(eng, data_dir(tmp_path, forge.url()))
        config = conf(tmp_path, {"r": runner})
        with open(config, "a") as handle:
            handle.write("[notify]\ncommand = %s\n" % record)

        def events():
            return [json.loads(line)["event"] for line in out.read_text().splitlines() if line]

        for _ in range(2):
            assert watchdog(site, tmp_path, config).returncode == 1
        assert events() == ["forge-unreachable"]  # once, while it lasts
        [event] = [json.loads(line) for line in out.read_text().splitlines() if line]
        assert (event["runner"], event["decision"]) == ("r", "forge-unreachable")
        assert "forge unreachable: Ping to %s" % forge.url() in event["summary"]
        forge.mode = "answer"  # the forge is back; the runner is still wedged
        assert watchdog(site, tmp_path, config).returncode == 0
        assert watchdog(site, tmp_path, config).returncode == 0  # healthy since its restart
    assert events() == ["forge-unreachable", "restarted", "recovered"]


def test_a_fleet_wide_outage_restarts_nothing(site, eng, tmp_path):
    with Forge("502", FORGE) as forge:
        names = [start(eng, data_dir(tmp_path, forge.url())) for _ in range(3)]
        names.append(start(eng, data_dir(tmp_path, forge.url()), network="none",
                           add_hosts=["%s:%s" % (NAME, FORGE)]))
        before = [eng.started_at(n) for n in names]
        result = watchdog(site, tmp_path, conf(tmp_path, {"r%d" % i: n for i, n in enumerate(names)}))
    assert result.returncode == 1, result.stderr
    docs = runners(result)
    assert [docs["r%d" % i]["decision"] for i in range(4)] == ["forge-unreachable"] * 4
    assert [eng.started_at(n) for n in names] == before  # zero restarts
    assert not any(d["restarted"] for d in docs.values())
    # one Ping per distinct address: the three host-network runners share
    # the host's resolver's answer, the fourth has its --add-host (3 attempts each)
    assert forge.connections == 6
