"""--diff: the unified diff of the hosts file and what a run would write,
as GNU diff writes it (3 lines of context, "\\ No newline at end of file"),
the bytes of difflib's unified_diff.

Memory stays a small multiple of the file, whatever its shape: the common
head and tail are found on the bytes, only the lines between them (and the
context) are looked at, as views of the two versions (never copied, never
split whole), and the diff is written to the stream a piece at a time.
difflib is imported only here: a run without --diff never pays for it.
"""

CONTEXT = 3  # lines of context, as diff -u
_BLOCK = 1 << 16  # bytes compared at a time while looking for the common head/tail


def write(out, old, new, path):
    """Write the diff of `old` and `new` (bytes) to the binary stream `out`;
    nothing when they are equal.  `path` names both sides."""
    for piece in pieces(old, new, path):
        out.write(piece)


def unified(old, new, path):
    """The diff as one bytes object (for tests and small files)."""
    return b"".join(bytes(piece) for piece in pieces(old, new, path))


def pieces(old, new, path):
    """The diff of `old` and `new`, as bytes and views of them."""
    import difflib

    head, tail = _common(old, new)
    a_start = _back(old, head, CONTEXT)
    b_start = a_start  # the head is common to both
    a_end, b_end = _ahead(old, len(old) - tail, CONTEXT), _ahead(new, len(new) - tail, CONTEXT)
    offset = old.count(b"\n", 0, a_start)  # lines before what is compared
    a, b = _lines(old, a_start, a_end), _lines(new, b_start, b_end)
    name = path.encode("utf-8", "surrogateescape")
    started = False
    for group in difflib.SequenceMatcher(None, a, b).get_grouped_opcodes(CONTEXT):
        if not started:
            yield b"--- %s\n+++ %s (reconciled)\n" % (name, name)
            started = True
        first, last = group[0], group[-1]
        yield b"@@ -%s +%s @@\n" % (_range(first[1] + offset, last[2] + offset),
                                    _range(first[3] + offset, last[4] + offset))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                yield from _marked(b" ", a[i1:i2])
                continue
            if tag in ("replace", "delete"):
                yield from _marked(b"-", a[i1:i2])
            if tag in ("replace", "insert"):
                yield from _marked(b"+", b[j1:j2])


def _marked(mark, lines):
    for line in lines:
        yield mark
        yield line
        if line[-1:] != b"\n":
            yield b"\n\\ No newline at end of file\n"


def _range(start, stop):
    """difflib's unified range: 'start,length', one-based, or just the line."""
    beginning, length = start + 1, stop - start
    if length == 1:
        return b"%d" % beginning
    if not length:
        beginning -= 1
    return b"%d,%d" % (beginning, length)


def _common(old, new):
    """-> (head, tail): the bytes of the whole lines that begin, and those
    that end, both versions alike (as many lines as difflib's callers
    trim: the tail never overlaps the head in either version)."""
    head = old.rfind(b"\n", 0, _prefix(old, new)) + 1
    tail = _suffix(old, new, min(len(old), len(new)) - head)
    start = len(old) - tail
    if tail and not (_line_start(old, start) and _line_start(new, len(new) - tail)):
        cut = old.find(b"\n", start)  # the first line inside the common end
        tail = 0 if cut < 0 else len(old) - cut - 1
    return head, tail


def _prefix(old, new):
    """How many bytes both begin with."""
    most = min(len(old), len(new))
    at = 0
    while at + _BLOCK <= most and old[at:at + _BLOCK] == new[at:at + _BLOCK]:
        at += _BLOCK
    while at < most and old[at] == new[at]:
        at += 1
    return at


def _suffix(old, new, most):
    """How many bytes (at most `most`) both end with."""
    back = 0
    while back + _BLOCK <= most and (old[len(old) - back - _BLOCK:len(old) - back]
                                     == new[len(new) - back - _BLOCK:len(new) - back]):
        back += _BLOCK
    while back < most and old[len(old) - back - 1] == new[len(new) - back - 1]:
        back += 1
    return back


def _line_start(data, at):
    return at == 0 or data[at - 1] == 10  # b"\n"


def _back(data, at, count):
    """The start of the line `count` lines before the line starting at `at`."""
    for _ in range(count):
        if at == 0:
            break
        at = data.rfind(b"\n", 0, at - 1) + 1
    return at


def _ahead(data, at, count):
    """The end of the `count`-th line from `at` (a line start)."""
    for _ in range(count):
        if at >= len(data):
            break
        cut = data.find(b"\n", at)
        at = len(data) if cut < 0 else cut + 1
    return at


def _lines(data, start, end):
    """The lines of data[start:end], each a view with its newline."""
    view = memoryview(data)
    lines = []
    while start < end:
        cut = data.find(b"\n", start, end)
        stop = end if cut < 0 else cut + 1
        lines.append(view[start:stop])
        start = stop
    return lines
