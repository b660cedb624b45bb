"""Prove a pin: does the pinned address serve a valid certificate for the name?

For a pin NAME -> ADDRESS, connect to ADDRESS:PORT (443) directly, never
resolving NAME, start TLS with NAME as SNI, and let OpenSSL verify the
chain against the system trust store (or a given CA file) and the
certificate against NAME.  Three outcomes:

  verified            reachable, and the certificate is valid for NAME
  wrong-certificate   something answered at the address, but did not prove
                      it is NAME (bad chain, wrong name, expired, no TLS)
  unreachable         no TLS conversation: refused, timed out, reset,
                      closed, no route

The whole probe (connect and handshake) shares one deadline, `timeout`.
ProbeResult is a plain value; probe() does the network I/O.  At the end,
the command-line glue for optimus-boot-reconcile --probe: the options,
their validation (usage errors before anything happens) and the log lines.
"""

import dataclasses
import time
from typing import Optional

from ..config.values import BOUNDS, parse_duration
from ..forge.connection import (HOSTNAME_MISMATCH, connect, handshake, make_context, os_reason,
                                ssl_text, verify_reason)
from ..report import EXIT_OK, EXIT_PROBE, UsageError

VERIFIED = "verified"
WRONG_CERTIFICATE = "wrong-certificate"
UNREACHABLE = "unreachable"

DEFAULT_PORT = 443
DEFAULT_TIMEOUT = 5.0


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    name: str
    address: str
    port: int
    outcome: str  # VERIFIED, WRONG_CERTIFICATE or UNREACHABLE
    reason: str = ""  # one phrase saying why, empty when verified
    seconds: float = 0.0  # how long the probe took

    @property
    def ok(self):
        return self.outcome == VERIFIED

    @property
    def endpoint(self):
        return "%s:%d" % ("[%s]" % self.address if ":" in self.address else self.address, self.port)

    def describe(self):
        """One line, e.g. 'forge.azrak.io at 10.1.0.10:443: verified (0.03 s)'."""
        text = "%s at %s: %s" % (self.name, self.endpoint, self.outcome)
        if self.reason:
            text += ": " + self.reason
        return text + " (%.2f s)" % self.seconds

    def as_dict(self):
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "outcome": self.outcome,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
        }


def probe(name, address, port=DEFAULT_PORT, timeout=DEFAULT_TIMEOUT, ca_file=None):
    """Probe one pin; returns a ProbeResult.  ADDRESS must be an IP address
    (ValueError otherwise: the name is never resolved)."""
    import socket  # imported here: a plain reconcile run never pays for it
    import ssl
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(
            address, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
        )[0]
    except socket.gaierror:
        raise ValueError("not an IP address: %r" % address)
    context = make_context(ca_file)
    started = time.monotonic()
    deadline = started + timeout

    def result(outcome, reason=""):
        return ProbeResult(name, address, port, outcome, reason, time.monotonic() - started)

    try:
        sock = connect(family, sockaddr, deadline)
    except OSError as exc:
        return result(UNREACHABLE, os_reason(exc, timeout, "while connecting"))
    try:
        handshake(context, sock, name, deadline)
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code == HOSTNAME_MISMATCH:
            names = _certificate_names(family, sockaddr, name, ca_file, deadline)
            return result(WRONG_CERTIFICATE, _name_reason(name, names))
        return result(WRONG_CERTIFICATE, verify_reason(exc))
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return result(UNREACHABLE, "connection closed during the TLS handshake")
    except ssl.SSLError as exc:
        return result(WRONG_CERTIFICATE, "TLS handshake failed: %s" % ssl_text(exc))
    except OSError as exc:
        return result(UNREACHABLE, os_reason(exc, timeout, "during the TLS handshake"))
    return result(VERIFIED)


def probe_pins(pins, port=DEFAULT_PORT, timeout=DEFAULT_TIMEOUT, ca_file=None):
    """Probe each pin (objects with .name and .address) in turn."""
    return tuple(probe(pin.name, pin.address, port, timeout, ca_file) for pin in pins)


# ---------------------------------------------------------------- I/O helpers


def _certificate_names(family, sockaddr, name, ca_file, deadline):
    """The names the server's certificate is for, read over a second
    connection that verifies the chain but not the name; () when that
    fails (so the reason stays generic)."""
    try:
        sock = connect(family, sockaddr, deadline)
        cert = handshake(make_context(ca_file, check_hostname=False), sock, name, deadline)
    except (OSError, ValueError):
        return ()
    names = [value for kind, value in cert.get("subjectAltName", ()) if kind in ("DNS", "IP Address")]
    if not names:
        names = [value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"]
    return tuple(names)


# ---------------------------------------------------------------- reasons (pure)


def _name_reason(name, names, shown=3):
    if not names:
        return "certificate is not valid for %s" % name
    listed = ", ".join(names[:shown])
    if len(names) > shown:
        listed += " and %d more" % (len(names) - shown)
    return "certificate is for %s, not %s" % (listed, name)


# ---------------------------------------------------------------- command line


@dataclasses.dataclass(frozen=True)
class Settings:
    port: int = DEFAULT_PORT
    timeout: float = DEFAULT_TIMEOUT
    ca_file: Optional[str] = None


PROBE_HELP = """\
probing (--probe):
  --probe proves each pin of this run (from --pin, else the configuration)
  over TLS: it connects to the pinned ADDRESS (the name is never resolved),
  sends NAME as SNI and verifies the certificate chain against the system
  trust store (or --ca-file) and the certificate against NAME.  One line per
  pin: verified; wrong-certificate (something answered but did not prove it
  is NAME: unknown issuer, expired, not yet valid, a certificate for another
  name, no TLS); or unreachable (refused, timed out, reset, closed, no route).
  Pins are probed one after another, each within --probe-timeout.

  --probe never writes the hosts file and takes no lock.  It reads the file
  and says whether it is in sync, but only --check or --diff turn drift
  into exit 3 (which wins over a failed probe, exit 4).  So: pin first
  (plain run), then probe; or probe a candidate before pinning it:
    optimus-boot-reconcile --probe --pin forge.azrak.io=10.1.0.10

  Never put --probe in the boot unit (which has no network anyway): at boot
  the tunnel may not be up yet, and a probe must never hold up the pin.
"""


def add_arguments(parser):
    group = parser.add_argument_group("probing the pins")
    group.add_argument(
        "--probe",
        action="store_true",
        help="prove each pin over TLS instead of writing; exit 4 when one fails (see below)",
    )
    group.add_argument(
        "--probe-port", metavar="PORT", help="TCP port to probe (default: %d)" % DEFAULT_PORT
    )
    group.add_argument(
        "--probe-timeout",
        metavar="DURATION",
        help="time allowed per pin for connect and handshake (default: %gs; at most 5m)"
        % DEFAULT_TIMEOUT,
    )
    group.add_argument(
        "--ca-file",
        metavar="PATH",
        help="trust only the CA certificates in PATH (PEM) instead of the system store",
    )


def settings(args):
    """Validated probe Settings from parsed arguments, None without --probe.
    UsageError for a bad value, or a probe option without --probe."""
    given = [
        option
        for option, value in (
            ("--probe-port", args.probe_port),
            ("--probe-timeout", args.probe_timeout),
            ("--ca-file", args.ca_file),
        )
        if value is not None
    ]
    if not args.probe:
        if given:
            raise UsageError("%s only makes sense with --probe" % given[0])
        return None
    port = DEFAULT_PORT
    if args.probe_port is not None:
        text = args.probe_port.strip()
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            raise UsageError("--probe-port: not a TCP port (1-65535): %r" % args.probe_port)
        port = int(text)
    timeout = DEFAULT_TIMEOUT
    if args.probe_timeout is not None:
        try:
            timeout = parse_duration(args.probe_timeout, BOUNDS["probe_timeout"])
        except ValueError as exc:
            raise UsageError("--probe-timeout: %s" % exc)
    if args.ca_file is not None:
        try:
            make_context(args.ca_file)
        except ValueError as exc:
            raise UsageError("--ca-file: %s" % exc)
    return Settings(port, timeout, args.ca_file)


def log(results, reporter):
    """One line per probe (info when verified, warning otherwise) and a summary."""
    for result in results:
        (reporter.info if result.ok else reporter.warning)("probe: " + result.describe())
    failed = sum(1 for result in results if not result.ok)
    summary = "probe: %d of %d pins verified" % (len(results) - failed, len(results))
    (reporter.warning if failed else reporter.info)(summary)


def exit_status(results):
    return EXIT_OK if all(result.ok for result in results) else EXIT_PROBE
