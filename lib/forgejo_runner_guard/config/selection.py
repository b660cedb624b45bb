"""Which runners a command checks, and what is wrong across them: the
runners --container picks (select_runners), two runners on one container
or unit (check_distinct), a window too short for its threshold
(unreachable).  Pure: RunnerConfig values in, values or one-line errors
out."""

import dataclasses
import re

from ..report import UsageError
from .values import duration_text

NS = 10 ** 9  # the runner's durations are Go's: whole nanoseconds


def _ns(seconds):
    return round(seconds * NS)


def unreachable(runner):
    """A warning when `runner`'s window is too short for its threshold ever
    to be reached at the runner's fastest poll rate (one failed fetch every
    fetch_interval seconds), else None.  (The sustain rule may still find
    it wedged.)  Counted in nanoseconds: in floats 1.0 // 0.1 is 9.0, but a
    window of 1s holds 11 polls 100ms apart."""
    most = _ns(runner.window) // max(_ns(runner.fetch_interval), 1) + 1
    if most >= runner.threshold:
        return None
    return ("runner %s: a window of %s holds at most %d fetch errors (one per poll every %gs), "
            "fewer than threshold %d: the threshold can never be reached"
            % (runner.name, duration_text(runner.window), most, runner.fetch_interval,
               runner.threshold))


CONTAINER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # Docker's own rule


def select_runners(watchdog, names=()):
    """The runners a command checks: all configured ones, or those `names`
    pick (a configured runner by its name, else by its container, else a
    docker runner of that container with the [watchdog] defaults).
    UsageError for a name that cannot be a container's."""
    runners = list(watchdog.runners)
    if not names:
        return runners
    chosen = []
    for name in dict.fromkeys(names):
        if not CONTAINER_NAME.match(name or ""):
            raise UsageError("--container: not a container name: %r" % name)
        match = [r for r in runners if r.name == name] or [r for r in runners if r.container == name]
        chosen.append(match[0] if match else dataclasses.replace(watchdog.defaults, name=name, container=name))
    return chosen


def check_distinct(runners):
    """UsageError when two runners would watch (and restart) one container
    or one unit."""
    seen = {}
    for runner in runners:
        key = ("container", runner.container) if runner.backend == "docker" else ("unit", runner.unit)
        if key in seen:
            raise UsageError("runners %s and %s both watch %s %s" % (seen[key], runner.name, key[0], key[1]))
        seen[key] = runner.name
