"""What a pin may be: a host name by RFC 1123, an address glibc's resolver
will use from a hosts file, at most one address per family for a name.
Pure; every refusal is a report.UsageError with one line naming the value.
hostsfile.py plans with these rules, config.py checks guard.conf's pins.
"""

import collections
import ipaddress
import re
import unicodedata

from ..report import UsageError

_LABEL = re.compile(r"[A-Za-z0-9-]+\Z")
# one part of an address as inet_aton() reads it: strtoul(base 0) on text
# that starts with a digit: hex after 0x or 0X, octal after 0, else decimal
_ATON_PART = re.compile(r"0[xX][0-9A-Fa-f]+|0[0-7]*|[1-9][0-9]*")
_ATON_LAST = (0xFFFFFFFF, 0xFFFFFF, 0xFFFF, 0xFF)  # the last part's bound, by parts before it


def inet_aton(text):
    """The IPv4 address ('a.b.c.d') glibc's inet_aton() reads in `text`
    (names only: no whitespace), or None when it reads none.  1 to 4
    dot-separated parts, each decimal, octal (0...) or hex (0x...); every
    part but the last is a byte, the last fills the bytes left: '1.2.3' is
    1.2.0.3, '0x7f.1' 127.0.0.1, '017700000001' 127.0.0.1, '1' 0.0.0.1."""
    parts = text.split(".")
    if len(parts) > 4 or not all(_ATON_PART.fullmatch(part) for part in parts):
        return None
    values = [int(p[2:], 16) if p[1:2] in ("x", "X") else int(p, 8 if p[0] == "0" else 10)
              for p in parts]
    *head, last = values
    if any(value > 0xFF for value in head) or last > _ATON_LAST[len(head)]:
        return None
    number = last
    for shift, value in zip((24, 16, 8), head):
        number |= value << shift
    return ".".join(str(number >> shift & 0xFF) for shift in (24, 16, 8, 0))


def validate_name(name):
    """Return `name` if it is an RFC 1123 host name, else raise UsageError.

    Rules: 1-253 characters; dot-separated labels of 1-63 letters, digits
    and '-', not starting or ending with '-' (so no empty label, no
    whitespace, '#', '/', '_' or trailing dot); and not a numeric name,
    anything inet_aton() reads as an IPv4 address ('1.2.3.4', '1.2.3',
    '0x7f.1', '017700000001', '1'): the resolver answers such a name
    itself and never looks it up in a hosts file.
    """
    if not isinstance(name, str) or not name:
        raise UsageError("bad host name %r: empty" % (name,))
    if not name.isascii():
        ascii_form = punycode(name)
        if ascii_form is not None:
            raise UsageError("bad host name %r: not ASCII; pin its ASCII form %r (punycode: "
                             "the name programs look up)" % (name, ascii_form))
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
    address = inet_aton(name)
    if address is not None:
        raise UsageError("bad host name %r: inet_aton reads it as the IPv4 address %s, so a "
                         "resolver answers it itself and never looks it up in a hosts file"
                         % (name, address))
    return name


# Label separators UTS 46 maps to '.' (ideographic, fullwidth, halfwidth full stops).
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def punycode(name):
    """The ASCII name a program looks up for the non-ASCII host name
    `name`, as IDNA 2008 (UTS 46, non-transitional: curl, Go, glibc's
    AI_IDN) makes it for ordinary names: compatibility-normalised (NFKC),
    lower-cased, each non-ASCII label as 'xn--' + its punycode.  None when
    that is not a valid host name either (the name has other faults)."""
    text = unicodedata.normalize("NFKC", name.translate(_DOTS)).lower()
    labels = []
    for label in unicodedata.normalize("NFC", text).split("."):
        labels.append(label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii"))
    candidate = ".".join(labels)
    try:
        return validate_name(candidate)  # ASCII: every label is, or is made so
    except UsageError:
        return None


# Names the system resolves for itself, whose lines in a stock hosts file
# (Debian's netbase: "127.0.0.1 localhost", "::1 localhost ip6-localhost
# ip6-loopback", ff02::1 ip6-allnodes, ...) a pin would switch off.
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain")
_STOCK_NAMES = ("ip6-localhost", "ip6-loopback", "ip6-localnet", "ip6-mcastprefix",
                "ip6-allnodes", "ip6-allrouters")


def special_name(name):
    """Why pinning `name` would take a name the system relies on, or None:
    localhost and every name under it (RFC 6761 6.3: resolvers answer them
    with the loopback address themselves, as nss-myhostname and
    systemd-resolved do), localhost.localdomain, and the IPv6 loopback and
    multicast names of Debian's stock hosts file.  Pinning one switches
    off the file's own line for it (127.0.0.1 localhost)."""
    lname = name.lower()
    if lname in _LOOPBACK_NAMES or lname.endswith(".localhost"):
        return "%s is a loopback name the system resolves for itself" % name
    if lname in _STOCK_NAMES:
        return "%s is one of the stock hosts file's IPv6 loopback and multicast names" % name
    return None


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
    if isinstance(name, str) and host_ip(name.encode("ascii", "replace")) is not None:
        try:  # an address where the name goes: was it swapped with the address?
            validate_address(address)
        except UsageError as exc:  # what validate_address refuses, host_ip does too
            raise UsageError("%s (name and address swapped? %r is an address, expected NAME "
                             "then ADDRESS)" % (exc, name)) from None
    validate_name(name)
    return name, validate_address(address)


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
