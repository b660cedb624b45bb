"""The watchdog's memory: restart history per runner, and its lock.

<state_dir>/state.json survives reboots (the default state dir is under
/var/lib).  It is small and written whole with safewrite.atomic_write, so
it is the old file or the new one, never a mix:

    {"version": 1,
     "runners": {"forgejo_runner": {"restarts": [1782727200.5, ...],
                                    "restarts_total": 7}}}

`restarts` holds the epoch times of the restarts of the last day (the
budget looks at the last hour; a day leaves room to read it);
`restarts_total` counts every restart ever made, for the metrics counter.
With [notify] commands a runner may also have "notified": {"condition":
"refused", "since": 1782727200.5}, the condition notified and not yet
ended (notify.py).  With a forge token (issue 20), "forge": {"jobs":
{"42/1": 1782727200.5}, "offline_since": 1782727200.5} remembers when the
watchdog first saw each job its runner could take waiting (by id/attempt:
Forgejo's job list has no times) and the runner offline; only what it
still sees is kept.

Saving forgets what holds nothing (no restart counted, no condition
open) and keeps at most KEEP_SUBJECTS entries, the most recently active,
so reconcile's file (a subject per hosts file and runner) stays bounded.

A missing file is an empty history.  A corrupt one (not JSON, wrong
shape) is an empty history and a warning, never a crash: the next write
replaces it.  One that cannot be read (a directory, a device, a FIFO, an
I/O error) is a warning and an unknown history (State.unreadable): no
restart is recorded over it, so none is made (restart.Record).  Like every
file the tools write, a symlink is followed and kept, and anything that
is not a regular file is never replaced (safewrite).

One watchdog run at a time per state dir: a run that may restart holds
an exclusive lock on <state_dir>/watchdog.lock from before it reads the
evidence until after it has recorded the restart.  A second run (the
timer and a manual run) waits for it, a bounded time, then judges with
fresh evidence: it sees the restart and never restarts again.  If the
lock is still held when the bound runs out, the run fails (exit 1).
"""

import contextlib
import os
import time

from ..system import safewrite
from ..report import GuardError, why

STATE_FILE = "state.json"
LOCK_FILE = "watchdog.lock"
VERSION = 1
KEEP = 86400.0  # seconds of restart history kept
KEEP_MAX = 100  # and at most this many entries per runner
KEEP_SUBJECTS = 256  # runners (or reconcile's subjects) kept, the most recently active
LOCK_POLL = 0.05


class State:
    """Restart history per runner name; load(), record(), save()."""

    def __init__(self, path, runners=None, unreadable=None):
        self.path = path
        self.runners = runners if runners is not None else {}
        self.unreadable = unreadable  # why the file could not be read, or None

    @classmethod
    def load(cls, state_dir, warn, filename=STATE_FILE):
        """Read <state_dir>/state.json (or `filename`); warn(text) on a corrupt file."""
        path = os.path.join(state_dir, filename)
        try:
            data = safewrite.read_file(path)  # a FIFO or a device is never read
        except GuardError as exc:
            if not os.path.isdir(state_dir):
                return cls(path)  # created when it is first written, or refused then
            warn("%s: history unknown" % exc)
            return cls(path, unreadable=str(exc))
        if data is None:
            return cls(path)
        try:
            runners = _runners(data)
        except ValueError as exc:
            warn("the state file %s is corrupt (%s): %s" % (path, exc, _CORRUPT.get(
                filename, "starting with an empty restart history; the next run that restarts "
                          "a runner replaces it")))
            return cls(path)
        return cls(path, runners)

    def history(self, runner):
        """Epoch times of the runner's recorded restarts, oldest first."""
        return list(self.runners.get(runner, {}).get("restarts", []))

    def restarts_total(self, runner):
        return int(self.runners.get(runner, {}).get("restarts_total", 0))

    def last_restart(self, runner):
        history = self.history(runner)
        return history[-1] if history else None

    def notified(self, runner):
        """The condition notified for `runner` and not yet ended, or None."""
        return (self.runners.get(runner, {}).get("notified") or {}).get("condition")

    def set_notified(self, runner, condition, when):
        """Open (condition: an event name) or end (None) its condition."""
        entry = self.runners.setdefault(runner, {"restarts": [], "restarts_total": 0})
        if condition is None:
            entry.pop("notified", None)
        else:
            entry["notified"] = {"condition": condition, "since": float(when)}

    def forge_memory(self, runner):
        """{"jobs": {job key: first seen waiting}, "offline_since": epoch or
        None}: what the forge showed at earlier checks (forge/view.py)."""
        memory = self.runners.get(runner, {}).get("forge") or {}
        return {"jobs": dict(memory.get("jobs") or {}), "offline_since": memory.get("offline_since")}

    def set_forge_memory(self, runner, memory):
        """Keep `memory` (as forge_memory() gives it); True when it changed."""
        kept = _forge(memory)
        entry = self.runners.setdefault(runner, {"restarts": [], "restarts_total": 0})
        if entry.get("forge") == kept:
            return False
        if kept:
            entry["forge"] = kept
        else:
            entry.pop("forge", None)
        return True

    def record(self, runner, when):
        entry = self.runners.setdefault(runner, {"restarts": [], "restarts_total": 0})
        entry["restarts"] = sorted(entry["restarts"] + [float(when)])
        entry["restarts_total"] = int(entry.get("restarts_total", 0)) + 1

    def unrecord(self, runner, when):
        """Take back record(runner, when): the restart did not happen."""
        entry = self.runners.get(runner)
        if entry is not None and float(when) in entry["restarts"]:
            entry["restarts"].remove(float(when))
            entry["restarts_total"] = max(0, int(entry.get("restarts_total", 0)) - 1)

    def prune(self, now):
        """Forget restarts older than KEEP (at most KEEP_MAX a runner kept),
        the entries that hold nothing any more (no restart ever counted,
        no condition open, no memory of the forge), and beyond
        KEEP_SUBJECTS entries the least recently active: the file stays
        small whatever it is fed."""
        for name, entry in list(self.runners.items()):
            kept = [t for t in entry["restarts"] if now - t < KEEP]
            entry["restarts"] = kept[-KEEP_MAX:]
            if not (entry["restarts"] or entry.get("restarts_total") or "notified" in entry
                    or "forge" in entry):
                del self.runners[name]
        if len(self.runners) > KEEP_SUBJECTS:
            def active(name):
                entry = self.runners[name]
                forge = entry.get("forge", {})
                return max(entry["restarts"] + [entry.get("notified", {}).get("since", 0.0),
                                                forge.get("offline_since") or 0.0]
                           + list(forge.get("jobs", {}).values()))

            for name in sorted(self.runners, key=active)[:len(self.runners) - KEEP_SUBJECTS]:
                del self.runners[name]

    def save(self, now=None):
        """Write the file atomically (its directory is created).  A file
        that could not be read is never replaced: GuardError."""
        if self.unreadable is not None:
            raise GuardError("cannot write the state file %s: it could not be read, so it is "
                             "not replaced" % self.path)
        self.prune(time.time() if now is None else now)
        import json  # lazy: as in _runners()

        doc = {"version": VERSION, "runners": self.runners}
        data = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")
        directory = os.path.dirname(self.path)
        try:
            safewrite.ensure_directory(directory)
            safewrite.atomic_write(self.path, data, 0o644)
        except OSError as exc:
            raise GuardError("cannot write the state file %s: %s" % (self.path, why(exc)))


def _notified(value):
    """A runner's "notified" entry, or None when absent or damaged (a
    condition forgotten is at worst notified again; the restart history
    is kept)."""
    if (not isinstance(value, dict) or not isinstance(value.get("condition"), str)
            or not _is_time(value.get("since"))):
        return None
    return {"condition": value["condition"], "since": float(value["since"])}


FORGE_JOBS_MAX = 200  # job sightings kept per runner (the newest)


def _forge(value):
    """A runner's "forge" entry, cleaned: numbers only, at most
    FORGE_JOBS_MAX jobs; None when empty or damaged (a sighting forgotten
    only makes a wait start afresh)."""
    try:
        jobs = {str(k): float(v) for k, v in (value.get("jobs") or {}).items()}
        offline = value.get("offline_since")
        offline = None if offline is None else float(offline)
    except (ValueError, TypeError, AttributeError):
        return None
    if len(jobs) > FORGE_JOBS_MAX:
        jobs = dict(sorted(jobs.items(), key=lambda kv: kv[1])[-FORGE_JOBS_MAX:])
    result = {}
    if jobs:
        result["jobs"] = jobs
    if offline is not None:
        result["offline_since"] = offline
    return result or None


# What a corrupt file other than state.json costs (reconcile's: the conditions notified).
_CORRUPT = {"reconcile.json": "the conditions notified are forgotten (one may be notified "
                              "again); the next run that notifies one replaces it"}


def _runners(data):
    """The file's bytes -> {runner: entry}; ValueError saying in plain
    words what is wrong with them (never Python's own text)."""
    import json  # lazy: the watchdog reads it after its calls have begun

    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except ValueError as exc:  # json.JSONDecodeError: its message names line and column
        raise ValueError("not JSON: %s" % exc) from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    if "runners" not in doc:
        raise ValueError('no "runners"')
    if not isinstance(doc["runners"], dict):
        raise ValueError('"runners" is not a JSON object')
    runners = {}
    for name, entry in doc["runners"].items():
        if not isinstance(entry, dict):
            raise ValueError("runner %s: not a JSON object" % name)
        restarts = entry.get("restarts", [])
        if not isinstance(restarts, list) or not all(map(_is_time, restarts)):
            raise ValueError('runner %s: "restarts" is not a list of times' % name)
        total = entry.get("restarts_total", len(restarts))
        if not _is_time(total) or total != int(total):
            raise ValueError('runner %s: "restarts_total" is not a whole number' % name)
        runners[name] = {"restarts": sorted(float(t) for t in restarts),
                         "restarts_total": max(int(total), 0)}
        notified = _notified(entry.get("notified"))
        if notified:
            runners[name]["notified"] = notified
        forge = _forge(entry.get("forge"))
        if forge:
            runners[name]["forge"] = forge
    return runners


def _is_time(value):
    """A restart's time: a finite number of epoch seconds."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and value == value and abs(value) != float("inf"))  # not NaN, not infinite


def check_writable(state_dir):
    """Where a run that may restart would stop first, found without
    writing: its lock file in `state_dir` (the directory must exist, or be
    the package's own, and be writable: the state file is written there
    too).  Raises the GuardError that run would (exit 1); for --dry-run."""
    lock = os.path.join(state_dir, LOCK_FILE)
    problem = safewrite.write_problem(lock)
    if problem is not None:
        raise GuardError("cannot open lock file %s: %s" % (lock, why(problem)))


@contextlib.contextmanager
def run_lock(state_dir, bound, waiting=None):
    """Hold <state_dir>/watchdog.lock for a run that may restart.

    Waits at most `bound` seconds for another run to finish (calling
    waiting(path) once when it has to wait), then raises GuardError."""
    path = os.path.join(state_dir, LOCK_FILE)
    deadline = time.monotonic() + bound
    told = False
    with contextlib.ExitStack() as stack:
        while True:
            try:
                stack.enter_context(safewrite.lock(path, wait=False))
                break
            except safewrite.LockBusy:
                pass
            if time.monotonic() >= deadline:
                raise GuardError(
                    "another watchdog run has held %s for %gs: giving up (that run decides)"
                    % (path, bound)
                )
            if not told and waiting is not None:
                waiting(path)
                told = True
            time.sleep(LOCK_POLL)
        yield path
