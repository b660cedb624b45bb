"""The state file's memory of what the forge showed (issue 20): when
each job was first seen waiting, and the runner offline."""

import json

from forgejo_runner_guard.runners import state


def load(tmp_path, warnings=None):
    return state.State.load(str(tmp_path), (warnings if warnings is not None else []).append)


def test_the_memory_survives_a_save_and_a_load(tmp_path):
    history = load(tmp_path)
    assert history.forge_memory("r") == {"jobs": {}, "offline_since": None}
    assert history.set_forge_memory("r", {"jobs": {"42/1": 100.5}, "offline_since": 90.0})
    history.record("r", 200.0)
    history.save(300.0)
    doc = json.loads((tmp_path / "state.json").read_text())
    assert doc["runners"]["r"] == {"forge": {"jobs": {"42/1": 100.5}, "offline_since": 90.0},
                                   "restarts": [200.0], "restarts_total": 1}
    again = load(tmp_path)
    assert again.forge_memory("r") == {"jobs": {"42/1": 100.5}, "offline_since": 90.0}
    assert again.history("r") == [200.0]


def test_setting_the_same_memory_is_no_change_and_empty_drops_it(tmp_path):
    history = load(tmp_path)
    memory = {"jobs": {"1/1": 5.0}, "offline_since": None}
    assert history.set_forge_memory("r", memory)
    assert not history.set_forge_memory("r", dict(memory))
    assert history.set_forge_memory("r", {"jobs": {}, "offline_since": None})
    assert "forge" not in history.runners["r"]
    assert not history.set_forge_memory("r", {"jobs": {}, "offline_since": None})


def test_a_damaged_memory_is_forgotten_not_the_history(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"version": 1, "runners": {
        "r": {"restarts": [1.0], "restarts_total": 1, "forge": {"jobs": {"1/1": "soon"}}},
        "s": {"restarts": [], "forge": ["not", "a", "mapping"]}}}))
    warnings = []
    history = load(tmp_path, warnings)
    assert warnings == []
    assert history.forge_memory("r") == {"jobs": {}, "offline_since": None}
    assert history.history("r") == [1.0]
    assert history.forge_memory("s") == {"jobs": {}, "offline_since": None}


def test_at_most_the_newest_sightings_are_kept(tmp_path):
    history = load(tmp_path)
    jobs = {"%d/1" % n: float(n) for n in range(state.FORGE_JOBS_MAX + 50)}
    history.set_forge_memory("r", {"jobs": jobs, "offline_since": None})
    kept = history.forge_memory("r")["jobs"]
    assert len(kept) == state.FORGE_JOBS_MAX and min(kept.values()) == 50.0
