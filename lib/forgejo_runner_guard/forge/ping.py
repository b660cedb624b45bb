"""Does the forge answer?  Its Actions Ping RPC, asked at the address a
restarted runner would connect to.

The Ping is the forge's own, unauthenticated and read-only (Forgejo
v15.0.3 routers/api/actions/ping/ping.go:18-38 and actions.go:14-21,
Gitea v1.26.3 the same files; connect-go v1.19.2 serves it):

    POST <url>/api/actions/ping.v1.PingService/Ping   HTTP/1.1
    Content-Type: application/json
    {"data":"forgejo-runner-watchdog"}
 -> 200  Content-Type: application/json
    {"data":"Hello, forgejo-runner-watchdog!"}

It needs no token and changes nothing on the forge (FetchTask would
claim a job, Declare rewrite the runner's labels).  Every attempt is a
fresh connection (never a pooled one: a runner's own stuck connection is
what a restart cures), HTTP/1.1, without `Accept-Encoding: gzip` (for
which connect-go would compress the reply), TLS verified against the
system trust store (or forge_ca_file) and the forge's name, or not at
all for a runner with `runner.insecure: true`, as the runner itself.  A
few attempts share the one deadline (ping_timeout), so one lost packet
on a lossy path is not an outage.

The address is given (the caller finds it along the path a restarted
runner will take: its --add-host, else the host's resolver now,
resolve()); the name stays the forge's for SNI, the certificate and Host.

  parse_url(url)        PURE: the forge's URL -> Target, ValueError
  classify(exc, stage)  PURE: a failed attempt -> (class, reason)
  judge_reply(...)      PURE: status and body -> None, or (class, reason)
  resolve(name, port)   the host's resolver (getaddrinfo), now
  ping(target, ...)     the attempts at given addresses -> PingResult
  ask(url, ...)         the name resolved unless the addresses are given,
                        then ping() -> PingResult
  ForgeWord             what the forge said about one runner, for decide()

Classes, as a fetch error's (logs/failures.py) say whether a restart can
help: transport (refused, reset, closed, no route), tls (the certificate
or the handshake), http (any status but 200, or a 200 that is not the
Ping's reply), timeout (no answer within the deadline), dns (the name
does not resolve).  Whatever the class, a forge that does not answer
Ping is one a restarted runner cannot reach either.
"""

import dataclasses
import time
from typing import NamedTuple, Optional, Tuple

from .. import __version__
from ..config import values
from .connection import connect, make_context, os_reason, remaining, ssl_text, start_tls, verify_reason

PATH = "/api/actions/ping.v1.PingService/Ping"
DATA = "forgejo-runner-watchdog"
BODY = b'{"data":"%s"}' % DATA.encode()
REPLY = "Hello, %s!" % DATA  # PingResponse.Data: fmt.Sprintf("Hello, %s!", req.Msg.Data)
ATTEMPTS = 3  # within the one deadline
PAUSE = 0.3  # seconds between an attempt that failed at once and the next
MAX_BODY = 64 * 1024  # bytes of a reply read: the Ping's is 40

TRANSPORT = "transport"
TLS = "tls"
HTTP = "http"
TIMEOUT = "timeout"
DNS = "dns"
CLASSES = (TRANSPORT, TLS, HTTP, TIMEOUT, DNS)

# how the address asked was found (PingResult.via)
VIA_URL = "the URL"
VIA_ADD_HOST = "its --add-host"
VIA_RESOLVER = "the host's resolver"


# ---------------------------------------------------------------- values


class Target(NamedTuple):
    """A forge URL, taken apart (parse_url())."""

    url: str
    scheme: str  # http or https
    host: str  # the name (or address) in the URL, without brackets
    port: int
    path: str  # of the Ping: the URL's path + PATH

    @property
    def host_header(self):
        host = "[%s]" % self.host if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else "%s:%d" % (host, self.port)


@dataclasses.dataclass(frozen=True)
class PingResult:
    """One forge URL asked (ping()).

    url       the forge's URL, as the runner has it
    address   the address asked ("" when the name did not resolve)
    via       how that address was found: VIA_URL, VIA_ADD_HOST, VIA_RESOLVER
    answered  True when an attempt got the Ping's reply
    ms        milliseconds of the attempt that answered (or of the last)
    cls       not answered: one of CLASSES
    reason    not answered: one phrase ('connection refused', 'HTTP 502
              Bad Gateway', 'timed out after 3.3 s while connecting')
    status    the HTTP status of the last reply, if any
    attempts  how many attempts were made
    """

    url: str
    address: str = ""
    via: str = ""
    answered: bool = False
    ms: Optional[int] = None
    cls: str = ""
    reason: str = ""
    status: Optional[int] = None
    attempts: int = 0

    @property
    def label(self):
        """The class as the summary shows it: 'transport', 'http 502', ..."""
        if self.cls == HTTP and self.status is not None:
            return "http %d" % self.status
        return self.cls

    def phrase(self):
        """'forge answered Ping in 23 ms at 10.1.0.10', or 'Ping to URL at
        10.1.0.10 (the host's resolver) failed 3 times (transport:
        connection refused)', or 'no Ping to URL (dns: cannot resolve ...)'."""
        if self.answered:
            return "forge answered Ping in %d ms at %s" % (self.ms or 0, self.address)
        if not self.attempts:
            return "no Ping to %s (%s: %s)" % (self.url, self.label, self.reason)
        where = " at %s (%s)" % (self.address, self.via) if self.address else ""
        tries = "once" if self.attempts == 1 else "%d times" % self.attempts
        return "Ping to %s%s failed %s (%s: %s)" % (self.url, where, tries, self.label, self.reason)

    def as_dict(self):
        return {
            "url": self.url,
            "address": self.address or None,
            "via": self.via or None,
            "result": "answered" if self.answered else "failed",
            "ms": self.ms,
            "class": self.cls or None,
            "reason": self.reason or None,
            "status": self.status,
            "attempts": self.attempts,
        }


@dataclasses.dataclass(frozen=True)
class ForgeWord:
    """What the forge said about one runner: the value decide() takes.

    asked  False: the forge was not asked, `why` says why (verify = none,
           the log does not say wedged, no forge URL found); the log
           alone decides
    pings  one PingResult per forge URL the runner talks to
    """

    asked: bool
    pings: Tuple[PingResult, ...] = ()
    why: str = ""

    @property
    def answered(self):
        """Every forge the runner talks to answered."""
        return self.asked and bool(self.pings) and all(p.answered for p in self.pings)

    @property
    def unreachable(self):
        """It was asked and a forge did not answer: a restart cannot help."""
        return self.asked and any(not p.answered for p in self.pings)

    def decisive(self):
        """The ping that decides: the first that failed, else the first."""
        failed = [p for p in self.pings if not p.answered]
        return (failed or list(self.pings) or [None])[0]

    def as_dict(self):
        """The --json object: the decisive ping's fields, every ping, and
        why it was not asked."""
        doc = dict.fromkeys(("url", "address", "via", "result", "ms", "class", "reason",
                             "status"))
        doc["attempts"] = 0
        ping = self.decisive() if self.asked else None
        if ping is not None:
            doc.update(ping.as_dict())
        doc.update(asked=self.asked, why=self.why or None,
                   pings=[p.as_dict() for p in self.pings])
        return doc


def not_asked(why):
    return ForgeWord(False, (), why)


# ---------------------------------------------------------------- pure


def parse_url(url):
    """The forge's URL (the runner's `address`, a connection's `url` or
    `forge =`) -> Target.  ValueError naming what is wrong."""
    from urllib.parse import urlsplit

    text = values.parse_url(url)
    if not text:
        raise ValueError("no URL")
    parts = urlsplit(text)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Target(text, parts.scheme, parts.hostname, port, parts.path.rstrip("/") + PATH)


def classify(exc, stage, timeout):
    """A failed attempt's exception -> (class, reason).  stage: 'while
    connecting', 'during the TLS handshake', 'while waiting for the reply'."""
    import http.client
    import socket
    import ssl

    if isinstance(exc, socket.timeout):
        return TIMEOUT, os_reason(exc, timeout, stage)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TLS, "certificate: %s" % verify_reason(exc)
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return TRANSPORT, "connection closed %s" % stage
    if isinstance(exc, ssl.SSLError):
        return TLS, "TLS failed %s: %s" % (stage, ssl_text(exc))
    if isinstance(exc, (http.client.RemoteDisconnected, http.client.IncompleteRead)):
        return TRANSPORT, "connection closed %s" % stage
    if isinstance(exc, http.client.HTTPException):
        return HTTP, "not an HTTP reply (%s)" % (" ".join(str(exc).split())[:80] or
                                                 type(exc).__name__)
    return TRANSPORT, os_reason(exc, timeout, stage)


def judge_reply(status, reason, content_type, body, data=DATA):
    """The reply to a Ping -> None when it is the Ping's reply, else
    (HTTP, reason): the status's reason phrase ('Bad Gateway'), with a
    connect error's code when the body has one ('Service Unavailable
    (unavailable)'), or 'not the Ping's reply (text/html, 124 bytes)'."""
    import json

    try:
        doc = json.loads(body.decode("utf-8"))
    except ValueError:
        doc = None
    if status != 200:
        code = doc.get("code") if isinstance(doc, dict) else None
        text = (reason or "").strip() or "HTTP %d" % status
        return HTTP, text + (" (%s)" % code if isinstance(code, str) else "")
    if isinstance(doc, dict) and doc.get("data") == "Hello, %s!" % data:
        return None
    what = (content_type or "no Content-Type").split(";")[0].strip()
    return HTTP, "not the Ping's reply (%s, %d bytes)" % (what, len(body))


# ---------------------------------------------------------------- asking


def resolve(name, port):
    """The host's resolver, now (getaddrinfo, both families, in its
    order) -> (addresses, None) or ((), the error's text)."""
    import socket

    try:
        infos = socket.getaddrinfo(name, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return (), str(exc) or type(exc).__name__
    addresses = []
    for info in infos:
        address = info[4][0].split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    return tuple(addresses), None


def ask(url, addresses, via, timeout, insecure=False, ca_file=None):
    """Ask one forge URL at `addresses` (found `via`), or, when there are
    none, at what the host's resolver gives its name now (an address in
    the URL is its own) -> PingResult, within `timeout` seconds in all.
    ValueError for a bad URL or a CA file that cannot be used."""
    import ipaddress

    target = parse_url(url)
    started = time.monotonic()
    try:
        ipaddress.ip_address(target.host)
        addresses, via = (target.host,), VIA_URL
    except ValueError:
        pass
    if not addresses:
        via = VIA_RESOLVER
        addresses, error = resolve(target.host, target.port)
        if error is not None:
            return PingResult(url, "", via, cls=DNS, reason="cannot resolve %s: %s"
                              % (target.host, error))
    left = timeout - (time.monotonic() - started)
    if left <= 0.0:
        return PingResult(url, "", via, cls=TIMEOUT, reason="the resolver took %g s"
                          % round(timeout - left, 1))
    return ping(target, tuple(addresses), left, insecure, ca_file, via)


def ping(target, addresses, timeout, insecure=False, ca_file=None, via="",
         attempts=ATTEMPTS):
    """Ask `target` (a Target) for its Ping at `addresses` (tried in turn,
    one per attempt), up to `attempts` times within `timeout` seconds in
    all -> PingResult.  ValueError for a CA file that cannot be used."""
    import importlib

    importlib.import_module("http.client")  # loaded before the clock starts: ms is the network's
    context = None
    if target.scheme == "https":
        context = make_context(ca_file, verify=not insecure)
    deadline = time.monotonic() + timeout
    result = PingResult(target.url, addresses[0] if addresses else "", via)
    for number in range(attempts):
        left = deadline - time.monotonic()
        if left <= 0.0:
            break
        address = addresses[number % len(addresses)]
        began = time.monotonic()
        budget = left / (attempts - number)
        failure, status = _attempt(target, address, context, began + budget, budget)
        ms = int(round((time.monotonic() - began) * 1000))
        result = dataclasses.replace(result, address=address, ms=ms, status=status,
                                     attempts=number + 1, answered=failure is None,
                                     cls=failure[0] if failure else "",
                                     reason=failure[1] if failure else "")
        if failure is None:
            break
        pause = min(PAUSE, began + budget - time.monotonic())
        if pause > 0 and number + 1 < attempts:
            time.sleep(pause)
    return result


def _attempt(target, address, context, deadline, budget):
    """One fresh connection -> (None or (class, reason), HTTP status or None)."""
    import http.client
    import socket
    import ssl

    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    stage = "while connecting"
    try:
        sock = connect(family, (address, target.port), deadline)
    except OSError as exc:
        return classify(exc, stage, round(budget, 1)), None
    try:
        if context is not None:
            stage = "during the TLS handshake"
            sock = start_tls(context, sock, target.host, deadline)
        stage = "while waiting for the reply"
        status, reason, content_type, body = _exchange(sock, target, deadline)
    except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
        return classify(exc, stage, round(budget, 1)), None
    finally:
        sock.close()
    return judge_reply(status, reason, content_type, body), status


def _exchange(sock, target, deadline):
    """The request over the connected socket -> (status, reason,
    Content-Type, body)."""
    import http.client

    sock.settimeout(remaining(deadline))
    conn = http.client.HTTPConnection(target.host, target.port)
    conn.sock = sock  # connected (and TLS) already: http.client only speaks HTTP/1.1 over it
    conn.request("POST", target.path, body=BODY, headers={
        "Host": target.host_header,
        "Content-Type": "application/json",
        "Connect-Protocol-Version": "1",
        "User-Agent": "forgejo-runner-guard/%s" % __version__,
        "Connection": "close",
    })
    response = conn.getresponse()
    body = response.read(MAX_BODY)
    return response.status, response.reason, response.getheader("Content-Type", ""), body
