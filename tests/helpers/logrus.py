"""The runners' real log bytes (tests/fixtures/logrus/, made by `make
fixtures` with Debian's logrus; see generate.py there) and each line's
ground truth."""

import glob
import os

from forgejo_runner_guard.logs.runnerlog import FETCH_ERROR, JOB_START, OTHER, TERMINAL

from helpers.tools import FIXTURES

HERE = os.path.join(FIXTURES, "logrus")
KINDS = {"fetch-error": FETCH_ERROR, "job-start": JOB_START, "other": OTHER, "terminal": TERMINAL}
CONFIGS = sorted(os.path.basename(p)[: -len(".truth")] for p in glob.glob(os.path.join(HERE, "*.truth")))
TEXT = [c for c in CONFIGS if c.endswith("-text")]
TTY = [c for c in CONFIGS if c.endswith("-tty")]
# the terminal states (gen/terminal.go), "terminal/SCENARIO-text" and "-tty"
SCENARIOS = sorted("terminal/" + os.path.basename(p)[: -len(".truth")]
                   for p in glob.glob(os.path.join(HERE, "terminal", "*.truth")))


def truth(config):
    """-> [(stream, docker stamp bytes, level, kind, class, note)]"""
    rows = []
    with open(os.path.join(HERE, config + ".truth"), encoding="ascii") as handle:
        for line in handle:
            stream, when, level, kind, cls, note = line.split()
            rows.append((stream, docker_stamp(when), level, KINDS[kind], cls, note))
    return rows


def docker_stamp(rfc3339):
    """'2026-06-29T10:00:00.1Z' -> b'2026-06-29T10:00:00.100000000Z'"""
    head, _, frac = rfc3339.rstrip("Z").partition(".")
    return ("%s.%sZ" % (head, (frac + "000000000")[:9])).encode()


def physical_lines(data):
    assert data == b"" or data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def stream_lines(config):
    """[(truth row, line bytes)] of what the watchdog reads: a text
    configuration's stderr, a TTY configuration's one stream."""
    rows = truth(config)
    if config.endswith("-tty"):
        with open(os.path.join(HERE, config + ".tty"), "rb") as handle:
            lines = physical_lines(handle.read())
        assert all(line.endswith(b"\r") for line in lines)  # the pty's CR LF, as Docker's tty gives
    else:
        with open(os.path.join(HERE, config + ".stderr"), "rb") as handle:
            lines = physical_lines(handle.read())
        rows = [r for r in rows if r[0] == "stderr"]
    assert len(lines) == len(rows), config
    return list(zip(rows, lines))


def docker_logs(pairs):
    """`docker logs --timestamps` of those lines."""
    return b"".join(row[1] + b" " + line + b"\n" for row, line in pairs)


def flavour_level(config):
    flavour, level, _ = config.split("-")
    return flavour, level


def ambiguous(config):
    """Where job output reaches the stream the watchdog reads and cannot be
    told apart: a TTY at debug or trace, or an old runner's TTY at any level."""
    flavour, level = flavour_level(config)
    return config.endswith("-tty") and (level in ("debug", "trace") or flavour == "legacy")
