"""forge/view.py reads the forges' documents (tests/fixtures/forge/) and
matches jobs and runners the way the forges do."""

import json
import os

import pytest

from forgejo_runner_guard.forge import view
from helpers.tools import FIXTURES

FORGEJO = view.Dialect("forgejo", (15, 0, 3), "15.0.3+gitea-1.22.0")
GITEA = view.Dialect("gitea", (1, 26, 3), "1.26.3")
UUID = "3f1c2b7e-5d1a-4c8e-9a51-2d6b0f6c8e11"


def doc(name):
    with open(os.path.join(FIXTURES, "forge", name), "rb") as handle:
        return json.loads(handle.read().decode())


@pytest.mark.parametrize("text, forced, name, version", [
    ("15.0.3+gitea-1.22.0", "auto", "forgejo", (15, 0, 3)),
    ("11.0.0-dev-1234-abcdef+gitea-1.22.0", "auto", "forgejo", (11, 0, 0)),
    ("7.0.0", "auto", "forgejo", (7, 0, 0)),
    ("1.26.3", "auto", "gitea", (1, 26, 3)),
    ("1.27.0+dev-500-g9d3f04eb7e", "auto", "gitea", (1, 27, 0)),
    ("v1.24.0", "auto", "gitea", (1, 24, 0)),
    ("my-build", "gitea", "gitea", ()),
    ("15.0.3+gitea-1.22.0", "gitea", "gitea", ()),  # the other forge's numbering: unknown
    ("1.26.3", "gitea", "gitea", (1, 26, 3)),
])
def test_dialect_from_the_version(text, forced, name, version):
    d = view.dialect(text, forced)
    assert (d.name, d.version, d.text) == (name, version, text)


def test_a_version_auto_cannot_read_names_forge_api():
    with pytest.raises(view.ShapeError, match=r"cannot tell Forgejo from Gitea by the version 'my-build': "
                                              r"set forge_api = forgejo or gitea"):
        view.dialect("my-build")
    assert view.version_text(doc("forgejo-15/version.json")) == "15.0.3+gitea-1.22.0"
    with pytest.raises(view.ShapeError):
        view.version_text({"version": 15})


@pytest.mark.parametrize("text, runners, jobs", [
    ("15.0.0+gitea-1.22.0", True, True), ("14.0.5+gitea-1.22.0", False, True),
    ("11.0.0+gitea-1.22.0", False, True), ("10.0.3+gitea-1.22.0", False, False),
    ("1.26.3", True, True), ("1.25.0", True, True), ("1.24.7", True, False), ("1.23.8", False, False),
])
def test_what_each_version_lists(text, runners, jobs):
    d = view.dialect(text)
    assert (d.has_runners, d.has_jobs) == (runners, jobs)


def test_forgejo_runner_list():
    (runner,) = view.runner_list(doc("forgejo-15/runners.json"), FORGEJO)
    assert runner == view.Runner(id=1, name="build-1", status="idle", said="idle",
                                 labels=("docker", "ubuntu-latest"), uuid=UUID, owner_id=2, repo_id=0)
    assert view.total(doc("forgejo-15/runners.json"), FORGEJO) is None


def test_gitea_runner_list_normalises_online_and_busy():
    document = doc("gitea-1.26/runners.json")
    (runner,) = view.runner_list(document, GITEA)
    assert runner == view.Runner(id=1, name="build-1", status="idle", said="online, not busy",
                                 labels=("docker", "ubuntu-latest"))
    entry = document["runners"][0]
    for status, busy, normal, said in (("online", True, "active", "online, busy"),
                                       ("offline", False, "offline", "offline, not busy")):
        entry.update(status=status, busy=busy, disabled=True)
        (runner,) = view.runner_list(document, GITEA)
        assert (runner.status, runner.said, runner.disabled) == (normal, said, True)
    assert view.total(document, GITEA) == 1


def test_forgejo_jobs_keep_the_waiting_ones_and_null_is_empty():
    (job,) = view.job_list(doc("forgejo-15/jobs.json"), FORGEJO)
    assert job == view.Job(id=42, attempt=1, name="build", labels=("docker",), repo_id=5, owner_id=2)
    assert job.key == "42/1"
    assert view.job_list(doc("forgejo-15/jobs-none.json"), FORGEJO) == []


def test_gitea_jobs_queued_and_the_waiting_trap():
    (job,) = view.job_list(doc("gitea-1.26/jobs-queued.json"), GITEA)
    assert job == view.Job(id=42, attempt=1, name="build", labels=("docker",), created_at=1782727260.5)
    # status=waiting lists blocked jobs, whose status reads "waiting": never taken for waiting ones
    assert view.job_list(doc("gitea-1.26/jobs-waiting.json"), GITEA) == []


@pytest.mark.parametrize("document, d, message", [
    ({"runners": [], "total_count": 0}, FORGEJO,
     "expected Forgejo's bare JSON array, got an object ('runners': Gitea's form; set forge_api = gitea)"),
    ([], GITEA, "expected Gitea's {\"runners\": [...], \"total_count\": N}, got an array (Forgejo's form; "
                "set forge_api = forgejo)"),
    (None, FORGEJO, "expected Forgejo's JSON array"),
    ({"runners": [], "total_count": "1"}, GITEA, "expected Gitea's {\"runners\": [...], \"total_count\": N}"),
    ([{"id": 1, "uuid": "u", "owner_id": 0, "repo_id": 0, "name": "r", "status": "online"}], FORGEJO,
     "runner 0: status 'online' is none of offline, idle, active"),
    ([{"id": "1", "uuid": "u", "owner_id": 0, "repo_id": 0, "name": "r", "status": "idle"}], FORGEJO,
     "runner 0: 'id' is not a whole number"),
    ([{"id": 1, "uuid": "u", "owner_id": 0, "repo_id": 0, "name": "r", "status": "idle", "labels": [1]}],
     FORGEJO, "runner 0: 'labels' is not a list of strings"),
    ({"runners": [{"id": 1, "name": "r", "status": "online", "busy": "no"}], "total_count": 1}, GITEA,
     "runner 0: status 'online' / busy 'no' are not online|offline / true|false"),
    ({"runners": [{"id": 1, "name": "r", "status": "online", "busy": False, "labels": ["x"]}],
      "total_count": 1}, GITEA, "runner 0: 'labels' is not a list of {id, name, type}"),
    ([True], FORGEJO, "runner 0: not an object"),
])
def test_runner_lists_of_another_shape(document, d, message):
    with pytest.raises(view.ShapeError) as info:
        view.runner_list(document, d)
    assert str(info.value) == message


def test_job_lists_of_another_shape():
    with pytest.raises(view.ShapeError, match=r"^job 0: 'runs_on' is not a list of strings$"):
        view.job_list([{"id": 1, "name": "b", "runs_on": "docker", "status": "waiting", "repo_id": 1,
                        "owner_id": 1}], FORGEJO)
    with pytest.raises(view.ShapeError, match=r"^expected Gitea's \{\"jobs\""):
        view.job_list({"jobs": None, "total_count": 0}, GITEA)
    with pytest.raises(view.ShapeError, match=r"^job 0: 'status' is not a string$"):
        view.job_list({"jobs": [{"id": 1}], "total_count": 1}, GITEA)


@pytest.mark.parametrize("text, epoch", [
    ("2026-06-29T10:01:00.5Z", 1782727260.5), ("2026-06-29T10:01:00Z", 1782727260.0),
    ("2026-06-29T12:01:00+02:00", 1782727260.0), ("1970-01-01T00:00:00Z", None),
    ("yesterday", None), (None, None),
])
def test_rfc3339(text, epoch):
    assert view.rfc3339(text) == epoch


def runner(**kw):
    base = dict(id=1, name="build-1", status="idle", said="idle", labels=("docker",), uuid=UUID,
                owner_id=0, repo_id=0)
    base.update(kw)
    return view.Runner(**base)


def test_find_by_uuid_on_forgejo_and_by_name_on_gitea():
    mine, other = runner(), runner(id=2, uuid="other", name="build-1")
    assert view.find([other, mine], FORGEJO, UUID, "build-1") is mine
    with pytest.raises(view.NotListed, match=r"^no runner with the uuid %s$" % UUID):
        view.find([other], FORGEJO, UUID, "build-1")
    with pytest.raises(view.NotListed, match=r"^no runner this one can be matched with$") as info:
        view.find([mine], FORGEJO, None, "build-1")
    assert info.value.fix == ("its registration gives no uuid, and Forgejo's list is matched by uuid: "
                              "register it again")
    gitea = [runner(uuid=None, name="a"), runner(id=2, uuid=None, name="b")]
    assert view.find(gitea, GITEA, UUID, "b").id == 2
    with pytest.raises(view.NotListed, match=r"^no runner with the name 'c'$"):
        view.find(gitea, GITEA, UUID, "c")
    with pytest.raises(view.NotListed, match=r"^2 runners with the name 'a'$") as info:
        view.find(gitea + [runner(id=3, uuid=None, name="a")], GITEA, None, "a")
    assert info.value.fix == "Gitea lists no uuid: give each runner its own name"
    with pytest.raises(view.NotListed) as info:
        view.find([other], FORGEJO, UUID, "build-1")
    assert info.value.fix == ("set forge_scope to where the runner is registered, or re-register it if it "
                              "was deleted on the forge")


def test_label_names_from_a_runner_file():
    assert view.label_names(["docker:docker://node:20", "ubuntu-latest:docker://x", "self-hosted:host",
                             "plain", "docker:host", ""]) == ("docker", "ubuntu-latest", "self-hosted", "plain")


@pytest.mark.parametrize("job_labels, runner_labels, matches", [
    (("docker",), ("docker", "ubuntu-latest"), True),
    (("docker", "ubuntu-latest"), ("docker", "ubuntu-latest"), True),
    (("docker", "gpu"), ("docker", "ubuntu-latest"), False),  # every label of the job
    (("gpu",), ("docker",), False),
    ((), ("docker",), False),  # no runs-on: matches no runner with labels
    ((), (), True),
    (("Docker",), ("docker",), False),  # exact names
])
def test_runs_on_like_the_forge(job_labels, runner_labels, matches):
    job = view.Job(id=1, attempt=1, name="b", labels=job_labels)
    assert view.runs_on(job, runner_labels) is matches


def test_serves_by_scope_on_forgejo():
    job = view.Job(id=1, attempt=1, name="b", labels=(), repo_id=5, owner_id=2)
    assert view.serves(runner(owner_id=0, repo_id=0), job)  # instance runner
    assert view.serves(runner(owner_id=2, repo_id=0), job)
    assert not view.serves(runner(owner_id=9, repo_id=0), job)
    assert view.serves(runner(owner_id=0, repo_id=5), job)
    assert not view.serves(runner(owner_id=0, repo_id=6), job)
    assert view.serves(None, job)  # no runner list (Forgejo v11-v14)
    assert view.serves(runner(owner_id=None, repo_id=None, uuid=None), job)  # Gitea


def test_remember_keeps_first_sightings_and_forgets_the_rest():
    a, b = view.Job(1, 1, "a", ()), view.Job(2, 1, "b", ())
    waits, memory = view.remember([a, b], {"1/1": 100.0, "9/1": 50.0}, 400.0)
    assert waits == [(a, 100.0), (b, 400.0)]
    assert memory == {"1/1": 100.0, "2/1": 400.0}
    # a sighting from the future (clock set back) starts afresh; a second attempt is a new wait
    waits, memory = view.remember([view.Job(1, 2, "a", ())], {"1/1": 100.0, "1/2": 900.0}, 500.0)
    assert waits[0][1] == 500.0 and memory == {"1/2": 500.0}


def test_observe_keeps_the_jobs_this_runner_could_take_oldest_first():
    mine = runner(owner_id=2, repo_id=0, labels=("docker",))
    jobs = [view.Job(1, 1, "later", ("docker",), repo_id=5, owner_id=2),
            view.Job(2, 1, "gpu", ("docker", "gpu"), repo_id=5, owner_id=2),  # not its labels
            view.Job(3, 1, "theirs", ("docker",), repo_id=7, owner_id=9),  # not its scope
            view.Job(4, 1, "first", ("docker",), repo_id=6, owner_id=2)]
    memory = {"jobs": {"4/1": 100.0, "2/1": 50.0}, "offline_since": 10.0}
    seen, kept = view.observe(FORGEJO, mine, ("docker",), jobs, memory, 400.0)
    assert seen == view.Seen(FORGEJO, mine, ("docker",), ((jobs[3], 100.0), (jobs[0], 400.0)), True, None)
    assert kept == {"jobs": {"1/1": 400.0, "4/1": 100.0}, "offline_since": None}  # not offline: forgotten
    assert seen.status == "idle" and seen.oldest_wait(400.5) == 300.5


def test_observe_remembers_when_it_was_first_seen_offline():
    off = runner(status=view.OFFLINE, said="offline")
    seen, kept = view.observe(FORGEJO, off, ("docker",), [], {}, 400.0)
    assert (seen.offline_since, kept) == (400.0, {"jobs": {}, "offline_since": 400.0})
    seen, kept = view.observe(FORGEJO, off, ("docker",), [], kept, 700.0)
    assert (seen.offline_since, kept["offline_since"]) == (400.0, 400.0)
    # a sighting from the future (the clock set back), or not a number: from now
    for since in (900.0, "400", None):
        seen, kept = view.observe(FORGEJO, off, ("docker",), [], {"offline_since": since}, 700.0)
        assert (seen.offline_since, kept["offline_since"]) == (700.0, 700.0)
    seen, _ = view.observe(FORGEJO, off, ("docker",), [], {"offline_since": 700}, 700.0)
    assert seen.offline_since == 700  # an int of the same second is kept


def test_observe_without_a_runner_list_or_a_job_list():
    job = view.Job(1, 1, "a", ("docker",), repo_id=5, owner_id=2)
    seen, kept = view.observe(FORGEJO, None, ("docker",), [job], {"offline_since": 5.0}, 60.0)
    assert seen.status is None and seen.runner is None and seen.waits == ((job, 60.0),)
    assert seen.jobs_listed is True and kept == {"jobs": {"1/1": 60.0}, "offline_since": None}
    seen, kept = view.observe(GITEA, runner(uuid=None), ("docker",), None, {"jobs": {"1/1": 5.0}}, 60.0)
    assert seen.jobs_listed is False and seen.waits == () and kept == {"jobs": {}, "offline_since": None}
    assert seen.oldest_wait(60.0) is None


def test_the_forgejo_suffix_alone_tells_forgejo():
    # a build whose version number is none of Forgejo's (a fork, a dev build): +gitea- still says Forgejo
    d = view.dialect("my-build+gitea-1.22.0")
    assert (d.name, d.version, d.has_runners, d.has_jobs) == ("forgejo", (), True, True)
    assert view.dialect("1.21.11-0+gitea-1.21.11").name == "forgejo"
    with pytest.raises(view.ShapeError) as info:
        view.version_text({"version": 15})
    assert str(info.value) == 'expected {"version": "..."}'


def test_an_error_document_where_forgejo_lists_runners():
    with pytest.raises(view.ShapeError) as info:  # {"message", "url", "errors"}: no "runners"
        view.runner_list(doc("forgejo-15/404.json"), FORGEJO)
    assert str(info.value) == "expected Forgejo's bare JSON array, got an object"


FORGEJO_RUNNER = {"id": 1, "uuid": "u", "owner_id": 0, "repo_id": 0, "name": "r", "status": "idle"}


@pytest.mark.parametrize("key, message", [
    ("name", "runner 1: 'name' is not a string"), ("uuid", "runner 1: 'uuid' is not a string"),
    ("owner_id", "runner 1: 'owner_id' is not a whole number"),
    ("repo_id", "runner 1: 'repo_id' is not a whole number"),
])
def test_each_forgejo_runner_field_is_named(key, message):
    entry = dict(FORGEJO_RUNNER)
    del entry[key]
    with pytest.raises(view.ShapeError) as info:
        view.runner_list([FORGEJO_RUNNER, entry], FORGEJO)
    assert str(info.value) == message


def test_gitea_runner_fields_labels_null_and_before_disabled():
    document = doc("gitea-1.26/runners.json")
    entry = document["runners"][0]
    del entry["disabled"]  # Gitea 1.24 and 1.25 write no "disabled"
    entry["labels"] = None  # Go's nil slice
    (runner,) = view.runner_list(document, GITEA)
    assert (runner.disabled, runner.labels) == (False, ())
    for key, message in (("id", "runner 0: 'id' is not a whole number"),
                         ("name", "runner 0: 'name' is not a string")):
        broken = dict(entry)
        del broken[key]
        with pytest.raises(view.ShapeError) as info:
            view.runner_list({"runners": [broken], "total_count": 1}, GITEA)
        assert str(info.value) == message


FORGEJO_JOB = {"id": 42, "attempt": 1, "repo_id": 5, "owner_id": 2, "name": "build", "runs_on": ["docker"],
               "status": "waiting"}


@pytest.mark.parametrize("key, message", [
    ("id", "job 0: 'id' is not a whole number"), ("name", "job 0: 'name' is not a string"),
    ("repo_id", "job 0: 'repo_id' is not a whole number"),
    ("owner_id", "job 0: 'owner_id' is not a whole number"),
])
def test_each_forgejo_job_field_is_named(key, message):
    entry = dict(FORGEJO_JOB)
    del entry[key]
    with pytest.raises(view.ShapeError) as info:
        view.job_list([entry], FORGEJO)
    assert str(info.value) == message


def test_job_lists_of_other_shapes_name_the_job():
    with pytest.raises(view.ShapeError) as info:
        view.job_list([FORGEJO_JOB, 42], FORGEJO)
    assert str(info.value) == "job 1: not an object"
    queued = doc("gitea-1.26/jobs-queued.json")["jobs"][0]
    for key, value, message in (("id", None, "job 0: 'id' is not a whole number"),
                                ("name", None, "job 0: 'name' is not a string"),
                                ("labels", "docker", "job 0: 'labels' is not a list of strings")):
        with pytest.raises(view.ShapeError) as info:
            view.job_list({"jobs": [dict(queued, **{key: value})], "total_count": 1}, GITEA)
        assert str(info.value) == message


def test_a_job_without_an_attempt_number_is_attempt_0():
    entry = dict(FORGEJO_JOB)
    del entry["attempt"]
    (job,) = view.job_list([entry], FORGEJO)
    assert (job.attempt, job.key) == (0, "42/0")
    queued = dict(doc("gitea-1.26/jobs-queued.json")["jobs"][0])
    del queued["run_attempt"]
    (job,) = view.job_list({"jobs": [queued], "total_count": 1}, GITEA)
    assert (job.attempt, job.key) == (0, "42/0")


def test_gitea_jobs_after_one_that_is_not_queued_are_read():
    queued = doc("gitea-1.26/jobs-queued.json")["jobs"][0]
    document = {"jobs": [dict(queued, id=41, status="running"), queued], "total_count": 2}
    assert [job.id for job in view.job_list(document, GITEA)] == [42]


@pytest.mark.parametrize("text, epoch", [
    ("2026-06-29T04:31:00-05:30", 1782727260.0), ("2026-06-29T20:31:00+10:30", 1782727260.0),
    ("2026-06-29T00:16:00-09:45", 1782727260.0), ("1970-01-01T00:00:00.5Z", 0.5),
])
def test_rfc3339_zones_west_and_east(text, epoch):
    assert view.rfc3339(text) == epoch


def test_label_names_leave_out_a_label_without_a_name():
    assert view.label_names([":docker://node:20", " :host", "docker:host"]) == ("docker",)


def test_a_job_of_an_unlisted_scope_is_served():
    job = view.Job(id=1, attempt=1, name="b", labels=(), repo_id=None, owner_id=None)
    assert view.serves(runner(owner_id=0, repo_id=5), job)
