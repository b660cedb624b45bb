"""The pin as the resolvers see it (--resolve, issue 14).

Unmarked, and all real: each resolver runs in a private mount namespace
(`unshare -m`) where a temp hosts file is bind-mounted over /etc/hosts (and
a resolv.conf naming only 127.0.0.1, where nothing listens, so a name the
file lacks can never reach a real DNS server); the machine's own files are
never touched (checked byte for byte).  The file is a messy real-world one
(conflicting IPv4 and IPv6 lines for the forge, aliases, comments, CRLF),
first as it is, then pinned by the tool.  The resolvers:

  glibc    `getent ahosts NAME`
  Python   socket.getaddrinfo (glibc again, through Python)
  Go       a small probe built here with Debian's golang-go, run with
           GODEBUG=netdns=go (Go's own reader of /etc/hosts) and
           GODEBUG=netdns=cgo (through glibc)

For the pinned name each returns exactly the pinned address; for every
other name what it returned before.  Then `--check --resolve` itself.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers.tools import ROOT, plain, run_tool, tool_env

from forgejo_runner_guard.config import config
from forgejo_runner_guard.pins import resolve

TOOL = "optimus-boot-reconcile"
NAME, ADDRESS = "forge.azrak.io", "10.1.0.10"

MESSY = (
    b"# /etc/hosts, edited by hand over the years (some of it on Windows)\r\n"
    b"127.0.0.1\tlocalhost\r\n"
    b"127.0.1.1\trunner01.azrak.lan runner01\r\n"
    b"\r\n"
    b"# the forge: its public address (the hairpin), and an old IPv6 one\r\n"
    b"203.0.113.7   forge.azrak.io forge www.azrak.io   # public\r\n"
    b"2001:db8::7 forge.azrak.io\n"
    b"198.51.100.20 intranet.azrak.lan intranet\n"
    b"198.51.100.21\tbuild.azrak.lan\n"
    b"2001:db8::21\tbuild.azrak.lan\t# dual stack\n"
    b"#10.1.0.10 forge.azrak.io (tried once)\n"
    b"\n"
    b"# The following lines are desirable for IPv6 capable hosts\n"
    b"::1     localhost ip6-localhost ip6-loopback\n"
    b"ff02::1 ip6-allnodes\n"
    b"ff02::2 ip6-allrouters"  # no newline at the end
)
OTHERS = ("localhost", "runner01.azrak.lan", "runner01", "forge", "www.azrak.io", "intranet.azrak.lan",
          "intranet", "build.azrak.lan", "ip6-localhost", "ip6-loopback", "ip6-allnodes", "ip6-allrouters")
NAMES = (NAME,) + OTHERS

# Runs inside the namespace: every resolver, for every name -> one JSON document.
DRIVER = r"""
import json, os, socket, subprocess, sys
probe, names = sys.argv[1], sys.argv[2:]
out = {"getent": {}, "python": {}}
for name in names:
    p = subprocess.run(["getent", "ahosts", name], capture_output=True, text=True)
    seen = []
    for line in p.stdout.splitlines():
        if line.split()[0] not in seen:
            seen.append(line.split()[0])
    out["getent"][name] = seen or ["exit %d" % p.returncode]
    try:
        seen = []
        for info in socket.getaddrinfo(name, None, socket.AF_UNSPEC, socket.SOCK_STREAM):
            if info[4][0] not in seen:
                seen.append(info[4][0])
        out["python"][name] = seen
    except OSError as exc:
        out["python"][name] = ["error: %s" % exc]
for mode in ("go", "cgo"):
    env = dict(os.environ, GODEBUG="netdns=%s+2" % mode)
    p = subprocess.run([probe] + names, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    out[mode] = json.loads(p.stdout)
    out[mode + "-debug"] = p.stderr
print(json.dumps(out))
"""

PROBE_GO = """\
// The resolver of Go programs (the runner, dockerd): one name per
// argument -> {"name": ["address", ...]} on stdout.
package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
)

func main() {
	out := map[string][]string{}
	for _, name := range os.Args[1:] {
		addrs, err := net.DefaultResolver.LookupIPAddr(context.Background(), name)
		if err != nil {
			out[name] = []string{"error: " + err.Error()}
			continue
		}
		seen := []string{}
		for _, a := range addrs {
			s := a.IP.String()
			dup := false
			for _, x := range seen {
				dup = dup || x == s
			}
			if !dup {
				seen = append(seen, s)
			}
		}
		out[name] = seen
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
"""

# In the namespace: the temp files over the real ones, then the command.
MOUNTS = """set -e
mount --bind "$1" /etc/hosts
mount --bind "$2" /etc/resolv.conf
[ -z "$3" ] || mount --bind "$3" /etc/nsswitch.conf
shift 3
exec "$@"
"""


def _sha(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A temp dir with the Go probe built in it (GOCACHE there too), and
    the machine's resolver files' hashes, compared at the end."""
    if not shutil.which("go"):
        raise AssertionError("go not found: install Debian's golang-go (make check does)")
    before = {p: _sha(p) for p in ("/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf")}
    tmp = tmp_path_factory.mktemp("resolve")
    (tmp / "probe.go").write_text(PROBE_GO)
    env = dict(os.environ, GOCACHE=str(tmp / "gocache"), GOPATH=str(tmp / "gopath"), HOME=str(tmp),
               CGO_ENABLED="1", GOFLAGS="", GO111MODULE="auto", GOPROXY="off", GOTOOLCHAIN="local")
    proc = subprocess.run(["go", "build", "-o", str(tmp / "probe"), str(tmp / "probe.go")], cwd=str(tmp),
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (tmp / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    # an empty configuration: the built-in defaults, whatever this machine has in /etc
    (tmp / "guard.conf").write_text("")
    (tmp / "driver.py").write_text(DRIVER)
    yield tmp
    assert {p: _sha(p) for p in before} == before, "the machine's resolver files changed"


def in_namespace(work, hosts, *cmd, nsswitch="", network=False):
    """cmd in a private mount namespace (and, with network=True, a network
    namespace with only a loopback that is down) over these files."""
    flags = ["-m", "--propagation", "private"] + (["-n"] if network else [])
    return subprocess.run(["unshare", *flags, "sh", "-c", MOUNTS, "sh", str(hosts),
                           str(work / "resolv.conf"), nsswitch, *cmd],
                          capture_output=True, text=True, timeout=120, env=tool_env())


def resolvers(work, hosts):
    proc = in_namespace(work, hosts, sys.executable, str(work / "driver.py"), str(work / "probe"), *NAMES)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_every_resolver_returns_exactly_the_pin_and_nothing_else_changes(work):
    messy = work / "hosts.messy"
    messy.write_bytes(MESSY)
    pinned = work / "hosts.pinned"
    pinned.write_bytes(MESSY)
    proc = run_tool(TOOL, "--hosts-file", str(pinned), "--pin", "%s=%s" % (NAME, ADDRESS),
                    "--config", str(work / "guard.conf"))
    assert proc.returncode == 0 and "updated" in proc.stderr, proc.stderr

    before, after = resolvers(work, messy), resolvers(work, pinned)
    for mode in ("go", "cgo"):  # each Go run really used the resolver it was told to
        order = "hostLookupOrder(%s) = %s" % (NAME, "files,dns" if mode == "go" else "cgo")
        assert order in before[mode + "-debug"] and order in after[mode + "-debug"], after[mode + "-debug"]
    for resolver in ("getent", "python", "go", "cgo"):
        # the messy file really was ambiguous for every resolver ...
        assert set(before[resolver][NAME]) == {"203.0.113.7", "2001:db8::7"}, (resolver, before[resolver])
        # ... and now it is exactly the pin
        assert after[resolver][NAME] == [ADDRESS], (resolver, after[resolver])
        for name in OTHERS:
            assert not before[resolver][name][0].startswith(("error", "exit")), (resolver, name, before[resolver])
            assert after[resolver][name] == before[resolver][name], (resolver, name, before[resolver],
                                                                      after[resolver])
    # the aliases of the forge's old line are still there, at the old address
    assert after["getent"]["www.azrak.io"] == ["203.0.113.7"] and after["go"]["forge"] == ["203.0.113.7"]


def _check_resolve(work, hosts, **kw):
    return in_namespace(work, hosts, sys.executable, os.path.join(ROOT, "bin", TOOL),
                        "--config", str(work / "guard.conf"), "--pin", "%s=%s" % (NAME, ADDRESS), "--check",
                        "--resolve", "--json", **kw)


def test_check_resolve_in_the_namespace(work):
    messy, pinned = work / "hosts.messy2", work / "hosts.pinned2"
    messy.write_bytes(MESSY)
    pinned.write_bytes(MESSY)
    assert run_tool(TOOL, "--hosts-file", str(pinned), "--pin", "%s=%s" % (NAME, ADDRESS),
                    "--config", str(work / "guard.conf")).returncode == 0

    proc = _check_resolve(work, messy)
    assert proc.returncode == 3, proc.stderr
    assert "%s: warning: resolve: %s: got 203.0.113.7, 2001:db8::7; pinned %s\n" % (TOOL, NAME, ADDRESS) \
        in proc.stderr, proc.stderr
    (doc,) = json.loads(proc.stdout)["resolved"]
    assert doc["status"] == "different" and doc["got"] == ["203.0.113.7", "2001:db8::7"]

    proc = _check_resolve(work, pinned)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1] == "%s: resolve: %s: %s (exactly the pin)" % (TOOL, NAME, ADDRESS)
    assert json.loads(proc.stdout)["resolved"][0]["status"] == "exact"


def test_check_resolve_catches_nsswitch_without_files(work):
    # The file is pinned, but the resolver never reads it: hosts: dns, and
    # DNS is unreachable (a network namespace with nothing in it).
    pinned = work / "hosts.pinned3"
    pinned.write_bytes(MESSY)
    assert run_tool(TOOL, "--hosts-file", str(pinned), "--pin", "%s=%s" % (NAME, ADDRESS),
                    "--config", str(work / "guard.conf")).returncode == 0
    nsswitch = work / "nsswitch.dns-only"
    nsswitch.write_text("passwd: files\ngroup: files\nhosts: dns\n")
    proc = _check_resolve(work, pinned, nsswitch=str(nsswitch), network=True)
    assert proc.returncode == 3, proc.stderr
    assert "in sync" in proc.stderr  # the file itself is fine
    line = [ln for ln in proc.stderr.splitlines() if ": resolve: " in ln]
    assert len(line) == 1 and line[0].startswith("%s: warning: resolve: %s: no answer (" % (TOOL, NAME)), proc.stderr
    assert line[0].endswith("; pinned %s" % ADDRESS)
    plain(line[0])  # the resolver's words, not Python's "[Errno -3]"


# ---------------------------------------------------------------- pure


@pytest.mark.parametrize("pinned, got, status", [
    (("10.1.0.10",), ("10.1.0.10",), resolve.EXACT),
    (("10.1.0.10",), ("10.1.0.10", "10.1.0.10"), resolve.EXACT),
    (("10.1.0.10", "2001:db8::10"), ("2001:0db8:0:0::10", "10.1.0.10"), resolve.EXACT),
    (("fe80::1",), ("fe80::1%eth0",), resolve.EXACT),
    (("10.1.0.10",), ("203.0.113.7", "10.1.0.10"), resolve.DIFFERENT),
    (("10.1.0.10",), ("10.1.0.10", "2001:db8::7"), resolve.DIFFERENT),  # the other family still answers
    (("10.1.0.10", "2001:db8::10"), ("10.1.0.10",), resolve.DIFFERENT),  # one pin missing
    (("10.1.0.10",), (), resolve.DIFFERENT),
])
def test_compare(pinned, got, status):
    assert resolve.compare(pinned, got) == status


def test_by_name_groups_the_families_of_one_name():
    pins = (config.Pin("Forge.azrak.io", "10.1.0.10"), config.Pin("other.example", "10.9.9.9"),
            config.Pin("forge.azrak.io", "2001:DB8::10"))
    assert resolve.by_name(pins) == [("forge.azrak.io", ("10.1.0.10", "2001:db8::10")),
                                     ("other.example", ("10.9.9.9",))]


def test_summary_lines():
    r = resolve.Resolved("forge.azrak.io", ("10.1.0.10",), ("203.0.113.7",), resolve.DIFFERENT)
    assert r.summary() == "resolve: forge.azrak.io: got 203.0.113.7; pinned 10.1.0.10"
    assert r.as_dict()["summary"] == r.summary()


@pytest.mark.parametrize("args", [["--resolve", "--list"], ["--resolve", "--unpin", "x.example"],
                                  ["--resolve", "--unpin-all"]])
def test_resolve_usage_errors(tmp_path, args):
    (tmp_path / "guard.conf").write_text("")
    proc = run_tool(TOOL, "--config", str(tmp_path / "guard.conf"), "--hosts-file", str(tmp_path / "h"), *args)
    assert proc.returncode == 2 and "--resolve cannot be combined" in proc.stderr, proc.stderr
    assert not (tmp_path / "h").exists()
