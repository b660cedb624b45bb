"""stamps.window_start: where counting starts.

Pure unit tests (no Docker): they run on Python 3.9 too."""

import pytest

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
