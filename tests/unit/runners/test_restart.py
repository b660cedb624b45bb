"""restart.budget_check: the cooldown and the hourly cap; lock_bound;
restart.restart: record first, restart, confirm, on real state files with
a stand-in target.

No Docker: they run on Python 3.9 too."""

import json
import os
import stat
import time

import pytest

from forgejo_runner_guard.config.config import RunnerConfig
from forgejo_runner_guard.report import GuardError
from forgejo_runner_guard.runners import restart, state
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


# ------------------------------------------------------------ record, restart, confirm

class NotDone(GuardError):
    pass


class Target:
    """A restart target that does what it is told and keeps, at begin(),
    what the state file on disk said then."""

    NOT_DONE = (NotDone,)

    def __init__(self, path, fail=None):
        self.path, self.fail = path, fail
        self.on_disk_at_begin = "not begun"

    def begin(self):
        try:
            with open(self.path) as handle:
                self.on_disk_at_begin = json.load(handle)["runners"]
        except OSError as exc:
            self.on_disk_at_begin = type(exc).__name__
        if self.fail is not None:
            raise self.fail

    def look(self):
        return "new run"

    def confirmed(self, st):
        return st == "new run"

    def killed(self, st):
        return None

    def stuck(self, st):
        return "stuck"


def on_disk(state_dir):
    with open(os.path.join(str(state_dir), "state.json")) as handle:
        return json.load(handle)["runners"]


def test_the_restart_is_recorded_on_disk_before_it_is_made(tmp_path):
    history = state.State.load(str(tmp_path), pytest.fail)
    target = Target(str(tmp_path / "state.json"))
    done = restart.restart(target, restart.Record(history, "r"), 5, poll=0)
    assert done.restarted and not done.held and done.errors == []
    (when,) = target.on_disk_at_begin["r"]["restarts"]
    assert target.on_disk_at_begin == {"r": {"restarts": [when], "restarts_total": 1}}
    assert on_disk(tmp_path) == target.on_disk_at_begin and history.history("r") == [when]


def test_a_restart_history_that_cannot_be_kept_holds_the_restart(tmp_path):
    """state.json a directory: it cannot be read nor replaced; the runner
    is not restarted, the error names the file, nothing is changed."""
    (tmp_path / "state.json").mkdir()
    warnings = []
    history = state.State.load(str(tmp_path), warnings.append)
    path = tmp_path / "state.json"
    assert warnings == ["cannot read %s: it is a directory, not a regular file; left as it is: "
                        "history unknown" % path]
    target = Target(str(path))
    done = restart.restart(target, restart.Record(history, "r"), 5, poll=0)
    assert (done.restarted, done.held, target.on_disk_at_begin) == (False, True, "not begun")
    assert done.errors == ["a restart that cannot be recorded first is never made: the restart "
                           "history cannot be read: cannot read %s: it is a directory, not a "
                           "regular file; left as it is" % path]
    assert history.history("r") == [] and history.restarts_total("r") == 0
    assert os.listdir(str(tmp_path)) == ["state.json"] and os.listdir(str(path)) == []
    with pytest.raises(GuardError, match="it could not be read, so it is not replaced"):
        history.save()


def test_a_state_file_that_cannot_be_written_holds_the_restart(tmp_path):
    """A corrupt state.json (an empty history) whose directory cannot take
    the new file: a device node stands where the file goes."""
    os.mknod(str(tmp_path / "state.json"), stat.S_IFCHR | 0o666, os.makedev(1, 7))
    history = state.State(str(tmp_path / "state.json"))  # as load() makes it for a corrupt file
    target = Target(str(tmp_path / "state.json"))
    done = restart.restart(target, restart.Record(history, "r"), 5, poll=0)
    assert (done.restarted, done.held, target.on_disk_at_begin) == (False, True, "not begun")
    assert done.errors == ["a restart that cannot be recorded first is never made: cannot write "
                           "the state file %s: it is a character device, not a regular file; "
                           "left as it is" % (tmp_path / "state.json")]
    assert history.history("r") == [] and history.restarts_total("r") == 0
    assert stat.S_ISCHR(os.lstat(str(tmp_path / "state.json")).st_mode)


def test_a_restart_that_surely_did_not_happen_is_taken_back(tmp_path):
    history = state.State.load(str(tmp_path), pytest.fail)
    earlier = float(int(time.time()) - 7200)
    history.record("r", earlier)
    history.save()
    target = Target(str(tmp_path / "state.json"), fail=NotDone("container r does not exist"))
    done = restart.restart(target, restart.Record(history, "r"), 5, poll=0)
    assert target.on_disk_at_begin["r"]["restarts_total"] == 2  # recorded first
    assert done.errors == ["restart failed: container r does not exist"] and not done.held
    assert on_disk(tmp_path) == {"r": {"restarts": [earlier], "restarts_total": 1}}


def test_a_restart_that_may_have_happened_stays_counted(tmp_path):
    history = state.State.load(str(tmp_path), pytest.fail)
    target = Target(str(tmp_path / "state.json"), fail=GuardError("docker restart timed out"))
    done = restart.restart(target, restart.Record(history, "r"), 5, poll=0)
    assert done.errors == ["restart failed, it may have happened (counted in the restart "
                           "budget): docker restart timed out"]
    assert on_disk(tmp_path)["r"]["restarts_total"] == 1 and not done.restarted


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
