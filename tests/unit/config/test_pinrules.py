"""pinrules: numeric host names, as glibc's inet_aton() reads them.

A name that inet_aton() reads as an IPv4 address is answered by the
resolver itself (getaddrinfo, gethostbyname) and never looked up in a hosts
file, so a pin of it would be written and never used: it is refused.
pinrules.inet_aton() is pure; it is checked here against the C library's
own inet_aton() (Python's socket.inet_aton calls it) on every form and on
random text made of the characters a name may hold."""

import random
import socket

import pytest

from forgejo_runner_guard.config import pinrules
from forgejo_runner_guard.config.values import parse_pins
from forgejo_runner_guard.report import UsageError


def libc(text):
    try:
        return socket.inet_ntoa(socket.inet_aton(text))
    except OSError:
        return None


NUMERIC = {
    "1.2.3.4": "1.2.3.4", "1.2.3": "1.2.0.3", "1.2": "1.0.0.2", "1": "0.0.0.1",
    "0x7f.1": "127.0.0.1", "017700000001": "127.0.0.1", "0X7F.0.0.01": "127.0.0.1",
    "2130706433": "127.0.0.1", "0xffffffff": "255.255.255.255", "0": "0.0.0.0",
    "10.1.0.10": "10.1.0.10", "0377.0xFF.255.0": "255.255.255.0", "1.16777215": "1.255.255.255",
    "1.2.65535": "1.2.255.255", "00000000000000000000000000001": "0.0.0.1",
}
NOT_NUMERIC = ["1.2.3.4.5", "256.1.1.1", "1.2.3.256", "1.16777216", "1.2.65536", "4294967296",
               "08", "09.1", "0x", "0x.1", "0xg", "1.", ".1", "1..2", "1a", "a1", "1-2", "0x1g",
               "forge.azrak.io", "1.2.3a", "x1.2.3.4", "99999999999999999999", "0x100000000",
               "040000000000", "1.2.3.0400"]


@pytest.mark.parametrize("text, address", sorted(NUMERIC.items()))
def test_every_numeric_form(text, address):
    assert pinrules.inet_aton(text) == address == libc(text)


@pytest.mark.parametrize("text", NOT_NUMERIC)
def test_what_is_not_numeric(text):
    assert pinrules.inet_aton(text) is None and libc(text) is None


def test_the_same_as_the_c_library_on_random_names():
    rng = random.Random(21)
    parts = ["0", "00", "07", "08", "0x", "0X1f", "0xff", "0x100", "255", "256", "65535",
             "65536", "16777215", "16777216", "4294967295", "4294967296", "017", "0377", "0400",
             "1", "12", "a", "f", "x", "-", "1a", ""]
    seen = set()
    for _ in range(20000):
        text = ".".join(rng.choice(parts) for _ in range(rng.randint(1, 5)))
        if rng.random() < 0.3:
            text = "".join(rng.choice("0123456789abcdefxX.-") for _ in range(rng.randint(1, 14)))
        seen.add(pinrules.inet_aton(text) is not None)
        assert pinrules.inet_aton(text) == libc(text), text
    assert seen == {True, False}


@pytest.mark.parametrize("name, address", [("1.2.3.4", "1.2.3.4"), ("1.2.3", "1.2.0.3"),
                                           ("0x7f.1", "127.0.0.1"),
                                           ("017700000001", "127.0.0.1"), ("1", "0.0.0.1")])
def test_a_numeric_name_is_refused_saying_why(name, address):
    with pytest.raises(UsageError) as info:
        pinrules.validate_name(name)
    assert str(info.value) == (
        "bad host name %r: inet_aton reads it as the IPv4 address %s, so a resolver answers it "
        "itself and never looks it up in a hosts file" % (name, address))
    with pytest.raises(UsageError) as info:
        pinrules.validate_pin(name, "10.1.0.10")
    assert str(info.value).startswith("bad host name %r: inet_aton" % name)


@pytest.mark.parametrize("name", ["1.2.3.4.5", "08", "0x", "1a.2", "a.1.2.3", "256.1.1.1",
                                  "1.2.3.4.example.org", "0x7f.1.x", "4294967296"])
def test_a_name_with_digits_that_is_no_address_is_fine(name):
    assert pinrules.validate_name(name) == name


def test_an_address_pinned_to_an_address_is_refused_as_a_numeric_name():
    with pytest.raises(UsageError) as info:
        pinrules.validate_pin("10.1.0.10", "10.1.0.11")
    assert str(info.value).startswith("bad host name '10.1.0.10': inet_aton reads it as the IPv4 "
                                      "address 10.1.0.10")


# ---------------------------------------------------------------- non-ASCII names


@pytest.mark.parametrize("name, ascii_form", [
    ("bücher.example", "xn--bcher-kva.example"),
    ("BÜCHER.example", "xn--bcher-kva.example"),  # lower-cased first
    ("förge.azrak.io", "xn--frge-5qa.azrak.io"),
    ("straße.de", "xn--strae-oqa.de"),  # IDNA 2008 keeps the ß (2003 made it "ss")
    ("münchen\u3002de", "xn--mnchen-3ya.de"),  # an ideographic full stop separates labels
    ("ｆｏｒｇｅ.azrak.io", "forge.azrak.io"),  # fullwidth letters are ASCII letters
    ("e\u0301cole.fr", "xn--cole-9oa.fr"),  # composed (NFC) first: é
    ("日本.example", "xn--wgv71a.example"),
])
def test_a_non_ascii_name_is_refused_naming_its_ascii_form(name, ascii_form):
    with pytest.raises(UsageError) as error:
        pinrules.validate_name(name)
    assert str(error.value) == ("bad host name %r: not ASCII; pin its ASCII form %r (punycode: "
                                "the name programs look up)" % (name, ascii_form))
    assert pinrules.validate_name(ascii_form) == ascii_form  # and that form is accepted


@pytest.mark.parametrize("name", ["bücher.example", "förge.azrak.io", "münchen.de", "日本.example"])
def test_the_ascii_form_is_what_idna_gives_where_2003_and_2008_agree(name):
    assert pinrules.punycode(name) == name.encode("idna").decode("ascii")


@pytest.mark.parametrize("name, message", [
    ("a b.ü", "character ' ' not allowed"),  # other faults: no form to offer
    ("ü" * 70 + ".de", "label longer than 63 characters"),
    ("ü_x.de", "character 'ü' not allowed"),
])
def test_a_non_ascii_name_with_other_faults_names_the_fault(name, message):
    assert pinrules.punycode(name) is None
    with pytest.raises(UsageError) as error:
        pinrules.validate_name(name)
    assert str(error.value) == "bad host name %r: %s" % (name, message)


def test_guard_conf_pins_name_the_ascii_form_too():
    with pytest.raises(ValueError) as error:
        parse_pins("bücher.example 10.1.0.10")
    assert "pin its ASCII form 'xn--bcher-kva.example'" in str(error.value)


@pytest.mark.parametrize("name", ["localhost", "LocalHost", "localhost.localdomain", "a.localhost",
                                  "forge.azrak.io.localhost", "ip6-localhost", "ip6-loopback",
                                  "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes",
                                  "IP6-ALLROUTERS"])
def test_names_the_system_resolves_for_itself_are_special(name):
    assert name in pinrules.special_name(name)
    with pytest.raises(ValueError) as error:  # guard.conf: always refused
        parse_pins("%s 10.1.0.10" % name)
    assert str(error.value) == (
        "%s: a pin would switch off the stock lines that map it (pin it only by hand: "
        "--pin %s=ADDRESS --force)" % (pinrules.special_name(name), name))


@pytest.mark.parametrize("name", ["forge.azrak.io", "localhost-forge", "mylocalhost", "localhost.io",
                                  "localdomain", "ip6-other", "xlocalhost"])
def test_other_names_are_not_special(name):
    assert pinrules.special_name(name) is None
    assert parse_pins("%s 10.1.0.10" % name) == [(name, "10.1.0.10")]


@pytest.mark.parametrize("name, why", [
    ("LocalHost", "LocalHost is a loopback name the system resolves for itself"),
    ("forge.localhost", "forge.localhost is a loopback name the system resolves for itself"),
    ("localhost.localdomain", "localhost.localdomain is a loopback name the system resolves for "
     "itself"),
    ("IP6-AllNodes", "IP6-AllNodes is one of the stock hosts file's IPv6 loopback and multicast "
     "names"),
])
def test_why_a_name_is_special_exactly(name, why):
    """The reason is the first half of the refusal an operator reads (the
    name as given, then why)."""
    assert pinrules.special_name(name) == why
