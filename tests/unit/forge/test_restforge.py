"""The test forge serves the documents of tests/fixtures/forge/ byte for
byte (README.md there cites the forges' source for each), with the
headers the forges' code sets."""

import os
import urllib.error
import urllib.request

import pytest

from helpers.restforge import RestForge
from helpers.tools import FIXTURES

ALICE = "0123456789abcdef0123456789abcdef01234567"
TOKENS = {"alice": ALICE, "none": None, "bad": "0" * 40, "scoped": "s", "bob": "b"}
JSON = "application/json;charset=utf-8"
TEXT = "text/plain; charset=utf-8"

DOCUMENTS = [
    ("forgejo-15/version.json", "alice", "/api/v1/version", 200),
    ("forgejo-15/runners.json", "alice", "/api/v1/orgs/ops/actions/runners?visible=true&page=1&limit=50", 200),
    ("forgejo-15/jobs.json", "alice", "/api/v1/orgs/ops/actions/runners/jobs?labels=docker,ubuntu-latest", 200),
    ("forgejo-15/jobs-none.json", "alice", "/api/v1/orgs/ops/actions/runners/jobs?labels=gpu", 200),
    ("forgejo-15/401-no-token.json", "none", "/api/v1/orgs/ops/actions/runners", 401),
    ("forgejo-15/401-bad-token.json", "bad", "/api/v1/orgs/ops/actions/runners", 401),
    ("forgejo-15/403-scope.json", "scoped", "/api/v1/orgs/ops/actions/runners", 403),
    ("forgejo-15/403-owner.json", "bob", "/api/v1/orgs/ops/actions/runners", 403),
    ("forgejo-15/404.json", "alice", "/api/v1/repos/ops/nope/actions/runners", 404),
    ("forgejo-15/404-route.txt", "alice", "/api/v1/orgs/ops/actions/jobs", 404),
    ("gitea-1.26/version.json", "alice", "/api/v1/version", 200),
    ("gitea-1.26/runners.json", "alice", "/api/v1/orgs/ops/actions/runners?page=1&limit=50", 200),
    ("gitea-1.26/jobs-queued.json", "alice", "/api/v1/orgs/ops/actions/jobs?status=queued&limit=50&page=1", 200),
    ("gitea-1.26/jobs-waiting.json", "alice", "/api/v1/orgs/ops/actions/jobs?status=waiting", 200),
    ("gitea-1.26/401-no-token.json", "none", "/api/v1/orgs/ops/actions/runners", 401),
    ("gitea-1.26/401-bad-token.json", "bad", "/api/v1/orgs/ops/actions/runners", 401),
    ("gitea-1.26/403-scope.json", "scoped", "/api/v1/orgs/ops/actions/runners", 403),
    ("gitea-1.26/403-owner.json", "bob", "/api/v1/orgs/ops/actions/runners", 403),
    ("gitea-1.26/404.json", "alice", "/api/v1/repos/ops/nope/actions/runners", 404),
    ("gitea-1.26/404-route.txt", "alice", "/api/v1/orgs/ops/actions/runners/jobs", 404),
]


def fixture(name):
    with open(os.path.join(FIXTURES, "forge", name), "rb") as handle:
        return handle.read()


def get(forge, path, token):
    headers = {"Authorization": "token " + token} if token else {}
    try:
        reply = urllib.request.urlopen(urllib.request.Request(forge.url(path), headers=headers), timeout=10)
    except urllib.error.HTTPError as exc:
        reply = exc
    return reply.status, reply.headers, reply.read()


@pytest.mark.parametrize("name, who, path, status", DOCUMENTS, ids=[d[0] for d in DOCUMENTS])
def test_the_forge_serves_each_fixture(name, who, path, status):
    dialect = "forgejo" if name.startswith("forgejo") else "gitea"
    with RestForge.example(dialect) as forge:
        forge.token("s", "alice", ("read:user",))
        forge.token("b", "bob", ("read:organization",))
        got_status, headers, body = get(forge, path, TOKENS[who])
    assert (got_status, body) == (status, fixture(name))
    assert headers["Content-Type"] == (TEXT if name.endswith(".txt") else JSON)
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_the_fixtures_cover_every_file_and_readme_names_each():
    listed = {d[0] for d in DOCUMENTS}
    readme = fixture("README.md").decode()
    for folder in ("forgejo-15", "gitea-1.26"):
        for name in os.listdir(os.path.join(FIXTURES, "forge", folder)):
            assert "%s/%s" % (folder, name) in listed
            assert "`%s/%s`" % (folder, name) in readme


def test_forgejo_pages_the_runner_list_with_link_and_total_count():
    with RestForge("forgejo") as forge:
        forge.token(ALICE, "root", ("read:admin",))
        forge.runners = [forge.runner(n, "u-%d" % n, "r%d" % n) for n in range(1, 4)]
        status, headers, body = get(forge, "/api/v1/admin/actions/runners?visible=true&limit=2&page=1", ALICE)
        assert status == 200 and body.count(b'"uuid"') == 2
        assert headers["X-Total-Count"] == "3"
        assert headers["Link"] == (
            '<https://forge.example.org/api/v1/admin/actions/runners?limit=2&page=2&visible=true>; rel="next",'
            '<https://forge.example.org/api/v1/admin/actions/runners?limit=2&page=2&visible=true>; rel="last"')
        assert headers["Access-Control-Expose-Headers"] == "Link, X-Total-Count"
        # without visible=true, an admin lists the instance's own runners only (0, 0)
        forge.runners[0]["owner_id"] = 2
        _, headers, body = get(forge, "/api/v1/admin/actions/runners", ALICE)
        assert headers["X-Total-Count"] == "2" and b'"u-1"' not in body


def test_gitea_refuses_an_unknown_status():
    with RestForge.example("gitea") as forge:
        status, _, body = get(forge, "/api/v1/orgs/ops/actions/jobs?status=bogus", ALICE)
    assert status == 400 and b'"message":"Invalid status bogus"' in body


def test_versions_without_the_lists_answer_chi_404():
    with RestForge("forgejo", version="14.0.5+gitea-1.22.0") as forge:
        forge.token(ALICE, "alice", ("read:organization",))
        assert get(forge, "/api/v1/orgs/ops/actions/runners", ALICE)[::2] == (404, b"404 page not found\n")
        assert get(forge, "/api/v1/orgs/ops/actions/runners/jobs?labels=docker", ALICE)[::2] == (200, b"null\n")
    with RestForge("forgejo", version="13.0.5+gitea-1.22.0") as forge:
        forge.token(ALICE, "alice", ("read:organization",))
        forge.jobs = [forge.job(7, ["docker"])]
        # v11-v13: no `labels` is split as [""]: nothing with a runs-on matches
        assert get(forge, "/api/v1/orgs/ops/actions/runners/jobs", ALICE)[2] == b"null\n"
    with RestForge("gitea", version="1.24.7") as forge:
        forge.token(ALICE, "alice", ("read:organization",))
        assert get(forge, "/api/v1/orgs/ops/actions/jobs", ALICE)[::2] == (404, b"404 page not found\n")
        assert b'"disabled"' not in get(forge, "/api/v1/orgs/ops/actions/runners", ALICE)[2]
