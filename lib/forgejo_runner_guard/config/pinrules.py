"""What a pin may be: a host name by RFC 1123, an address glibc's resolver
will use from a hosts file, at most one address per family for a name.
Pure; every refusal is a report.UsageError with one line naming the value.
hostsfile.py plans with these rules, config.py checks guard.conf's pins.
"""

import collections
import ipaddress
import re

from ..report import UsageError

_LABEL = re.compile(r"[A-Za-z0-9-]+\Z")


def validate_name(name):
    """Return `name` if it is an RFC 1123 host name, else raise UsageError.

    Rules: 1-253 characters; dot-separated labels of 1-63 letters, digits
    and '-', not starting or ending with '-' (so no empty label, no
    whitespace, '#', '/', '_' or trailing dot).
    """
    if not isinstance(name, str) or not name:
        raise UsageError("bad host name %r: empty" % (name,))
    if len(name) > 253:
        raise UsageError("bad host name %r: longer than 253 characters" % name)
    if name.endswith(".") and name.strip("."):
        raise UsageError("bad host name %r: a trailing dot is not allowed (write %r)"
                         % (name, name.rstrip(".")))
    for label in name.split("."):
        if not label:
            raise UsageError("bad host name %r: empty label" % name)
        if len(label) > 63:
            raise UsageError("bad host name %r: label longer than 63 characters" % name)
        if not _LABEL.match(label) or not label.isascii():
            bad = next(c for c in label if not (c.isascii() and (c.isalnum() or c == "-")))
            raise UsageError("bad host name %r: character %r not allowed" % (name, bad))
        if label.startswith("-") or label.endswith("-"):
            raise UsageError("bad host name %r: label %r starts or ends with '-'" % (name, label))
    return name


def validate_address(address):
    """Return the canonical text of an IPv4 or IPv6 address, else raise
    UsageError naming the value ('10.1.0.256', '10.1.0', '' are errors).

    Refused too: what glibc's resolver ignores in a hosts file, an IPv6
    zone index ('fe80::1%eth0').  An IPv4-mapped address is written as an
    admin would, '::ffff:10.1.0.10' (see address_text)."""
    if not isinstance(address, str) or not address.strip():
        raise UsageError("bad address %r: empty" % (address,))
    if "%" in address:
        raise UsageError("bad address %r: the resolver ignores a hosts line with a zone index "
                         "(%%%s); pin an address without one" % (address, address.split("%", 1)[1]))
    try:
        return address_text(ipaddress.ip_address(address))
    except ValueError:
        raise UsageError("bad address %r: not an IPv4 or IPv6 address" % address) from None


def address_text(ip):
    """The canonical text of an ipaddress object; an IPv4-mapped IPv6
    address as '::ffff:a.b.c.d' (what Python 3.13 prints; older versions
    print '::ffff:a01:a')."""
    mapped = getattr(ip, "ipv4_mapped", None)
    return "::ffff:%s" % mapped if mapped is not None else str(ip)


def validate_pin(name, address):
    """-> (name, canonical address) of one pin; UsageError naming what is
    wrong, and saying so when the two look swapped ('10.1.0.10' pinned to
    'forge.azrak.io')."""
    validate_name(name)
    try:
        return name, validate_address(address)
    except UsageError as exc:
        if host_ip(name.encode("ascii")) is None or host_ip(address.encode("ascii", "replace")) is not None:
            raise
        raise UsageError("%s (name and address swapped? %r is an address, expected NAME then "
                         "ADDRESS)" % (exc, name)) from None


def normalize_pins(pins):
    """[(name, address) or Pin] -> OrderedDict lower-name -> (name, [address...]).

    Raises UsageError for a bad name or address, or a name pinned to two
    addresses of one family (one IPv4 and one IPv6 address is allowed).
    """
    result = collections.OrderedDict()
    for pin in pins:
        name, address = validate_pin(*((pin.name, pin.address) if hasattr(pin, "name") else pin))
        entry = result.setdefault(name.lower(), (name, []))
        if address in entry[1]:
            continue
        version = ipaddress.ip_address(address).version
        for other in entry[1]:
            if ipaddress.ip_address(other).version == version:
                raise UsageError(
                    "%s pinned to two IPv%d addresses (%s, %s): pin one IPv4 and/or one IPv6 address"
                    % (name, version, other, address)
                )
        entry[1].append(address)
    return result


def host_ip(token):
    """The address a hosts file's first field (bytes) gives, or None: not an
    address, or one with a zone index (glibc ignores such a line)."""
    if b"%" in token:
        return None
    try:
        return ipaddress.ip_address(token.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
