"""The hosts file: parse, validate and plan pins.  Pure: no I/O.

A hosts file is handled as bytes.  Only the lines that mention a name
this run cares about (a case-insensitive substring search over the whole
file) or the marker `forgejo-runner-guard` are parsed at all; every other
byte is copied through untouched, so the round trip is byte-identical
(CRLF, tabs, unparseable lines, a missing final newline) and a
200,000-line ad-block list costs one pass of C-level searching.

The lines the tool writes or switches off
-----------------------------------------
Every such line carries the string ``forgejo-runner-guard``:

owned pin line (one name, one address)::

    10.1.0.10<TAB>forge.azrak.io # forgejo-runner-guard pin

switched-off record: the admin's original line, byte for byte, after a
prefix naming the pinned names it was switched off for and the CRC-32 of
the original line (without its newline; 8 hex digits), so a later
`--unpin` can tell whether the admin changed it since (a check against
edits, not against an adversary: root owns the file either way)::

    #forgejo-runner-guard off forge.azrak.io 1a2b3c4d: 203.0.113.5 forge.azrak.io www

keep line: when the switched-off line carried other names too (rule 3),
they stay active on a line placed right before the record::

    203.0.113.5<TAB>www # forgejo-runner-guard keep

The keep line is derived from the record (the original address and the
original names minus the record's names), so `--unpin` restores the
original exactly by dropping the keep line and the record's prefix.
New pin lines go right before the first line they switched off, or else
at the end of the file (before a last line that has no newline, so that
line keeps its missing newline).

PURGE_SED
---------
The same clean-up as `--unpin-all` as a POSIX sed program, for the
package's postrm (which runs after this library is gone)::

    LC_ALL=C sed -e "$PURGE_SED" /etc/hosts

It deletes every pin and keep line and strips the prefix of every
record.  On a file only this tool has edited it gives exactly the bytes
`--unpin-all` gives (tested).  It differs only where an admin edited the
tool's lines by hand: `--unpin-all` then leaves the changed record (and
its keep line) and warns, sed restores blindly.  Run it with LC_ALL=C so
that bytes that are not valid UTF-8 are matched as bytes.

Stable interfaces: PURGE_SED, plan() (Plan.owned: the pins the tool owns in
the old file); the rules of a pin are config/pinrules.py's.
"""

import collections
import dataclasses
import ipaddress
import re
import zlib
from typing import List, Optional, Tuple

from ..config.pinrules import (
    address_text,
    host_ip,
    normalize_pins,
    validate_name,
)
from ..report import UsageError

MARKER = b"forgejo-runner-guard"
PIN_TAG = b" # forgejo-runner-guard pin"
KEEP_TAG = b" # forgejo-runner-guard keep"
OFF_PREFIX = b"#forgejo-runner-guard off "

# The purge program (see the module docstring).  Newline-separated POSIX
# sed; the line structure matters, keep it as it is.
PURGE_SED = (
    "/^#forgejo-runner-guard off [^:]*: /!{\n"
    "/# forgejo-runner-guard pin[[:space:]]*$/d\n"
    "/# forgejo-runner-guard keep[[:space:]]*$/d\n"
    "}\n"
    "s/^#forgejo-runner-guard off [^:]*: //\n"
)

# The same patterns in Python, over a line's bytes without its "\n".
# [[:space:]] in the C locale is exactly these six bytes.
_WS = rb"[ \t\n\v\f\r]*\Z"
_PIN_RE = re.compile(rb"# forgejo-runner-guard pin" + _WS)
_KEEP_RE = re.compile(rb"# forgejo-runner-guard keep" + _WS)
_OFF_LOOSE = re.compile(rb"#forgejo-runner-guard off [^:]*: ")
_OFF_STRICT = re.compile(rb"#forgejo-runner-guard off ([^\s:,#]+(?:,[^\s:,#]+)*) ([0-9a-f]{8}): ")


# Outcomes, one per pin (name, address) or per unpinned name.
PRESENT = "present"  # the tool's own line is there; nothing to do
UNMANAGED = "unmanaged"  # a line the admin wrote already does it; left alone
ADDED = "added"  # a new pin line
REPLACED = "replaced"  # the tool's line for this name had another address
CORRECTED = "corrected"  # the mapping was there, other mappings were switched off
UNPINNED = "unpinned"  # --unpin: pin line removed, switched-off lines restored
NOT_PINNED = "not-pinned"  # --unpin of a name the tool has not pinned
UNWANTED = "unwanted"  # a pin in the file that this run does not ask for (left)

CHANGING = frozenset((ADDED, REPLACED, CORRECTED, UNPINNED))


# ---------------------------------------------------------------- results


@dataclasses.dataclass
class Outcome:
    """What the plan does for one pin (name, address) or one unpinned name."""

    name: str
    address: Optional[str]
    outcome: str
    line: Optional[int] = None  # the pin's line in the old file (1-based), if any
    switched_off: List[int] = dataclasses.field(default_factory=list)  # old line numbers
    removed: List[int] = dataclasses.field(default_factory=list)  # old lines dropped (tool's own)
    restored: List[int] = dataclasses.field(default_factory=list)  # old record lines restored


@dataclasses.dataclass
class Plan:
    text: bytes  # the new file (the same object as the old one when unchanged)
    changed: bool
    outcomes: List[Outcome]
    warnings: List[str]
    owned: List[Tuple[str, str, int]]  # pins the tool owns in the OLD file: (name, address, line)


# ---------------------------------------------------------------- parsing


_Span = collections.namedtuple("_Span", "start end lineno eol")  # one line of the file


class _Pin:
    """A valid owned pin line."""

    kind = "pin"

    def __init__(self, span, body, ip, name):
        self.start, self.end, self.lineno, self.eol = span
        self.body, self.ip, self.name = body, ip, name
        self.lname = name.lower()
        self.delete = False
        self.new_ip = None


class _Group:
    """A mapping line of the admin's, active (an entry: `was_off` empty) or
    switched off for the names `was_off` (a record, with its keep line).
    `off` is the set of names switched off after this run.

    The line is data[lo:hi] (after a record's prefix, without the newline),
    never copied nor split into a list of fields (tens of bytes a field: a
    12 MB line took hundreds of MB): its fields are searched in place."""

    def __init__(self, span, data, lo, hi, was_off, kind):
        self.start, self.end, self.lineno, self.eol = span
        self.data, self.lo, self.hi = data, lo, hi
        self.was_off = frozenset(was_off)
        self.off = set(was_off)
        self.kind = kind  # "entry" or "record"
        self.keep = None  # the bound keep line (start, end) of a record
        self.frozen = False  # a record the admin changed: never touched
        comment = data.find(b"#", lo, hi)
        self.stop = hi if comment < 0 else comment  # the fields end at a comment
        first = _FIELD.match(data, lo, self.stop)
        self.ip = host_ip(first.group(1)) if first else None
        self.names_at = first.end() if self.ip is not None else self.stop
        self.delete = False  # --unpin-all: a stray tool line to drop

    @property
    def orig(self):
        """The original line, a view of it."""
        return memoryview(self.data)[self.lo:self.hi]

    def active(self, lname):
        return (not self.frozen and self.ip is not None and lname not in self.off
                and next(_fields(self.data, (lname,), self.names_at, self.stop), None) is not None)

    def render(self):
        """The group's new bytes, as a list of pieces (joined once, by _render)."""
        if self.delete:
            return []
        if not self.off:
            return [self.orig, self.eol]
        names = b",".join(sorted(self.off))
        return (_keep_pieces(self.data, self.lo, self.hi, self.off)
                + [OFF_PREFIX + names + b" " + _digest(self.orig) + b": ", self.orig, self.eol])


def _digest(orig):
    return b"%08x" % zlib.crc32(orig)


_SPACE = b" \t\n\r\x0b\x0c"  # what bytes.split() splits on: ASCII whitespace
_FIELD = re.compile(rb"[ \t\n\r\x0b\x0c]*([^ \t\n\r\x0b\x0c]+)")
_TO_SPACE = bytes.maketrans(_SPACE, b" " * len(_SPACE))
_IRREGULAR = (b"\t", b"\n", b"\r", b"\x0b", b"\x0c", b"  ")  # fields not one space apart
_WINDOW = 1 << 20  # bytes of a long line lowered at a time


def _fields(data, names, start, stop):
    """(start, end) of each whitespace-separated field of data[start:stop]
    that is one of `names` (lower-case bytes), in any case, in order.  A
    long line is lowered a window at a time: no copy of it."""
    longest = max(len(n) for n in names)
    at = start
    while at < stop:
        upto = min(stop, at + _WINDOW)
        low = data[at:min(stop, upto + longest)].lower()
        found = []
        for name in names:
            pos = low.find(name)
            while 0 <= pos < upto - at:
                begin, end = at + pos, at + pos + len(name)
                if (begin == start or data[begin - 1] in _SPACE) and (end == stop or data[end] in _SPACE):
                    found.append((begin, end))
                pos = low.find(name, pos + 1)
        yield from sorted(found)
        at = upto


def _keep_pieces(data, lo, hi, names):
    """The keep line of data[lo:hi] switched off for `names` (lower-case
    bytes) as pieces ([] if no name stays): the address, a tab, the other
    fields one space apart, the keep tag (what splitting and joining the
    fields gives).  A line already one space apart is not copied: views."""
    eol = b"\r\n" if data.endswith(b"\r", lo, hi) else b"\n"
    comment = data.find(b"#", lo, hi)
    stop = hi if comment < 0 else comment
    # (one trailing space needs no copy: the last piece's is dropped below)
    if any(data.find(c, lo, stop) >= 0 for c in _IRREGULAR) or data.startswith(b" ", lo, stop):
        fields = data[lo:stop].translate(_TO_SPACE)  # tabs, runs of spaces: one copy
        while b"  " in fields:
            fields = fields.replace(b"  ", b" ")
        data, lo = fields.strip(b" "), 0
        stop = len(data)
    space = data.find(b" ", lo, stop)
    if space < 0:
        return []
    view = memoryview(data)
    pieces, at = [], space + 1
    for begin, end in _fields(data, names, at, stop):
        if begin > at:
            pieces.append(view[at:begin])  # the fields before it, and a space
        at = end + 1
    if at < stop:
        pieces.append(view[at:stop])
    if not pieces:
        return []
    if pieces[-1][-1:] == b" ":  # the space before a dropped last field
        pieces[-1] = pieces[-1][:-1]
    return [data[lo:space] + b"\t"] + pieces + [KEEP_TAG + eol]


def _same(pieces, view):
    """Do the pieces, one after another, hold the bytes of `view`?  (No copies.)"""
    at = 0
    for piece in pieces:
        if view[at:at + len(piece)] != piece:
            return False
        at += len(piece)
    return at == len(view)


def _as_bytes(text):
    if isinstance(text, str):
        return text.encode("utf-8", "surrogateescape")
    return bytes(text)


_CHUNK = 1 << 14
_NOT_NL = bytes(range(10)) + bytes(range(11, 256))  # every byte but b"\n"


def _candidate_spans(data, needles):
    """Sorted (start, end) of every line containing one of `needles`
    (lower-case bytes), case-insensitively; end includes the newline."""
    return _scan(data, needles, _CHUNK)[0]


def _scan(data, needles, size):
    """-> (spans, newlines): the candidate spans (see _candidate_spans) and
    newlines[k], the number of b"\n" in data[:k * size].

    The file is lowered a chunk of `size` bytes at a time (overlapping by
    the longest needle), so the search costs no second copy of the file,
    and a small chunk stays in the CPU cache for the searches.  Newlines
    are counted in the same pass, by deleting every other byte of the
    chunk (faster than bytes.count for one byte)."""
    needles = list(needles)
    overlap = max(len(n) for n in needles) - 1 if needles else 0
    starts = set()
    covered = dict.fromkeys(needles, 0)  # per needle: data[:covered] is in lines found
    newlines, total = [], 0
    for base in range(0, len(data), size):
        chunk = data[base:base + size + overlap].lower()
        newlines.append(total)
        total += len(chunk.translate(None, _NOT_NL))
        if overlap:
            total -= data.count(b"\n", base + size, base + size + overlap)
        for needle in needles:
            pos = chunk.find(needle, max(0, covered[needle] - base))
            while pos >= 0:
                starts.add(data.rfind(b"\n", 0, base + pos) + 1)
                end = data.find(b"\n", base + pos)
                covered[needle] = len(data) if end < 0 else end + 1  # the rest of that line
                pos = chunk.find(needle, covered[needle] - base)
        del chunk
    spans = []
    for start in sorted(starts):
        end = data.find(b"\n", start)
        spans.append((start, len(data) if end < 0 else end + 1))
    return spans, newlines


def _parse(data, needles):
    """-> (pins, groups, tagged) for the candidate lines, in file order.

    tagged: entry groups whose line carries a keep or pin tag but is not
    (or no longer) as the tool wrote it."""
    pins, groups, items = [], [], []
    size = _CHUNK
    spans, newlines = _scan(data, needles, size)
    for start, end in spans:
        base = start - start % size
        lineno = 1 + newlines[base // size] + data.count(b"\n", base, start)
        # a view of the line, not a copy: a 12 MB line stays one copy, the file's
        eol = b"\n" if data.endswith(b"\n", start, end) else b""
        hi = end - len(eol)
        body = memoryview(data)[start:hi]
        span = _Span(start, end, lineno, eol)
        if _OFF_LOOSE.match(body):
            match = _OFF_STRICT.match(body)
            if match:
                names = set(match.group(1).lower().split(b","))
                group = _Group(span, data, start + match.end(), hi, names, "record")
                group.frozen = match.group(2) != _digest(group.orig)
            else:
                group = _Group(span, data, start, hi, (), "record")
                group.frozen = True
            items.append(group)
            continue
        pin_tag = _PIN_RE.search(body)
        if pin_tag:
            fields = data[start:data.find(b"#", start, hi)].split(None, 2)  # the tag's '#' first
            ip = host_ip(fields[0]) if len(fields) == 2 else None
            if ip is not None:
                try:
                    name = validate_name(fields[1].decode("ascii"))
                except (UsageError, UnicodeDecodeError):
                    name = None
                if name is not None:
                    items.append(_Pin(span, bytes(body), ip, name))
                    continue
        group = _Group(span, data, start, hi, (), "entry")
        group.tag = "pin" if pin_tag else ("keep" if _KEEP_RE.search(body) else None)
        items.append(group)
    _bind(items, data)
    for item in items:
        if isinstance(item, _Pin):
            pins.append(item)
        elif not getattr(item, "bound", False):
            groups.append(item)
    return pins, groups


def _bind(items, data):
    """Bind keep lines to the records right after them (or freeze the record)."""
    previous = None
    for item in items:
        if isinstance(item, _Group) and item.kind == "record" and not item.frozen:
            expected = _keep_pieces(data, item.lo, item.hi, item.was_off)
            if expected:
                if (previous is not None and getattr(previous, "tag", None) == "keep"
                        and previous.end == item.start
                        and _same(expected, memoryview(data)[previous.start:previous.end])):
                    item.keep = previous
                    previous.bound = True
                else:
                    item.frozen = True  # its keep line is gone or changed
        previous = item


# ---------------------------------------------------------------- planning


def plan(text, pins=None, unpins=(), unpin_all=False):
    """Plan a run over the hosts file `text` (bytes or str).

    pins: the pins wanted by this run, [(name, address)] or config.Pin;
      None means this run does not reconcile pins (an unpin-only run) and
      so reports no pin as unwanted.
    unpins: names to unpin; unpin_all: remove every pin the tool owns.
    Raises UsageError for bad names/addresses or contradictory requests.
    Returns a Plan; Plan.changed is False exactly when the file is in sync
    (then Plan.text is the very same bytes).
    """
    data = _as_bytes(text)
    wanted = normalize_pins(pins) if pins is not None else None
    unpin_names = collections.OrderedDict()
    for name in unpins:
        unpin_names.setdefault(validate_name(name).lower(), name)
    if wanted:
        both = [n for n in unpin_names if n in wanted]
        if both:
            raise UsageError("%s is both pinned and unpinned" % unpin_names[both[0]])
        if unpin_all:
            raise UsageError("--unpin-all cannot be combined with pins")
    needles = set(wanted or ()) | set(unpin_names)
    needles = {n.encode("ascii") for n in needles} | {MARKER}
    planner = _Planner(data, *_parse(data, needles))
    if unpin_all:
        planner.unpin_all()
    for lname, name in ([] if unpin_all else unpin_names.items()):
        planner.unpin(lname, name)
    if wanted is not None:
        for lname, (name, addresses) in wanted.items():
            planner.pin(lname, name, addresses)
        planner.unwanted(wanted, unpin_names)
    new = planner.render()
    changed = new != data
    return Plan(new if changed else data, changed, planner.outcomes, planner.warnings,
                planner.owned)


class _Planner:
    """One plan over the parsed file: the owned pin lines and the admin's
    lines (groups) are marked (deleted, readdressed, switched off or back
    on) and the results accumulate in outcomes, warnings and inserts."""

    def __init__(self, data, pin_lines, groups):
        self.data, self.pin_lines, self.groups = data, pin_lines, groups
        self.owned = [(p.name, address_text(p.ip), p.lineno) for p in pin_lines]
        first = data.find(b"\n")
        self.eol = b"\r\n" if first > 0 and data[first - 1:first] == b"\r" else b"\n"
        self.end = len(data)  # where a new pin line goes when nothing is switched off
        if data and not data.endswith(b"\n"):
            self.end = data.rfind(b"\n") + 1  # before a last line without newline
            for g in groups:  # ... and before its keep line, when it is a record
                if g.start == self.end and g.keep is not None:
                    self.end = g.keep.start
        self.outcomes, self.warnings = [], []
        self.inserts = collections.defaultdict(list)  # offset -> [bytes]

    def unpin_all(self):
        names = collections.OrderedDict()
        for p in self.pin_lines:
            p.delete = True
            names.setdefault(p.lname, Outcome(p.name, None, UNPINNED)).removed.append(p.lineno)
        groups = self.groups
        for i, g in enumerate(groups):
            if g.kind == "record":
                if g.frozen:
                    self.warnings.append(_changed_warning(g))
                    continue
                for n in sorted(g.off):
                    n = n.decode("ascii", "replace")
                    names.setdefault(n, Outcome(n, None, UNPINNED)).restored.append(g.lineno)
                g.off.clear()
            elif getattr(g, "tag", None) is not None:
                following = groups[i + 1] if i + 1 < len(groups) else None
                if g.tag == "keep" and following is not None and following.frozen:
                    # the keep line of a record left alone, even one the admin
                    # moved away from it: what it maps stays mapped
                    continue
                g.delete = True
        self.outcomes.extend(names.values())

    def unpin(self, lname, name):
        outcome = Outcome(name, None, NOT_PINNED)
        for p in self.pin_lines:
            if p.lname == lname and not p.delete:
                p.delete = True
                outcome.removed.append(p.lineno)
        for g in self.groups:
            if g.kind == "record" and lname.encode("ascii") in g.off:
                if g.frozen:
                    self.warnings.append(_changed_warning(g))
                    continue
                g.off.discard(lname.encode("ascii"))
                outcome.restored.append(g.lineno)
        if outcome.removed or outcome.restored:
            outcome.outcome = UNPINNED
        self.outcomes.append(outcome)

    def pin(self, lname, name, addresses):
        key = lname.encode("ascii")
        ips = [ipaddress.ip_address(a) for a in addresses]
        own = [p for p in self.pin_lines if p.lname == lname and not p.delete]
        mapped = [g for g in self.groups if g.active(key)]
        chosen, replaced, spare = _choose(ips, own, mapped)
        removed, switched, first = [], [], None
        for p in spare:
            p.delete = True
            removed.append(p.lineno)
        for g in mapped:
            if g in chosen.values():
                continue
            g.off.add(key)
            switched.append(g.lineno)
            first = g if first is None else first
        if first is None:
            first = next((g for g in self.groups if g.kind == "record" and key in g.off), None)
        at = self.end if first is None else (first.keep.start if first.keep is not None
                                             else first.start)
        changed_other = bool(switched or removed)
        results = []
        for address, ip in zip(addresses, ips):
            line = chosen.get(ip)
            if line is None:
                self.inserts[at].append(address.encode("ascii") + b"\t" + name.encode("ascii")
                                        + PIN_TAG + self.eol)
                result = Outcome(name, address, ADDED)
            elif ip in replaced:
                result = Outcome(name, address, REPLACED, line=line.lineno)
            elif changed_other:
                result = Outcome(name, address, CORRECTED, line=line.lineno)
            else:
                result = Outcome(name, address, PRESENT if isinstance(line, _Pin) else UNMANAGED,
                                 line=line.lineno)
            results.append(result)
        # the switched-off and removed lines are reported once, on the first outcome
        results[0].switched_off, results[0].removed = switched, removed
        self.outcomes.extend(results)

    def unwanted(self, wanted, unpin_names):
        """Report the pins in the file that this run does not ask for."""
        for p in self.pin_lines:
            if not p.delete and p.lname not in wanted and p.lname not in unpin_names:
                self.outcomes.append(Outcome(p.name, address_text(p.ip), UNWANTED, line=p.lineno))

    def render(self):
        return _render(self.data, self.pin_lines, self.groups, self.inserts)


def _changed_warning(group):
    return ("line %d: changed since the tool switched it off; left as it is "
            "(restore it by hand)" % group.lineno)


def _choose(ips, own, mapped):
    """-> (chosen, replaced, spare) for pinning to `ips`: the line that
    will map each address (the tool's own line of it, else an admin's
    line that already maps it, else a spare own line readdressed, same
    family first), the readdressed ones, and the own lines left over."""
    chosen = {}
    for ip in ips:
        line = next((p for p in own if p.ip == ip), None)
        if line is None:
            line = next((g for g in mapped if g.ip == ip), None)
        if line is not None:
            chosen[ip] = line
    spare = [p for p in own if p not in chosen.values()]
    replaced = {}
    for ip in ips:
        if ip in chosen or not spare:
            continue
        line = next((p for p in spare if p.ip.version == ip.version), spare[0])
        spare.remove(line)
        line.new_ip = ip
        chosen[ip] = line
        replaced[ip] = line
    return chosen, replaced, spare


def _render(data, pin_lines, groups, inserts):
    edits = []  # (start, end, [pieces of bytes])
    for p in pin_lines:
        if p.delete:
            edits.append((p.start, p.end, []))
        elif p.new_ip is not None and p.new_ip != p.ip:
            line_eol = (b"\r" if p.body.endswith(b"\r") else b"") + p.eol
            edits.append((p.start, p.end, [address_text(p.new_ip).encode("ascii") + b"\t"
                                           + p.name.encode("ascii") + PIN_TAG + line_eol]))
    for g in groups:
        if g.delete or g.off != g.was_off:
            start = g.keep.start if g.keep is not None else g.start
            edits.append((start, g.end, g.render()))
    for at, lines in inserts.items():
        for start, end, _ in edits:
            if start < at < end:  # never inside a replaced span
                at = start
        edits.append((at, at, lines))
    if not edits:
        return data
    edits.sort(key=lambda e: (e[0], e[1] != e[0]))  # inserts before a replacement at one offset
    view = memoryview(data)  # slices of a view copy nothing
    out, pos = [], 0
    for start, end, pieces in edits:
        out.append(view[pos:start])
        out.extend(pieces)  # joined once, below: a long line is copied once more, not thrice
        pos = end
    out.append(view[pos:])
    return b"".join(out)
