"""probe.py against a real TLS server on loopback, with a throwaway CA.

Every address here is loopback (127.0.0.1 or ::1): the probe connects to
the address it is given and never resolves the pinned name, so nothing
leaves the machine.
"""

import dataclasses
import socket

import pytest

from forgejo_runner_guard.pins import probe as probe_mod
from forgejo_runner_guard.config.config import Pin
from forgejo_runner_guard.pins.probe import UNREACHABLE, VERIFIED, WRONG_CERTIFICATE, ProbeResult, probe

from helpers import tlsserver
from helpers.tools import plain

NAME = "forge.azrak.io"
HOSTS = ["127.0.0.1", "::1"]  # ::1 must work here: a failure to bind it fails the test loudly


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return tlsserver.make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.mark.parametrize("host", HOSTS)
def test_verified(pki, host):
    with tlsserver.Server("tls", pki["forge"], host=host) as server:
        result = probe(NAME, host, server.port, timeout=5, ca_file=pki["ca"])
    assert result == ProbeResult(NAME, host, server.port, VERIFIED, "", result.seconds)
    assert result.ok and 0 < result.seconds < 5
    assert server.connections == 1


def test_name_is_case_insensitive(pki):
    with tlsserver.Server("tls", pki["forge"]) as server:
        result = probe("Forge.Azrak.IO", "127.0.0.1", server.port, ca_file=pki["ca"])
    assert result.outcome == VERIFIED, result


@pytest.mark.parametrize("host", HOSTS)
def test_wrong_name_says_what_the_certificate_is_for(pki, host):
    with tlsserver.Server("tls", pki["other"], host=host) as server:
        result = probe(NAME, host, server.port, timeout=5, ca_file=pki["ca"])
    assert (result.outcome, result.reason) == (
        WRONG_CERTIFICATE,
        "certificate is for other.example, not forge.azrak.io",
    )
    assert not result.ok


def test_unknown_issuer_without_ca_file(pki):
    # no ca_file: the system trust store, which has never heard of our CA
    with tlsserver.Server("tls", pki["forge"]) as server:
        result = probe(NAME, "127.0.0.1", server.port, timeout=5)
    assert (result.outcome, result.reason) == (WRONG_CERTIFICATE, "unknown issuer")


def test_expired(pki):
    with tlsserver.Server("tls", pki["expired"]) as server:
        result = probe(NAME, "127.0.0.1", server.port, timeout=5, ca_file=pki["ca"])
    assert (result.outcome, result.reason) == (WRONG_CERTIFICATE, "expired")


def test_not_tls_at_all(pki):
    with tlsserver.Server("http") as server:
        result = probe(NAME, "127.0.0.1", server.port, timeout=5, ca_file=pki["ca"])
    assert result.outcome == WRONG_CERTIFICATE
    assert result.reason.startswith("TLS handshake failed: "), result.reason


@pytest.mark.parametrize("host", HOSTS)
def test_refused(host):
    sock = tlsserver.closed_port(host)
    with sock:
        port = sock.getsockname()[1]
        result = probe(NAME, host, port, timeout=5)
    assert (result.outcome, result.reason) == (UNREACHABLE, "connection refused")


def test_timeout_while_connecting():
    # a full accept queue: Linux drops further SYNs, so connect() hangs
    listener = socket.socket()
    filler = socket.socket()
    with listener, filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler.connect(("127.0.0.1", port))
        result = probe(NAME, "127.0.0.1", port, timeout=0.5)
    assert (result.outcome, result.reason) == (UNREACHABLE, "timed out after 0.5 s while connecting")
    assert 0.45 <= result.seconds < 2


def test_timeout_in_the_handshake(pki):
    with tlsserver.Server("silent") as server:
        result = probe(NAME, "127.0.0.1", server.port, timeout=0.5, ca_file=pki["ca"])
    assert (result.outcome, result.reason) == (
        UNREACHABLE,
        "timed out after 0.5 s during the TLS handshake",
    )
    assert 0.45 <= result.seconds < 2


def test_reset_in_the_handshake(pki):
    with tlsserver.Server("reset") as server:
        result = probe(NAME, "127.0.0.1", server.port, timeout=5, ca_file=pki["ca"])
    assert (result.outcome, result.reason) == (
        UNREACHABLE,
        "connection reset during the TLS handshake",
    )


def test_closed_in_the_handshake(pki):
    with tlsserver.Server("close") as server:
        result = probe(NAME, "127.0.0.1", server.port, timeout=5, ca_file=pki["ca"])
    assert (result.outcome, result.reason) == (
        UNREACHABLE,
        "connection closed during the TLS handshake",
    )


def test_probe_pins_probes_each_in_turn(pki):
    with tlsserver.Server("tls", pki["forge"]) as good, tlsserver.Server("tls", pki["other"]) as bad:
        pins = [Pin(NAME, "127.0.0.1"), Pin(NAME, "::1")]
        # one port for both: good listens on 127.0.0.1; on ::1 it is bound, not listening
        with _refusing("::1", good.port):
            results = probe_mod.probe_pins(pins, port=good.port, timeout=5, ca_file=pki["ca"])
        assert bad.connections == 0
    assert [r.outcome for r in results] == [VERIFIED, UNREACHABLE]
    assert [r.address for r in results] == ["127.0.0.1", "::1"]


def _refusing(host, port):
    """A socket bound to host:port that does not listen: connecting is refused."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.bind((host, port))
    return sock


def test_the_name_is_never_resolved():
    # a name where an address belongs is refused before any connection
    with pytest.raises(ValueError, match="not an IP address: 'localhost'"):
        probe(NAME, "localhost", 443)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        ("not a certificate\n", "no certificate or crl found"),
    ],
)
def test_bad_ca_file(tmp_path, content, message):
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError) as info:
        probe_mod.make_context(str(path))
    assert str(info.value).startswith("%s: cannot use as CA file: " % path)
    assert message.lower() in str(info.value).lower()
    plain(str(info.value))  # OpenSSL's reason, without Python's "(_ssl.c:4154)"


# ---------------------------------------------------------------- pure parts


def test_describe_and_as_dict():
    ok = ProbeResult(NAME, "10.1.0.10", 443, VERIFIED, "", 0.0312)
    assert ok.describe() == "forge.azrak.io at 10.1.0.10:443: verified (0.03 s)"
    bad = ProbeResult(NAME, "2001:db8::7", 8443, UNREACHABLE, "connection refused", 0.001)
    assert bad.describe() == "forge.azrak.io at [2001:db8::7]:8443: unreachable: connection refused (0.00 s)"
    assert bad.as_dict() == {
        "name": NAME,
        "address": "2001:db8::7",
        "port": 8443,
        "outcome": UNREACHABLE,
        "reason": "connection refused",
        "seconds": 0.001,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        ok.outcome = UNREACHABLE


def test_name_reason():
    assert probe_mod._name_reason(NAME, ()) == "certificate is not valid for forge.azrak.io"
    assert (
        probe_mod._name_reason(NAME, ("a.example", "b.example", "c.example", "d.example", "e.example"))
        == "certificate is for a.example, b.example, c.example and 2 more, not forge.azrak.io"
    )


# ---------------------------------------------------------------- command-line glue


def _args(*argv):
    from forgejo_runner_guard import cli

    parser = cli.make_parser("optimus-boot-reconcile", "", "")
    probe_mod.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_settings_defaults_and_values(pki):
    assert probe_mod.settings(_args()) is None
    assert probe_mod.settings(_args("--probe")) == probe_mod.Settings(443, 5.0, None)
    given = probe_mod.settings(
        _args("--probe", "--probe-port", "8443", "--probe-timeout", "1.5s", "--ca-file", pki["ca"])
    )
    assert given == probe_mod.Settings(8443, 1.5, pki["ca"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--probe-port", "8443"], "--probe-port only makes sense with --probe"),
        (["--ca-file", "/x"], "--ca-file only makes sense with --probe"),
        (["--probe", "--probe-port", "0"], "--probe-port: not a TCP port (1-65535): '0'"),
        (["--probe", "--probe-port", "65536"], "--probe-port: not a TCP port (1-65535): '65536'"),
        (["--probe", "--probe-port", "https"], "--probe-port: not a TCP port (1-65535): 'https'"),
        (["--probe", "--probe-timeout", "0"], "--probe-timeout: must be more than zero: '0'"),
        (["--probe", "--probe-timeout", "soon"], "--probe-timeout: not a duration"),
        (["--probe", "--ca-file", "/nonexistent/ca.pem"], "--ca-file: /nonexistent/ca.pem: cannot use"),
    ],
)
def test_settings_usage_errors(argv, message):
    from forgejo_runner_guard.report import EXIT_USAGE, UsageError

    with pytest.raises(UsageError) as info:
        probe_mod.settings(_args(*argv))
    assert str(info.value).startswith(message), str(info.value)
    assert info.value.exit_code == EXIT_USAGE


def test_log_each_pin_and_exit_status(pki):
    import io

    from forgejo_runner_guard.report import Reporter

    stream = io.StringIO()
    with tlsserver.Server("tls", pki["forge"]) as server:
        given = probe_mod.Settings(server.port, 5.0, pki["ca"])
        with _refusing("::1", server.port):
            pins = [Pin(NAME, "127.0.0.1"), Pin(NAME, "::1")]
            results = probe_mod.probe_pins(pins, given.port, given.timeout, given.ca_file)
    probe_mod.log(results, Reporter("t", 0, stream))
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("t: probe: forge.azrak.io at 127.0.0.1:%d: verified (" % server.port)
    assert lines[1].startswith(
        "t: warning: probe: forge.azrak.io at [::1]:%d: unreachable: connection refused (" % server.port
    )
    assert lines[2] == "t: warning: probe: 1 of 2 pins verified"
    assert probe_mod.exit_status(results) == 4
    assert probe_mod.exit_status(results[:1]) == 0
