r"""logrus's logfmt (TextFormatter without a terminal): its key=value pairs
and Go's %q quoting of a value (pure; runnerlog reads a line's fields with
it).

    pairs('time="..." level=error msg="failed to fetch task" error="x"')
        -> ({"time": "...", "level": "error", "msg": ...}, where it stopped)
    unquote(r'a\tb\x41') -> 'a<TAB>bA'
"""

import re

_PAIR = re.compile(r'\s*([A-Za-z_][\w.\-]*)=(?:"([^"\\]*(?:\\.[^"\\]*)*)(?:"|$)|([^\s"]*))', re.S)
_ESCAPE = re.compile(r'\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)', re.S)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _unescape_one(match):
    code = match.group(1)
    if code[0] in "xuU" and len(code) > 1:
        return chr(int(code[1:], 16))
    if len(code) == 3:
        return chr(int(code, 8))
    return _SIMPLE_ESCAPES.get(code, code)


def unquote(value):
    """Undo Go's %q escaping (logrus quotes values with it)."""
    if "\\" not in value:
        return value
    return _ESCAPE.sub(_unescape_one, value)


def pairs(text, pos=0, fields=None, all_fields=False):
    """Leading key=value pairs of `text` from `pos` -> (fields, end).

    The first of a key wins.  Stops at the first thing that is not a pair,
    so a message's content can never be read as a field of the line; and,
    unless all_fields, as soon as `level` and `msg` are known."""
    fields = {} if fields is None else fields
    end = len(text)
    while pos < end:
        match = _PAIR.match(text, pos)
        if not match or match.end() == pos:
            break
        key, quoted, bare = match.groups()
        if key not in fields:
            fields[key] = unquote(quoted) if quoted is not None else bare
        pos = match.end()
        if not all_fields and "level" in fields and "msg" in fields:
            break
    return fields, pos
