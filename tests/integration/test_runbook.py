"""Runbook 08 cannot drift from the tools: its runnable blocks run here.

Convention (documented at the top of the runbook):

    <!-- runnable -->          before a ```sh block: run it, expect exit 0
    <!-- runnable exit=N -->   expect exit N
    <!-- output -->            before a ```text block: the expected output
                               of the runnable block above it

The blocks run top to bottom in one sandbox, the story the runbook tells:
a wedged runner is diagnosed, pinned, restarted, verified, tuned, rolled
back.  The sandbox is a private mount and network namespace (unshare -m -n)
in which /etc and /var/lib are overlays whose changes land in a temp dir,
/run/lock is a tmpfs, the network is loopback only (the Docker CLI talks
to the test engine over its unix socket), and a stub DNS answers
forge.azrak.io with the public address 203.0.113.7.  That address and
the LAN's 10.1.0.10 are the sandbox loopback's own: a stand-in forge
(tests/helpers/forge.py) answers the Actions Ping there over TLS, its CA
added to the sandbox's system trust store; nothing leaves the namespace.
The runner is a container named forgejo_runner (--network none, its
.runner in its /data mount) that copies the sandbox's /etc/hosts when it
starts, as Docker does for a host-network container, and is wedged until
it sees the pin.  The machine's own /etc/hosts is never written: the
test checks it byte for byte afterwards.
"""

import collections
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from helpers import forge
from helpers.tools import LIB, ROOT

RUNBOOK = os.path.join(ROOT, "runbook", "08-forgejo-runner-lan-pin-and-watchdog.md")
TOOLS = ("optimus-boot-reconcile", "forgejo-runner-watchdog")
SECTIONS = (
    "Symptom",
    "Diagnosis",
    "Root cause",
    "The fix",
    "Verification",
    "Tuning",
    "Rollback",
    "Job containers",
    "Why this design",
    "Many hosts",
)
# An unmarked ```sh block must need one of these (systemd, apt, the real host).
# --probe needs the real tunnel to the pinned address; --runners and --refresh-stale a real
# host-network runner (the sandbox's runner is simulated: Docker never copies the sandbox's
# /etc/hosts into it).
NEEDS_REAL_HOST = re.compile(
    r"\b(systemctl|journalctl|apt|apt-get|dpkg|systemd-\w+)\b|--probe\b|--runners\b|--refresh-stale\b")
# What a runnable block must never run: anything that could reach the network.
NETWORK_CLIENTS = re.compile(r"\b(curl|wget|nc|ncat|ping|ssh|telnet|openssl|git)\b|--probe")

PUBLIC_ADDRESS = "203.0.113.7"  # TEST-NET-3: the forge's "public" address in the sandbox
HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "127.0.1.1\toptimus\n"
    "\n"
    "# The following lines are desirable for IPv6 capable hosts\n"
    "::1     localhost ip6-localhost ip6-loopback\n"
    "ff02::1 ip6-allnodes\n"
    "ff02::2 ip6-allrouters\n"
)

Block = collections.namedtuple("Block", "line info code runnable exit output")
# The stand-in forge, in the sandbox: the Ping over TLS on port 443 of every
# address the namespace has (its loopback, 203.0.113.7 and 10.1.0.10).
FORGE = """import sys, time
from helpers.forge import Forge
Forge("answer", "0.0.0.0", cert=(sys.argv[1], sys.argv[2]), port=443, sandbox=True)
time.sleep(86400)
"""


# ------------------------------------------------------------ parsing


def parse_runbook(text):
    """-> list of Block for every fenced block, markers applied.

    Raises ValueError for a marker that is not followed by the right kind
    of block, or an output block with no runnable block before it."""
    lines = text.splitlines()
    blocks = []
    pending = None  # (kind, exit, line) of a marker waiting for its fence
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        marker = re.fullmatch(r"<!--\s*(runnable(?:\s+exit=(\d+))?|output)\s*-->", stripped)
        if marker:
            if pending:
                raise ValueError("line %d: marker not followed by a block" % pending[2])
            kind = "output" if marker.group(1) == "output" else "runnable"
            pending = (kind, int(marker.group(2) or 0), i + 1)
            i += 1
            continue
        fence = re.match(r"^(\s*)(```+)(.*)$", lines[i])
        if fence:
            indent, ticks, info = fence.group(1), fence.group(2), fence.group(3).strip()
            body = []
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(ticks):
                line = lines[j]
                body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
                j += 1
            if j >= len(lines):
                raise ValueError("line %d: unclosed code block" % (i + 1))
            code = "\n".join(body) + "\n"
            runnable, exit_status = False, None
            if pending:
                kind, status, where = pending
                pending = None
                if kind == "runnable":
                    if info != "sh":
                        raise ValueError("line %d: runnable marker before a %r block" % (where, info))
                    runnable, exit_status = True, status
                else:
                    if info != "text":
                        raise ValueError("line %d: output marker before a %r block" % (where, info))
                    runnables = [b for b in blocks if b.runnable]
                    if not runnables:
                        raise ValueError("line %d: output before any runnable block" % where)
                    last = runnables[-1]
                    if last.output is not None:
                        raise ValueError("line %d: second output for the block at line %d" % (where, last.line))
                    blocks[blocks.index(last)] = last._replace(output=body)
            blocks.append(Block(i + 1, info, code, runnable, exit_status, None))
            i = j + 1
            continue
        if pending and stripped:
            raise ValueError("line %d: marker not directly followed by a block" % pending[2])
        i += 1
    if pending:
        raise ValueError("line %d: marker at the end of the file" % pending[2])
    return blocks


def _normalize(line):
    """Blanks collapse; numbers (123, 0.05, 1795728831.69) compare equal,
    dotted IPv4 addresses stay exact."""
    line = re.sub(
        r"\d+(?:\.\d+)*",
        lambda m: m.group(0) if m.group(0).count(".") == 3 else "N",
        line,
    )
    return " ".join(line.split())


def match_output(expected, actual):
    """None if the expected lines appear in `actual`, else a reason.

    Consecutive expected lines must be consecutive output lines; a line
    '...' allows any lines in between.  The whole may start and end
    anywhere in the output."""
    segments, current = [], []
    for line in expected:
        if line.strip() == "...":
            if current:
                segments.append(current)
            current = []
        elif line.strip():
            current.append(_normalize(line))
    if current:
        segments.append(current)
    got = [_normalize(line) for line in actual.splitlines()]
    got = [line for line in got if line]
    pos = 0
    for segment in segments:
        for start in range(pos, len(got) - len(segment) + 1):
            if got[start : start + len(segment)] == segment:
                pos = start + len(segment)
                break
        else:
            return "expected, in order after line %d of the output:\n  %s" % (
                pos,
                "\n  ".join(segment),
            )
    return None


def runbook_blocks():
    with open(RUNBOOK, encoding="utf-8") as handle:
        return parse_runbook(handle.read())


# ------------------------------------------------------------ static checks


def test_runbook_sections_in_the_issue_order():
    with open(RUNBOOK, encoding="utf-8") as handle:
        headings = re.findall(r"^## \d+\. (.+)$", handle.read(), re.M)
    assert headings == list(SECTIONS)


def test_runbook_markers_are_well_formed():
    blocks = runbook_blocks()
    runnable = [b for b in blocks if b.runnable]
    assert len(runnable) >= 15, "the runbook lost its runnable blocks"
    assert any(b.output for b in runnable), "no expected output at all"
    for block in runnable:
        assert block.code.strip(), "empty runnable block at line %d" % block.line


def test_unmarked_shell_blocks_need_systemd_or_apt():
    """Every command that can run without a real runner must be marked."""
    for block in runbook_blocks():
        if block.info == "sh" and not block.runnable:
            for command in _commands(block.code):
                assert NEEDS_REAL_HOST.search(command), (
                    "runbook line %d: unmarked command %r could run in the sandbox: "
                    "mark the block <!-- runnable -->" % (block.line, command)
                )


def test_runnable_blocks_never_reach_the_network():
    for block in runbook_blocks():
        if block.runnable:
            assert not NETWORK_CLIENTS.search(block.code), (
                "runbook line %d: a runnable block must not open connections" % block.line
            )


def test_the_units_the_runbook_names_are_the_packaged_units():
    with open(RUNBOOK, encoding="utf-8") as handle:
        named = set(re.findall(r"\b([a-z][a-z0-9-]+\.(?:service|timer))\b", handle.read()))
    ours = {u for u in named if u.startswith(("optimus-", "forgejo-runner-watchdog"))}
    assert ours == {
        "optimus-boot-reconcile.service",
        "forgejo-runner-watchdog.service",
        "forgejo-runner-watchdog.timer",
    }
    debian = os.path.join(ROOT, "debian")
    shipped = {
        name.split(".", 1)[1] if name.startswith("forgejo-runner-guard.") else name
        for name in os.listdir(debian)
        if name.endswith((".service", ".timer"))
    }
    assert ours <= shipped, "units named in the runbook but not in debian/: %s" % sorted(ours - shipped)


def test_parser_and_matcher_catch_mistakes():
    with pytest.raises(ValueError):
        parse_runbook("<!-- runnable -->\n```text\nx\n```\n")
    with pytest.raises(ValueError):
        parse_runbook("<!-- output -->\n```text\nx\n```\n")
    with pytest.raises(ValueError):
        parse_runbook("<!-- runnable -->\nprose\n```sh\ntrue\n```\n")
    blocks = parse_runbook(
        "<!-- runnable exit=3 -->\n```sh\nfalse\n```\n\n<!-- output -->\n```text\na 12\n...\nb\n```\n"
    )
    assert blocks[0].exit == 3 and blocks[0].output == ["a 12", "...", "b"]
    assert match_output(["a 12", "...", "b"], "x\na   7\ny\nb\n") is None
    assert match_output(["a 12", "b"], "a 7\ny\nb\n") is not None  # not consecutive
    assert match_output(["10.1.0.10 x"], "203.0.113.7 x\n") is not None  # addresses exact
    assert match_output(["n 152 in 300s, newest 2s"], "n 3 in 12s, newest 0s\n") is None
    assert match_output(["t 1795728831.69"], "t 1795728999.123\n") is None
    assert match_output(['time="2026-06-29T10:00:02Z" x'], 'time="2026-11-26T21:33:48Z" x\n') is None
    assert match_output(["a 10.1.0.5:51234"], "a 10.1.0.5:4242\n") is None


def _commands(code):
    """The commands of a shell block, here-documents skipped."""
    commands, heredoc = [], None
    for line in code.splitlines():
        if heredoc:
            if line.strip() == heredoc:
                heredoc = None
            continue
        match = re.search(r"<<-?\s*'?\"?(\w+)", line)
        if match:
            heredoc = match.group(1)
        line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if line:
            commands.append(line)
    return commands


# ------------------------------------------------------------ the sandbox


def _sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


class Sandbox:
    """The namespace, the stub DNS (which holds the namespace open), the
    tool wrappers and the simulated runner.  run(code) runs a block."""

    def __init__(self, docker_host, pki):
        self.docker_host = docker_host
        self.pki = pki
        self.root = tempfile.mkdtemp(prefix="frg-runbook-", dir="/tmp")
        self.proc = None
        self.env = {
            "PATH": os.path.join(self.root, "bin") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "DOCKER_HOST": docker_host,
            "HOME": os.path.join(self.root, "home"),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
        }

    def docker(self, *args, check=True, timeout=60):
        result = subprocess.run(
            ["docker", *args],
            env=dict(os.environ, DOCKER_HOST=self.docker_host),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError("docker %s: %s" % (" ".join(args), result.stderr.strip()))
        return result

    def _layout(self):
        r = self.root
        for d in ("etc.upper", "etc.work", "varlib.upper", "varlib.work", "bin", "home"):
            os.makedirs(os.path.join(r, d))
        with open(os.path.join(r, "etc.upper", "hosts"), "w") as handle:
            handle.write(HOSTS)
        os.chmod(os.path.join(r, "etc.upper", "hosts"), 0o644)
        with open(os.path.join(r, "etc.upper", "resolv.conf"), "w") as handle:
            handle.write("nameserver 127.0.0.1\n")
        with open(os.path.join(r, "etc.upper", "nsswitch.conf"), "w") as handle:
            handle.write("passwd: files\ngroup: files\nhosts: files dns\n")
        # the system trust store, with the stand-in forge's CA
        os.makedirs(os.path.join(r, "etc.upper", "ssl", "certs"))
        with open(os.path.join(r, "etc.upper", "ssl", "certs", "ca-certificates.crt"), "w") as out:
            with open("/etc/ssl/certs/ca-certificates.crt") as system, open(self.pki["ca"]) as ca:
                out.write(system.read() + ca.read())
        # the runner's /data, as its registration left it
        os.makedirs(os.path.join(r, "runner-data"))
        with open(os.path.join(r, "runner-data", ".runner"), "wb") as handle:
            handle.write(forge.registration("https://forge.azrak.io/"))
        # the packaged conffile and drop-in directory, as an installed package has them
        os.makedirs(os.path.join(r, "etc.upper", "forgejo-runner-guard", "guard.conf.d"))
        conffile = self._conffile()
        if conffile:
            shutil.copy(conffile, os.path.join(r, "etc.upper", "forgejo-runner-guard", "guard.conf"))
        for tool in TOOLS:
            path = os.path.join(r, "bin", tool)
            with open(path, "w") as handle:
                handle.write(
                    '#!/bin/sh\nPYTHONPATH=%s exec %s %s "$@"\n'
                    % (LIB, sys.executable, os.path.join(ROOT, "bin", tool))
                )
            os.chmod(path, 0o755)

    @staticmethod
    def _conffile():
        for candidate in ("debian/guard.conf", "etc/guard.conf", "debian/etc/guard.conf"):
            path = os.path.join(ROOT, candidate)
            if os.path.isfile(path):
                return path
        return None

    def start(self):
        self._layout()
        r = self.root
        setup = r"""
set -eu
ip link set lo up
mount -t overlay overlay -o lowerdir=/etc,upperdir={r}/etc.upper,workdir={r}/etc.work /etc
mount -t overlay overlay -o lowerdir=/var/lib,upperdir={r}/varlib.upper,workdir={r}/varlib.work /var/lib
mkdir -p /run/lock
mount -t tmpfs -o mode=1777 tmpfs /run/lock
# refuse to go on unless the sandbox really is in place
awk '$5 == "/etc" && $0 ~ / - overlay /' /proc/self/mountinfo | grep -q .
awk '$5 == "/var/lib" && $0 ~ / - overlay /' /proc/self/mountinfo | grep -q .
awk '$5 == "/run/lock" && $0 ~ / - tmpfs /' /proc/self/mountinfo | grep -q .
cmp -s /etc/hosts {r}/etc.upper/hosts
test "$(ip -o addr | grep -v ' lo ' | wc -l)" = 0
# the forge's public and LAN addresses, on this namespace's own loopback
ip addr add {public}/32 dev lo
ip addr add 10.1.0.10/32 dev lo
PYTHONPATH={tests} {py} -c "$FORGE" {cert} {key} &
exec {py} {stub} {name}={public}
""".format(
            r=r,
            py=sys.executable,
            stub=os.path.join(ROOT, "tests", "helpers", "dnsstub.py"),
            name="forge.azrak.io",
            public=PUBLIC_ADDRESS,
            tests=os.path.join(ROOT, "tests"),
            cert=self.pki["forge"][0],
            key=self.pki["forge"][1],
        )
        self.proc = subprocess.Popen(
            ["env", "FORGE=" + FORGE, "unshare", "-m", "-n", "--propagation", "private", "bash",
             "-c", setup],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.wait(timeout=10)
            raise AssertionError("sandbox did not start: %s" % self.proc.stderr.read().strip())
        self.start_runner()

    def start_runner(self):
        existing = self.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
        clash = [n for n in existing if n == "forgejo_runner" or n.startswith(("FORGEJO-ACTIONS-TASK-", "GITEA-ACTIONS-TASK-"))]
        assert not clash, "the test engine already has %s: another test left it behind" % clash
        self.docker(
            "run", "-d", "--init", "--network", "none", "--name", "forgejo_runner",
            "-v", "%s:/sim:ro" % os.path.join(ROOT, "tests", "helpers"),
            "-v", "%s:/sandbox-etc:ro" % os.path.join(self.root, "etc.upper"),
            "-v", "%s:/data:ro" % os.path.join(self.root, "runner-data"),
            "frg-busybox:latest", "sh", "/sim/simrunner.sh",
        )  # fmt: skip

    def run(self, code, timeout=120):
        return subprocess.run(
            ["nsenter", "-t", str(self.proc.pid), "-m", "-n", "--", "env", "-i"]
            + ["%s=%s" % kv for kv in sorted(self.env.items())]
            + ["bash", "-e", "-o", "pipefail", "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            cwd=self.root,
        )

    def stop(self):
        try:
            self.docker("rm", "-f", "forgejo_runner", check=False)
        finally:
            if self.proc is not None and self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=10)
            if self.proc is not None:
                self.proc.stdout.close()
                self.proc.stderr.close()
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def sandbox(docker_host, pki):
    before = {
        "/etc/hosts": _sha256("/etc/hosts"),
        "/etc/forgejo-runner-guard": os.path.exists("/etc/forgejo-runner-guard"),
        "/var/lib/forgejo-runner-guard": os.path.exists("/var/lib/forgejo-runner-guard"),
        "/run/lock/forgejo-runner-guard": os.path.exists("/run/lock/forgejo-runner-guard"),
    }
    box = Sandbox(docker_host, pki)
    try:
        box.start()
        yield box
    finally:
        box.stop()
    after = {
        "/etc/hosts": _sha256("/etc/hosts"),
        "/etc/forgejo-runner-guard": os.path.exists("/etc/forgejo-runner-guard"),
        "/var/lib/forgejo-runner-guard": os.path.exists("/var/lib/forgejo-runner-guard"),
        "/run/lock/forgejo-runner-guard": os.path.exists("/run/lock/forgejo-runner-guard"),
    }
    assert after == before, "the runbook sandbox leaked onto the machine"
    assert not os.path.exists(box.root)


def _block_id(block):
    first = next((c for c in _commands(block.code)), "")
    return "L%d-%s" % (block.line, re.sub(r"[^A-Za-z0-9_.-]+", "_", first)[:40])


_RUNNABLE = [b for b in runbook_blocks() if b.runnable] if os.path.exists(RUNBOOK) else []


@pytest.mark.docker
@pytest.mark.parametrize("block", _RUNNABLE, ids=[_block_id(b) for b in _RUNNABLE])
def test_runbook_block(sandbox, block):
    result = sandbox.run(block.code)
    where = "runbook line %d:\n%s\n--- output (exit %d):\n%s" % (
        block.line,
        block.code.rstrip(),
        result.returncode,
        result.stdout.rstrip(),
    )
    assert result.returncode == block.exit, "expected exit %d; %s" % (block.exit, where)
    if block.output:
        problem = match_output(block.output, result.stdout)
        assert problem is None, "%s\n%s" % (problem, where)
    assert "Traceback" not in result.stdout, where
