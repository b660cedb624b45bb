"""A resolver proof of the pins (optimus-boot-reconcile --resolve).

A pin in the file is only half the proof: the programs resolve names
through the system's resolver, which may not read the file first
(/etc/nsswitch.conf without `files`, or with `dns` before it), may stop at
an earlier line, or return an address of the other family still mapped
elsewhere.  --resolve asks getaddrinfo() for each pinned name, both
families in one query (AF_UNSPEC, as the runner's Go resolver and curl
ask) and checks that the answer is exactly the pinned addresses: no
other, none missing.  It writes nothing and runs after the file's step,
outside the lock.

  exact       the resolver returns exactly the pinned addresses
  different   it returns others too, or not all of them
  failed      no answer (the error, or no answer within TIMEOUT)

Exit status 3 unless every pinned name is exact.
"""

import dataclasses
import ipaddress
import time
from typing import Tuple

from ..report import EXIT_DRIFT, EXIT_OK, why

EXACT = "exact"
DIFFERENT = "different"
FAILED = "failed"
TIMEOUT = 5.0  # seconds for each name's getaddrinfo

RESOLVE_HELP = """\
resolver proof (--resolve):
  After the file's step, ask the system resolver (getaddrinfo, IPv4 and
  IPv6 in one query) for each pinned name and check that it returns
  exactly the pinned addresses.  It catches what the file alone cannot
  show: /etc/nsswitch.conf without `files` (or `dns` first), another hosts
  file, an address of the other family still answered.  Writes nothing;
  exit 3 unless every name resolves exactly to its pins."""


@dataclasses.dataclass(frozen=True)
class Resolved:
    name: str
    pinned: Tuple[str, ...]
    got: Tuple[str, ...]
    status: str
    reason: str = ""
    seconds: float = 0.0

    def summary(self):
        head = "resolve: %s: " % self.name
        if self.status == EXACT:
            return head + "%s (exactly the pin)" % ", ".join(self.got)
        if self.status == FAILED:
            return head + "no answer (%s); pinned %s" % (self.reason, ", ".join(self.pinned))
        return head + "got %s; pinned %s" % (", ".join(self.got) or "nothing", ", ".join(self.pinned))

    def as_dict(self):
        doc = dataclasses.asdict(self)
        doc["summary"] = self.summary()
        return doc


# ---------------------------------------------------------------- pure


def normalize(address):
    """An address as getaddrinfo or a pin gives it -> its canonical text
    (IPv6 compressed, a zone id dropped)."""
    try:
        return str(ipaddress.ip_address(address.split("%", 1)[0]))
    except ValueError:
        return address


def unique(addresses):
    """Canonical addresses, first occurrence kept, in order."""
    seen = []
    for address in addresses:
        address = normalize(address)
        if address not in seen:
            seen.append(address)
    return tuple(seen)


def compare(pinned, got):
    """-> EXACT when `got` is exactly the `pinned` addresses (as sets),
    DIFFERENT otherwise.  Pure."""
    return EXACT if set(unique(got)) == set(unique(pinned)) else DIFFERENT


def by_name(pins):
    """Pins -> [(name, (addresses...))], names in order of first pin."""
    names = {}
    for pin in pins:
        names.setdefault(pin.name.lower(), []).append(pin.address)
    return [(name, unique(addresses)) for name, addresses in names.items()]


# ---------------------------------------------------------------- asking


def _lookup(name, out):
    import socket  # only with --resolve: the boot unit's plain run never pays for it

    try:
        infos = socket.getaddrinfo(name, None, socket.AF_UNSPEC, socket.SOCK_STREAM)
        out["got"] = unique(info[4][0] for info in infos)
    except UnicodeError:  # the name cannot be encoded for DNS (a label too long for IDNA)
        out["error"] = "not a name the resolver can ask for"
    except OSError as exc:  # socket.gaierror: its text, without Python's "[Errno -2]"
        out["error"] = why(exc) or "the resolver failed"


def resolve_pins(pins, timeout=TIMEOUT):
    """Ask the resolver for every pinned name, all at once -> (Resolved, ...)."""
    import threading

    asks = []
    for name, pinned in by_name(pins or ()):
        out = {}
        thread = threading.Thread(target=_lookup, args=(name, out), daemon=True,
                                  name="resolve-" + name)
        asks.append((name, pinned, out, thread, time.monotonic()))
        thread.start()
    results = []
    deadline = time.monotonic() + timeout
    for name, pinned, out, thread, started in asks:
        thread.join(max(0.0, deadline - time.monotonic()))
        seconds = round(time.monotonic() - started, 3)
        if thread.is_alive():  # getaddrinfo cannot be cancelled: the daemon thread is left
            results.append(Resolved(name, pinned, (), FAILED, "no answer within %gs" % timeout,
                                    seconds))
        elif "error" in out:
            results.append(Resolved(name, pinned, (), FAILED, out["error"], seconds))
        else:
            results.append(Resolved(name, pinned, out["got"], compare(pinned, out["got"]), "",
                                    seconds))
    return tuple(results)


# ---------------------------------------------------------------- command line and output


def add_arguments(parser):
    parser.add_argument(
        "--resolve", action="store_true",
        help="after the file, ask the system resolver (getaddrinfo, both families) for each "
        "pinned name; exit 3 unless it returns exactly the pinned addresses (writes nothing)")


def log(results, reporter):
    for r in results:
        (reporter.info if r.status == EXACT else reporter.warning)(r.summary())


def exit_status(results):
    return EXIT_OK if all(r.status == EXACT for r in results) else EXIT_DRIFT
