"""`journalctl -o json` lines as systemd 252 prints them, for the journal
reader's tests (logs/journal.py) and the systemd backend's."""

import json


def entry(usec, message, compact=True, **extra):
    """One line of `journalctl -o json --output-fields=MESSAGE`: a byte
    array for a MESSAGE that is not printable UTF-8 (invalid bytes, ANSI
    colour codes), compact (",", ":") separators unless compact=False."""
    if isinstance(message, bytes):
        try:
            text = message.decode("utf-8")
            printable = all(c >= " " or c == "\t" for c in text)
        except UnicodeDecodeError:
            printable = False
        message = text if printable else list(message)
    doc = {"__CURSOR": "s=1;i=%x" % usec, "__REALTIME_TIMESTAMP": str(usec),
           "__MONOTONIC_TIMESTAMP": "5", "_BOOT_ID": "b" * 32, "MESSAGE": message}
    doc.update(extra)
    if compact:
        return json.dumps(doc, separators=(",", ":")).encode()
    return json.dumps(doc).encode()


def journal(*entries):
    """Entries as journalctl's output: one a line."""
    return b"".join(e + b"\n" for e in entries)


def sec(seconds):
    """Epoch seconds -> the journal's microseconds."""
    return int(seconds * 1e6)
