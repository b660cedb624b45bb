"""One connection to one address of the forge, within a deadline.

connect() opens TCP to an address given explicitly (the forge's name is
never resolved here), start_tls() starts TLS over it with the forge's
name as SNI and lets OpenSSL verify the chain against the system trust
store (or a given CA file) and the certificate against that name.  Both
share one deadline (time.monotonic() seconds).  The reasons (pure) turn
their failures into one short phrase each.

Used by pins/probe.py (--probe: does the pinned address serve the
forge's certificate?) and forge/ping.py (does the forge answer Ping?).
socket and ssl are imported inside the functions: importing this module
costs nothing (the boot unit's plain reconcile run never loads them).
"""

import errno
import os
import re
import time


def make_context(ca_file=None, check_hostname=True, verify=True):
    """A client context trusting `ca_file` (PEM) instead of the system store
    when given.  verify=False: no verification at all (the runner's
    `runner.insecure: true`).  ValueError naming the file when it cannot
    be used."""
    import ssl  # imported here: a plain reconcile run never pays for it
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError("%s: cannot use as CA file: %s" % (
            ca_file, ssl_text(exc) if isinstance(exc, ssl.SSLError)
            else getattr(exc, "strerror", None) or str(exc)))
    if ca_file is not None and not context.get_ca_certs():
        raise ValueError("%s: cannot use as CA file: no CA certificate in it" % ca_file)
    context.check_hostname = check_hostname and verify
    if not verify:
        context.verify_mode = ssl.CERT_NONE
    return context


def connect(family, sockaddr, deadline):
    """A TCP socket connected to `sockaddr` (getaddrinfo's form) before
    `deadline`; OSError (socket.timeout when the deadline passed)."""
    import socket  # imported here: a plain reconcile run never pays for it
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(remaining(deadline))
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


def start_tls(context, sock, name, deadline):
    """TLS over `sock`, SNI and expected name = `name`, handshake done
    before `deadline` -> the TLS socket (the caller closes it).  On a
    failure `sock` is closed and the ssl.SSLError or OSError raised."""
    try:
        sock.settimeout(remaining(deadline))
        return context.wrap_socket(sock, server_hostname=name)
    except BaseException:
        sock.close()
        raise


def handshake(context, sock, name, deadline):
    """TLS over `sock` (which it closes), SNI and expected name = `name`;
    returns the verified peer certificate (dict)."""
    with start_tls(context, sock, name, deadline) as tls:
        return tls.getpeercert()


def remaining(deadline):
    return max(deadline - time.monotonic(), 0.001)


# ---------------------------------------------------------------- reasons (pure)

HOSTNAME_MISMATCH = 62  # X509_V_ERR_HOSTNAME_MISMATCH
_VERIFY_REASONS = {
    2: "unknown issuer",  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
    9: "not yet valid (is the clock right?)",  # X509_V_ERR_CERT_NOT_YET_VALID
    10: "expired",  # X509_V_ERR_CERT_HAS_EXPIRED
    18: "self-signed certificate",  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    19: "unknown issuer",  # X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
    20: "unknown issuer",  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: "unknown issuer",  # X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
    23: "revoked",  # X509_V_ERR_CERT_REVOKED
}


def verify_reason(exc):
    """An ssl.SSLCertVerificationError -> 'expired', 'unknown issuer', ..."""
    reason = _VERIFY_REASONS.get(exc.verify_code)
    if reason:
        return reason
    message = (exc.verify_message or ssl_text(exc)).rstrip(".")
    if message[1:2].isupper():  # an abbreviation: 'IP address mismatch'
        return message
    return message[:1].lower() + message[1:]


def ssl_text(exc):
    """'WRONG_VERSION_NUMBER' -> 'wrong version number'; else the message."""
    reason = getattr(exc, "reason", None)
    if reason:
        return reason.replace("_", " ").lower()
    text = str(exc.args[-1] if exc.args else exc)
    return re.sub(r"\s*\(_ssl\.c:\d+\)", "", text) or "TLS error"  # Python's C source line


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network is unreachable",
}


def os_reason(exc, timeout, stage):
    """An OSError -> 'connection refused', 'timed out after 5 s while
    connecting', 'connection reset during the TLS handshake', ..."""
    import socket  # imported here: a plain reconcile run never pays for it
    if isinstance(exc, socket.timeout):
        return "timed out after %g s %s" % (timeout, stage)
    reason = _ERRNO_REASONS.get(exc.errno)
    if reason is None:
        reason = (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
    return reason if stage == "while connecting" else "%s %s" % (reason, stage)
