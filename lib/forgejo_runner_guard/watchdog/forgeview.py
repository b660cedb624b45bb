"""The forge's own view of each runner (issue 20), for every runner with
a forge_token_file, whatever its log says: some wedges write nothing to
the log (a dead pooled HTTP/2 connection, a runner that never asks for
its next job), and only the forge sees them.

  who    registration.identity(): the runner's forge URL (`forge = URL`
         names it instead), its uuid, name and labels, from its .runner
         or its config's server.connections (backend.begin_launch(), all
         side by side)
  ask    forge/api.py with the operator's read-only token
         (system/secretfile.py: a file only root may read), one Session
         per forge, scope and token: the version, the runner list, the
         waiting jobs its labels match; never a runner RPC, never the
         runner's own credentials
  read   forge/view.py: the runner in the list (uuid on Forgejo, name on
         Gitea), the jobs it could take, when each was first seen waiting
         (the state file's memory)
  judge  decide.forge_rule(): offline while its process has run over two
         minutes, or idle while such a job has waited queue_wait; the
         caller (command.py) then guards the jobs, asks the Ping (verify)
         and minds the budget, and decide.with_view() decides

-> Check.view, a View.  A failure of the API (refused, 401/403/404, a
body of another shape, a forge too old) is View.error: one error line
naming the cause and the fix, exit 1, never a restart; the log rules go
on deciding as before.
"""

import dataclasses
from typing import Optional, Tuple

from ..forge import api, view
from ..report import GuardError
from ..runners import backends, registration
from ..system import secretfile
from . import decide


@dataclasses.dataclass(frozen=True)
class View:
    """What the forge said about one runner.

    url, scope  where it was asked
    seen        forge.view.Seen (None when the view failed)
    verdict     decide.forge_rule()'s (rule, reason)
    memory      the sightings to keep in the state file (None: keep the old)
    error       the one line saying why the view failed ("" when it did not)
    at          when it was asked (epoch seconds)
    """

    url: str = ""
    scope: Tuple[str, ...] = ()
    seen: Optional[view.Seen] = None
    verdict: Tuple[str, str] = ("", "")
    memory: Optional[dict] = None
    error: str = ""
    at: float = 0.0

    @property
    def rule(self):
        return self.verdict[0]


class _Failed(Exception):
    """The view of one runner failed; the message is its one line."""


def look(checks, now, history, timeout, reporter):
    """Set c.view for every check with a forge_token_file and no error
    yet; report each failure once (one error line for all the runners it
    concerns).  timeout: for each begin_launch() call (docker_timeout)."""
    todo = [c for c in checks if c.error is None and c.cfg.forge_token_file]
    if not todo:
        return
    who = backends.launches(todo, timeout, _identity)
    asker = _Asker()
    failed = {}
    for c in todo:
        c.view = _one(c, who[c.name], asker, history.forge_memory(c.name), now)
        if c.view.error:
            failed.setdefault(c.view.error, []).append(c.name)
    for line, names in failed.items():
        reporter.error("%s: the forge's view: %s" % (", ".join(names), line))


def _identity(call):
    """registration.Identity, or the GuardError that says why not."""
    if isinstance(call, GuardError):
        return call
    try:
        return registration.identity(call.result())
    except GuardError as exc:
        return exc


class _Asker:
    """The run's tokens and sessions, each read or made once."""

    def __init__(self):
        self.tokens = {}
        self.sessions = {}

    def token(self, path):
        if path not in self.tokens:
            try:
                self.tokens[path] = (True, secretfile.read_token(path))
            except GuardError as exc:
                self.tokens[path] = (False, str(exc))
        ok, value = self.tokens[path]
        if not ok:
            raise _Failed(value)
        return value

    def session(self, url, cfg, insecure):
        key = (url, cfg.forge_scope, cfg.forge_token_file, cfg.forge_api, insecure,
               cfg.forge_ca_file, cfg.ping_timeout)
        if key not in self.sessions:
            token = self.token(cfg.forge_token_file)
            try:
                client = api.Client(url, token, cfg.ping_timeout, insecure, cfg.forge_ca_file)
            except api.ForgeError as exc:
                raise _Failed(str(exc))
            self.sessions[key] = api.Session(client, cfg.forge_scope, cfg.forge_api)
        return self.sessions[key]


def _one(c, who, asker, memory, now):
    cfg = c.cfg
    url = cfg.forge
    try:
        if not cfg.forge_scope:
            raise _Failed("forge_token_file is set, forge_scope is not: set forge_scope = repo "
                          "OWNER/REPO, org ORG, user or admin (where the runner is registered)")
        if isinstance(who, GuardError):
            raise _Failed("cannot read who the runner is: %s" % who)
        url = url or (who.urls[0] if who.urls else "")
        if not url:
            raise _Failed("no forge URL: %s: name it with forge = URL" % who.reason)
        scope = api.scope_text(cfg.forge_scope)
        session = asker.session(url, cfg, who.insecure)
        d = session.dialect()
        listed = session.runners()
        runner = None
        if listed is not None:
            try:
                runner = view.find(listed, d, who.uuid, who.name)
            except view.NotListed as exc:
                raise _Failed("the runner list of %s at %s has %s (%s): %s"
                              % (scope, url, exc, who.source, exc.fix))
        labels = runner.labels if runner is not None and runner.labels else view.label_names(who.labels)
        jobs = session.jobs(labels) if labels else None
    except _Failed as exc:
        return View(url=url, scope=cfg.forge_scope, error=str(exc), at=now)
    except api.ForgeError as exc:
        return View(url=url, scope=cfg.forge_scope, error="%s at %s: %s" % (
            api.scope_text(cfg.forge_scope), url, exc), at=now)
    seen, kept = view.observe(d, runner, labels, jobs, memory, now)
    verdict = decide.forge_rule(seen, now, cfg, c.evidence, c.started_at)
    return View(url, cfg.forge_scope, seen, verdict, kept, at=now)


def remember(checks, history):
    """Keep each view's sightings in `history` (state.State); True when
    one changed (the caller saves)."""
    changed = False
    for c in checks:
        v = c.view
        if v is not None and v.memory is not None:
            changed = history.set_forge_memory(c.name, v.memory) or changed
    return changed
