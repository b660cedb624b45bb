"""hostsfile: the pure parser/planner.  Hypothesis properties over
generated hosts files, and a table per rule of issue 2."""

import ipaddress
import os
import re
import shutil
import subprocess
import zlib

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from forgejo_runner_guard.config import pinrules
from forgejo_runner_guard.pins import hostsfile as hf
from forgejo_runner_guard.report import UsageError

SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

PINNABLE = ["forge.azrak.io", "a.example", "b-1.example"]
NAMES = PINNABLE + ["FORGE.Azrak.IO", "A.EXAMPLE", "www.example", "forge.azrak.io.evil",
                    "xforge.azrak.io", "localhost"]
V4 = ["10.1.0.10", "203.0.113.5", "192.0.2.1", "127.0.0.1"]
V6 = ["2001:db8::7", "2001:db8::10", "::1"]
BAD_ADDRESSES = ["10.1.0.256", "10.1.0", "x"]


# ---------------------------------------------------------------- an independent reader


def active_map(data):
    """{lower name: [ip, ...]} as a resolver reads the file (independent of hf)."""
    result = {}
    for line in data.split(b"\n"):
        fields = line.split(b"#", 1)[0].split()
        if len(fields) < 2:
            continue
        try:
            ip = ipaddress.ip_address(fields[0].decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            continue
        for name in {n.lower() for n in fields[1:]}:  # one line maps a name once
            result.setdefault(name.lower().decode("ascii", "replace"), []).append(ip)
    return result


def sed_purge(data, sed=("sed",)):
    proc = subprocess.run(list(sed) + ["-e", hf.PURGE_SED], input=data, capture_output=True,
                          env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                          check=True)
    return proc.stdout


# ---------------------------------------------------------------- strategies

ws = st.sampled_from([b" ", b"\t", b"  ", b" \t", b"\t\t"])
eols = st.sampled_from([b"\n", b"\r\n"])


@st.composite
def mapping_line(draw):
    address = draw(st.sampled_from(V4 * 2 + V6 * 2 + BAD_ADDRESSES)).encode()
    names = draw(st.lists(st.sampled_from(PINNABLE * 3 + NAMES), min_size=1, max_size=3))
    body = draw(st.sampled_from([b"", b" ", b"\t"])) + address
    for name in names:
        body += draw(ws) + name.encode()
    if draw(st.booleans()):
        body += draw(ws) + b"# " + draw(st.sampled_from([b"web", b"", b"forge.azrak.io old"]))
    if draw(st.booleans()):
        body += draw(st.sampled_from([b" ", b"\t"]))
    return body


garbage = st.binary(max_size=20).map(lambda b: b.replace(b"\n", b""))
other_line = st.one_of(
    st.just(b""), st.just(b"# comment forge.azrak.io"), st.just(b"   "),
    st.just(b"::1 localhost ip6-localhost"), garbage,
    st.sampled_from([b"forge.azrak.io", b"10.1.0.10", b"# 10.1.0.10 forge.azrak.io"]))


@st.composite
def hosts_file(draw):
    lines = draw(st.lists(st.one_of(mapping_line(), other_line), max_size=12))
    eol = draw(eols)
    mixed = draw(st.booleans())
    out = b""
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last and draw(st.booleans()):
            out += line  # missing final newline
        else:
            out += line + (draw(eols) if mixed else eol)
    assume(hf.MARKER not in out.lower())
    return out


@st.composite
def pin_set(draw):
    pins = []
    for name in draw(st.lists(st.sampled_from(PINNABLE), min_size=1, max_size=3, unique=True)):
        kind = draw(st.sampled_from(["v4", "v6", "both"]))
        if kind in ("v4", "both"):
            pins.append((name, draw(st.sampled_from(V4))))
        if kind in ("v6", "both"):
            pins.append((name, draw(st.sampled_from(V6))))
    return pins


def check_pins_hold(data, pins):
    """Rules 1 and 2 as a resolver sees them."""
    active = active_map(data)
    wanted = {}
    for name, address in pins:
        wanted.setdefault(name.lower(), []).append(ipaddress.ip_address(address))
    for name, ips in wanted.items():
        assert sorted(active.get(name, []), key=str) == sorted(ips, key=str), (name, data)


# ---------------------------------------------------------------- properties


@SETTINGS
@given(hosts_file())
def test_round_trip_is_byte_identical(data):
    for pins in (None, []):
        result = hf.plan(data, pins)
        assert result.text is data and not result.changed
    assert hf.plan(data.decode("utf-8", "surrogateescape")).text == data  # str in, same bytes


@SETTINGS
@given(hosts_file(), pin_set())
def test_pin_holds_and_second_run_changes_nothing(data, pins):
    first = hf.plan(data, pins)
    check_pins_hold(first.text, pins)
    second = hf.plan(first.text, pins)
    assert not second.changed and second.text is first.text
    assert all(o.outcome in (hf.PRESENT, hf.UNMANAGED) for o in second.outcomes)
    assert first.changed == any(o.outcome in hf.CHANGING for o in first.outcomes)


@SETTINGS
@given(hosts_file(), pin_set())
def test_only_allowed_lines_change(data, pins):
    new = hf.plan(data, pins).text
    pinned = {n.lower().encode() for n, _ in pins}
    rebuilt = []
    for line in new.splitlines(True):
        body = line.rstrip(b"\n")
        if body.rstrip(b" \r").endswith((hf.PIN_TAG, hf.KEEP_TAG)):
            continue  # a line the tool added
        if body.startswith(hf.OFF_PREFIX):
            orig = body.split(b": ", 1)[1]
            # only a line mapping a pinned name may be switched off
            tokens = orig.split(b"#", 1)[0].split()[1:]
            assert pinned & {t.lower() for t in tokens}, line
            line = orig + line[len(body):]
        rebuilt.append(line)
    assert b"".join(rebuilt) == data


@SETTINGS
@given(hosts_file(), pin_set())
def test_unpin_restores_exactly(data, pins):
    pinned = hf.plan(data, pins).text
    names = sorted({n for n, _ in pins})
    restored = hf.plan(pinned, None, names)
    assert restored.text == data
    assert {o.outcome for o in restored.outcomes} <= {hf.UNPINNED, hf.NOT_PINNED}
    assert hf.plan(pinned, None, (), unpin_all=True).text == data


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(hosts_file(), st.lists(st.one_of(pin_set(), st.sampled_from(PINNABLE)), min_size=1,
                              max_size=4))
def test_purge_sed_equals_unpin_all_after_any_runs(data, runs):
    """Any sequence of runs (pin sets replacing each other, unpins), then
    --unpin-all and PURGE_SED both give back the admin's file exactly."""
    text = data
    for step in runs:
        text = hf.plan(text, None, [step]).text if isinstance(step, str) else hf.plan(text, step).text
    undone = hf.plan(text, None, (), unpin_all=True)
    assert undone.text == data
    assert not undone.warnings
    assert sed_purge(text) == undone.text


# ---------------------------------------------------------------- PURGE_SED tables

PIN = [("forge.azrak.io", "10.1.0.10")]
TABLE = [
    b"",
    b"127.0.0.1 localhost\n",
    b"127.0.0.1 localhost",
    b"203.0.113.5 forge.azrak.io",
    b"203.0.113.5 www forge.azrak.io # web\r\n::1 localhost\r\n",
    b"2001:db8::7\tforge.azrak.io\twww\n\n# end\n203.0.113.5 FORGE.AZRAK.IO",
    b"\xff\xfe garbage\n203.0.113.5 forge.azrak.io \xe9\n",
    b"10.1.0.10 forge.azrak.io\n10.1.0.10 forge.azrak.io\n",
]


@pytest.mark.parametrize("data", TABLE)
@pytest.mark.parametrize("sed", [("sed",), ("busybox", "sed")], ids=["gnu", "busybox"])
def test_purge_sed_table(data, sed):
    if shutil.which(sed[0]) is None:
        pytest.fail("%s is missing (make deps installs it)" % sed[0])
    for pins in (PIN, PIN + [("forge.azrak.io", "2001:db8::10"), ("www", "192.0.2.1")]):
        pinned = hf.plan(data, pins).text
        assert sed_purge(pinned, sed) == hf.plan(pinned, None, (), True).text == data


def test_purge_sed_is_posix_shaped():
    # newline-separated commands, no GNU-only escapes: postrm copies it verbatim
    assert "\\|" not in hf.PURGE_SED and "\\r" not in hf.PURGE_SED and "'" not in hf.PURGE_SED
    assert hf.PURGE_SED.endswith("\n")
    assert all(hf.MARKER.decode() in line or line == "}" for line in hf.PURGE_SED.splitlines())


# ---------------------------------------------------------------- rule tables


def lines(result):
    return result.text.decode().splitlines()


def test_rule1_admin_line_in_sync_is_unmanaged_and_untouched():
    data = b"127.0.0.1 localhost\n10.1.0.10   Forge.Azrak.IO  # by hand\n"
    result = hf.plan(data, PIN)
    assert result.text is data and [o.outcome for o in result.outcomes] == [hf.UNMANAGED]
    # --unpin never removes the admin's line
    assert hf.plan(data, None, ["forge.azrak.io"]).text is data
    assert hf.plan(data, None, ["forge.azrak.io"]).outcomes[0].outcome == hf.NOT_PINNED


def test_rule1_exactly_one_line_per_pinned_address():
    data = b"10.1.0.10 forge.azrak.io\n10.1.0.10 forge.azrak.io other\n"
    result = hf.plan(data, PIN)
    assert result.outcomes[0].outcome == hf.CORRECTED and result.outcomes[0].switched_off == [2]
    assert lines(result) == [
        "10.1.0.10 forge.azrak.io",
        "10.1.0.10\tother # forgejo-runner-guard keep",
        "#forgejo-runner-guard off forge.azrak.io %s: 10.1.0.10 forge.azrak.io other"
        % hf._digest(b"10.1.0.10 forge.azrak.io other").decode(),
    ]
    # the tool's own line is preferred over an admin duplicate
    owned = hf.plan(b"", PIN).text
    dup = hf.plan(owned + b"10.1.0.10 forge.azrak.io\n", PIN)
    assert dup.outcomes[0].outcome == hf.CORRECTED and dup.outcomes[0].line == 1
    assert lines(dup)[1].startswith("#forgejo-runner-guard off forge.azrak.io ")


def test_rule2_other_family_is_switched_off_unless_pinned_too():
    data = b"2001:db8::7 forge.azrak.io\n203.0.113.5 forge.azrak.io\n"
    result = hf.plan(data, PIN)
    assert [o.outcome for o in result.outcomes] == [hf.ADDED]
    assert result.outcomes[0].switched_off == [1, 2]
    assert active_map(result.text)["forge.azrak.io"] == [ipaddress.ip_address("10.1.0.10")]
    both = hf.plan(data, PIN + [("forge.azrak.io", "2001:db8::7")])
    assert [o.outcome for o in both.outcomes] == [hf.ADDED, hf.CORRECTED]
    assert sorted(map(str, active_map(both.text)["forge.azrak.io"])) == ["10.1.0.10", "2001:db8::7"]
    with pytest.raises(UsageError, match="two IPv4 addresses"):
        hf.plan(data, PIN + [("forge.azrak.io", "192.0.2.1")])


def test_rule3_other_names_stay_and_nothing_is_deleted():
    data = b"203.0.113.5 www forge.azrak.io mail # web\n203.0.113.9 forge.azrak.io\n"
    result = hf.plan(data, PIN)
    out = lines(result)
    assert out[0] == "10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin"
    assert out[1] == "203.0.113.5\twww mail # forgejo-runner-guard keep"
    assert out[2].endswith(": 203.0.113.5 www forge.azrak.io mail # web")
    assert out[3].startswith("#forgejo-runner-guard off forge.azrak.io ")
    assert out[3].endswith(": 203.0.113.9 forge.azrak.io")
    assert len(out) == 4
    active = active_map(result.text)
    assert active["www"] == active["mail"] == [ipaddress.ip_address("203.0.113.5")]


def test_rule3_a_second_name_off_the_same_line_updates_its_record():
    data = b"203.0.113.5 www forge.azrak.io a.example\n"
    one = hf.plan(data, PIN).text
    two = hf.plan(one, PIN + [("a.example", "192.0.2.1")])
    out = lines(two)
    assert out[2] == "203.0.113.5\twww # forgejo-runner-guard keep"
    assert out[3].startswith("#forgejo-runner-guard off a.example,forge.azrak.io ")
    assert sum(1 for line in out if "off" in line) == 1
    # unpinning one name puts it back on the keep line
    back = hf.plan(two.text, None, ["forge.azrak.io"])
    assert "203.0.113.5\twww forge.azrak.io # forgejo-runner-guard keep" in lines(back)
    assert hf.plan(back.text, None, ["a.example"]).text == data


def test_rule4_unpin_warns_and_keeps_a_line_changed_since():
    pinned = hf.plan(b"203.0.113.5 forge.azrak.io\n", PIN).text
    edited = pinned.replace(b"203.0.113.5 forge", b"203.0.113.6 forge")
    result = hf.plan(edited, None, ["forge.azrak.io"])
    assert result.outcomes[0].outcome == hf.UNPINNED and result.outcomes[0].removed == [1]
    assert len(result.warnings) == 1 and "line 2: changed since" in result.warnings[0]
    assert result.text == edited.split(b"\n", 1)[1]  # pin line gone, record left as it is
    # a changed keep line: the record is left too
    pinned = hf.plan(b"203.0.113.5 www forge.azrak.io\n", PIN).text
    edited = pinned.replace(b"\twww #", b"\twww mail #")
    result = hf.plan(edited, None, (), unpin_all=True)
    assert result.warnings and b"www mail" in result.text and b"#forgejo-runner-guard off" in result.text


def test_rule4_unwanted_pins_are_reported_never_removed():
    pinned = hf.plan(b"", PIN + [("a.example", "192.0.2.1")]).text
    result = hf.plan(pinned, [("a.example", "192.0.2.1")])
    assert result.text is pinned
    assert [(o.name, o.outcome, o.line) for o in result.outcomes] == [
        ("a.example", hf.PRESENT, 2), ("forge.azrak.io", hf.UNWANTED, 1)]
    assert result.owned == [("forge.azrak.io", "10.1.0.10", 1), ("a.example", "192.0.2.1", 2)]


def test_rule4_changed_address_replaces_the_tools_line():
    pinned = hf.plan(b"127.0.0.1 localhost\n", PIN).text
    result = hf.plan(pinned, [("forge.azrak.io", "10.1.0.11")])
    assert [o.outcome for o in result.outcomes] == [hf.REPLACED]
    assert lines(result) == ["127.0.0.1 localhost",
                             "10.1.0.11\tforge.azrak.io # forgejo-runner-guard pin"]


def test_rule4_unpin_of_a_name_not_pinned_changes_nothing():
    data = b"127.0.0.1 localhost\n"
    result = hf.plan(data, None, ["forge.azrak.io"])
    assert result.text is data and result.outcomes[0].outcome == hf.NOT_PINNED
    with pytest.raises(UsageError, match="both pinned and unpinned"):
        hf.plan(data, PIN, ["FORGE.azrak.io"])
    with pytest.raises(UsageError, match="--unpin-all"):
        hf.plan(data, PIN, (), unpin_all=True)


@pytest.mark.parametrize("data", [
    b"127.0.0.1\tlocalhost\r\n# comment\r\n\r\n203.0.113.5 forge.azrak.io\r\n",
    b"weird line \xff\xfe\n  \t \n203.0.113.5   forge.azrak.io",
    b"203.0.113.5 forge.azrak.io",
    b"# only a comment, no newline",
])
def test_rule5_every_other_byte_stays(data):
    result = hf.plan(data, PIN)
    undone = hf.plan(result.text, None, ["forge.azrak.io"]).text
    assert undone == data
    for old in data.splitlines(True):
        if b"forge.azrak.io" not in old or old.startswith(b"#"):
            assert old in result.text.splitlines(True) or not old.endswith(b"\n")
    if data.endswith(b"\r\n"):
        assert b"# forgejo-runner-guard pin\r\n" in result.text
    assert result.text.endswith(b"\n") == data.endswith(b"\n")


def test_rule6_in_sync_returns_the_same_bytes_object():
    pinned = hf.plan(b"127.0.0.1 localhost\n", PIN).text
    result = hf.plan(pinned, PIN)
    assert not result.changed and result.text is pinned


def test_rule7_empty_file_gets_the_pin():
    result = hf.plan(b"", PIN + [("forge.azrak.io", "2001:db8::10")])
    assert result.text == (b"10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\n"
                           b"2001:db8::10\tforge.azrak.io # forgejo-runner-guard pin\n")


def test_only_candidate_lines_are_parsed():
    # a big file with no mention of the name is passed through as is
    data = b"".join(b"0.0.0.0 ad%d.example\n" % i for i in range(20000))
    result = hf.plan(data, PIN)
    assert result.text == data + b"10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\n"
    assert hf._candidate_spans(data, [b"forge.azrak.io", hf.MARKER]) == []
    assert hf._candidate_spans(result.text, [hf.MARKER]) == [(len(data), len(result.text))]


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("name,why", [
    ("", "empty"),
    ("a..b", "empty label"),
    ("forge.azrak.io.", "a trailing dot is not allowed (write 'forge.azrak.io')"),
    (".forge", "empty label"),
    ("x" * 64 + ".io", "label longer than 63"),
    (".".join(["a" * 63] * 4) + ".ab", "longer than 253"),
    ("-forge.io", "starts or ends with '-'"),
    ("forge-.io", "starts or ends with '-'"),
    ("forge azrak.io", "' ' not allowed"),
    ("forge\tazrak.io", "not allowed"),
    ("forge#io", "'#' not allowed"),
    ("forge/io", "'/' not allowed"),
    ("forge_io", "'_' not allowed"),
    ("förge.io", "not ASCII; pin its ASCII form 'xn--frge-5qa.io'"),
])
def test_bad_names(name, why):
    with pytest.raises(UsageError) as info:
        pinrules.validate_name(name)
    message = str(info.value)
    assert why in message and repr(name) in message and "\n" not in message


@pytest.mark.parametrize("name", ["forge.azrak.io", "a", "x" * 63, "1.2.3a", "A-b.C0",
                                  ".".join(["a" * 63] * 3) + "." + "b" * 61])
def test_good_names(name):
    assert pinrules.validate_name(name) == name


@pytest.mark.parametrize("address", ["10.1.0.256", "10.1.0", "", "   ", "10.1.0.10/24",
                                     "forge.azrak.io", "2001:db8:::1", "1.2.3.4.5",
                                     "fe80::1%eth0", "fe80::1%"])
def test_bad_addresses(address):
    with pytest.raises(UsageError) as info:
        pinrules.validate_address(address)
    assert repr(address) in str(info.value) and "\n" not in str(info.value)


def test_a_zone_index_is_refused_naming_it():
    with pytest.raises(UsageError, match=r"'fe80::1%eth0': the resolver ignores a hosts line "
                       r"with a zone index \(%eth0\)"):
        hf.plan(b"", [("forge.azrak.io", "fe80::1%eth0")])


@pytest.mark.parametrize("address,canonical", [("10.1.0.10", "10.1.0.10"),
                                               ("2001:DB8:0::10", "2001:db8::10"), ("::1", "::1"),
                                               ("::ffff:a01:a", "::ffff:10.1.0.10"),
                                               ("::FFFF:10.1.0.10", "::ffff:10.1.0.10")])
def test_good_addresses(address, canonical):
    assert pinrules.validate_address(address) == canonical


def test_an_ipv4_mapped_pin_is_written_and_reported_as_an_admin_would():
    plan = hf.plan(b"", [("forge.azrak.io", "::ffff:a01:a")])
    assert plan.text == b"::ffff:10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\n"
    assert hf.plan(plan.text, [("forge.azrak.io", "::ffff:10.1.0.10")]).owned == [
        ("forge.azrak.io", "::ffff:10.1.0.10", 1)]
    # an owned line readdressed to a mapped address, and one left unwanted
    old = b"2001:db8::1\tforge.azrak.io # forgejo-runner-guard pin\n" \
          b"::ffff:a01:b\tother.io # forgejo-runner-guard pin\n"
    plan = hf.plan(old, [("forge.azrak.io", "::ffff:a01:a")])
    assert plan.text.splitlines()[0] == b"::ffff:10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin"
    assert plan.outcomes[-1] == hf.Outcome("other.io", "::ffff:10.1.0.11", hf.UNWANTED, line=2)


def test_an_admin_line_with_a_zone_index_maps_nothing():
    """glibc ignores it: it is not switched off, and the pin is added."""
    old = b"fe80::1%eth0 forge.azrak.io\n"
    plan = hf.plan(old, [("forge.azrak.io", "fe80::1")])
    assert plan.text == old + b"fe80::1\tforge.azrak.io # forgejo-runner-guard pin\n"
    assert [o.outcome for o in plan.outcomes] == [hf.ADDED]


@pytest.mark.parametrize("pin,message", [
    (("10.1.0.10", "forge.azrak.io"), "bad address 'forge.azrak.io': not an IPv4 or IPv6 address "
     "(name and address swapped? '10.1.0.10' is an address, expected NAME then ADDRESS)"),
    (("1.2.3", "forge.azrak.io"), "bad host name '1.2.3': inet_aton reads it as the IPv4 address "
     "1.2.0.3, so a resolver answers it itself and never looks it up in a hosts file"),
    (("1.2.3a", "forge.azrak.io"), "bad address 'forge.azrak.io': not an IPv4 or IPv6 address"),
    (("forge.azrak.io", "10.1.0.256"), "bad address '10.1.0.256': not an IPv4 or IPv6 address"),
    (("FORGE.AZRAK.IO.", "10.1.0.10"), "bad host name 'FORGE.AZRAK.IO.': a trailing dot is not "
     "allowed (write 'FORGE.AZRAK.IO')"),
])
def test_pin_messages_say_what_is_wrong(pin, message):
    with pytest.raises(UsageError) as info:
        pinrules.validate_pin(*pin)
    assert str(info.value) == message


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(hosts_file(), pin_set(), st.integers(1, 40))
def test_chunked_search_finds_names_across_chunk_boundaries(data, pins, chunk):
    expected = hf.plan(data, pins)
    saved = hf._CHUNK
    hf._CHUNK = chunk
    try:
        got = hf.plan(data, pins)  # the same lines found, with the same line numbers
        assert (got.text, got.outcomes, got.owned, got.warnings) == (
            expected.text, expected.outcomes, expected.owned, expected.warnings)
        assert hf.plan(expected.text, pins).text is expected.text
    finally:
        hf._CHUNK = saved


CHUNKED = (b"127.0.0.1 localhost\n"
           b"203.0.113.5 www FORGE.azrak.io\n"
           b"\n\n# comment forge.azrak.io\n"
           b"10.1.0.9\tother.io # forgejo-runner-guard pin\n"
           b"forge.azrak.io\n"
           b"198.51.100.7 forge.azrak.io\n"
           b"192.0.2.1 other.io")


def test_every_chunk_size_finds_the_same_lines_and_numbers(monkeypatch):
    """Every chunk size from 1 byte to past the file: needles at a chunk's
    first byte, straddling a boundary, newlines counted across overlaps."""
    pins = [("forge.azrak.io", "10.1.0.10"), ("other.io", "10.1.0.11")]
    expected = hf.plan(CHUNKED, pins)
    assert expected.outcomes[0].switched_off == [2, 8]
    assert [(o.name, o.outcome, o.line, o.switched_off) for o in expected.outcomes] == [
        ("forge.azrak.io", hf.ADDED, None, [2, 8]), ("other.io", hf.REPLACED, 6, [9])]
    # other.io's line is found by the marker alone (the longest needle)
    alone = hf.plan(CHUNKED, pins[:1])
    assert alone.outcomes[-1] == hf.Outcome("other.io", "10.1.0.9", hf.UNWANTED, line=6)
    for chunk in range(1, len(CHUNKED) + 2):
        monkeypatch.setattr(hf, "_CHUNK", chunk)
        for want, plan in ((pins, expected), (pins[:1], alone)):
            got = hf.plan(CHUNKED, want)
            assert (got.text, got.outcomes, got.owned) == (plan.text, plan.outcomes, plan.owned), chunk


# ------------------------------------------------------------ edges the mutation run found untested


def test_a_keep_line_moved_away_from_its_record_is_not_claimed():
    """An admin's line between a keep line and its record: the record is
    left as it is with a warning, by --unpin and --unpin-all alike; the
    keep line stays (what it maps stays mapped) and the admin's line too."""
    pinned = hf.plan(b"127.0.0.1 localhost\n203.0.113.5 www forge.azrak.io\n", PIN).text
    head, pin, keep, record = pinned.splitlines(True)
    assert keep == b"203.0.113.5\twww # forgejo-runner-guard keep\n"
    edited = head + pin + keep + b"192.0.2.7 admin-line\n" + record
    expected = head + keep + b"192.0.2.7 admin-line\n" + record
    warning = "line 5: changed since the tool switched it off; left as it is (restore it by hand)"
    for plan in (hf.plan(edited, unpin_all=True), hf.plan(edited, unpins=["forge.azrak.io"])):
        assert plan.text == expected
        assert plan.warnings == [warning]
        assert [(o.outcome, o.removed, o.restored) for o in plan.outcomes] == [
            (hf.UNPINNED, [2], [])]
    # adjacent again: the record and its keep line are the tool's once more
    again = hf.plan(head + pin + keep + record, unpin_all=True)
    assert again.text == b"127.0.0.1 localhost\n203.0.113.5 www forge.azrak.io\n"


def test_crlf_keep_lines_and_replaced_pin_lines_keep_crlf():
    old = (b"127.0.0.1 localhost\r\n203.0.113.5 www forge.azrak.io\r\n"
           b"10.1.0.9\tother.io # forgejo-runner-guard pin\r\n")
    plan = hf.plan(old, [("forge.azrak.io", "10.1.0.10"), ("other.io", "10.1.0.11")])
    assert plan.text == (
        b"127.0.0.1 localhost\r\n"
        b"10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\r\n"
        b"203.0.113.5\twww # forgejo-runner-guard keep\r\n"
        b"#forgejo-runner-guard off forge.azrak.io %s: 203.0.113.5 www forge.azrak.io\r\n"
        b"10.1.0.11\tother.io # forgejo-runner-guard pin\r\n"
        % b"%08x" % zlib.crc32(b"203.0.113.5 www forge.azrak.io\r"))
    assert [o.outcome for o in plan.outcomes] == [hf.ADDED, hf.REPLACED]
    assert hf.plan(plan.text, unpin_all=True).text == old.replace(
        b"10.1.0.9\tother.io # forgejo-runner-guard pin\r\n", b"")
    # a last line without newline keeps its missing newline, the pin goes before it
    plan = hf.plan(b"127.0.0.1 localhost\r\n10.1.0.9\tother.io # forgejo-runner-guard pin\r",
                   [("other.io", "10.1.0.11"), ("forge.azrak.io", "10.1.0.10")])
    assert plan.text == (b"127.0.0.1 localhost\r\n10.1.0.10\tforge.azrak.io "
                         b"# forgejo-runner-guard pin\r\n"
                         b"10.1.0.11\tother.io # forgejo-runner-guard pin\r")


def _crc(orig):
    return b"%08x" % zlib.crc32(orig)


TOOL_LINES = (
    b"127.0.0.1 localhost\n"
    b"10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\n"
    b"2001:db8::10\tforge.azrak.io # forgejo-runner-guard pin\n"
    b"10.1.0.11\tother.io # forgejo-runner-guard pin\n"
    b"203.0.113.5\twww # forgejo-runner-guard keep\n"
    b"#forgejo-runner-guard off forge.azrak.io,other.io " + _crc(b"203.0.113.5 www forge.azrak.io other.io")
    + b": 203.0.113.5 www forge.azrak.io other.io\n"
    b"bogus forge.azrak.io # forgejo-runner-guard pin\n"
    b"192.0.2.1\tstray # forgejo-runner-guard keep\n"
    b"#forgejo-runner-guard off x.io 00000000: 198.51.100.1 x.io\n"
    b"#forgejo-runner-guard off f\xc3\xb6.io " + _crc(b"192.0.2.9 f\xc3\xb6.io") + b": 192.0.2.9 f\xc3\xb6.io\n"
    b"192.0.2.2\tlast # forgejo-runner-guard keep\n")


def test_unpin_all_exactly():
    """Every pin line goes (two addresses of one name, another name), every
    record the tool can vouch for is restored (one switched off for two
    names, one whose name is not ASCII), a stray pin-tagged line and a
    keep line with no record after it go; a record changed since (wrong
    CRC) stays with the keep line before it, and a warning."""
    plan = hf.plan(TOOL_LINES, unpin_all=True)
    assert plan.text == (b"127.0.0.1 localhost\n"
                         b"203.0.113.5 www forge.azrak.io other.io\n"
                         b"192.0.2.1\tstray # forgejo-runner-guard keep\n"
                         b"#forgejo-runner-guard off x.io 00000000: 198.51.100.1 x.io\n"
                         b"192.0.2.9 f\xc3\xb6.io\n")
    assert plan.warnings == ["line 9: changed since the tool switched it off; left as it is "
                             "(restore it by hand)"]
    assert plan.outcomes == [
        hf.Outcome("forge.azrak.io", None, hf.UNPINNED, removed=[2, 3], restored=[6]),
        hf.Outcome("other.io", None, hf.UNPINNED, removed=[4], restored=[6]),
        hf.Outcome("f\ufffd\ufffd.io", None, hf.UNPINNED, restored=[10]),
    ]
    assert plan.owned == [("forge.azrak.io", "10.1.0.10", 2), ("forge.azrak.io", "2001:db8::10", 3),
                          ("other.io", "10.1.0.11", 4)]


def test_unpin_of_one_name_exactly():
    plan = hf.plan(TOOL_LINES, unpins=["OTHER.io"])
    lines = TOOL_LINES.splitlines(True)
    orig = b"203.0.113.5 www forge.azrak.io other.io"
    assert plan.text == b"".join(
        lines[:3] + [b"203.0.113.5\twww other.io # forgejo-runner-guard keep\n",
                     b"#forgejo-runner-guard off forge.azrak.io " + _crc(orig) + b": " + orig + b"\n"]
        + lines[6:])
    assert plan.outcomes == [hf.Outcome("OTHER.io", None, hf.UNPINNED, removed=[4], restored=[6])]
    assert plan.warnings == []
    # x.io's record was changed since: a warning, and it stays
    plan = hf.plan(TOOL_LINES, unpins=["x.io"])
    assert plan.text == TOOL_LINES and not plan.changed
    assert plan.outcomes == [hf.Outcome("x.io", None, hf.NOT_PINNED)]
    assert plan.warnings == ["line 9: changed since the tool switched it off; left as it is "
                             "(restore it by hand)"]
    plan = hf.plan(TOOL_LINES, unpins=["nothing.io"])
    assert plan.outcomes == [hf.Outcome("nothing.io", None, hf.NOT_PINNED)] and not plan.changed


def test_a_line_with_two_comments_is_split_at_the_first_hash():
    old = b"203.0.113.5 www forge.azrak.io # admin # note\n"
    plan = hf.plan(old, PIN)
    orig = old[:-1]
    assert plan.text == (b"10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\n"
                         b"203.0.113.5\twww # forgejo-runner-guard keep\n"
                         b"#forgejo-runner-guard off forge.azrak.io " + _crc(orig) + b": " + orig
                         + b"\n")
    assert hf.plan(plan.text, unpin_all=True).text == old


def test_a_new_pin_never_goes_between_a_keep_line_and_its_record_on_the_last_line():
    """The record is the last line, without newline: a new pin line goes
    before its keep line (found by the PURGE_SED property test)."""
    first = hf.plan(b"203.0.113.5 forge.azrak.io a.example", PIN).text
    second = hf.plan(first, PIN + [("b-1.example", "10.1.0.10")])
    head, keep, record = first.split(b"\n")
    assert second.text == (head + b"\n10.1.0.10\tb-1.example # forgejo-runner-guard pin\n" + keep
                           + b"\n" + record)
    assert hf.plan(second.text, unpin_all=True).text == b"203.0.113.5 forge.azrak.io a.example"



@pytest.mark.parametrize("call, message", [
    (lambda: pinrules.validate_name(""), "bad host name '': empty"),
    (lambda: pinrules.validate_name(None), "bad host name None: empty"),
    (lambda: pinrules.validate_name("a" * 254), "bad host name '%s': longer than 253 characters" % ("a" * 254)),
    (lambda: pinrules.validate_name("a..b"), "bad host name 'a..b': empty label"),
    (lambda: pinrules.validate_name("."), "bad host name '.': empty label"),
    (lambda: pinrules.validate_name("x.%s.y" % ("b" * 64)),
     "bad host name 'x.%s.y': label longer than 63 characters" % ("b" * 64)),
    (lambda: pinrules.validate_name("a.b_c"), "bad host name 'a.b_c': character '_' not allowed"),
    (lambda: pinrules.validate_name("a.X-"), "bad host name 'a.X-': label 'X-' starts or ends with '-'"),
    (lambda: pinrules.validate_name("forge.io.."), "bad host name 'forge.io..': a trailing dot is not "
     "allowed (write 'forge.io')"),
    (lambda: pinrules.validate_address(""), "bad address '': empty"),
    (lambda: pinrules.validate_address(None), "bad address None: empty"),
    (lambda: pinrules.validate_address("fe80::1%eth0%1"), "bad address 'fe80::1%eth0%1': the resolver "
     "ignores a hosts line with a zone index (%eth0%1); pin an address without one"),
    (lambda: pinrules.validate_address("10.1.0.256"), "bad address '10.1.0.256': not an IPv4 or IPv6 address"),
    (lambda: pinrules.validate_pin("10.1.0.10", "forgé.io"), "bad address 'forgé.io': not an IPv4 or IPv6 "
     "address (name and address swapped? '10.1.0.10' is an address, expected NAME then ADDRESS)"),
])
def test_validation_messages_exactly(call, message):
    with pytest.raises(UsageError) as info:
        call()
    assert str(info.value) == message


def test_a_name_with_a_dash_inside_a_label_is_fine():
    assert pinrules.validate_name("a-b.c-d") == "a-b.c-d"
    assert pinrules.validate_name("x" * 63 + "." + "y" * 63 + "." + "z" * 63 + "." + "w" * 61) is not None


def test_pin_outcomes_exactly():
    old = (b"10.1.0.9\tforge.azrak.io # forgejo-runner-guard pin\n"  # 1: readdressed (v4)
           b"2001:db8::9\tforge.azrak.io # forgejo-runner-guard pin\n"  # 2: readdressed (v6)
           b"10.1.0.11\tother.io # forgejo-runner-guard pin\n"  # 3: present
           b"10.1.0.12 third.io\n"  # 4: the admin's: unmanaged
           b"10.1.0.13\tfourth.io # forgejo-runner-guard pin\n"  # 5: kept ...
           b"10.1.0.99\tfourth.io # forgejo-runner-guard pin\n"  # 6: ... this one goes
           b"192.0.2.1 fourth.io\n")  # 7: switched off
    pins = [("forge.azrak.io", "2001:db8::10"), ("forge.azrak.io", "10.1.0.10"),
            ("other.io", "10.1.0.11"), ("third.io", "10.1.0.12"), ("fourth.io", "10.1.0.13")]
    plan = hf.plan(old, pins)
    assert plan.outcomes == [
        hf.Outcome("forge.azrak.io", "2001:db8::10", hf.REPLACED, line=2),
        hf.Outcome("forge.azrak.io", "10.1.0.10", hf.REPLACED, line=1),
        hf.Outcome("other.io", "10.1.0.11", hf.PRESENT, line=3),
        hf.Outcome("third.io", "10.1.0.12", hf.UNMANAGED, line=4),
        hf.Outcome("fourth.io", "10.1.0.13", hf.CORRECTED, line=5, switched_off=[7], removed=[6]),
    ]
    assert plan.text == (b"10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\n"
                         b"2001:db8::10\tforge.azrak.io # forgejo-runner-guard pin\n"
                         + old.splitlines(True)[2] + old.splitlines(True)[3]
                         + old.splitlines(True)[4]
                         + b"#forgejo-runner-guard off fourth.io " + _crc(b"192.0.2.1 fourth.io")
                         + b": 192.0.2.1 fourth.io\n")


def test_a_repin_goes_before_the_keep_line_of_its_old_record():
    """The admin deleted the tool's pin line; the record of what it switched
    off is still there: pinning again puts the new line before that
    record's keep line, and reports it added."""
    first = hf.plan(b"127.0.0.1 localhost\n203.0.113.5 www forge.azrak.io\n192.0.2.9 z\n", PIN).text
    head, pin, keep, record, tail = first.splitlines(True)
    plan = hf.plan(head + keep + record + tail, PIN)
    assert plan.text == head + pin + keep + record + tail
    assert plan.outcomes == [hf.Outcome("forge.azrak.io", "10.1.0.10", hf.ADDED)]
    # to another address: the same place
    plan = hf.plan(head + keep + record + tail, [("forge.azrak.io", "10.1.0.20")])
    assert plan.text == head + pin.replace(b"10.1.0.10", b"10.1.0.20") + keep + record + tail


def test_lines_that_are_nearly_the_tools():
    """A record whose prefix is malformed, a pin-tagged line with a third
    field or a bad name, a comment naming the tool: none is the tool's own
    line; --unpin-all leaves each (the records with a warning)."""
    data = (b"#forgejo-runner-guard off forge.azrak.io nothex!!: 203.0.113.5 forge.azrak.io\n"
            b"10.1.0.10 forge.azrak.io extra # forgejo-runner-guard pin\n"
            b"10.1.0.10\tbad_name # forgejo-runner-guard pin\n"
            b"# see forgejo-runner-guard(8)\n")
    plan = hf.plan(data, PIN)
    assert plan.owned == []
    assert plan.outcomes == [hf.Outcome("forge.azrak.io", "10.1.0.10", hf.UNMANAGED, line=2)]
    assert not plan.changed
    undone = hf.plan(data, unpin_all=True)
    assert undone.text == data.splitlines(True)[0] + data.splitlines(True)[3]
    assert undone.warnings == ["line 1: changed since the tool switched it off; left as it is "
                               "(restore it by hand)"]
    # a pin line with a second comment is still the tool's
    note = b"10.1.0.10\tforge.azrak.io # note # forgejo-runner-guard pin\n"
    assert hf.plan(note, PIN).outcomes == [hf.Outcome("forge.azrak.io", "10.1.0.10", hf.PRESENT, line=1)]


def test_a_record_whose_keep_line_was_deleted_is_left_with_a_warning():
    first = hf.plan(b"203.0.113.5 www forge.azrak.io\n", PIN).text
    pin, keep, record = first.splitlines(True)
    plan = hf.plan(pin + record, unpin_all=True)
    assert plan.text == record and plan.warnings == [
        "line 2: changed since the tool switched it off; left as it is (restore it by hand)"]


def test_request_errors_and_unpin_all_with_names_exactly():
    with pytest.raises(UsageError) as info:
        hf.plan(b"", PIN, unpins=["FORGE.azrak.io"])
    assert str(info.value) == "FORGE.azrak.io is both pinned and unpinned"
    with pytest.raises(UsageError) as info:
        hf.plan(b"", PIN, unpin_all=True)
    assert str(info.value) == "--unpin-all cannot be combined with pins"
    pinned = hf.plan(b"127.0.0.1 localhost\n", PIN).text
    plan = hf.plan(pinned, unpins=["forge.azrak.io"], unpin_all=True)  # the names add nothing
    assert plan.outcomes == [hf.Outcome("forge.azrak.io", None, hf.UNPINNED, removed=[2])]
    same = hf.plan(pinned, PIN)
    assert same.text is pinned and not same.changed


def test_line_endings_and_the_last_line_are_read_from_the_file():
    # the first line decides: CRLF even when the first line is empty
    assert hf.plan(b"\r\n127.0.0.1 localhost\n", PIN).text.endswith(
        b"10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\r\n")
    assert hf.plan(b"127.0.0.1 localhost\n10.0.0.1 a\r\n", PIN).text.endswith(
        b"10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\n")
    # a new line goes before the LAST line when it has no newline
    plan = hf.plan(b"1.1.1.1 a\n2.2.2.2 b\n3.3.3.3 c", PIN)
    assert plan.text == (b"1.1.1.1 a\n2.2.2.2 b\n10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\n"
                         b"3.3.3.3 c")


def test_a_repin_goes_before_its_own_record_not_another_names():
    base = hf.plan(b"192.0.2.1 other.io\n127.0.0.1 localhost\n203.0.113.5 www forge.azrak.io\n",
                   [("other.io", "10.1.0.11"), ("forge.azrak.io", "10.1.0.10")]).text
    lines = base.splitlines(True)
    assert lines[0] == b"10.1.0.11\tother.io # forgejo-runner-guard pin\n"
    forge_pin = lines.index(b"10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\n")
    without = b"".join(lines[:forge_pin] + lines[forge_pin + 1:])
    plan = hf.plan(without, [("other.io", "10.1.0.11"), ("forge.azrak.io", "10.1.0.10")])
    assert plan.text == base


def test_a_second_address_is_readdressed_after_a_first_that_holds():
    old = b"10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\n2001:db8::9\tforge.azrak.io # forgejo-runner-guard pin\n"
    plan = hf.plan(old, [("forge.azrak.io", "10.1.0.10"), ("forge.azrak.io", "2001:db8::10")])
    assert plan.text == old.replace(b"2001:db8::9", b"2001:db8::10")
    assert [o.outcome for o in plan.outcomes] == [hf.PRESENT, hf.REPLACED]


def test_unpin_goes_on_past_a_changed_record():
    one = hf.plan(b"203.0.113.5 forge.azrak.io\n", PIN).text
    pin, record = one.splitlines(True)
    two = hf.plan(b"198.51.100.1 forge.azrak.io\n", PIN).text.splitlines(True)[1]
    changed = record.replace(b"203.0.113.5", b"203.0.113.6")  # CRC no longer matches
    plan = hf.plan(pin + changed + two, unpins=["forge.azrak.io"])
    assert plan.text == changed + b"198.51.100.1 forge.azrak.io\n"
    assert plan.outcomes == [hf.Outcome("forge.azrak.io", None, hf.UNPINNED, removed=[1],
                                        restored=[3])]


def test_a_new_address_goes_after_a_readdressed_line_it_follows():
    old = b"10.1.0.9\tforge.azrak.io # forgejo-runner-guard pin\n203.0.113.5 forge.azrak.io\n"
    plan = hf.plan(old, [("forge.azrak.io", "10.1.0.10"), ("forge.azrak.io", "2001:db8::10")])
    assert plan.text == (b"10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\n"
                         b"2001:db8::10\tforge.azrak.io # forgejo-runner-guard pin\n"
                         b"#forgejo-runner-guard off forge.azrak.io " + _crc(b"203.0.113.5 forge.azrak.io")
                         + b": 203.0.113.5 forge.azrak.io\n")


def test_more_messages_and_pin_forms():
    for name, message in (("X.", "bad host name 'X.': a trailing dot is not allowed (write 'X')"),
                          ("aX.", "bad host name 'aX.': a trailing dot is not allowed (write 'aX')"),
                          ("a-b_c", "bad host name 'a-b_c': character '_' not allowed")):
        with pytest.raises(UsageError) as info:
            pinrules.validate_name(name)
        assert str(info.value) == message
    with pytest.raises(UsageError) as info:
        pinrules.normalize_pins([("a.io", "10.1.0.1"), ("A.io", "10.1.0.2")])
    assert str(info.value) == ("A.io pinned to two IPv4 addresses (10.1.0.1, 10.1.0.2): pin one IPv4 "
                               "and/or one IPv6 address")
    from forgejo_runner_guard.config.config import Pin  # a dataclass: not a tuple

    assert pinrules.normalize_pins([Pin("a.io", "10.1.0.1"), ("a.io", "10.1.0.1"), ("b.io", "10.1.0.2")]) == {
        "a.io": ("a.io", ["10.1.0.1"]), "b.io": ("b.io", ["10.1.0.2"])}


def test_names_in_a_comment_do_not_map():
    for line in (b"203.0.113.5 www # forge.azrak.io # note\n", b"203.0.113.5 www # forge.azrak.io\n"):
        plan = hf.plan(line, PIN)
        assert plan.text == line + b"10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\n"
        assert plan.outcomes == [hf.Outcome("forge.azrak.io", "10.1.0.10", hf.ADDED)]


# ---------------------------------------------------------------- a long line, in place

# What a line's fields were before they were searched in place: the line
# split into a list (the reference the in-place code must agree with).
_LINE_BYTES = st.lists(st.sampled_from(
    [b"forge.azrak.io", b"FORGE.azrak.IO", b"www", b"Www", b"a", b"10.1.0.10", b"::1", b" ", b"  ",
     b"\t", b"\x0b", b"\x0c", b"\r", b"#", b"x#y", b"\x1c", b"forge.azrak.io.x"]), max_size=14)


def _reference_keep_line(orig, names):
    fields = orig.split(b"#", 1)[0].split()
    remaining = [t for t in fields[1:] if t.lower() not in names]
    if not remaining:
        return b""
    eol = b"\r\n" if orig.endswith(b"\r") else b"\n"
    return fields[0] + b"\t" + b" ".join(remaining) + hf.KEEP_TAG + eol


@SETTINGS
@given(_LINE_BYTES, st.sets(st.sampled_from([b"forge.azrak.io", b"www", b"a"]), min_size=1),
       st.integers(1, 20))
def test_fields_searched_in_place_are_the_split_fields(parts, names, window):
    line = b"".join(parts)
    saved = hf._WINDOW
    hf._WINDOW = window  # a line longer than the window: searched across its edges
    try:
        data = b"junk\n" + line + b"\nmore"
        keep = b"".join(bytes(p) for p in hf._keep_pieces(data, 5, 5 + len(line), names))
        assert keep == _reference_keep_line(line, names)
        stop = 5 + len(line.split(b"#", 1)[0])
        spans = [m.span() for m in re.finditer(rb"[^ \t\n\r\x0b\x0c]+", data[:stop])
                 if m.start() >= 5]
        start = spans[0][1] if spans else stop  # after the address
        for name in names:
            assert list(hf._fields(data, (name,), start, stop)) == [
                (a, b) for a, b in spans[1:] if data[a:b].lower() == name]
        assert list(hf._fields(data, tuple(names), start, stop)) == [
            (a, b) for a, b in spans[1:] if data[a:b].lower() in names]
    finally:
        hf._WINDOW = saved


def test_a_12_mb_line_is_planned_in_a_few_times_its_size():
    """One line of 700,000 names with the pinned name among them: it is
    switched off (its keep line and its record: the new file is twice
    the old).  The plan holds the new file and views of the old, never a
    list of the names (which took 300 MB for 12 MB)."""
    import tracemalloc

    names = b" ".join(b"host%d.example.org" % i for i in range(560000))
    data = b"0.0.0.0 " + names + b" forge.azrak.io " + names[:40] + b"\n"
    assert 11e6 < len(data) < 13e6
    tracemalloc.start()
    try:
        plan = hf.plan(data, PIN)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert plan.changed and len(plan.text) > 2 * len(data)  # keep line + record + pin
    assert peak < 2.5 * len(data), peak  # the new file (2x) and little more
    assert hf.plan(plan.text, PIN).text is plan.text  # in sync: the same bytes back
    tracemalloc.start()
    try:
        hf.plan(plan.text, PIN)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.2 * len(plan.text), peak  # in sync: nothing copied


# ------------------------------------------------------------ edges the second mutation run found


@pytest.mark.parametrize("line, keep", [
    (b" 203.0.113.5 www forge.azrak.io", b"203.0.113.5\twww"),  # a leading space
    (b"203.0.113.5 www forge.azrak.io ", b"203.0.113.5\twww"),  # a trailing one
    (b"203.0.113.5 forge.azrak.io www ", b"203.0.113.5\twww"),
    (b"203.0.113.5 forge.azrak.io www # web", b"203.0.113.5\twww"),
    (b"203.0.113.5\tforge.azrak.io\tNAS-X", b"203.0.113.5\tNAS-X"),  # tabs; case and X kept
])
def test_the_keep_line_is_the_address_and_the_other_names(line, keep):
    old = b"127.0.0.1 localhost\n" + line + b"\n"
    plan = hf.plan(old, PIN)
    assert plan.text == (b"127.0.0.1 localhost\n10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin\n"
                         + keep + b" # forgejo-runner-guard keep\n#forgejo-runner-guard off "
                         b"forge.azrak.io " + _crc(line) + b": " + line + b"\n")
    assert hf.plan(plan.text, PIN).text is plan.text
    assert hf.plan(plan.text, unpin_all=True).text == old


def test_pins_of_two_names_on_adjacent_lines_each_go_before_their_own():
    old = b"203.0.113.5 a.example\n203.0.113.6 b-1.example\n"
    plan = hf.plan(old, [("a.example", "10.1.0.10"), ("b-1.example", "10.1.0.11")])
    assert plan.text == (b"10.1.0.10\ta.example # forgejo-runner-guard pin\n"
                         b"#forgejo-runner-guard off a.example " + _crc(b"203.0.113.5 a.example")
                         + b": 203.0.113.5 a.example\n"
                         b"10.1.0.11\tb-1.example # forgejo-runner-guard pin\n"
                         b"#forgejo-runner-guard off b-1.example " + _crc(b"203.0.113.6 b-1.example")
                         + b": 203.0.113.6 b-1.example\n")


def test_a_one_letter_name_at_the_end_of_a_line():
    old = b"127.0.0.1 localhost\n192.0.2.1 a\n"
    plan = hf.plan(old, [("a", "10.1.0.10")])
    assert plan.text == (b"127.0.0.1 localhost\n10.1.0.10\ta # forgejo-runner-guard pin\n"
                         b"#forgejo-runner-guard off a " + _crc(b"192.0.2.1 a") + b": 192.0.2.1 a\n")
    assert plan.outcomes == [hf.Outcome("a", "10.1.0.10", hf.ADDED, switched_off=[2])]


def test_a_needle_at_the_first_byte_of_a_line_is_found():
    """The file's first byte, and the first byte of the line after one
    found: every line holding a needle is a candidate."""
    data = b"forge.azrak.io x\nforge.azrak.io y\n10.0.0.1 z\nFORGE.azrak.io"
    assert hf._candidate_spans(data, [b"forge.azrak.io"]) == [(0, 17), (17, 34), (45, 59)]


def test_a_field_at_the_edge_of_a_window_is_found_once(monkeypatch):
    monkeypatch.setattr(hf, "_WINDOW", 4)
    data = b"www www www"
    assert list(hf._fields(data, (b"www",), 0, len(data))) == [(0, 3), (4, 7), (8, 11)]
