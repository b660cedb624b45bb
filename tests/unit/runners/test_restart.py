"""restart.budget_check: the cooldown and the hourly cap; lock_bound.

Pure unit tests (no Docker): they run on Python 3.9 too."""

import pytest

from forgejo_runner_guard.config.config import RunnerConfig
from forgejo_runner_guard.runners.restart import budget_check, lock_bound

NOW = 1782727500.0  # 2026-06-29T10:05:00Z
MIN = 60.0


def test_no_history_allows():
    assert budget_check([], NOW, 600, 3) is None


@pytest.mark.parametrize(
    "ago,allowed",
    [
        (9 * MIN + 31, True),  # the 5-minute timer's second tick after a restart: allowed
        (9 * MIN + 30, True),  # exactly cooldown - slack: allowed (>=)
        (9 * MIN + 29, False),
        (4 * MIN, False),
        (0, False),
        (10 * MIN, True),
        (3 * 3600, True),
    ],
)
def test_cooldown_with_slack(ago, allowed):
    why = budget_check([NOW - ago], NOW, 600.0, 3)
    assert (why is None) is allowed
    if not allowed:
        assert why.startswith("cooldown: last restart ") and why.endswith(" ago (cooldown 10m)")


def test_cooldown_reason_text():
    assert budget_check([NOW - 240], NOW, 600.0, 3) == "cooldown: last restart 4m ago (cooldown 10m)"
    assert budget_check([NOW - 569], NOW, 600.0, 3) == "cooldown: last restart 9m29s ago (cooldown 10m)"


def test_cooldown_uses_the_latest_restart():
    assert budget_check([NOW - 3000, NOW - 60, NOW - 2000], NOW, 600.0, 5).startswith("cooldown")


def test_slack_and_zero_cooldown():
    assert budget_check([NOW - 580], NOW, 600.0, 3, slack=0.0) is not None
    assert budget_check([NOW - 600], NOW, 600.0, 3, slack=0.0) is None
    assert budget_check([NOW - 1], NOW, 0.0, 3) is None


def test_hourly_cap():
    three = [NOW - 50 * MIN, NOW - 35 * MIN, NOW - 20 * MIN]
    assert budget_check(three, NOW, 600.0, 3) == "hourly cap: 3 restarts in the last hour (max 3)"
    assert budget_check(three, NOW, 600.0, 4) is None
    # the oldest one leaves the hour at exactly 3600 s: allowed again
    aged = [NOW - 3600, NOW - 35 * MIN, NOW - 20 * MIN]
    assert budget_check(aged, NOW, 600.0, 3) is None
    almost = [NOW - 3599, NOW - 35 * MIN, NOW - 20 * MIN]
    assert budget_check(almost, NOW, 600.0, 3) is not None
    assert budget_check([NOW - 20 * MIN], NOW, 600.0, 1) == "hourly cap: 1 restart in the last hour (max 1)"


def test_max_restarts_zero_disables():
    assert budget_check([], NOW, 600.0, 0) == "restarts disabled (max-restarts 0)"


def test_restarts_from_the_future():
    # the clock was set back: far-future entries are ignored, near ones are "just now"
    assert budget_check([NOW + 7200], NOW, 600.0, 1) is None
    assert budget_check([NOW + 30], NOW, 600.0, 3) == "cooldown: last restart 0s ago (cooldown 10m)"


def test_cooldown_zero_with_a_restart_stamped_in_the_future():
    # up to 60 s ahead is "just now" (age 0), not a negative age that a
    # zero cooldown would still refuse
    assert budget_check([NOW + 30], NOW, 0.0, 3) is None
    assert budget_check([NOW + 30], NOW, 0.0, 3, slack=0.0) is None
    assert budget_check([NOW + 30], NOW, 1.0, 3, slack=0.0) == (
        "cooldown: last restart 0s ago (cooldown 1s)")
    assert budget_check([NOW + 61], NOW, 600.0, 1) is None
    assert budget_check([NOW + 60], NOW, 600.0, 1, slack=0.0).startswith("cooldown")


def test_the_cooldown_edge_with_slack():
    # refused while ago < cooldown - slack: 570 s is allowed, 569.999 is not
    assert budget_check([NOW - 570.0], NOW, 600.0, 3) is None
    assert budget_check([NOW - 569.5], NOW, 600.0, 3) == (
        "cooldown: last restart 9m30s ago (cooldown 10m)")


def test_lock_bound_waits_for_the_others_ping_and_drain():
    runners = [RunnerConfig(ping_timeout=20.0, stop_timeout=60.0),
               RunnerConfig(name="b", verify="none", ping_timeout=50.0, stop_timeout=5.0)]
    assert lock_bound(30.0, runners) == 90.0 + 20.0 + 60.0
    assert lock_bound(1.0, runners[1:]) == 10.0 + 0.0 + 5.0  # verify = none: no Ping to wait for


def test_lock_bound_waits_for_the_others_forge_view_too():
    runners = [RunnerConfig(name="a", ping_timeout=20.0, stop_timeout=60.0,
                            forge_token_file="/etc/forgejo-runner-guard/forge-token"),
               RunnerConfig(name="b", verify="none", stop_timeout=5.0)]
    # four calls (its begin_launch), the Ping, three API requests of ping_timeout, the drain
    assert lock_bound(30.0, runners) == 120.0 + 20.0 + 60.0 + 60.0
