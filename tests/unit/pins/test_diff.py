"""pins/diff.py: --diff's unified diff, the bytes difflib gives for the
changed lines (GNU diff's format), found without copying or splitting the
whole file."""

import difflib
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from forgejo_runner_guard.pins import diff

LINES = st.lists(st.sampled_from([b"a\n", b"b\n", b"c\n", b"a", b"b", b"\n", b"x y\n", b"a\r\n",
                                  b"\r", b"10.1.0.10\tforge.azrak.io\n"]), max_size=14)


def _lines(data):
    return re.findall(rb"[^\n]*\n|[^\n]+\Z", data)  # lines end at b"\n" only, as GNU diff's


def reference(old, new, path):
    """difflib over the lines, trimmed to the changed ones and 3 of
    context, hunks shifted back (what --diff printed before)."""
    a, b = _lines(old), _lines(new)
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    lo = max(0, head - 3)
    a_mid, b_mid = a[lo:len(a) - max(0, tail - 3)], b[lo:len(b) - max(0, tail - 3)]
    name = path.encode()
    out = []
    for line in difflib.diff_bytes(difflib.unified_diff, a_mid, b_mid, name,
                                   name + b" (reconciled)", lineterm=b"\n"):
        if line.startswith(b"@@") and lo:
            line = re.sub(rb"([-+])(\d+)", lambda m: b"%s%d" % (m.group(1), int(m.group(2)) + lo),
                          line, count=2)
        out.append(line if line.endswith(b"\n") else line + b"\n\\ No newline at end of file\n")
    return b"".join(out)


@settings(max_examples=400, deadline=None)
@given(LINES, st.lists(st.tuples(st.integers(0, 60), st.integers(0, 5), LINES), max_size=3),
       st.integers(1, 8))
def test_the_diff_is_difflibs(parts, edits, block):
    old = b"".join(parts)
    new = bytearray(old)
    for at, cut, insert in edits:
        at = min(at, len(new))
        new[at:at + cut] = b"".join(insert)
    new = bytes(new)
    saved = diff._BLOCK
    diff._BLOCK = block  # the head and tail compared a block at a time, across blocks
    try:
        got = diff.unified(old, new, "/etc/hosts")
    finally:
        diff._BLOCK = saved
    assert got == (reference(old, new, "/etc/hosts") if old != new else b"")


def test_a_long_file_with_one_change_shows_its_context():
    old = b"".join(b"10.0.%d.%d\thost%d\n" % (i // 250, i % 250, i) for i in range(200000))
    at = old.index(b"host100000\n")
    new = old[:at] + b"host100000 forge.azrak.io\n" + old[at + len(b"host100000\n"):]
    assert diff.unified(old, new, "h") == reference(old, new, "h")
    assert diff.unified(old, new, "h").count(b"\n") == 2 + 1 + 3 + 2 + 3  # head, hunk, lines


def test_write_streams_the_pieces(tmp_path):
    import io

    out = io.BytesIO()
    diff.write(out, b"a\nb\n", b"a\nc", "x")
    assert out.getvalue() == b"--- x\n+++ x (reconciled)\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n" \
        b"\\ No newline at end of file\n"
