"""forge.ping against a test forge on loopback (tests/helpers/forge.py):
the Ping RPC as Forgejo and connect-go answer it, and every way a forge
fails.  No Docker; the name is never resolved (the address is given), so
nothing leaves the machine."""

import ast
import socket
import subprocess
import sys
import time

import pytest

from helpers.forge import PING, Forge
from helpers.tools import tool_env
from forgejo_runner_guard.forge import ping

ADDRESS = "127.0.0.3"


def ask(forge, timeout=3.0, name="forge.azrak.io", path="/", **options):
    return ping.ask(forge.url(name, path), (forge.host,), ping.VIA_ADD_HOST, timeout, **options)


@pytest.mark.parametrize("spaced", [False, True])  # protojson adds a space now and then
def test_the_forge_answers_and_the_request_is_the_ping(spaced):
    with Forge("answer", ADDRESS, spaced=spaced) as forge:
        result = ask(forge)
    assert result.answered and result.attempts == 1 and result.address == ADDRESS
    assert result.via == "its --add-host" and result.cls == "" and result.status == 200
    assert isinstance(result.ms, int) and 0 <= result.ms < 3000
    assert result.phrase() == "forge answered Ping in %d ms at %s" % (result.ms, ADDRESS)
    [req] = forge.requests
    assert (req["method"], req["path"], req["version"]) == ("POST", PING, "HTTP/1.1")
    assert req["headers"]["host"] == "forge.azrak.io:%d" % forge.port
    assert req["headers"]["content-type"] == "application/json"
    assert req["body"] == b'{"data":"forgejo-runner-watchdog"}'
    # never gzip (connect-go would compress the reply), never a token
    assert "gzip" not in req["headers"].get("accept-encoding", "")
    assert not [h for h in req["headers"] if h.startswith("x-runner")]
    assert req["headers"]["connection"] == "close"


def test_a_sub_path_install_and_the_default_port():
    with Forge("answer", ADDRESS) as forge:
        result = ask(forge, path="/git/")
        assert result.answered is False and result.label == "http 404"  # /git/api/... is not served
        assert forge.requests[0]["path"] == "/git" + PING
    target = ping.parse_url("https://forge.azrak.io/git/")
    assert (target.port, target.path, target.host_header) == (443, "/git" + PING, "forge.azrak.io")
    target = ping.parse_url("http://[::1]:3000")
    assert (target.host, target.port, target.host_header) == ("::1", 3000, "[::1]:3000")


@pytest.mark.parametrize("mode, cls, label, reason", [
    ("refuse", "transport", "transport", "connection refused"),
    ("reset", "transport", "transport", "connection reset while waiting for the reply"),
    ("502", "http", "http 502", "Bad Gateway"),
    ("other", "http", "http 200", "not the Ping's reply (text/html, 124 bytes)"),
    ("disabled", "http", "http 404", "Not Found"),
])
def test_a_forge_that_does_not_answer_is_classed(mode, cls, label, reason):
    with Forge(mode, ADDRESS) as forge:
        started = time.monotonic()
        result = ask(forge)
        took = time.monotonic() - started
    assert not result.answered and (result.cls, result.label, result.reason) == (cls, label, reason)
    assert result.attempts == 3 and took < 3.0
    # a fresh connection for every attempt
    assert forge.connections == (0 if mode == "refuse" else 3)
    assert result.phrase() == "Ping to %s at %s (its --add-host) failed 3 times (%s: %s)" % (
        forge.url(), ADDRESS, label, reason)


def test_a_hanging_forge_ends_within_the_deadline():
    with Forge("hang", ADDRESS) as forge:
        started = time.monotonic()
        result = ask(forge, timeout=1.5)
        took = time.monotonic() - started
    assert not result.answered and result.cls == "timeout" and result.attempts == 3
    assert result.reason == "timed out after 0.5 s while waiting for the reply"
    assert 1.4 < took < 2.0


def test_a_forge_that_never_accepts_times_out_while_connecting():
    # a listening socket whose backlog is full: SYNs are dropped, connect() waits
    listener = socket.socket()
    listener.bind((ADDRESS, 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(listener.getsockname())
            fillers.append(s)
        time.sleep(0.2)
        target = "http://forge.azrak.io:%d/" % listener.getsockname()[1]
        result = ping.ask(target, (ADDRESS,), ping.VIA_ADD_HOST, 1.2)
    finally:
        for s in fillers + [listener]:
            s.close()
    assert result.cls == "timeout" and result.reason == "timed out after 0.4 s while connecting"


def test_one_lost_connection_is_not_an_outage():
    with Forge("answer", ADDRESS, fail_first=1) as forge:
        result = ask(forge)
    assert result.answered and result.attempts == 2 and forge.connections == 2


def test_every_address_is_tried_in_turn():
    with Forge("answer", ADDRESS) as forge:
        dead = "127.0.0.4"  # nothing listens there: refused at once
        result = ping.ask(forge.url(), (dead, ADDRESS), ping.VIA_RESOLVER, 3.0)
    assert result.answered and result.attempts == 2 and result.address == ADDRESS


def test_ipv6_loopback():
    with Forge("answer", "::1") as forge:
        result = ping.ask("http://forge.azrak.io:%d/" % forge.port, ("::1",), ping.VIA_ADD_HOST, 3.0)
    assert result.answered and result.address == "::1"


def test_an_address_in_the_url_is_its_own():
    with Forge("answer", ADDRESS) as forge:
        result = ping.ask("http://%s:%d/" % (ADDRESS, forge.port), (), ping.VIA_RESOLVER, 3.0)
    assert result.answered and (result.address, result.via) == (ADDRESS, "the URL")


# ---------------------------------------------------------------- TLS


def test_tls_verified_with_the_forges_ca(pki):
    with Forge("answer", ADDRESS, cert=pki["forge"]) as forge:
        good = ask(forge, ca_file=pki["ca"])
        system = ask(forge)  # the system store does not know the test CA
        insecure = ask(forge, insecure=True)  # runner.insecure: true: not verified, as the runner
    assert good.answered and insecure.answered
    assert (system.cls, system.reason) == ("tls", "certificate: unknown issuer")
    assert system.attempts == 3


@pytest.mark.parametrize("leaf, reason", [
    ("other", "certificate: hostname mismatch, certificate is not valid for 'forge.azrak.io'"),
    ("expired", "certificate: expired"),
])
def test_tls_a_wrong_certificate_is_tls(pki, leaf, reason):
    with Forge("answer", ADDRESS, cert=pki[leaf]) as forge:
        result = ask(forge, ca_file=pki["ca"])
    assert (result.cls, result.reason) == ("tls", reason)


def test_tls_to_a_plain_http_forge_is_tls():
    with Forge("answer", ADDRESS) as forge:
        result = ping.ask("https://forge.azrak.io:%d/" % forge.port, (ADDRESS,), ping.VIA_ADD_HOST,
                          3.0)
    assert (result.cls, result.reason) == ("tls", "TLS failed during the TLS handshake: wrong "
                                                  "version number")


# In a private mount namespace whose resolv.conf names a loopback server
# nobody runs: the name is looked up in the hosts file, then DNS is refused
# at once, and no query leaves the machine.
NO_DNS = """set -e
mount --bind "$1" /etc/resolv.conf
shift
exec "$@"
"""
ASK = """import sys
from forgejo_runner_guard.forge import ping
r = ping.ask(sys.argv[1], (), ping.VIA_RESOLVER, 3.0)
print(repr((r.cls, r.via, r.address, r.attempts, r.phrase())))
"""


def test_a_name_that_does_not_resolve_is_dns(tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", NO_DNS, "sh",
                           str(resolv), sys.executable, "-c", ASK, "https://forge.invalid/"],
                          capture_output=True, text=True, timeout=60, env=tool_env())
    assert proc.returncode == 0, proc.stderr
    cls, via, address, attempts, phrase = ast.literal_eval(proc.stdout)
    assert (cls, via, address, attempts) == ("dns", "the host's resolver", "", 0)
    assert phrase.startswith("no Ping to https://forge.invalid/ (dns: cannot resolve forge.invalid: ")


def test_a_bad_ca_file_is_a_value_error(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ValueError) as info:
        ping.ask("https://forge.azrak.io/", (ADDRESS,), ping.VIA_ADD_HOST, 1.0, ca_file=str(bad))
    assert str(info.value).startswith("%s: cannot use as CA file" % bad)
