"""jobs: which job containers are a runner's, and which of them block its restart.

Pure unit tests (no Docker): they run on Python 3.9 too."""

import pytest

from forgejo_runner_guard.config.config import DEFAULT_JOB_PREFIXES, RunnerConfig
from forgejo_runner_guard.runners.backends import Check
from forgejo_runner_guard.runners.jobs import (JobContainer, blocking_jobs, jobs_phrase,
                                               parse_job_container, runner_containers, split)
from forgejo_runner_guard.system.engines import JobRecord

NOW = 1782727500.0  # 2026-06-29T10:05:00Z
START = NOW - 1000  # the runner's current start


@pytest.mark.parametrize(
    "name,task",
    [
        ("FORGEJO-ACTIONS-TASK-12_WORKFLOW-deploy_JOB-build", 12),
        ("/FORGEJO-ACTIONS-TASK-4711_WORKFLOW-3f2a_JOB-test", 4711),
        ("GITEA-ACTIONS-TASK-5_WORKFLOW-ci_JOB-lint", 5),
        ("GITEA-ACTIONS-TASK-77-Lint", 77),
        ("FORGEJO-ACTIONS-TASK-", None),
        ("FORGEJO-ACTIONS-TASK-abc", None),
    ],
)
def test_parse_job_container(name, task):
    job = parse_job_container(name, DEFAULT_JOB_PREFIXES, created=5.0)
    assert job == JobContainer(name.lstrip("/"), 5.0, task)


@pytest.mark.parametrize(
    "name",
    ["forgejo_runner", "forgejo-actions-task-12_x", "X-FORGEJO-ACTIONS-TASK-12", "GITEA-ACTIONS-12", ""],
)
def test_not_a_job_container(name):
    assert parse_job_container(name, DEFAULT_JOB_PREFIXES) is None


def test_job_prefixes_are_configurable():
    assert parse_job_container("CI-JOB-9_x", ("CI-JOB-",)) == JobContainer("CI-JOB-9_x", 0.0, 9)
    assert parse_job_container("FORGEJO-ACTIONS-TASK-9_x", ("CI-JOB-",)) is None
    assert parse_job_container("anything", ("",)) is None  # an empty prefix matches nothing


def test_unclaimed_job_after_start_blocks():
    running = [JobContainer("FORGEJO-ACTIONS-TASK-12_W_J", START + 30, 12)]
    assert blocking_jobs("a", running, START, {"a": set()}) == (running, [])


def test_orphan_from_an_earlier_run_does_not_block():
    orphan = JobContainer("FORGEJO-ACTIONS-TASK-12_W_J", START - 3600, 12)
    assert blocking_jobs("a", [orphan], START, {"a": set()}) == ([], [orphan])
    # even when this runner's (older) log claimed it
    assert blocking_jobs("a", [orphan], START, {"a": {12}}) == ([], [orphan])


def test_job_created_in_the_first_seconds_is_not_an_orphan():
    # Docker records StartedAt a little late: a job created up to 2 s
    # "before" it may belong to this run, so it blocks
    early = JobContainer("FORGEJO-ACTIONS-TASK-1_W_J", START - 1.5, 1)
    assert blocking_jobs("a", [early], START, {}) == ([early], [])
    before = JobContainer("FORGEJO-ACTIONS-TASK-1_W_J", START - 2.5, 1)
    assert blocking_jobs("a", [before], START, {}) == ([], [before])
    assert blocking_jobs("a", [before], START, {}, margin=3.0) == ([before], [])


def test_unknown_start_blocks_everything():
    old = JobContainer("FORGEJO-ACTIONS-TASK-1_W_J", 0.0, 1)
    assert blocking_jobs("a", [old], None, {}) == ([old], [])


def test_job_claimed_by_another_runner_blocks_only_that_runner():
    theirs = JobContainer("FORGEJO-ACTIONS-TASK-7_W_J", START + 10, 7)
    nobodys = JobContainer("FORGEJO-ACTIONS-TASK-8_W_J", START + 10, 8)
    nameless = JobContainer("FORGEJO-ACTIONS-TASK-x", START + 10, None)
    claims = {"a": {1, 2}, "b": {7}}
    running = [theirs, nobodys, nameless]
    assert blocking_jobs("a", running, START, claims) == ([nobodys, nameless], [])
    assert blocking_jobs("b", running, START, claims) == (running, [])
    # a runner not in claims at all (its log gave none)
    assert blocking_jobs("c", running, START, claims) == ([nobodys, nameless], [])


def test_job_claimed_by_both_blocks_both():
    both = JobContainer("FORGEJO-ACTIONS-TASK-7_W_J", START + 10, 7)
    claims = {"a": frozenset({7}), "b": frozenset({7})}
    assert blocking_jobs("a", [both], START, claims) == ([both], [])
    assert blocking_jobs("b", [both], START, claims) == ([both], [])


def test_claimed_by_other_is_not_reported_as_my_orphan():
    theirs = JobContainer("FORGEJO-ACTIONS-TASK-7_W_J", START - 500, 7)
    assert blocking_jobs("a", [theirs], START, {"b": [7]}) == ([], [])


def test_no_jobs():
    assert blocking_jobs("a", [], START, {}) == ([], [])


def test_a_job_created_exactly_at_start_minus_margin_blocks():
    edge = JobContainer("FORGEJO-ACTIONS-TASK-1_W_J", START - 2.0, 1)
    assert blocking_jobs("a", [edge], START, {}) == ([edge], [])
    just_before = JobContainer("FORGEJO-ACTIONS-TASK-1_W_J", START - 2.0 - 1e-6, 1)
    assert blocking_jobs("a", [just_before], START, {}) == ([], [just_before])


def test_prefixes_and_a_leading_slash():
    assert parse_job_container("/X-12_y", ["X-"]) == JobContainer("X-12_y", 0.0, 12)
    assert parse_job_container("XX-1", ["X-"]) is None


def test_a_runner_container_is_never_a_job():
    """Its own container (by name, whatever its name), and any runner
    container of the run (by name or id)."""
    cfg = RunnerConfig(name="self", container="FORGEJO-ACTIONS-TASK-self")
    own = JobRecord("a" * 64, "/FORGEJO-ACTIONS-TASK-self", START)
    sibling = JobRecord("b" * 64, "GITEA-ACTIONS-TASK-3_sib", START + 5)
    job = JobRecord("c" * 64, "FORGEJO-ACTIONS-TASK-9_W_J", START + 10)
    assert split("self", cfg, [own, sibling, job], START, {}) == (
        [JobContainer("GITEA-ACTIONS-TASK-3_sib", START + 5, 3),
         JobContainer("FORGEJO-ACTIONS-TASK-9_W_J", START + 10, 9)], [])
    for runners in ({"GITEA-ACTIONS-TASK-3_sib"}, {"b" * 64}):
        assert split("self", cfg, [own, sibling, job], START, {}, runners) == (
            [JobContainer("FORGEJO-ACTIONS-TASK-9_W_J", START + 10, 9)], [])
    unit = RunnerConfig(name="n", backend="systemd", container="FORGEJO-ACTIONS-TASK-9_W_J")
    assert split("n", unit, [job], START, {})[0] == [  # a unit has no container of its own
        JobContainer("FORGEJO-ACTIONS-TASK-9_W_J", START + 10, 9)]


def test_runner_containers_are_the_docker_runners_names_and_ids():
    class State:
        id, name = "f" * 64, "/named-by-docker"

    docker, unit, unseen = (Check(RunnerConfig(name="d", container="c1")),
                            Check(RunnerConfig(name="u", backend="systemd")),
                            Check(RunnerConfig(name="x", container="c2")))
    docker.state, unit.state = State(), State()
    assert runner_containers([docker, unit, unseen]) == {"c1", "f" * 64, "named-by-docker", "c2"}


@pytest.mark.parametrize("names, what, phrase", [
    (["FORGEJO-ACTIONS-TASK-1_W_J"], "running", "job container FORGEJO-ACTIONS-TASK-1_W_J running"),
    (["A", "B", "C"], "running", "job containers A and 2 more running"),
    (["pid 4711 (bash -e /tmp/step.sh)"], "running", "host job pid 4711 (bash -e /tmp/step.sh) running"),
    (["pid 7 (sleep 30)", "pid 9 (make)"], "left", "host jobs pid 7 (sleep 30) and 1 more left"),
    (["pidgin"], "running", "job container pidgin running"),  # a container's name, not "pid N"
])
def test_jobs_phrase_names_the_first_and_counts_the_rest(names, what, phrase):
    assert jobs_phrase(names, what) == phrase
    if what == "running":
        assert jobs_phrase(names) == phrase
