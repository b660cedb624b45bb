"""forge.ping and forge.connection, the pure halves: a forge URL taken
apart, a reply and a failure classed, what a ping and the forge's word
say.  No network (tests/integration/test_forge_ping.py asks a test forge)."""

import http.client
import socket
import ssl

import pytest

from forgejo_runner_guard.forge import connection, ping

URL = "https://forge.azrak.io/"


# ---------------------------------------------------------------- the URL


@pytest.mark.parametrize("url, target", [
    ("https://forge.azrak.io/", ("https", "forge.azrak.io", 443, ping.PATH, "forge.azrak.io")),
    ("https://forge.azrak.io", ("https", "forge.azrak.io", 443, ping.PATH, "forge.azrak.io")),
    ("http://forge.azrak.io:3000/", ("http", "forge.azrak.io", 3000, ping.PATH,
                                     "forge.azrak.io:3000")),
    ("http://FORGE.azrak.io:80/git//", ("http", "forge.azrak.io", 80, "/git" + ping.PATH,
                                        "forge.azrak.io")),
    (" https://10.1.0.10:8443/ ", ("https", "10.1.0.10", 8443, ping.PATH, "10.1.0.10:8443")),
    ("https://[2001:db8::10]/", ("https", "2001:db8::10", 443, ping.PATH, "[2001:db8::10]")),
])
def test_parse_url(url, target):
    t = ping.parse_url(url)
    assert (t.scheme, t.host, t.port, t.path, t.host_header) == target
    assert t.url == url.strip()


@pytest.mark.parametrize("url, message", [
    ("forge.azrak.io", "not an http:// or https:// URL with a host: 'forge.azrak.io'"),
    ("ftp://forge.azrak.io/", "not an http:// or https:// URL with a host"),
    ("https:///x", "not an http:// or https:// URL with a host"),
    ("https://forge.azrak.io:99999/", "not a URL (Port out of range 0-65535)"),
    ("https://forge.azrak.io/ x", "not an http:// or https:// URL with a host"),
    ("", "no URL"),
])
def test_parse_url_refuses(url, message):
    with pytest.raises(ValueError) as info:
        ping.parse_url(url)
    assert str(info.value).startswith(message), str(info.value)


# ---------------------------------------------------------------- the reply


def test_the_pings_reply_in_any_spacing():
    assert ping.judge_reply(200, "OK", "application/json", b'{"data":"Hello, forgejo-runner-watchdog!"}') \
        is None
    assert ping.judge_reply(200, "OK", "application/json",
                            b'{"data": "Hello, forgejo-runner-watchdog!"}\n') is None


@pytest.mark.parametrize("status, reason, ctype, body, verdict", [
    (502, "Bad Gateway", "text/plain; charset=utf-8", b"Bad Gateway", "Bad Gateway"),
    # connect-go's error body: its code is named
    (503, "Service Unavailable", "application/json",
     b'{"code":"unavailable","message":"x"}', "Service Unavailable (unavailable)"),
    (404, "Not Found", "text/plain; charset=utf-8", b"404 page not found\n", "Not Found"),
    (415, "", "", b"", "HTTP 415"),
    (200, "OK", "text/html; charset=utf-8", b"<html>sign in</html>",
     "not the Ping's reply (text/html, 20 bytes)"),
    (200, "OK", "application/json", b'{"data":"Hello, someone else!"}',
     "not the Ping's reply (application/json, 31 bytes)"),
    (200, "OK", "application/json", b'["Hello, forgejo-runner-watchdog!"]',
     "not the Ping's reply (application/json, 35 bytes)"),
    (200, "OK", "", b"\xff\xfe", "not the Ping's reply (no Content-Type, 2 bytes)"),
])
def test_anything_else_is_http(status, reason, ctype, body, verdict):
    assert ping.judge_reply(status, reason, ctype, body) == ("http", verdict)


# ---------------------------------------------------------------- failures


def _verify_error(code, message):
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_code, exc.verify_message = code, message
    return exc


@pytest.mark.parametrize("exc, stage, verdict", [
    (ConnectionRefusedError(111, "Connection refused"), "while connecting",
     ("transport", "connection refused")),
    (ConnectionResetError(104, "Connection reset by peer"), "while waiting for the reply",
     ("transport", "connection reset while waiting for the reply")),
    (OSError(113, "No route to host"), "while connecting", ("transport", "no route to host")),
    (socket.timeout("timed out"), "while connecting", ("timeout", "timed out after 3.3 s while connecting")),
    (_verify_error(10, "certificate has expired"), "during the TLS handshake",
     ("tls", "certificate: expired")),
    (_verify_error(20, "unable to get local issuer certificate"), "during the TLS handshake",
     ("tls", "certificate: unknown issuer")),
    (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), "during the TLS handshake",
     ("transport", "connection closed during the TLS handshake")),
    (http.client.RemoteDisconnected("Remote end closed connection without response"),
     "while waiting for the reply", ("transport", "connection closed while waiting for the reply")),
    (http.client.BadStatusLine("SSH-2.0-OpenSSH_9.2p1"), "while waiting for the reply",
     ("http", "not an HTTP reply (SSH-2.0-OpenSSH_9.2p1)")),
])
def test_classify(exc, stage, verdict):
    assert ping.classify(exc, stage, 3.3) == verdict


def test_classify_a_tls_alert():
    exc = ssl.SSLError(1, "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version")
    exc.reason = "TLSV1_ALERT_PROTOCOL_VERSION"
    assert ping.classify(exc, "during the TLS handshake", 3.0) == (
        "tls", "TLS failed during the TLS handshake: tlsv1 alert protocol version")


def test_ssl_reason_is_plain():
    """OpenSSL's reason when there is one; else the text without Python's
    own C source line."""
    eof = ssl.SSLEOFError(8, "EOF occurred in violation of protocol (_ssl.c:2427)")
    assert connection.ssl_text(eof) == "EOF occurred in violation of protocol"
    assert connection.ssl_text(ssl.SSLError(1, "(_ssl.c:1006)")) == "TLS error"
    wrong = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    wrong.reason = "WRONG_VERSION_NUMBER"
    assert connection.ssl_text(wrong) == "wrong version number"


def test_os_reason():
    assert connection.os_reason(socket.timeout("timed out"), 5.0, "while connecting") == (
        "timed out after 5 s while connecting"
    )
    assert connection.os_reason(OSError(113, "No route to host"), 5.0, "while connecting") == (
        "no route to host"
    )
    assert connection.os_reason(OSError(104, "reset"), 5.0, "during the TLS handshake") == (
        "connection reset during the TLS handshake"
    )


def test_insecure_context_verifies_nothing():
    context = connection.make_context(verify=False)
    assert (context.check_hostname, context.verify_mode) == (False, ssl.CERT_NONE)
    context = connection.make_context()
    assert (context.check_hostname, context.verify_mode) == (True, ssl.CERT_REQUIRED)


# ---------------------------------------------------------------- what it says


ANSWERED = ping.PingResult(URL, "10.1.0.10", ping.VIA_RESOLVER, True, 23, status=200, attempts=1)
REFUSED = ping.PingResult(URL, "10.1.0.10", ping.VIA_RESOLVER, False, 0, "transport",
                          "connection refused", None, 3)
BAD_GATEWAY = ping.PingResult(URL, "10.1.0.10", ping.VIA_ADD_HOST, False, 12, "http", "Bad Gateway",
                              502, 3)


def test_phrases():
    assert ANSWERED.phrase() == "forge answered Ping in 23 ms at 10.1.0.10"
    assert REFUSED.phrase() == ("Ping to https://forge.azrak.io/ at 10.1.0.10 (the host's resolver) "
                                "failed 3 times (transport: connection refused)")
    assert BAD_GATEWAY.phrase() == ("Ping to https://forge.azrak.io/ at 10.1.0.10 (its --add-host) "
                                    "failed 3 times (http 502: Bad Gateway)")
    once = ping.PingResult(URL, "10.1.0.10", ping.VIA_URL, False, 9000, "timeout", "timed out", None, 1)
    assert once.phrase().endswith("(the URL) failed once (timeout: timed out)")


def test_as_dict():
    assert BAD_GATEWAY.as_dict() == {
        "url": URL, "address": "10.1.0.10", "via": "its --add-host", "result": "failed", "ms": 12,
        "class": "http", "reason": "Bad Gateway", "status": 502, "attempts": 3}
    assert ANSWERED.as_dict()["result"] == "answered" and ANSWERED.as_dict()["class"] is None


def test_the_forges_word():
    both = ping.ForgeWord(True, (ANSWERED, BAD_GATEWAY))
    assert both.unreachable and not both.answered and both.decisive() is BAD_GATEWAY
    one = ping.ForgeWord(True, (ANSWERED,))
    assert one.answered and not one.unreachable and one.decisive() is ANSWERED
    silent = ping.not_asked("verify = none")
    assert not silent.answered and not silent.unreachable and silent.decisive() is None
    doc = both.as_dict()
    assert (doc["asked"], doc["why"], doc["result"], doc["class"], doc["status"]) == (
        True, None, "failed", "http", 502)
    assert [p["result"] for p in doc["pings"]] == ["answered", "failed"]
    assert silent.as_dict() == {
        "asked": False, "why": "verify = none", "url": None, "address": None, "via": None,
        "result": None, "ms": None, "class": None, "reason": None, "status": None, "attempts": 0,
        "pings": []}
