"""runners/state.py: the restart history file, read back whatever it holds.

A damaged file is one warning in plain words, never Python's own text
('NoneType' object is not subscriptable), and an empty history."""

import json

import pytest
from helpers.tools import plain

from forgejo_runner_guard.runners import state

CORRUPT = [
    (b"", "not JSON: Expecting value: line 1 column 1 (char 0)"),
    (b"\xff\xfe", "not UTF-8 text"),
    (b"null", "not a JSON object"),
    (b"[]", "not a JSON object"),
    (b'"runners"', "not a JSON object"),
    (b"3", "not a JSON object"),
    (b"{}", 'no "runners"'),
    (b'{"runners": null}', '"runners" is not a JSON object'),
    (b'{"runners": []}', '"runners" is not a JSON object'),
    (b'{"runners": 3}', '"runners" is not a JSON object'),
    (b'{"runners": {"r": null}}', "runner r: not a JSON object"),
    (b'{"runners": {"r": []}}', "runner r: not a JSON object"),
    (b'{"runners": {"r": "x"}}', "runner r: not a JSON object"),
    (b'{"runners": {"r": {"restarts": null}}}', 'runner r: "restarts" is not a list of times'),
    (b'{"runners": {"r": {"restarts": "123"}}}', 'runner r: "restarts" is not a list of times'),
    (b'{"runners": {"r": {"restarts": {"a": 1}}}}', 'runner r: "restarts" is not a list of times'),
    (b'{"runners": {"r": {"restarts": [null]}}}', 'runner r: "restarts" is not a list of times'),
    (b'{"runners": {"r": {"restarts": ["x"]}}}', 'runner r: "restarts" is not a list of times'),
    (b'{"runners": {"r": {"restarts": [[1]]}}}', 'runner r: "restarts" is not a list of times'),
    (b'{"runners": {"r": {"restarts": [true]}}}', 'runner r: "restarts" is not a list of times'),
    (b'{"runners": {"r": {"restarts": [NaN]}}}', 'runner r: "restarts" is not a list of times'),
    (b'{"runners": {"r": {"restarts": [Infinity]}}}', 'runner r: "restarts" is not a list of times'),
    (b'{"runners": {"r": {"restarts_total": null}}}',
     'runner r: "restarts_total" is not a whole number'),
    (b'{"runners": {"r": {"restarts_total": "7"}}}',
     'runner r: "restarts_total" is not a whole number'),
    (b'{"runners": {"r": {"restarts_total": 7.5}}}',
     'runner r: "restarts_total" is not a whole number'),
    (b'{"runners": {"r": {"restarts_total": false}}}',
     'runner r: "restarts_total" is not a whole number'),
    (b'{"runners": {"r": {"restarts_total": [7]}}}',
     'runner r: "restarts_total" is not a whole number'),
]


@pytest.mark.parametrize("data, why", CORRUPT)
def test_a_damaged_state_file_is_one_plain_warning(tmp_path, data, why):
    (tmp_path / "state.json").write_bytes(data)
    warnings = []
    history = state.State.load(str(tmp_path), warnings.append)
    assert history.runners == {} and history.history("r") == []
    assert warnings == [plain(
        "the state file %s/state.json is corrupt (%s): starting with an empty restart history; "
        "the next run that restarts a runner replaces it" % (tmp_path, why))]


@pytest.mark.parametrize("notified", [None, [], "refused", {"condition": None, "since": 1},
                                      {"condition": "refused"}, {"condition": "refused",
                                                                 "since": "x"},
                                      {"condition": "refused", "since": None}, {"since": 1.0},
                                      {"condition": 3, "since": 1.0}])
def test_a_damaged_notified_entry_is_forgotten_and_the_history_kept(tmp_path, notified):
    doc = {"runners": {"r": {"restarts": [100, 50.5], "restarts_total": 9.0,
                             "notified": notified}}}
    (tmp_path / "state.json").write_text(json.dumps(doc))
    warnings = []
    history = state.State.load(str(tmp_path), warnings.append)
    assert warnings == [] and history.notified("r") is None
    assert history.runners == {"r": {"restarts": [50.5, 100.0], "restarts_total": 9}}
    assert isinstance(history.restarts_total("r"), int)


def test_a_good_file_loads_as_written(tmp_path):
    doc = {"version": 1, "runners": {
        "a": {"restarts": [3, 1.5], "restarts_total": 4,
              "notified": {"condition": "refused", "since": 7}},
        "b": {},  # nothing known yet: an empty history
        "c": {"restarts": [], "restarts_total": -2}}}
    (tmp_path / "state.json").write_text(json.dumps(doc))
    history = state.State.load(str(tmp_path), pytest.fail)
    assert history.runners == {
        "a": {"restarts": [1.5, 3.0], "restarts_total": 4,
              "notified": {"condition": "refused", "since": 7.0}},
        "b": {"restarts": [], "restarts_total": 0},
        "c": {"restarts": [], "restarts_total": 0}}


def test_saving_forgets_what_holds_nothing_and_keeps_a_bounded_set(tmp_path):
    now = 1782727200.0
    history = state.State(str(tmp_path / "reconcile.json"))
    history.set_notified("ended", "pin-drift", now - 50)
    history.set_notified("ended", None, now)  # its condition ended: nothing left to keep
    history.record("restarted-once", now - 2 * state.KEEP)  # pruned, but counted: kept
    for number in range(state.KEEP_SUBJECTS + 44):  # one subject more than kept, and more
        history.set_notified("hosts:/srv/%d/hosts" % number, "pin-drift", now - 1000 + number)
    history.save(now)
    again = state.State.load(str(tmp_path), pytest.fail, "reconcile.json")
    assert len(again.runners) == state.KEEP_SUBJECTS
    assert "ended" not in again.runners
    assert "restarted-once" not in again.runners  # the least recently active go first
    kept = sorted(int(k.split("/")[2]) for k in again.runners)
    assert kept == list(range(44, state.KEEP_SUBJECTS + 44))  # the newest conditions
    assert again.notified("hosts:/srv/299/hosts") == "pin-drift"


def test_a_runner_with_restarts_counted_is_kept(tmp_path):
    now = 1782727200.0
    history = state.State(str(tmp_path / "state.json"))
    history.record("old", now - 2 * state.KEEP)
    history.record("recent", now - 10)
    history.set_notified("fine", None, now)
    history.save(now)
    again = state.State.load(str(tmp_path), pytest.fail)
    assert again.runners == {"old": {"restarts": [], "restarts_total": 1},
                             "recent": {"restarts": [now - 10], "restarts_total": 1}}


def test_a_damaged_reconcile_file_says_what_is_lost(tmp_path):
    (tmp_path / "reconcile.json").write_bytes(b"[]")
    warnings = []
    assert state.State.load(str(tmp_path), warnings.append, "reconcile.json").runners == {}
    assert warnings == [plain(
        "the state file %s/reconcile.json is corrupt (not a JSON object): the conditions "
        "notified are forgotten (one may be notified again); the next run that notifies one "
        "replaces it" % tmp_path)]


def test_a_runner_with_a_memory_of_its_forge_is_kept(tmp_path):
    now = 1782727200.0
    history = state.State(str(tmp_path / "state.json"))
    assert history.set_forge_memory("seen", {"jobs": {"7": now - 5}, "offline_since": None})
    history.set_notified("seen", None, now)
    history.save(now)
    again = state.State.load(str(tmp_path), pytest.fail)
    assert list(again.runners) == ["seen"] and again.forge_memory("seen")["jobs"] == {"7": now - 5}
