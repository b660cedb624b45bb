"""stamps: Docker's times as exact nanoseconds, and window_start (where
counting starts).

Pure unit tests (no Docker): they run on Python 3.9 too."""

import calendar

import pytest

from forgejo_runner_guard.logs import stamps
from forgejo_runner_guard.logs.stamps import window_start

NOW = 1782727500.0  # 2026-06-29T10:05:00Z


@pytest.mark.parametrize(
    "started,finished,expected",
    [
        (None, None, NOW - 300),  # nothing known: the window
        (NOW - 3600, NOW - 3700, NOW - 300),  # started long ago: the window
        (NOW - 100, None, NOW - 102),  # started 100 s ago: from the start, 2 s margin
        (NOW - 100, NOW - 130, NOW - 102),  # previous run ended well before: margin applies
        (NOW - 100, NOW - 101, NOW - 101),  # margin never reaches back before FinishedAt
        (NOW - 100, NOW - 100.5, NOW - 100.5),
        (NOW - 301, NOW - 400, NOW - 300),  # start just before the window: the window
        (NOW - 301, NOW - 299, NOW - 299),  # finished inside the window (restart took long)
    ],
)
def test_window_start(started, finished, expected):
    assert window_start(NOW, 300.0, started, finished) == expected  # exactly: an epoch is never compared approximately


def test_window_start_margin():
    assert window_start(NOW, 300.0, NOW - 10, None, margin=5.0) == NOW - 15
    assert window_start(NOW, 300.0, NOW - 10, None, margin=0.0) == NOW - 10


# ------------------------------------------------------------ Docker's times <-> nanoseconds

T0 = 1782727200  # 2026-06-29T10:00:00Z


@pytest.mark.parametrize("ns, seconds", [
    (0, 0.0), (1, 1e-9), (999999999, 0.999999999), (T0 * 10 ** 9 + 123456789, T0 + 0.123456789),
    (-(10 ** 9) - 500000000, -1.5),
])
def test_to_seconds(ns, seconds):
    assert stamps.to_seconds(ns) == seconds


@pytest.mark.parametrize("text, ns", [
    (b"2026-06-29T10:00:02.123456789Z", (T0 + 2) * 10 ** 9 + 123456789),
    (b"2026-06-29T10:00:02.000000000Z", (T0 + 2) * 10 ** 9),
    (b"2026-06-29T10:00:02.5Z", (T0 + 2) * 10 ** 9 + 500000000),  # shorter: the regex's way
    (b"2026-06-29T10:00:02,25Z", (T0 + 2) * 10 ** 9 + 250000000),
    (b"2026-06-29T10:00:02.1234567891Z", (T0 + 2) * 10 ** 9 + 123456789),  # beyond ns: cut
    (b"2026-06-29 10:00:02Z", (T0 + 2) * 10 ** 9),
    (b" 2026-06-29T10:00:02Z\n", (T0 + 2) * 10 ** 9),
    ("2026-06-29T12:30:02+0230", (T0 + 2) * 10 ** 9),
    ("2026-06-29T10:00:02.000000001-01:00", (T0 + 3602) * 10 ** 9 + 1),
    (b"2026-06-29T10:00:02.12345678xZ", None),  # a fixed-width form with a bad fraction
    (b"2026-06-29T10:00:0\xff.123456789Z", None),  # not ASCII
    (b"2026-06-29T10:00:02\xffZ", None),
    (b"2026-02-30T10:00:02.123456789Z", (calendar.timegm((2026, 3, 2, 10, 0, 2, 0, 0, 0))) * 10 ** 9
     + 123456789),  # the day is checked against 31 only
    (b"2026-13-29T10:00:02.123456789Z", None),
    (b"2026-06-29T10:00:02.123456789", None),
    (b"", None),
])
def test_parse_ns(text, ns):
    assert stamps.parse_ns(text) == ns


def test_docker_stamps_take_the_cached_way_and_the_cache_is_bounded(monkeypatch):
    """The fixed-width form Docker writes is parsed from slices with its
    seconds cached (4097 at most); other forms go through the regex."""
    monkeypatch.setattr(stamps, "_seconds_cache", {})
    assert stamps.parse_ns(b"2026-06-29T10:00:02.123456789Z") == (T0 + 2) * 10 ** 9 + 123456789
    assert stamps.parse_ns(b"2026-06-29T10:00:02.000000007Z") == (T0 + 2) * 10 ** 9 + 7  # cached
    stamps.parse_ns(b"2026-06-29T10:00:03Z")
    stamps.parse_ns(b"2026-06-29T10:00:04,123456789Z")
    stamps.parse_ns(b"2026-06-29T10:00:05.123456789z")
    stamps.parse_ns(b"2026-99-29T10:00:06.123456789Z")  # not a time: not cached
    assert stamps._seconds_cache == {b"2026-06-29T10:00:02": T0 + 2}
    for sec in range(1, 4097):
        stamps.parse_ns(stamps.format_ns((T0 + 2 + sec) * 10 ** 9))
    assert len(stamps._seconds_cache) == 4097
    stamps.parse_ns(stamps.format_ns((T0 - 1) * 10 ** 9))  # one more: it starts over
    assert stamps._seconds_cache == {b"2026-06-29T09:59:59": T0 - 1}


@pytest.mark.parametrize("ns, text", [
    (0, b"1970-01-01T00:00:00.000000000Z"),
    ((T0 + 2) * 10 ** 9 + 7, b"2026-06-29T10:00:02.000000007Z"),
    ((T0 + 59) * 10 ** 9 + 999999999, b"2026-06-29T10:00:59.999999999Z"),
])
def test_format_ns(ns, text):
    assert stamps.format_ns(ns) == text
    assert stamps.parse_ns(text) == ns


@pytest.mark.parametrize("since", [T0 + 0.5, T0 + 100.25, T0 + 1e-9, 0.0, 1e-9, 0.3, 1e16, 9007199254740993.0])
def test_since_ns_is_the_first_nanosecond_counted(since):
    edge = stamps.since_ns(since)
    assert stamps.to_seconds(edge) >= since > stamps.to_seconds(edge - 1)


def test_since_ns_exactly():
    assert stamps.since_ns(0.5) == 500000000
    assert stamps.since_ns(T0 + 0.5) == T0 * 10 ** 9 + 500000000 - 119  # floats resolve 238 ns here
    assert stamps.since_ns(0.0) == 0
    assert stamps.since_ns(1e16) == (10 ** 16 - 1) * 10 ** 9  # a float this big is 2 s coarse
