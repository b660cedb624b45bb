"""A test forge on loopback that serves the REST documents the watchdog's
forge view reads, as Forgejo v15 (and v11-v14) or Gitea v1.24-v1.26 write
them.  tests/fixtures/forge/README.md cites the source of every path,
status, header and body; the fixtures there are the bytes this server
serves for its default state (tests/unit/forge/test_restforge.py checks
that).

    forge = RestForge("forgejo")          # or "gitea"; version="14.0.5+gitea-1.22.0"
    forge.token("t0k", user="alice", scopes=("read:repository",))
    forge.runners[0]["status"] = "offline"   # the forge's own status word
    forge.jobs.append(forge.job(42, runs_on=["docker"]))
    forge.url()                           # http://127.0.0.1:PORT

State: users (name -> id, site admin), repos ("owner/name" -> id, owner,
private, actions), orgs (name -> id, owners, members), tokens (token ->
user, scopes), runners (Forgejo's fields plus `status`: offline|idle|active
as models/actions/runner.go Status() computes it, and Gitea's `disabled`),
jobs (ActionRunJob's fields plus `status`: waiting|running|blocked and
`created`, epoch seconds).  `requests` keeps every request (method, path,
headers).  It also answers the Actions Ping RPC (POST
/api/actions/ping.v1.PingService/Ping, JSON: 200 {"data":"Hello, x!"};
Forgejo v15.0.3 routers/api/actions/ping/ping.go:28-37) so a watchdog
with verify = ping finds the forge up; `ping_down = True` answers it as a
reverse proxy whose path to the forge's Actions is down (502, text/plain
"Bad Gateway", as tests/helpers/forge.py's "502" mode) while the API
still answers.
"""

import email.utils
import http.server
import ipaddress
import json
import threading
import time
import urllib.parse

ROOT_URL = "https://forge.example.org/"  # [server] ROOT_URL: what the forge writes, not where it listens
SWAGGER = "api/swagger"  # setting.API.SwaggerURL = ROOT_URL + api/swagger
VERSIONS = {"forgejo": "15.0.3+gitea-1.22.0", "gitea": "1.26.3"}
PING = "/api/actions/ping.v1.PingService/Ping"
NOT_FOUND_TEXT = b"404 page not found\n"
CATEGORY = {"repo": "repository", "org": "organization", "user": "user", "admin": "admin"}


def go_json(value):
    """Go's json.NewEncoder(w).Encode(v): compact, <>& escaped, a newline."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return (text + "\n").encode("utf-8")


def go_time(epoch):
    """time.Time in JSON, UTC: RFC 3339 with fractional seconds only if any."""
    whole = int(epoch)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    frac = ("%.9f" % (epoch - whole))[1:].rstrip("0").rstrip(".")
    return text + frac + "Z"


class Answer(Exception):
    """A response: status, headers, body."""

    def __init__(self, status, body, content_type="application/json;charset=utf-8", headers=()):
        super().__init__(status)
        self.status, self.body, self.content_type, self.headers = status, body, content_type, headers


class RestForge:
    """The forge; start() listens on `host` (loopback only), close() stops."""

    def __init__(self, dialect="forgejo", version=None, host="127.0.0.1", root_url=ROOT_URL,
                 cert=None):
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError("loopback only: %r" % host)
        self.dialect = dialect
        self.version = version or VERSIONS[dialect]
        self.host = host
        self.root_url = root_url
        self.cert = cert  # (cert.pem, key.pem): serve TLS
        self.ping_down = False
        self.users = {"alice": {"id": 1, "admin": False}, "root": {"id": 3, "admin": True},
                      "bob": {"id": 4, "admin": False}}
        self.orgs = {"ops": {"id": 2, "owners": {"alice"}, "members": {"alice", "bob"}}}
        self.repos = {"ops/app": {"id": 5, "owner_id": 2, "private": True, "actions": True}}
        self.tokens = {}
        self.runners = [self.runner(1, "3f1c2b7e-5d1a-4c8e-9a51-2d6b0f6c8e11", "build-1",
                                    labels=["docker", "ubuntu-latest"], owner_id=2)]
        self.jobs = []
        self.requests = []
        self._server = None

    # -- state

    @staticmethod
    def runner(id_, uuid, name, status="idle", labels=(), owner_id=0, repo_id=0,
               version="v12.8.2", disabled=False):
        return {"id": id_, "uuid": uuid, "owner_id": owner_id, "repo_id": repo_id, "name": name,
                "status": status, "version": version, "labels": list(labels), "description": "",
                "ephemeral": False, "disabled": disabled}

    @staticmethod
    def job(id_, runs_on=(), status="waiting", repo_id=5, owner_id=2, name="build",
            attempt=1, created=1782727200.0):
        return {"id": id_, "attempt": attempt, "handle": "", "repo_id": repo_id,
                "owner_id": owner_id, "name": name, "needs": None, "runs_on": list(runs_on),
                "task_id": 0, "status": status, "created": created}

    @classmethod
    def example(cls, dialect, version=None, cert=None):
        """The state tests/fixtures/forge/ shows: the runner, a job waiting
        for it, one running and one blocked on `needs`, and alice's token."""
        forge = cls(dialect, version, cert=cert)
        forge.jobs = [cls.job(41, ["docker"], status="running", name="lint"),
                      cls.job(42, ["docker"], created=1782727260.5),
                      cls.job(43, ["docker"], status="blocked", name="deploy")]
        forge.token("0123456789abcdef0123456789abcdef01234567", "alice",
                    ("read:organization", "read:repository"))
        return forge

    def token(self, token, user="alice", scopes=("read:repository",)):
        self.tokens[token] = {"user": user, "scopes": tuple(scopes)}
        return token

    # -- serving

    def start(self):
        forge = self

        class Handler(_Handler):
            owner = forge

        family = http.server.ThreadingHTTPServer
        if ":" in self.host:
            family = type("V6", (http.server.ThreadingHTTPServer,), {"address_family": 10})
        self._server = family((self.host, 0), Handler)
        self._server.daemon_threads = True
        if self.cert is not None:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.cert)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def port(self):
        return self._server.server_address[1]

    def url(self, path="/"):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "%s://%s:%d%s" % ("https" if self.cert else "http", host, self.port, path)

    def close(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- the API

    def answer(self, method, path, query, headers):
        """-> Answer, as the forge's routers would."""
        if method == "POST" and path == PING:
            return None  # the handler answers the Ping
        if not path.startswith("/api/v1/"):
            raise Answer(404, NOT_FOUND_TEXT, "text/plain; charset=utf-8")
        user = self._authenticate(headers)
        route = path[len("/api/v1/"):].rstrip("/").split("/")
        if method == "GET" and route == ["version"]:
            raise Answer(200, go_json({"version": self.version}))
        scope, rest = self._scope(route)
        endpoint = self._endpoint(scope, rest)
        if method != "GET" or endpoint is None:
            raise Answer(404, NOT_FOUND_TEXT, "text/plain; charset=utf-8")
        self._authorize(scope, user, endpoint)
        if endpoint == "runners":
            raise self._runner_list(scope, query, user, path)
        raise self._job_list(scope, query, user, path)

    def _error(self, status, message):
        return Answer(status, go_json({"message": message, "url": self.root_url + SWAGGER}))

    def _not_found(self, message=None, errors=None):
        """Forgejo ctx.NotFound (services/context/api.go:306-327); Gitea
        APIErrorNotFound (v1.26.3 api.go:253-273: a map, keys sorted)."""
        if self.dialect == "forgejo":
            return Answer(404, go_json({"message": message or "The target couldn't be found.",
                                        "url": self.root_url + SWAGGER, "errors": errors or []}))
        return Answer(404, go_json({"errors": errors, "message": message or "not found",
                                    "url": self.root_url + SWAGGER}))

    def _authenticate(self, headers):
        value = headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if not value:
            return None
        if scheme.lower() not in ("token", "bearer") or token.strip() not in self.tokens:
            if self.dialect == "gitea" and self._at_least((1, 26)):
                raise self._error(401, "invalid username, password or token")
            raise self._error(401, "access token does not exist [sha: %s]" % token.strip())
        return self.tokens[token.strip()]

    def _at_least(self, first):
        parts = self.version.split("+")[0].split("-")[0].split(".")
        return tuple(int(p) for p in parts[:2]) >= first

    def _scope(self, route):
        if route[:1] == ["repos"] and len(route) >= 3:
            return ("repo", "%s/%s" % (route[1], route[2])), route[3:]
        if route[:1] == ["orgs"] and len(route) >= 2:
            return ("org", route[1]), route[2:]
        if route[:1] in (["user"], ["admin"]):
            return (route[0],), route[1:]
        return None, None

    def _endpoint(self, scope, rest):
        if scope is None:
            return None
        forgejo = self.dialect == "forgejo"
        if rest == ["actions", "runners"]:
            ok = self._at_least((15, 0)) if forgejo else self._at_least((1, 24))
            return "runners" if ok else None
        if forgejo and self._at_least((11, 0)) and (
                rest == ["actions", "runners", "jobs"] and (scope[0] != "admin" or self._at_least((15, 0)))
                or scope[0] == "admin" and rest == ["runners", "jobs"]):
            return "jobs"
        if not forgejo and rest == ["actions", "jobs"] and self._at_least((1, 25)):
            return "jobs"
        return None

    def _scope_check(self, scope, user):
        """tokenRequiresScopes(category): read:<category> (or write:)."""
        if user is None:
            return
        category = CATEGORY[scope[0]]
        held = user["scopes"]
        if "all" in held or "read:" + category in held or "write:" + category in held:
            return
        required = "[read:%s]" % category
        if self.dialect == "forgejo":
            raise self._error(403, "token does not have at least one of required scope(s): %s" % required)
        raise self._error(403, "token does not have at least one of required scope(s), required=%s, "
                               "token scope=%s" % (required, ",".join(held)))

    def _authorize(self, scope, user, endpoint):
        """The route's middlewares in their order (runbook 08 cites them)."""
        self._scope_check(scope, user)
        name = user and user["user"]
        admin = bool(user) and self.users[name]["admin"]
        if scope[0] == "repo":
            repo = self.repos.get(scope[1])
            if repo is None or repo["private"] and not (admin or self._member(name, repo)):
                raise self._not_found()
            if user is None:
                raise self._error(401, "token is required")
            if not repo["actions"]:
                raise self._not_found()
            reader = self.dialect == "gitea" and endpoint == "jobs"
            if reader and not (admin or self._member(name, repo)):
                raise self._error(403, "user should have specific read permission or be a repo "
                                       "admin or a site admin")
            if not reader and not (admin or self._owns(name, repo["owner_id"])):
                raise self._error(403, "user should be the owner of the repo")
        elif scope[0] == "org":
            org = self.orgs.get(scope[1])
            if org is None:
                raise self._not_found("GetOrgByName",
                                      ["user redirect does not exist [name: %s]" % scope[1]])
            if user is None:
                raise self._error(401, "token is required")
            member = self.dialect == "gitea" and endpoint == "jobs"
            if not admin and name not in (org["members"] if member else org["owners"]):
                if name in org["members"]:
                    raise self._error(403, "Must be an organization %s" % ("member" if member else "owner"))
                raise self._not_found()
        elif user is None:
            raise self._error(401, "token is required")
        elif scope[0] == "admin" and not admin:
            raise self._error(403, "user should be the site admin")

    def _member(self, name, repo):
        return self._owns(name, repo["owner_id"]) or any(
            name in o["members"] for o in self.orgs.values() if o["id"] == repo["owner_id"])

    def _owns(self, name, owner_id):
        if name is None:
            return False
        if self.users[name]["id"] == owner_id:
            return True
        return any(name in o["owners"] for o in self.orgs.values() if o["id"] == owner_id)

    # -- the documents

    def _owner_repo(self, scope, user):
        if scope[0] == "repo":
            return 0, self.repos[scope[1]]["id"]
        if scope[0] == "org":
            return self.orgs[scope[1]]["id"], 0
        if scope[0] == "user":
            return self.users[user["user"]]["id"], 0
        return 0, 0

    def _visible(self, runner, owner, repo, visible):
        """FindRunnerOptions.ToConds (Forgejo v15.0.3 models/actions/runner.go
        ~207-238; Gitea: no `visible`, admin lists every runner)."""
        mine = runner["repo_id"] == repo if repo else (runner["owner_id"] == owner if owner else None)
        is_global = runner["repo_id"] == 0 and runner["owner_id"] == 0
        if repo:
            repo_owner = next(r["owner_id"] for r in self.repos.values() if r["id"] == repo)
            return mine or visible and (runner["owner_id"] == repo_owner and not runner["repo_id"]
                                        or is_global)
        if owner:
            return mine or visible and is_global
        return visible or is_global if self.dialect == "forgejo" else True

    def _page(self, query, items):
        page = max(int((query.get("page") or ["1"])[0] or 1), 1)
        limit = int((query.get("limit") or ["0"])[0] or 0)
        limit = 30 if limit <= 0 else min(limit, 50)
        return items[(page - 1) * limit:page * limit], page, limit

    def _runner_list(self, scope, query, user, path):
        owner, repo = self._owner_repo(scope, user)
        visible = self.dialect == "forgejo" and (query.get("visible") or [""])[0].lower() in ("true", "1")
        chosen = [r for r in self.runners if self._visible(r, owner, repo, visible)]
        shown, page, limit = self._page(query, chosen)
        if self.dialect == "forgejo":
            keys = ("id", "uuid", "owner_id", "repo_id", "name", "status", "version", "labels",
                    "description", "ephemeral")
            body = go_json([{k: r[k] for k in keys} for r in shown])
            return Answer(200, body, headers=self._paging(path, query, len(chosen), limit, page))
        entries = [self._gitea_runner(r) for r in shown]
        return Answer(200, go_json({"runners": entries, "total_count": len(chosen)}))

    def _gitea_runner(self, r):
        entry = {"id": r["id"], "name": r["name"],
                 "status": "offline" if r["status"] == "offline" else "online",
                 "busy": r["status"] == "active"}
        if self._at_least((1, 26)):
            entry["disabled"] = r["disabled"]
        entry["ephemeral"] = r["ephemeral"]
        entry["labels"] = [{"id": i, "name": n, "type": "custom"} for i, n in enumerate(r["labels"])]
        return entry

    def _paging(self, path, query, total, limit, page):
        """SetLinkHeader (genAPILinks: Forgejo services/context/api.go:230-278,
        no Link for a single page) then SetTotalCountHeader (base.go:93-96),
        each also named in Access-Control-Expose-Headers."""
        link = self._link(path, query, total, limit, page)
        headers = [("Link", link)] if link else []
        headers.append(("X-Total-Count", str(total)))
        headers.append(("Access-Control-Expose-Headers", ", ".join(k for k, _ in headers)))
        return tuple(headers)

    def _link(self, path, query, total, limit, page):
        pages = max((total + limit - 1) // limit, 1)
        links = []

        def at(number):
            q = dict((k, v[0]) for k, v in query.items())
            q["page"] = str(number)
            return "<%s%s?%s>" % (self.root_url, path[1:], urllib.parse.urlencode(sorted(q.items())))
        if page < pages:
            links.append('%s; rel="next"' % at(page + 1))
            links.append('%s; rel="last"' % at(pages))
        if page > 1:
            links.append('%s; rel="first"' % at(1))
            links.append('%s; rel="prev"' % at(page - 1))
        return ",".join(links)

    def _job_list(self, scope, query, user, path):
        owner, repo = self._owner_repo(scope, user)
        chosen = [j for j in self.jobs if (not repo or j["repo_id"] == repo)
                  and (not owner or j["owner_id"] == owner)]
        if self.dialect == "forgejo":
            return Answer(200, go_json(self._forgejo_jobs(chosen, query)))
        statuses = []
        for value in query.get("status", []):
            if value in ("pending", "waiting", "requested", "action_required"):
                statuses.append("blocked")  # Gitea's naming trap (shared/action.go:87-110)
            elif value == "queued":
                statuses.append("waiting")
            elif value == "in_progress":
                statuses.append("running")
            else:
                raise self._error(400, "Invalid status %s" % value)
        if statuses:
            chosen = [j for j in chosen if j["status"] in statuses]
        chosen = sorted(chosen, key=lambda j: -j["id"])
        shown, page, limit = self._page(query, chosen)
        return Answer(200, go_json({"jobs": [self._gitea_job(j) for j in shown],
                                    "total_count": len(chosen)}),
                      headers=self._paging(path, query, len(chosen), limit, page)
                      if self._at_least((1, 26)) else ())

    def _forgejo_jobs(self, chosen, query):
        """shared.GetActionRunJobs (v15.0.3 shared/runners.go:52-92; v11-v13
        split the absent `labels` too)."""
        if "labels" in query or not self._at_least((14, 0)):
            labels = (query.get("labels") or [""])[0].strip().split(",")
        else:
            labels = []
        out = []
        for j in chosen:
            if j["status"] not in ("waiting", "running"):
                continue
            if not labels or labels[0] == "" and not j["runs_on"] or (
                    j["runs_on"] and set(j["runs_on"]) <= set(labels)):
                entry = {"id": j["id"]}
                if self._at_least((15, 0)):
                    entry.update(attempt=j["attempt"], handle=j["handle"])
                entry.update(repo_id=j["repo_id"], owner_id=j["owner_id"], name=j["name"],
                             needs=j["needs"], runs_on=j["runs_on"], task_id=j["task_id"],
                             status=j["status"])
                out.append(entry)
        return out or None  # `var res []*ActionRunJob`: null when nothing matched

    def _gitea_job(self, j):
        repo = next(name for name, r in self.repos.items() if r["id"] == j["repo_id"])
        api = "%sapi/v1/repos/%s" % (self.root_url, repo)
        status = {"waiting": "queued", "blocked": "waiting", "running": "in_progress"}.get(
            j["status"], "completed")
        entry = {"id": j["id"], "url": "%s/actions/jobs/%d" % (api, j["id"]),
                 "html_url": "%s/actions/runs/%d/jobs/%d" % (self.root_url + repo, j["id"], j["id"]),
                 "run_id": j["id"], "run_url": "%s/actions/runs/%d" % (api, j["id"]),
                 "name": j["name"], "labels": j["runs_on"], "run_attempt": j["attempt"],
                 "head_sha": "0" * 40, "head_branch": "main", "status": status,
                 "steps": [], "created_at": go_time(j["created"]),
                 "started_at": go_time(0), "completed_at": go_time(0)}
        return entry


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner = None

    def log_message(self, *args):
        pass

    def _send(self, status, body, content_type, headers=()):
        self.send_response_only(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Date", email.utils.formatdate(usegmt=True))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method):
        forge = self.owner
        parts = urllib.parse.urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = int(headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        forge.requests.append({"method": method, "path": self.path, "headers": headers})
        try:
            forge.answer(method, parts.path, urllib.parse.parse_qs(parts.query, keep_blank_values=True),
                         headers)
            if forge.ping_down:
                raise Answer(502, b"Bad Gateway", "text/plain; charset=utf-8")
            data = json.loads(body.decode() or "{}")
            reply = json.dumps({"data": "Hello, %s!" % data.get("data", "")}).encode()
            self._send(200, reply, "application/json", (("Accept-Encoding", "gzip"),))
        except Answer as answer:
            self._send(answer.status, answer.body, answer.content_type, answer.headers)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")
