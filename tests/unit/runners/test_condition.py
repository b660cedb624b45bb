"""runners/condition.py: every container and unit state has one outcome.
The unit states are what systemd 252 really prints (tests/fixtures/
systemctl/, made under nspawn by its generate.py), parsed as the watchdog
parses them; the container states are ContainerState values as
engines.py parses `docker inspect` (the real containers in each state:
tests/integration/test_container_states.py)."""

import dataclasses
import os

import pytest

from forgejo_runner_guard.runners import condition
from forgejo_runner_guard.runners.condition import CRASH_LOOP, PAUSED, STOPPED
from forgejo_runner_guard.system import systemctl
from forgejo_runner_guard.system.engines import ContainerState
from helpers.tools import FIXTURES

NOW = 1_800_000_000.0


def container(status, running=False, restart_count=0, started=NOW - 600, exit_code=0):
    return ContainerState(name="r", id="0" * 64, running=running, status=status,
                          exit_code=exit_code, started_at=started, finished_at=None,
                          log_driver="json-file", hosts_path="", restart_count=restart_count)


def test_a_container_running_normally_has_no_condition():
    assert condition.of_container(container("running", True), "r", NOW) is None
    # restarted by its policy once, long ago: running normally
    assert condition.of_container(container("running", True, 1, NOW - 600), "r", NOW) is None
    # never restarted, just started (our own restart resets the count)
    assert condition.of_container(container("running", True, 0, NOW - 1), "r", NOW) is None


@pytest.mark.parametrize("state, kind, phrase, advice", [
    (container("restarting", True, 7, exit_code=1), CRASH_LOOP,
     "container r is in a crash loop (restarting, 7 restarts by its restart policy)",
     "not restarted by the watchdog; `docker logs r` says why it exits, `docker update "
     "--restart=no r` ends the loop"),
    (container("running", True, 3, NOW - 2.4), CRASH_LOOP,
     "container r is in a crash loop (running for 2s, 3 restarts by its restart policy)", None),
    (container("stopped", False, 28, exit_code=1), CRASH_LOOP,  # Podman between runs
     "container r is in a crash loop (stopped, 28 restarts by its restart policy)", None),
    (container("paused", True), PAUSED, "container r is paused",
     "not restarted (the pause is not undone); `docker unpause r` when it should run again"),
    (container("created", started=None), STOPPED, "container r is not running (created, exit code 0)",
     "start it"),
    (container("exited", exit_code=1), STOPPED, "container r is not running (exited, exit code 1)",
     "start it"),
    (container("exited", exit_code=1, restart_count=5), STOPPED,
     "container r is not running (exited, exit code 1, 5 restarts by its restart policy)", None),
    (container("dead", exit_code=137), STOPPED, "container r is not running (dead, exit code 137)",
     None),
    (container("removing"), STOPPED, "container r is not running (removing, exit code 0)", None),
    (container("stopped"), STOPPED, "container r is not running (stopped, exit code 0)", None),
    (container(""), STOPPED, "container r is not running (stopped, exit code 0)", None),
])
def test_every_container_state(state, kind, phrase, advice):
    got = condition.of_container(state, "r", NOW)
    assert (got.kind, got.phrase, got.status, got.restart_count) == \
        (kind, phrase, state.status, state.restart_count)
    if advice is not None:
        assert got.advice == advice
    assert got.tail is None


def test_podman_is_named_in_the_advice():
    got = condition.of_container(container("paused", True), "r", NOW, "podman")
    assert "`podman unpause r`" in got.advice


def show(state):
    with open(os.path.join(FIXTURES, "systemctl", state + ".show")) as handle:
        return systemctl.parse_show(handle.read(), "frg-%s.service" % state)


SHOWN = sorted(name[:-len(".show")] for name in os.listdir(os.path.join(FIXTURES, "systemctl"))
               if name.endswith(".show"))


@pytest.mark.parametrize("state, kind, phrase, advice", [
    ("activating-auto-restart", CRASH_LOOP,
     "unit frg-activating-auto-restart.service is in a crash loop (activating (auto-restart), "
     "0 restarts by Restart=)",
     "not restarted by the watchdog; `journalctl -u frg-activating-auto-restart.service` says "
     "why it exits"),
    ("failed-after-restarts", CRASH_LOOP,
     "unit frg-failed-after-restarts.service is in a crash loop (failed (failed), 3 restarts by "
     "Restart=, ended by its start limit)",
     "not restarted by the watchdog; `journalctl -u frg-failed-after-restarts.service` says why "
     "it exits, then `systemctl reset-failed frg-failed-after-restarts.service`"),
    ("failed", STOPPED, "unit frg-failed.service is failed (failed)", "start it"),
    ("inactive-dead", STOPPED, "unit frg-inactive-dead.service is inactive (dead)", "start it"),
    ("activating-start-pre", STOPPED, "unit frg-activating-start-pre.service is activating "
     "(start-pre)", "not judged until it runs"),
    ("deactivating", STOPPED, "unit frg-deactivating.service is deactivating (stop)",
     "not judged until it runs"),
    ("reloading", STOPPED, "unit frg-reloading.service is reloading (reload)",
     "not judged until it runs"),
    ("active-exited", STOPPED, "unit frg-active-exited.service is active (exited)",
     "not judged until it runs"),
])
def test_every_unit_state(state, kind, phrase, advice):
    unit = show(state)
    got = condition.of_unit(unit)
    assert (got.kind, got.phrase, got.advice, got.status) == (kind, phrase, advice, unit.status)
    assert got.restart_count == unit.n_restarts


def test_the_unit_fixtures_are_all_judged():
    assert SHOWN == sorted(["active-running", "activating-auto-restart", "failed-after-restarts",
                            "failed", "inactive-dead", "activating-start-pre", "deactivating",
                            "reloading", "active-exited"])


def test_a_unit_running_normally_and_a_frozen_one():
    unit = show("active-running")
    assert (unit.freezer, unit.n_restarts, unit.running) == ("running", 0, True)
    assert condition.of_unit(unit) is None
    # FreezerState=frozen needs cgroup v2's freezer (not this machine's): the same
    # unit as systemd reports it once frozen
    for freezer in ("frozen", "freezing"):
        got = condition.of_unit(dataclasses.replace(unit, freezer=freezer))
        assert (got.kind, got.phrase) == (PAUSED, "unit frg-active-running.service is frozen (%s)"
                                          % freezer)
        assert "`systemctl thaw frg-active-running.service`" in got.advice
    thawing = dataclasses.replace(unit, freezer="thawing")
    assert condition.of_unit(thawing) is None


def test_the_new_properties_are_parsed():
    unit = show("failed-after-restarts")
    assert (unit.active_state, unit.sub_state, unit.result, unit.n_restarts, unit.freezer) == \
        ("failed", "failed", "exit-code", 3, "running")
    bare = systemctl.parse_show("LoadState=loaded\nActiveState=inactive\n", "x.service")
    assert (bare.n_restarts, bare.freezer) == (None, "")
    assert "FreezerState" in systemctl.PROPERTIES and "NRestarts" in systemctl.PROPERTIES


# ------------------------------------------------------------ edges the mutation run found untested


def test_one_restart_is_singular():
    got = condition.of_container(container("stopped", False, 1, exit_code=1), "r", NOW)
    assert (got.kind, got.phrase) == (CRASH_LOOP, "container r is in a crash loop (stopped, 1 restart "
                                                  "by its restart policy)")
    got = condition.of_container(container("exited", exit_code=1, restart_count=1), "r", NOW)
    assert got.phrase == "container r is not running (exited, exit code 1, 1 restart by its restart policy)"


@pytest.mark.parametrize("count, age, phrase", [
    (1, 3.0, "container r is in a crash loop (running for 3s, 1 restart by its restart policy)"),
    (2, 9.9, "container r is in a crash loop (running for 10s, 2 restarts by its restart policy)"),
    (2, 10.0, None),  # CRASH_RUN itself: a run that long is a normal run
    # started a moment ahead of `now` (the engine's clock): running for 0s
    (2, -0.4, "container r is in a crash loop (running for 0s, 2 restarts by its restart policy)"),
])
def test_a_young_run_after_a_restart_by_the_policy(count, age, phrase):
    got = condition.of_container(container("running", True, count, NOW - age), "r", NOW, "podman")
    if phrase is None:
        assert got is None
        return
    assert (got.kind, got.phrase, got.status, got.restart_count) == (CRASH_LOOP, phrase, "running", count)
    assert got.advice == ("not restarted by the watchdog; `podman logs r` says why it exits, `podman "
                          "update --restart=no r` ends the loop")


def test_running_without_a_start_time_is_running_normally():
    # Docker's zero StartedAt (engines.parse_time gives None): no age, no crash loop
    assert condition.of_container(container("running", True, 3, None), "r", NOW) is None


def test_a_frozen_unit_exactly():
    unit = dataclasses.replace(show("active-running"), freezer="frozen", n_restarts=2)
    got = condition.of_unit(unit)
    assert got == (PAUSED, "unit frg-active-running.service is frozen (frozen)",
                   "not restarted (the freeze is not undone); `systemctl thaw "
                   "frg-active-running.service` when it should run again", "active (running)", 2, None)


def test_a_unit_its_start_limit_ended_without_restarts_by_restart():
    # started by hand (systemctl start/restart) until StartLimitBurst: failed with
    # Result=start-limit-hit, NRestarts=0 (Restart= never restarted it)
    unit = dataclasses.replace(show("failed"), result="start-limit-hit")
    assert unit.n_restarts == 0
    got = condition.of_unit(unit)
    assert (got.kind, got.phrase, got.advice) == (
        CRASH_LOOP, "unit frg-failed.service is in a crash loop (failed (failed), 0 restarts by "
                    "Restart=, ended by its start limit)",
        "not restarted by the watchdog; `journalctl -u frg-failed.service` says why it exits, then "
        "`systemctl reset-failed frg-failed.service`")
