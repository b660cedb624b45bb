"""The forge's REST API, read-only, with an operator's token (issue 20).

Only GETs of three documents, with `Authorization: token <PAT>`:

    /api/v1/version                              Forgejo or Gitea, which version
    /api/v1/<scope>/actions/runners              the runner list (Forgejo
                                                 v15+, ?visible=true; Gitea 1.24+)
    /api/v1/<scope>/actions/runners/jobs?labels=  Forgejo v11+: waiting and
                                                 running jobs these labels match
    /api/v1/<scope>/actions/jobs?status=queued    Gitea 1.25+: waiting jobs
                                                 (status=waiting there means
                                                 blocked)

<scope> is repos/OWNER/REPO, orgs/ORG, user or admin (forge_scope).  The
runner RPCs (FetchTask, Declare, UpdateTask, ...) are never called, and
never with the runner's own credentials: they would refresh its
last_online (hiding the wedge), claim a job or rewrite its labels.

Every failure is a ForgeError: one line naming the cause and the fix
(scope, ownership, version), never the token.  view.py reads the
documents.

  Session(Client(url, token, timeout, insecure, ca_file), scope, forge_api)
      .dialect() .runners() .jobs(labels)   each asked once per run
"""

import dataclasses
import json
import urllib.parse

from .. import __version__
from ..report import GuardError
from . import view
from .connection import make_context, os_reason, ssl_text, verify_reason

MAX_BODY = 8 * 1024 * 1024  # bytes: a longer answer is not the forge's list
PAGE = 50  # both forges' MAX_RESPONSE_ITEMS default: the most one page holds
MAX_PAGES = 20
SCOPE_TOKEN = {"repo": "read:repository", "org": "read:organization", "user": "read:user",
               "admin": "read:admin"}


class ForgeError(GuardError):
    """The forge's API failed; the message is one line with the fix."""


def scope_path(scope):
    """forge_scope -> the API path prefix: ("repo", "o/r") -> repos/o/r."""
    kind = scope[0]
    if kind == "repo":
        owner, repo = scope[1].split("/", 1)
        return "repos/%s/%s" % (urllib.parse.quote(owner, safe=""), urllib.parse.quote(repo, safe=""))
    if kind == "org":
        return "orgs/%s" % urllib.parse.quote(scope[1], safe="")
    return kind


def scope_text(scope):
    return " ".join(scope)


# ------------------------------------------------------------ one request


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    headers: dict  # lower-case names
    body: bytes


class Client:
    """GETs against one forge: a fresh connection each (HTTP/1.1), TLS
    verified against the system store or `ca_file`, or not at all with
    `insecure` (the runner's own runner.insecure), `timeout` seconds for
    each."""

    def __init__(self, base, token, timeout, insecure=False, ca_file=None):
        parts = urllib.parse.urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ForgeError("forge URL %r: not an http:// or https:// URL" % base)
        self.base = base.rstrip("/")
        self.parts = parts
        self.token = token
        self.timeout = timeout
        self.context = None
        if parts.scheme == "https":
            try:
                self.context = make_context(ca_file, verify=not insecure)
            except ValueError as exc:
                raise ForgeError("forge_ca_file: %s" % exc)

    def url(self, path, query=()):
        text = "%s/api/v1/%s" % (self.base, path)
        return text + ("?" + urllib.parse.urlencode(query) if query else "")

    def get(self, path, query=()):
        """-> Answer; ForgeError when the forge cannot be reached."""
        import http.client  # only here: a run without a forge token never loads it

        target = urllib.parse.urlsplit(self.url(path, query))
        port = self.parts.port
        if self.context is not None:
            conn = http.client.HTTPSConnection(self.parts.hostname, port, timeout=self.timeout,
                                               context=self.context)
        else:
            conn = http.client.HTTPConnection(self.parts.hostname, port, timeout=self.timeout)
        headers = {"Authorization": "token " + self.token, "Accept": "application/json",
                   "User-Agent": "forgejo-runner-guard/%s" % __version__}
        try:
            conn.request("GET", target.path + ("?" + target.query if target.query else ""),
                         headers=headers)
            resp = conn.getresponse()
            body = resp.read(MAX_BODY + 1)
            return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
        except (OSError, http.client.HTTPException) as exc:
            raise ForgeError("cannot reach the forge's API at %s (%s): is the forge up and the "
                             "URL right? (the log rules decide alone)"
                             % (self.base, _transport(exc, self.timeout)))
        finally:
            conn.close()


def _transport(exc, timeout):
    """A failed request -> 'connection refused', 'TLS: expired', ..."""
    import http.client
    import socket
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS: %s" % verify_reason(exc)
    if isinstance(exc, ssl.SSLError):
        return "TLS: %s" % ssl_text(exc)
    if isinstance(exc, socket.gaierror):
        return "DNS: %s" % exc.strerror
    if isinstance(exc, http.client.HTTPException):
        return "not an HTTP reply (%s)" % (" ".join(str(exc).split())[:80] or type(exc).__name__)
    if isinstance(exc, socket.timeout):
        return "no answer within %g s" % timeout
    return os_reason(exc, timeout, "while connecting")  # the bare reason: 'connection refused'


# ------------------------------------------------------------ what a failure means


def _message(answer):
    """The forge's own error text: {"message": ...} (both forges' API
    errors), else the body's first line."""
    text = answer.body[:2000].decode("utf-8", "replace")
    try:
        doc = json.loads(text)
        if isinstance(doc, dict) and isinstance(doc.get("message"), str):
            text = doc["message"]
    except ValueError:
        pass
    return " ".join(text.split())[:200]


def explain(answer, what, scope, token):
    """A failed GET (`what`: "the runner list") -> ForgeError, one line:
    the status, the forge's own words (never the token) and the fix."""
    said = _message(answer).replace(token, "<token>") if token else _message(answer)
    head = "%s: HTTP %d%s" % (what, answer.status, " (%s)" % said if said else "")
    kind = scope[0]
    json_body = answer.headers.get("content-type", "").startswith("application/json")
    if answer.status == 401:
        if "token is required" in said:
            fix = ("the forge saw no token: a proxy in front of it may drop the Authorization "
                   "header")
        else:
            fix = ("the forge refused the token (deleted, expired or mistyped): make a new one "
                   "(runbook 08, \"The forge's view of the runner\") and put it in forge_token_file")
    elif answer.status == 403 and "scope" in said:
        fix = "the token lacks the scope: make one with %s" % SCOPE_TOKEN[kind]
    elif answer.status == 403:
        fix = {"repo": "forge_scope = repo needs a token of the repo's owner (or a site admin)",
               "org": "forge_scope = org needs a token of an owner of the organisation",
               "user": "the token's user may not list its runners",
               "admin": "forge_scope = admin needs a site administrator's token"}[kind]
    elif answer.status == 404 and not json_body:
        fix = ("the forge has no such endpoint: the runner list needs Forgejo v15 or Gitea 1.24, "
               "the job list Forgejo v11 or Gitea 1.25 (or the URL is not the forge's root)")
    elif answer.status == 404:
        fix = ("no %s as the token's user sees it, or Actions is off there: check forge_scope "
               "and that user's access" % scope_text(scope))
    else:
        fix = "the forge's own trouble: look at its log (the log rules decide alone)"
    return ForgeError("%s: %s" % (head, fix))


def _document(answer, what):
    if not answer.headers.get("content-type", "").startswith("application/json"):
        raise ForgeError("%s: HTTP 200 but %r, not JSON: is the URL the forge's root?"
                         % (what, answer.headers.get("content-type", "no content type")))
    if len(answer.body) > MAX_BODY:
        raise ForgeError("%s: more than %d bytes: not the forge's list" % (what, MAX_BODY))
    try:
        return json.loads(answer.body.decode("utf-8"))
    except ValueError as exc:
        raise ForgeError("%s: not JSON (%s): is the URL the forge's root?" % (what, exc))


def _get(client, path, query, what, scope):
    answer = client.get(path, query)
    if answer.status != 200:
        raise explain(answer, what, scope, client.token)
    return answer, _document(answer, what)


def _shape(what, exc, d):
    return ForgeError("%s is not the documented shape for %s (%s): set forge_api to the forge "
                      "this is, or upgrade it" % (what, d.label, exc))


# ------------------------------------------------------------ the lists


def detect(client, forced, scope):
    """GET /api/v1/version -> view.Dialect."""
    _, doc = _get(client, "version", (), "GET /api/v1/version", scope)
    try:
        return view.dialect(view.version_text(doc), forced)
    except view.ShapeError as exc:
        raise ForgeError("GET /api/v1/version: %s" % exc)


def runners(client, d, scope):
    """Every page of the runner list -> tuple of view.Runner."""
    path = "%s/actions/runners" % scope_path(scope)
    what = "GET /api/v1/%s" % path
    found = []
    for page in range(1, MAX_PAGES + 1):
        query = [("page", page), ("limit", PAGE)]
        if d.name == view.FORGEJO:
            query.insert(0, ("visible", "true"))  # also the runners the scope may use
        answer, doc = _get(client, path, query, what, scope)
        try:
            entries = view.runner_list(doc, d)
            total = view.total(doc, d)
        except view.ShapeError as exc:
            raise _shape(what, exc, d)
        if total is None:
            total = _count(answer.headers.get("x-total-count"))
        found.extend(entries)
        if len(entries) < PAGE or (total is not None and len(found) >= total):
            break
    return tuple(found)


def _count(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def jobs(client, d, scope, labels):
    """The jobs waiting for a runner -> tuple of view.Job.  Forgejo filters
    by the labels itself and answers in one document (v11-v13 need
    `labels`); Gitea is asked for status=queued, page by page."""
    if d.name == view.FORGEJO:
        path = "%s/actions/runners/jobs" % scope_path(scope)
        if scope[0] == "admin" and d.version and d.version[:2] < view.FORGEJO_ADMIN_ACTIONS_JOBS:
            path = "admin/runners/jobs"
        pages, query = 1, [("labels", ",".join(labels))]
    else:
        path = "%s/actions/jobs" % scope_path(scope)
        pages, query = MAX_PAGES, [("status", "queued"), ("limit", PAGE)]
    what = "GET /api/v1/%s" % path
    found = []
    for page in range(1, pages + 1):
        paged = query + ([("page", page)] if d.name == view.GITEA else [])
        _, doc = _get(client, path, paged, what, scope)
        try:
            entries = view.job_list(doc, d)
            total = view.total(doc, d)
        except view.ShapeError as exc:
            raise _shape(what, exc, d)
        found.extend(entries)
        count = len(doc["jobs"]) if d.name == view.GITEA else 0
        if total is None or count < PAGE or page * PAGE >= total:
            break
    return tuple(found)


class Session:
    """One forge and scope, asked once per run whatever the number of
    runners it serves: the dialect, the runner list and the job lists
    (Forgejo's per label set) are kept.  A failure is kept too and raised
    again, so it is asked (and reported) once."""

    def __init__(self, client, scope, forced="auto"):
        self.client = client
        self.scope = scope
        self.forced = forced
        self._memo = {}

    def _once(self, key, call):
        if key not in self._memo:
            try:
                self._memo[key] = (True, call())
            except ForgeError as exc:
                self._memo[key] = (False, exc)
        ok, value = self._memo[key]
        if not ok:
            raise value
        return value

    def dialect(self):
        """view.Dialect; ForgeError when the forge serves neither list."""
        def detect_usable():
            d = detect(self.client, self.forced, self.scope)
            if not (d.has_runners or d.has_jobs):
                raise ForgeError("%s lists neither runners nor jobs: the runner list needs "
                                 "Forgejo v15 or Gitea 1.24, the job list Forgejo v11 or Gitea "
                                 "1.25; upgrade the forge or leave forge_token_file unset"
                                 % d.label)
            return d
        return self._once("dialect", detect_usable)

    def runners(self):
        """The runner list, or None when this version has none."""
        d = self.dialect()
        return self._once("runners", lambda: runners(self.client, d, self.scope)
                          if d.has_runners else None)

    def jobs(self, labels):
        """The waiting jobs (Forgejo: those `labels` match), or None when
        this version has no job list."""
        d = self.dialect()
        key = ("jobs", tuple(labels) if d.name == view.FORGEJO else ())
        return self._once(key, lambda: jobs(self.client, d, self.scope, labels)
                          if d.has_jobs else None)
