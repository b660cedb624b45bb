"""PURE.  What the forge's REST documents say about one runner (issue 20).

forge/api.py asks the forge; this module reads its answers, exactly as the
forges' sources write them (Forgejo v15.0.3, Gitea v1.26.3; runbook 08,
"The forge's view of the runner", cites the lines):

  dialect(version, forced)   GET /api/v1/version's text -> Dialect: Forgejo
                             or Gitea, and which lists that version has
  runner_list(doc, d)        a runner list -> [Runner]; Forgejo: a bare
                             array of {id, uuid, owner_id, repo_id, name,
                             status: offline|idle|active, labels: [names]};
                             Gitea: {"runners": [{id, name, status:
                             online|offline, busy, disabled (1.26+), labels:
                             [{id, name, type}]}], "total_count": N}
  job_list(doc, d)           a job list -> [Job] waiting for a runner;
                             Forgejo: a bare array (`null` when empty) of
                             {id, attempt, repo_id, owner_id, name, runs_on,
                             status: waiting|running}; Gitea (?status=queued):
                             {"jobs": [{id, name, labels, status: "queued",
                             created_at, ...}], "total_count": N}
  find(runners, d, uuid, name)   the runner: by uuid on Forgejo, by name on
                             Gitea (whose list has no uuid)
  runs_on(job, labels)       the forges' own rule: every label the job runs
                             on is one of the runner's
  serves(runner, job)        Forgejo: the runner's scope holds the job's repo
  remember(jobs, memory, now)   when each job was first seen waiting (the
                             state file keeps it: Forgejo's jobs carry no
                             time at all, and Gitea's created_at is when the
                             job was made, not when it began to wait)
  observe(d, runner, labels, jobs, memory, now)   -> Seen (what decide.py
                             judges) and the memory to keep

A document of another shape raises ShapeError naming what was expected.
"""

import calendar
import dataclasses
import re
from typing import Optional, Tuple

FORGEJO = "forgejo"
GITEA = "gitea"
DIALECTS = (FORGEJO, GITEA)

# The forge's own status words, normalised: Forgejo says offline|idle|active;
# Gitea says online|offline and busy (busy: its ACTIVE).
OFFLINE, IDLE, ACTIVE = "offline", "idle", "active"

# First versions with each list (runbook 08 cites the commits).
FORGEJO_RUNNERS = (15, 0)  # GET .../actions/runners
FORGEJO_JOBS = (11, 0)  # GET .../actions/runners/jobs
FORGEJO_ADMIN_ACTIONS_JOBS = (15, 0)  # /admin/actions/runners/jobs (before: /admin/runners/jobs)
FORGEJO_ALL_JOBS = (14, 0)  # `labels` may be left out (v11-v13 need it)
GITEA_RUNNERS = (1, 24)  # GET .../actions/runners
GITEA_JOBS = (1, 25)  # GET .../actions/jobs


class ShapeError(ValueError):
    """A document that is not what the forge's source writes; one line."""


@dataclasses.dataclass(frozen=True)
class Dialect:
    """Which forge, its version (a tuple, () when unreadable) and what
    that version serves."""

    name: str
    version: Tuple[int, ...]
    text: str = ""  # the version as the forge wrote it

    def _at_least(self, first):
        return not self.version or self.version[:2] >= first

    @property
    def has_runners(self):
        return self._at_least(FORGEJO_RUNNERS if self.name == FORGEJO else GITEA_RUNNERS)

    @property
    def has_jobs(self):
        return self._at_least(FORGEJO_JOBS if self.name == FORGEJO else GITEA_JOBS)

    @property
    def label(self):
        return "%s %s" % ("Forgejo" if self.name == FORGEJO else "Gitea", self.text or "(version unknown)")


@dataclasses.dataclass(frozen=True)
class Runner:
    """One runner as the forge lists it, its status normalised."""

    id: int
    name: str
    status: str  # OFFLINE, IDLE, ACTIVE
    said: str  # the forge's own words: "idle", "online, not busy"
    labels: Tuple[str, ...] = ()
    uuid: Optional[str] = None  # Forgejo only
    owner_id: Optional[int] = None  # Forgejo only (0: not an owner's runner)
    repo_id: Optional[int] = None  # Forgejo only (0: not a repo's runner)
    disabled: bool = False  # Gitea 1.26+


@dataclasses.dataclass(frozen=True)
class Job:
    """One job waiting for a runner."""

    id: int
    attempt: int
    name: str
    labels: Tuple[str, ...]  # what it runs on
    repo_id: Optional[int] = None  # Forgejo only
    owner_id: Optional[int] = None  # Forgejo only
    created_at: Optional[float] = None  # Gitea only: when the job was made

    @property
    def key(self):
        """The state file's key: an attempt waits afresh."""
        return "%d/%d" % (self.id, self.attempt)


# ------------------------------------------------------------ the version

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


def dialect(text, forced="auto"):
    """GET /api/v1/version's "version" -> Dialect.  Forgejo writes
    `15.0.3+gitea-1.22.0` (its Makefile appends +gitea-COMPAT to every
    version) and counts from 7; Gitea writes `1.26.3`.  `forced` (forge_api)
    settles the forge when it is not auto (a version in the other forge's
    numbering then counts as unknown: every list is asked); ShapeError
    when auto cannot tell.  `text`: a string (version_text())."""
    match = _VERSION.match(text)
    version = tuple(int(g) for g in match.groups() if g is not None) if match else ()
    if "+gitea-" in text or (version and version[0] >= 7):
        found = FORGEJO
    elif version and version[0] == 1:
        found = GITEA
    else:
        found = None
    if forced in DIALECTS:  # a version of the other forge's numbering says nothing
        return Dialect(forced, version if found == forced else (), text)
    if found is not None:
        return Dialect(found, version, text)
    raise ShapeError("cannot tell Forgejo from Gitea by the version %r: set forge_api = forgejo "
                     "or gitea" % text)


def version_text(doc):
    """GET /api/v1/version's body ({"version": "..."}) -> the text."""
    if not isinstance(doc, dict) or not isinstance(doc.get("version"), str):
        raise ShapeError('expected {"version": "..."}')
    return doc["version"]


# ------------------------------------------------------------ documents


def _int(item, key, where):
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ShapeError("%s: %r is not a whole number" % (where, key))
    return value


def _str(item, key, where):
    value = item.get(key)
    if not isinstance(value, str):
        raise ShapeError("%s: %r is not a string" % (where, key))
    return value


def _strings(value, key, where):
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ShapeError("%s: %r is not a list of strings" % (where, key))
    return tuple(value)


def _entries(doc, d, key):
    """Forgejo: the bare array (None: empty when allowed); Gitea: doc[key]."""
    if d.name == FORGEJO:
        if isinstance(doc, dict):
            raise ShapeError("expected Forgejo's bare JSON array, got an object%s" % (
                " (%r: Gitea's form; set forge_api = gitea)" % key if key in doc else ""))
        if doc is None and key == "jobs":
            return []  # Forgejo's empty job list is null
        if not isinstance(doc, list):
            raise ShapeError("expected Forgejo's JSON array")
        return doc
    if isinstance(doc, list):
        raise ShapeError('expected Gitea\'s {"%s": [...], "total_count": N}, got an array '
                         "(Forgejo's form; set forge_api = forgejo)" % key)
    if (not isinstance(doc, dict) or not isinstance(doc.get(key), list)
            or isinstance(doc.get("total_count"), bool) or not isinstance(doc.get("total_count"), int)):
        raise ShapeError('expected Gitea\'s {"%s": [...], "total_count": N}' % key)
    return doc[key]


def total(doc, d):
    """Gitea's total_count (None for Forgejo, whose total is a header)."""
    return doc["total_count"] if d.name == GITEA else None


def runner_list(doc, d):
    """A runner list (one page) -> [Runner]."""
    runners = []
    for n, item in enumerate(_entries(doc, d, "runners")):
        where = "runner %d" % n
        if not isinstance(item, dict):
            raise ShapeError("%s: not an object" % where)
        runners.append(_forgejo_runner(item, where) if d.name == FORGEJO else _gitea_runner(item, where))
    return runners


def _forgejo_runner(item, where):
    status = item.get("status")
    if status not in (OFFLINE, IDLE, ACTIVE):
        raise ShapeError("%s: status %r is none of offline, idle, active" % (where, status))
    return Runner(id=_int(item, "id", where), name=_str(item, "name", where), status=status,
                  said=status, labels=_strings(item.get("labels"), "labels", where),
                  uuid=_str(item, "uuid", where), owner_id=_int(item, "owner_id", where),
                  repo_id=_int(item, "repo_id", where))


def _gitea_runner(item, where):
    status, busy = item.get("status"), item.get("busy")
    if status not in ("online", OFFLINE) or not isinstance(busy, bool):
        raise ShapeError("%s: status %r / busy %r are not online|offline / true|false"
                         % (where, status, busy))
    labels = item.get("labels")
    if labels is None:
        labels = []
    if not isinstance(labels, list) or not all(isinstance(x, dict) and isinstance(x.get("name"), str)
                                               for x in labels):
        raise ShapeError("%s: 'labels' is not a list of {id, name, type}" % where)
    disabled = item.get("disabled", False)  # Gitea 1.26+
    normal = OFFLINE if status == OFFLINE else (ACTIVE if busy else IDLE)
    return Runner(id=_int(item, "id", where), name=_str(item, "name", where), status=normal,
                  said="%s, %s" % (status, "busy" if busy else "not busy"),
                  labels=tuple(x["name"] for x in labels), disabled=disabled is True)


def job_list(doc, d):
    """A job list (one page) -> [Job] waiting for a runner (Forgejo lists
    running jobs too; Gitea's ?status=queued only the waiting ones)."""
    jobs = []
    for n, item in enumerate(_entries(doc, d, "jobs")):
        where = "job %d" % n
        if not isinstance(item, dict):
            raise ShapeError("%s: not an object" % where)
        status = _str(item, "status", where)
        if d.name == FORGEJO:
            if status != "waiting":
                continue
            jobs.append(Job(id=_int(item, "id", where), attempt=item.get("attempt") or 0,
                            name=_str(item, "name", where),
                            labels=_strings(item.get("runs_on"), "runs_on", where),
                            repo_id=_int(item, "repo_id", where), owner_id=_int(item, "owner_id", where)))
        else:
            if status != "queued":  # Gitea's "waiting" is blocked, not waiting for a runner
                continue
            jobs.append(Job(id=_int(item, "id", where), attempt=item.get("run_attempt") or 0,
                            name=_str(item, "name", where),
                            labels=_strings(item.get("labels"), "labels", where),
                            created_at=rfc3339(item.get("created_at"))))
    return jobs


_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def rfc3339(text):
    """Go's time.Time in JSON -> epoch seconds; None for the zero time Gitea
    writes for "never" (1970-01-01T00:00:00Z), or anything unreadable."""
    match = _RFC3339.match(text) if isinstance(text, str) else None
    if not match:
        return None
    y, mo, d, h, mi, s, frac, zone = match.groups()
    seconds = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s)))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    seconds += float(frac) if frac else 0.0
    return seconds if seconds > 0 else None


# ------------------------------------------------------------ matching


class NotListed(LookupError):
    """The runner cannot be found in the forge's list: str() says what the
    list holds ("no runner with the uuid ..."), `fix` what to do."""

    def __init__(self, message, fix):
        super().__init__(message)
        self.fix = fix


ELSEWHERE = ("set forge_scope to where the runner is registered, or re-register it if it was "
             "deleted on the forge")


def find(runners, d, uuid, name):
    """The runner in the list: by uuid on Forgejo, by name on Gitea (its
    list carries no uuid; two runners of one name cannot be told apart)."""
    if d.name == FORGEJO:
        if not uuid:
            raise NotListed("no runner this one can be matched with", "its registration gives no "
                            "uuid, and Forgejo's list is matched by uuid: register it again")
        found = [r for r in runners if r.uuid == uuid]
        what = "uuid %s" % uuid
    else:
        found = [r for r in runners if r.name == name]
        what = "name %r" % name
    if len(found) > 1:
        raise NotListed("%d runners with the %s" % (len(found), what),
                        "Gitea lists no uuid: give each runner its own name")
    if not found:
        raise NotListed("no runner with the %s" % what, ELSEWHERE)
    return found[0]


def label_names(labels):
    """A .runner file's labels ("docker:docker://node:20", "self-hosted:host")
    -> the names the forge matches ("docker", "self-hosted")."""
    return tuple(dict.fromkeys(str(label).split(":", 1)[0].strip() for label in labels
                               if str(label).split(":", 1)[0].strip()))


def runs_on(job, labels):
    """The forges' rule (Forgejo ActionRunJob.ItRunsOn, Gitea
    ActionRunner.CanMatchLabels): every label the job runs on is one of the
    runner's.  A job with no runs-on matches no runner with labels."""
    if not job.labels:
        return not labels
    return set(job.labels) <= set(labels)


def serves(runner, job):
    """Can this runner take this job by its scope?  Forgejo lists both ids:
    an instance runner (0, 0) serves every repo, an owner's runner that
    owner's repos, a repo's runner that repo.  Gitea lists neither (the scope
    asked must be the runner's own): True."""
    if runner is None or runner.repo_id is None or job.repo_id is None:
        return True
    if runner.repo_id:
        return runner.repo_id == job.repo_id
    if runner.owner_id:
        return runner.owner_id == job.owner_id
    return True


def remember(jobs, memory, now):
    """-> ([(job, first seen waiting)], the memory to keep): a job seen
    before keeps its first sighting; a job not waiting any more is
    forgotten, so a later wait starts afresh.  memory: {Job.key: epoch}."""
    kept, waits = {}, []
    for job in jobs:
        seen = memory.get(job.key)
        since = float(seen) if isinstance(seen, (int, float)) and seen <= now else now
        kept[job.key] = since
        waits.append((job, since))
    return waits, kept


@dataclasses.dataclass(frozen=True)
class Seen:
    """What the forge showed about one runner at this check (observe()).

    dialect        the forge (view.Dialect)
    runner         its entry in the runner list; None when this version
                   lists no runners (Forgejo v11-v14: the jobs alone)
    labels         the label names its jobs were matched against
    waits          ((Job, first seen waiting), ...) of the jobs it could
                   take (labels and scope), oldest sighting first
    jobs_listed    False when this version has no job list (Gitea 1.24)
    offline_since  the first check, of those in a row that saw it offline,
                   that did (None when not offline)
    """

    dialect: Dialect
    runner: Optional[Runner]
    labels: Tuple[str, ...] = ()
    waits: Tuple[Tuple[Job, float], ...] = ()
    jobs_listed: bool = True
    offline_since: Optional[float] = None

    @property
    def status(self):
        """offline, idle, active; None without a runner list."""
        return None if self.runner is None else self.runner.status

    def oldest_wait(self, now):
        """Seconds the longest-waiting job has been seen waiting, or None."""
        return max((now - since for _, since in self.waits), default=None)


def observe(d, runner, labels, jobs, memory, now):
    """-> (Seen, memory to keep).  jobs: the job list (None: not listed);
    only the jobs this runner could take count (runs_on() and serves()).
    memory: {"jobs": {Job.key: epoch}, "offline_since": epoch or None}."""
    mine = [j for j in jobs or () if runs_on(j, labels) and serves(runner, j)]
    waits, kept = remember(mine, memory.get("jobs") or {}, now)
    offline = runner is not None and runner.status == OFFLINE
    since = memory.get("offline_since") if offline else None
    if offline and not (isinstance(since, (int, float)) and since <= now):
        since = now
    seen = Seen(d, runner, tuple(labels), tuple(sorted(waits, key=lambda w: w[1])),
                jobs is not None, since)
    return seen, {"jobs": kept, "offline_since": since}
