"""optimus-boot-reconcile --probe as a real subprocess, against a loopback
TLS server with a throwaway CA, on a temp hosts file, lock and state.

Every pinned address here is loopback: nothing leaves the machine.
"""

import json
import os
import socket

import pytest

from helpers.tools import run_tool, write_conf

from helpers import tlsserver

TOOL = "optimus-boot-reconcile"
NAME = "forge.azrak.io"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return tlsserver.make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def site(tmp_path):
    """A guard.conf pinning forge.azrak.io to 127.0.0.1, on temp paths."""

    class Site:
        hosts = tmp_path / "hosts"
        lock = tmp_path / "lock" / "hosts.lock"
        conf = tmp_path / "guard.conf"

        def run(self, *args):
            return run_tool(TOOL, "--config", str(self.conf), *args, timeout=30)

    write_conf(Site.conf, {"reconcile": {"hosts_file": Site.hosts, "lock_file": Site.lock,
                                         "state_dir": tmp_path / "state",
                                         "pins": "%s 127.0.0.1" % NAME}})
    Site.hosts.write_text("127.0.0.1\tlocalhost\n")
    Site.lock.parent.mkdir()
    return Site()


def pinned(site):
    done = site.run()
    assert done.returncode == 0, done.stderr
    assert "%s -> 127.0.0.1 added" % NAME in done.stderr
    return site.hosts.read_bytes(), os.stat(str(site.hosts))


def unchanged(site, before):
    data, st = before
    after = os.stat(str(site.hosts))
    return site.hosts.read_bytes() == data and (after.st_ino, after.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)


def probe_lines(stderr):
    return [line for line in stderr.splitlines() if ": probe: " in line]


def test_verified_exit_0_and_nothing_written(site, pki):
    before = pinned(site)
    with tlsserver.Server("tls", pki["forge"]) as server:
        done = site.run("--probe", "--probe-port", str(server.port), "--ca-file", pki["ca"])
    assert done.returncode == 0, done.stderr
    assert "%s: in sync: %s -> 127.0.0.1 present" % (site.hosts, NAME) in done.stderr
    lines = probe_lines(done.stderr)
    assert lines[0].startswith("%s: probe: %s at 127.0.0.1:%d: verified (" % (TOOL, NAME, server.port))
    assert lines[1] == "%s: probe: 1 of 1 pins verified" % TOOL
    assert done.stdout == ""
    assert unchanged(site, before)


def test_probe_alone_never_writes_or_locks(site, pki):
    # not pinned yet: --probe says so, proves the candidate address, writes nothing
    data = site.hosts.read_bytes()
    with tlsserver.Server("tls", pki["forge"]) as server:
        done = site.run("--probe", "--probe-port", str(server.port), "--ca-file", pki["ca"])
    assert done.returncode == 0, done.stderr  # drift is exit 3 only with --check/--diff
    assert "not in sync, would change: %s -> 127.0.0.1 added" % NAME in done.stderr
    assert "verified" in probe_lines(done.stderr)[0]
    assert site.hosts.read_bytes() == data
    assert not site.lock.exists() and os.listdir(str(site.lock.parent)) == []


@pytest.mark.parametrize(
    "leaf, with_ca, reason",
    [
        ("other", True, "wrong-certificate: certificate is for other.example, not forge.azrak.io"),
        ("forge", False, "wrong-certificate: unknown issuer"),
        ("expired", True, "wrong-certificate: expired"),
    ],
)
def test_wrong_certificate_exit_4(site, pki, leaf, with_ca, reason):
    before = pinned(site)
    with tlsserver.Server("tls", pki[leaf]) as server:
        ca = ["--ca-file", pki["ca"]] if with_ca else []
        done = site.run("--probe", "--probe-port", str(server.port), *ca)
    assert done.returncode == 4, done.stderr
    lines = probe_lines(done.stderr)
    assert lines[0].startswith(
        "%s: warning: probe: %s at 127.0.0.1:%d: %s (" % (TOOL, NAME, server.port, reason)
    ), lines
    assert lines[1] == "%s: warning: probe: 0 of 1 pins verified" % TOOL
    assert unchanged(site, before)


def test_unreachable_refused_and_timeout_exit_4(site, pki):
    before = pinned(site)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        done = site.run("--probe", "--probe-port", str(closed.getsockname()[1]))
    assert done.returncode == 4, done.stderr
    assert ": unreachable: connection refused (" in probe_lines(done.stderr)[0]
    with tlsserver.Server("silent") as server:
        done = site.run("--probe", "--probe-port", str(server.port), "--probe-timeout", "0.5")
    assert done.returncode == 4, done.stderr
    assert ": unreachable: timed out after 0.5 s during the TLS handshake (" in probe_lines(done.stderr)[0]
    assert unchanged(site, before)


def test_a_failed_probe_never_keeps_the_pin_out(site, pki):
    # the operator's order: probe a candidate (fails: tunnel down), pin anyway, probe later
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = str(closed.getsockname()[1])
        assert site.run("--probe", "--probe-port", port).returncode == 4
        assert NAME not in site.hosts.read_text()
        assert site.run().returncode == 0
        assert "127.0.0.1\t%s # forgejo-runner-guard pin" % NAME in site.hosts.read_text()
        assert site.run("--probe", "--probe-port", port).returncode == 4
    assert "%s # forgejo-runner-guard pin" % NAME in site.hosts.read_text()  # still pinned


def test_check_and_diff_with_probe(site, pki):
    with tlsserver.Server("tls", pki["forge"]) as good, tlsserver.Server("tls", pki["other"]) as bad:
        ok = ["--probe-port", str(good.port), "--ca-file", pki["ca"]]
        wrong = ["--probe-port", str(bad.port), "--ca-file", pki["ca"]]
        # drift (3) wins over a failed probe (4), and both are reported
        for mode in ("--check", "--diff"):
            done = site.run(mode, "--probe", *wrong)
            assert done.returncode == 3, done.stderr
            assert "wrong-certificate" in probe_lines(done.stderr)[0]
        assert site.run("--check", "--probe", *ok).returncode == 3
        pinned(site)
        assert site.run("--check", "--probe", *ok).returncode == 0
        done = site.run("--check", "--probe", *wrong)
        assert done.returncode == 4, done.stderr


def test_json_carries_the_probes(site, pki):
    pinned(site)
    with tlsserver.Server("tls", pki["other"]) as server:
        done = site.run("--probe", "--json", "--probe-port", str(server.port), "--ca-file", pki["ca"])
    assert done.returncode == 4, done.stderr
    doc = json.loads(done.stdout)
    assert doc["mode"] == "probe" and doc["changed"] is False and doc["written"] is False
    (probe,) = doc["probes"]
    assert 0 <= probe.pop("seconds") < 5
    assert probe == {
        "name": NAME,
        "address": "127.0.0.1",
        "port": server.port,
        "outcome": "wrong-certificate",
        "reason": "certificate is for other.example, not forge.azrak.io",
    }
    # without --probe there is no "probes" key
    assert "probes" not in json.loads(site.run("--check", "--json").stdout)


def test_ipv6_pin_from_the_command_line(site, pki):
    with tlsserver.Server("tls", pki["forge"], host="::1") as server:
        done = site.run(
            "--probe", "--pin", "%s=::1" % NAME, "--probe-port", str(server.port), "--ca-file", pki["ca"]
        )
    assert done.returncode == 0, done.stderr
    assert probe_lines(done.stderr)[0].startswith(
        "%s: probe: %s at [::1]:%d: verified (" % (TOOL, NAME, server.port)
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--probe-port", "8443"], "--probe-port only makes sense with --probe"),
        (["--probe", "--probe-port", "70000"], "--probe-port: not a TCP port (1-65535): '70000'"),
        (["--probe", "--probe-timeout", "-1"], "--probe-timeout: must be more than zero: '-1'"),
        (["--probe", "--probe-timeout", "301"], "--probe-timeout: must be at most 5m: '301'"),
        (["--probe", "--probe-timeout", "soon"], "--probe-timeout: not a duration"),
        (["--probe", "--ca-file", "/nonexistent/ca.pem"], "--ca-file: /nonexistent/ca.pem: cannot use"),
        (["--probe", "--unpin", NAME], "--probe cannot be combined with --list, --unpin or --unpin-all"),
        (["--probe", "--list"], "--probe cannot be combined with --list, --unpin or --unpin-all"),
        (["--probe", "--pin", "%s=10.1.0.256" % NAME], "10.1.0.256"),
    ],
)
def test_usage_errors_exit_2_nothing_touched(site, args, message):
    before = pinned(site)
    done = site.run(*args)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("%s: error: " % TOOL) and message in line, line
    assert unchanged(site, before)


def test_help_documents_probe():
    done = run_tool(TOOL, "--help")
    assert done.returncode == 0
    for text in ("--probe-port PORT", "--probe-timeout DURATION", "--ca-file PATH",
                 "4  --probe", "Never put --probe in the boot unit"):  # fmt: skip
        assert text in done.stdout, text
