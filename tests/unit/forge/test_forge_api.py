"""forge/api.py against the test forge on loopback (both dialects, old
versions, every failure): only GETs with `Authorization: token`, one line
per failure naming the cause and the fix, never the token."""

import http.server
import socket
import threading

import pytest

from forgejo_runner_guard.forge import api, view
from helpers.restforge import RestForge

TOKEN = "0123456789abcdef0123456789abcdef01234567"
ORG = ("org", "ops")


def session(forge, token=TOKEN, scope=ORG, forced="auto"):
    return api.Session(api.Client(forge.url(), token, 5.0), scope, forced)


def test_forgejo_lists_runners_and_the_waiting_jobs_its_labels_match():
    with RestForge.example("forgejo") as forge:
        s = session(forge)
        assert s.dialect() == view.Dialect("forgejo", (15, 0, 3), "15.0.3+gitea-1.22.0")
        (runner,) = s.runners()
        assert runner.uuid == forge.runners[0]["uuid"]
        assert [j.id for j in s.jobs(("docker", "ubuntu-latest"))] == [42]
        assert s.jobs(("gpu",)) == ()
        assert s.runners() == (runner,)  # asked once
        paths = [r["path"] for r in forge.requests]
    assert paths == ["/api/v1/version",
                     "/api/v1/orgs/ops/actions/runners?visible=true&page=1&limit=50",
                     "/api/v1/orgs/ops/actions/runners/jobs?labels=docker%2Cubuntu-latest",
                     "/api/v1/orgs/ops/actions/runners/jobs?labels=gpu"]
    assert {r["method"] for r in forge.requests} == {"GET"}
    assert {r["headers"]["authorization"] for r in forge.requests} == {"token " + TOKEN}


def test_gitea_lists_runners_and_queued_jobs_never_status_waiting():
    with RestForge.example("gitea") as forge:
        s = session(forge, scope=("repo", "ops/app"))
        forge.token(TOKEN, "alice", ("read:repository",))
        forge.runners[0].update(owner_id=0, repo_id=5)
        (runner,) = s.runners()
        assert (runner.name, runner.status, runner.uuid) == ("build-1", "idle", None)
        assert [j.id for j in s.jobs(("docker",))] == [42]
        paths = [r["path"] for r in forge.requests]
    assert paths[2] == "/api/v1/repos/ops/app/actions/jobs?status=queued&limit=50&page=1"
    assert not any("status=waiting" in p for p in paths)


@pytest.mark.parametrize("dialect", ["forgejo", "gitea"])
def test_pages_are_followed(dialect, monkeypatch):
    monkeypatch.setattr(api, "PAGE", 2)
    with RestForge(dialect) as forge:
        forge.token(TOKEN, "root", ("read:admin",))
        forge.runners = [forge.runner(n, "u-%d" % n, "r%d" % n) for n in range(1, 6)]
        forge.jobs = [forge.job(n, ["docker"]) for n in range(10, 15)]
        s = session(forge, scope=("admin",))
        assert [r.id for r in s.runners()] == [1, 2, 3, 4, 5]
        assert sorted(j.id for j in s.jobs(("docker",))) == [10, 11, 12, 13, 14]


def test_forgejo_v14_has_jobs_only_and_its_admin_path():
    with RestForge("forgejo", version="14.0.5+gitea-1.22.0") as forge:
        forge.token(TOKEN, "root", ("read:admin",))
        forge.jobs = [forge.job(7, ["docker"])]
        s = session(forge, scope=("admin",))
        assert s.runners() is None
        assert [j.id for j in s.jobs(("docker",))] == [7]
        assert forge.requests[-1]["path"] == "/api/v1/admin/runners/jobs?labels=docker"


def test_gitea_1_24_has_runners_only():
    with RestForge("gitea", version="1.24.7") as forge:
        forge.token(TOKEN, "alice", ("read:organization",))
        s = session(forge)
        assert len(s.runners()) == 1 and s.jobs(("docker",)) is None


@pytest.mark.parametrize("dialect, version, label", [("forgejo", "10.0.3+gitea-1.22.0", "Forgejo 10.0.3"),
                                                     ("gitea", "1.23.8", "Gitea 1.23.8")])
def test_a_forge_with_neither_list(dialect, version, label):
    with RestForge(dialect, version=version) as forge:
        forge.token(TOKEN)
        with pytest.raises(api.ForgeError) as info:
            session(forge).runners()
    assert str(info.value) == (
        "%s+gitea-1.22.0 lists neither runners nor jobs" % label if dialect == "forgejo" else
        "%s lists neither runners nor jobs" % label) + (
        ": the runner list needs Forgejo v15 or Gitea 1.24, the job list Forgejo v11 or Gitea 1.25; "
        "upgrade the forge or leave forge_token_file unset")


def failure(forge, token=TOKEN, scope=ORG, forced="auto"):
    with pytest.raises(api.ForgeError) as info:
        session(forge, token, scope, forced).runners()
    text = str(info.value)
    assert "\n" not in text and (not token or token not in text)
    return text


@pytest.mark.parametrize("dialect", ["forgejo", "gitea"])
def test_a_refused_token(dialect):
    with RestForge.example(dialect) as forge:
        said = ("access token does not exist [sha: <token>]" if dialect == "forgejo"
                else "invalid username, password or token")
        # the API's authentication comes before any route, /version's too
        assert failure(forge, token="f" * 40) == (
            "GET /api/v1/version: HTTP 401 (%s): the forge refused the token (deleted, "
            "expired or mistyped): make a new one (runbook 08, \"The forge's view of the runner\") and "
            "put it in forge_token_file" % said)


@pytest.mark.parametrize("dialect, said", [
    ("forgejo", "token does not have at least one of required scope(s): [read:organization]"),
    ("gitea", "token does not have at least one of required scope(s), required=[read:organization], "
              "token scope=read:user")])
def test_a_token_without_the_scope(dialect, said):
    with RestForge.example(dialect) as forge:
        forge.token(TOKEN, "alice", ("read:user",))
        assert failure(forge) == ("GET /api/v1/orgs/ops/actions/runners: HTTP 403 (%s): the token lacks "
                                  "the scope: make one with read:organization" % said)


@pytest.mark.parametrize("scope, user, said, fix", [
    (("org", "ops"), "bob", "Must be an organization owner",
     "forge_scope = org needs a token of an owner of the organisation"),
    (("repo", "ops/app"), "bob", "user should be the owner of the repo",
     "forge_scope = repo needs a token of the repo's owner (or a site admin)"),
    (("admin",), "alice", "user should be the site admin",
     "forge_scope = admin needs a site administrator's token"),
])
def test_a_token_whose_user_does_not_own_the_scope(scope, user, said, fix):
    with RestForge.example("forgejo") as forge:
        forge.token(TOKEN, user, ("read:organization", "read:repository", "read:admin"))
        path = api.scope_path(scope)
        assert failure(forge, scope=scope) == (
            "GET /api/v1/%s/actions/runners: HTTP 403 (%s): %s" % (path, said, fix))


@pytest.mark.parametrize("dialect, said", [("forgejo", "The target couldn't be found."),
                                           ("gitea", "not found")])
def test_a_repo_that_is_not_there_or_hidden(dialect, said):
    with RestForge.example(dialect) as forge:
        forge.token(TOKEN, "bob", ("read:repository",))  # ops/app is private; bob is a member
        forge.repos["ops/app"]["actions"] = False
        assert failure(forge, scope=("repo", "ops/nope")) == (
            "GET /api/v1/repos/ops/nope/actions/runners: HTTP 404 (%s): no repo ops/nope as the token's "
            "user sees it, or Actions is off there: check forge_scope and that user's access" % said)


def test_the_wrong_dialect_forced():
    with RestForge.example("forgejo") as forge:
        text = failure(forge, forced="gitea")
    assert text == ("GET /api/v1/orgs/ops/actions/runners is not the documented shape for Gitea "
                    "15.0.3+gitea-1.22.0 (expected Gitea's {\"runners\": [...], \"total_count\": N}, got an "
                    "array (Forgejo's form; set forge_api = forgejo)): set forge_api to the forge this is, "
                    "or upgrade it")
    with RestForge.example("gitea") as forge:
        with pytest.raises(api.ForgeError) as info:
            session(forge, forced="forgejo").jobs(("docker",))
    assert str(info.value) == (
        "GET /api/v1/orgs/ops/actions/runners/jobs: HTTP 404 (404 page not found): the forge has no such "
        "endpoint: the runner list needs Forgejo v15 or Gitea 1.24, the job list Forgejo v11 or Gitea 1.25 "
        "(or the URL is not the forge's root)")


def test_nothing_listening():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, not listening: refused
    port = sock.getsockname()[1]
    try:
        with pytest.raises(api.ForgeError) as info:
            api.Session(api.Client("http://127.0.0.1:%d/" % port, TOKEN, 2.0), ORG).dialect()
    finally:
        sock.close()
    assert str(info.value) == ("cannot reach the forge's API at http://127.0.0.1:%d (connection refused): "
                               "is the forge up and the URL right? (the log rules decide alone)" % port)


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<!DOCTYPE html><html><body>Sign in</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_web_page_is_not_the_api():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(api.ForgeError) as info:
            api.Session(api.Client("http://127.0.0.1:%d" % server.server_address[1], TOKEN, 2.0),
                        ORG).dialect()
    finally:
        server.shutdown()
        server.server_close()
    assert str(info.value) == ("GET /api/v1/version: HTTP 200 but 'text/html; charset=utf-8', not JSON: "
                               "is the URL the forge's root?")


def test_a_failure_is_asked_once():
    with RestForge.example("forgejo") as forge:
        s = session(forge, token="f" * 40)
        for _ in range(3):
            with pytest.raises(api.ForgeError):
                s.jobs(("docker",))
        assert len(forge.requests) == 1


def test_token_is_required_means_the_header_was_lost():
    answer = api.Answer(401, {"content-type": "application/json;charset=utf-8"},
                        b'{"message":"token is required","url":"https://forge.example.org/api/swagger"}\n')
    assert str(api.explain(answer, "GET /api/v1/user/actions/runners", ("user",), TOKEN)) == (
        "GET /api/v1/user/actions/runners: HTTP 401 (token is required): the forge saw no token: a proxy "
        "in front of it may drop the Authorization header")


@pytest.mark.parametrize("url", ["forge.example.org", "ftp://forge.example.org/", "https://"])
def test_a_url_that_is_not_http(url):
    with pytest.raises(api.ForgeError, match=r"not an http:// or https:// URL"):
        api.Client(url, TOKEN, 1.0)


def test_scope_paths_are_quoted():
    assert api.scope_path(("repo", "o.x/r-1")) == "repos/o.x/r-1"
    assert api.scope_path(("org", "ops")) == "orgs/ops"
    assert api.scope_path(("user",)) == "user"
    assert api.scope_path(("admin",)) == "admin"


def test_tls_as_the_runner_has_it(pki, tmp_path):
    with RestForge.example("forgejo", cert=pki["forge"]) as forge:
        # runner.insecure: true: not verified, as the runner itself
        insecure = api.Session(api.Client(forge.url(), TOKEN, 5.0, insecure=True), ORG)
        assert insecure.dialect().name == "forgejo"
        # verified: the system store does not know the test CA
        with pytest.raises(api.ForgeError) as info:
            api.Session(api.Client(forge.url(), TOKEN, 5.0), ORG).dialect()
        assert str(info.value) == (
            "cannot reach the forge's API at %s (TLS: unknown issuer): is the forge up and the URL "
            "right? (the log rules decide alone)" % forge.url().rstrip("/"))
        # forge_ca_file: the chain is good, but the certificate is for forge.azrak.io, not 127.0.0.1
        with pytest.raises(api.ForgeError, match=r"\(TLS: IP address mismatch, certificate is not valid "
                                                 r"for '127\.0\.0\.1'\)"):
            api.Session(api.Client(forge.url(), TOKEN, 5.0, ca_file=pki["ca"]), ORG).dialect()
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(api.ForgeError, match=r"^forge_ca_file: %s: cannot use as CA file" % bad):
        api.Client("https://127.0.0.1:1/", TOKEN, 1.0, ca_file=str(bad))
