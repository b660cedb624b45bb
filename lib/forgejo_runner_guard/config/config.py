"""guard.conf -> frozen dataclasses.

The file is INI (configparser, no interpolation) with three kinds of
section:

  [reconcile]      hosts_file, pins (one "NAME ADDRESS" per line), lock_file,
                   state_dir (where the in-place fallback keeps its backup)
  [watchdog]       runners (which runners to check) and the defaults for
                   every runner, plus state_dir, metrics_file, docker_timeout
  [runner NAME]    one runner: overrides the [watchdog] defaults for it
  [notify]         commands run once per event (notify.py): command = ARGV,
                   command.NAME = ARGV, events[.NAME] = EVENT..., timeout

After the main file every *.conf in "<main file>.d/" is read in lexical
order; a later value replaces an earlier one whole (a later `pins`
replaces the whole list).  A missing default file means built-in
defaults; a missing file named explicitly, an unknown section or key, or
a bad value is a ConfigError naming file, line and key.

Only load() touches the file system; the value parsers (values.py) are
pure.
"""

import configparser
import contextlib
import dataclasses
import glob
import os
import re
from typing import Optional, Tuple

from ..report import ConfigError, UsageError, why
from .values import (
    BOUNDS,
    parse_argv,
    parse_count,
    parse_duration,
    parse_events,
    parse_matches,
    parse_optional_path,
    parse_path,
    parse_pins,
    parse_scope,
    parse_url,
    parse_words,
)

DEFAULT_CONFIG = "/etc/forgejo-runner-guard/guard.conf"
DEFAULT_HOSTS_FILE = "/etc/hosts"
DEFAULT_LOCK_FILE = "/run/lock/forgejo-runner-guard/hosts.lock"
DEFAULT_STATE_DIR = "/var/lib/forgejo-runner-guard"
# The directories the tools create when missing (their last component only,
# see safewrite.ensure_directory); any other directory must exist.
OWN_DIRECTORIES = (DEFAULT_STATE_DIR, os.path.dirname(DEFAULT_LOCK_FILE))
DEFAULT_PINS = (("forge.azrak.io", "10.1.0.10"),)
DEFAULT_RUNNER = "forgejo_runner"
DEFAULT_JOB_PREFIXES = ("FORGEJO-ACTIONS-TASK-", "GITEA-ACTIONS-TASK-")
DEFAULT_DAEMONS = ("forgejo-runner", "gitea-runner", "act_runner")  # as hostjobs.DEFAULT_DAEMONS

BACKENDS = ("docker", "systemd")
ENGINES = ("docker", "podman")  # the CLI a docker-backend runner (and job containers) use
LOG_SOURCES = ("engine", "journal")  # where a docker-backend runner's log is read
DEFAULT_STOP_TIMEOUT = 600.0  # seconds: 10m
FLAVOURS = ("forgejo", "gitea")
VERIFY = ("ping", "none")  # ask the forge before a restart, or the log alone
FORGE_APIS = ("auto", "forgejo", "gitea")


@dataclasses.dataclass(frozen=True)
class Pin:
    name: str
    address: str


@dataclasses.dataclass(frozen=True)
class ReconcileConfig:
    hosts_file: str = DEFAULT_HOSTS_FILE
    pins: Tuple[Pin, ...] = tuple(Pin(n, a) for n, a in DEFAULT_PINS)
    lock_file: str = DEFAULT_LOCK_FILE
    state_dir: str = DEFAULT_STATE_DIR  # where the in-place fallback keeps its backup


@dataclasses.dataclass(frozen=True)
class RunnerConfig:
    """One runner to watch.  Durations are seconds (float)."""

    name: str = DEFAULT_RUNNER
    backend: str = "docker"
    engine: str = "docker"  # docker: the docker CLI (DOCKER_HOST: also Podman's socket); podman
    logs: str = "engine"  # docker backend: `docker logs` (engine) or the journal (journal)
    # logs = journal: journalctl matches (FIELD=VALUE); empty: CONTAINER_NAME=<container>
    journal_match: Tuple[str, ...] = ()
    container: str = DEFAULT_RUNNER  # docker backend: the container's name
    unit: str = "forgejo-runner.service"  # systemd backend: the unit's name
    threshold: int = 40
    window: float = 300.0
    recent: float = 60.0
    cooldown: float = 600.0
    max_restarts: int = 3  # per hour
    job_prefixes: Tuple[str, ...] = DEFAULT_JOB_PREFIXES
    # a restart sends SIGTERM and waits this long for the runner to drain
    # (finish its jobs) before the engine kills it
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    # the daemon's command names: a live child of it is a job without a container
    # (empty: none looked for)
    daemon: Tuple[str, ...] = DEFAULT_DAEMONS
    # the polling model: wedged when every poll of the last `sustain` failed
    sustain: float = 180.0
    fetch_interval: float = 2.0
    fetch_timeout: float = 30.0
    fetch_interval_max: float = 5.0  # gitea: the backoff's cap
    flavour: str = "forgejo"
    # before restarting a runner whose log says wedged, ask its forge (Ping):
    # no restart when the forge does not answer (watchdog/verify.py)
    verify: str = "ping"
    forge: str = ""  # its URL; empty: from the runner's .runner or config
    ping_timeout: float = 10.0  # all attempts of the Ping
    forge_ca_file: Optional[str] = None  # trust these CAs (PEM), not the system store
    # the forge's own view (forge/api.py): a read-only token (None: not asked),
    # the scope that lists the runner, the forge's API, how long a job may wait
    forge_token_file: Optional[str] = None
    forge_scope: Tuple[str, ...] = ()  # values.parse_scope: ("repo", "o/r"), ("admin",)
    forge_api: str = "auto"
    queue_wait: float = 300.0


@dataclasses.dataclass(frozen=True)
class WatchdogConfig:
    runners: Tuple[RunnerConfig, ...] = (RunnerConfig(),)
    state_dir: str = DEFAULT_STATE_DIR
    metrics_file: Optional[str] = None
    docker_timeout: float = 30.0  # seconds, for every single docker/systemctl call
    # built-ins < [watchdog] defaults: the settings of a runner named only on
    # the command line (forgejo-runner-watchdog --container NAME)
    defaults: RunnerConfig = RunnerConfig()


@dataclasses.dataclass(frozen=True)
class NotifyCommand:
    """One [notify] command: its key ("command" or "command.NAME"), the
    argument vector, the events it wants (empty: all) and where it is set."""

    key: str
    argv: Tuple[str, ...]
    events: Tuple[str, ...] = ()
    where: str = dataclasses.field(default="", compare=False)

    @property
    def name(self):
        return self.key.partition(".")[2] or self.key


@dataclasses.dataclass(frozen=True)
class NotifyConfig:
    commands: Tuple[NotifyCommand, ...] = ()  # none: nothing is notified
    timeout: float = 10.0  # seconds a command may take


@dataclasses.dataclass(frozen=True)
class Config:
    reconcile: ReconcileConfig = ReconcileConfig()
    watchdog: WatchdogConfig = WatchdogConfig()
    notify: NotifyConfig = NotifyConfig()
    files: Tuple[str, ...] = ()  # the files that were read, in order
    warnings: Tuple[str, ...] = ()  # errors in sections the command does not use (load)


# ---------------------------------------------------------------- schema

# key -> parser, per kind of section
_RUNNER_KEYS = {
    "backend": lambda t: _choice(t, BACKENDS),
    "engine": lambda t: _choice(t, ENGINES),
    "logs": lambda t: _choice(t, LOG_SOURCES),
    "journal_match": lambda t: parse_matches(t),
    "container": lambda t: _nonempty(t),
    "unit": lambda t: _nonempty(t),
    "threshold": lambda t: parse_count(t, *BOUNDS["threshold"]),
    "window": lambda t: parse_duration(t, BOUNDS["window"]),
    "recent": lambda t: parse_duration(t, BOUNDS["recent"]),
    "cooldown": lambda t: parse_duration(t, BOUNDS["cooldown"]),
    "max_restarts": lambda t: parse_count(t, *BOUNDS["max_restarts"]),
    "job_prefixes": parse_words,
    "stop_timeout": lambda t: parse_duration(t, BOUNDS["stop_timeout"]),
    "daemon": parse_words,  # empty: no jobs without a container looked for
    "sustain": lambda t: parse_duration(t, BOUNDS["sustain"]),
    "fetch_interval": lambda t: parse_duration(t, BOUNDS["fetch_interval"]),
    "fetch_timeout": lambda t: parse_duration(t, BOUNDS["fetch_timeout"]),
    "fetch_interval_max": lambda t: parse_duration(t, BOUNDS["fetch_interval_max"]),
    "flavour": lambda t: _choice(t, FLAVOURS),
    "verify": lambda t: _choice(t, VERIFY),
    "forge": parse_url,
    "ping_timeout": lambda t: parse_duration(t, BOUNDS["ping_timeout"]),
    "forge_ca_file": parse_optional_path,
    "forge_token_file": parse_optional_path,
    "forge_scope": parse_scope,
    "forge_api": lambda t: _choice(t, FORGE_APIS),
    "queue_wait": lambda t: parse_duration(t, BOUNDS["queue_wait"]),
}
_SCHEMA = {
    "reconcile": {
        "hosts_file": parse_path,
        "pins": parse_pins,
        "lock_file": parse_path,
        "state_dir": parse_path,
    },
    "watchdog": dict(
        _RUNNER_KEYS,
        runners=lambda t: _nonempty_words(t),
        state_dir=parse_path,
        metrics_file=parse_optional_path,
        docker_timeout=lambda t: parse_duration(t, BOUNDS["docker_timeout"]),
    ),
    "runner": _RUNNER_KEYS,
    "notify": {
        "command": parse_argv,
        "events": parse_events,
        "timeout": lambda t: parse_duration(t, BOUNDS["notify_timeout"]),
    },
}
# keys with a NAME: command.NAME, events.NAME (NAME: letters, digits, _ -)
_NAMED_KEY = re.compile(r"(command|events)\.[a-z0-9][a-z0-9_-]*")


def setting(key):
    """The parser of a [watchdog] setting, for the command line option of
    the same name: text -> value, ValueError naming what is wrong."""
    return _SCHEMA["watchdog"][key]


def _choice(text, choices):
    value = (text or "").strip()
    if value not in choices:
        raise ValueError("must be one of %s: %r" % (", ".join(choices), text))
    return value


def _nonempty(text):
    value = (text or "").strip()
    if not value or len(value.split()) != 1:
        raise ValueError("expected one word: %r" % text)
    return value


def _nonempty_words(text):
    words = parse_words(text)
    if not words:
        raise ValueError("empty list")
    return words


def _section_kind(section):
    if section in ("reconcile", "watchdog", "notify"):
        return section, None
    match = re.fullmatch(r"runner\s+(\S+)", section)
    if match:
        return "runner", match.group(1)
    return None, None


def _lineno(text, section, key):
    """Line (1-based) where `key` is set in `section` of `text`, or the
    section header's line, or 0 when neither can be found."""
    current, header_line = None, 0
    found = 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = re.fullmatch(r"\[([^\]]*)\]", stripped)
        if header:
            current = header.group(1).strip()
            if current == section and not found:
                header_line = number
            continue
        if current == section and key is not None and line[:1] not in (" ", "\t"):
            name = re.split(r"[=:]", stripped, 1)[0].strip().lower()
            if name == key:
                found = number  # the last assignment wins in configparser
    return found or header_line


# ---------------------------------------------------------------- loading


def config_files(path):
    """The main file then its drop-ins: <path>.d/*.conf in lexical order."""
    return [path] + sorted(glob.glob(os.path.join(glob.escape(path + ".d"), "*.conf")))


def dropin_problem(path):
    """Why the drop-ins of `path` (<path>.d/*.conf) cannot be read, or None
    (a missing directory is none): <path>.d is a regular file, a dangling
    symlink, or a directory this process may not list."""
    directory = path + ".d"
    try:
        if os.path.isdir(directory):
            os.listdir(directory)
        elif os.path.lexists(directory):
            return "%s is not a directory: no drop-ins are read from it" % directory
    except OSError as exc:
        return "cannot list %s: %s: its drop-ins are not read" % (directory, why(exc))
    return None


def _section_at(text, lineno):
    """The section whose part of `text` holds line `lineno`, or None."""
    current = None
    for number, line in enumerate(text.splitlines()[:lineno], 1):
        header = re.fullmatch(r"\[([^\]]*)\]", line.strip())
        if header and number < lineno:
            current = header.group(1).strip()
    return current


class _Errors:
    """Collects the errors of one load: an error in a kind of section the
    command works from is raised; in one it does not use, or in [notify]
    for a command that only notifies through it, it becomes a warning
    (the bad key, line or section is left out)."""

    def __init__(self, used):
        self.used = used  # kinds of section ("reconcile", "watchdog", "runner", "notify"); None: all
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)

    def add(self, section, message, outcome=None):
        """Raise ConfigError(message), or warn: message and `outcome` (what
        happens instead; default: it is ignored, and why)."""
        kind = _section_kind(section)[0] if section is not None else None
        if self.used is None or kind is None or kind in self.used:
            raise ConfigError(message)
        if outcome is None:
            outcome = ("ignored: a mistake in [notify] never stops this command" if kind == "notify"
                       else "ignored: this command does not use [%s]" % section)
        self.warn("%s (%s)" % (message, outcome))


def _parse(path, text, errors):
    """-> configparser.ConfigParser of `text`, its syntax errors raised or
    (in a section the command does not use) warned about."""
    def parser(strict=True):
        return configparser.ConfigParser(interpolation=None, strict=strict,
                                         default_section="\0no-default-section")
    result = parser()
    try:
        result.read_string(text, source=path)
    except (configparser.DuplicateOptionError, configparser.DuplicateSectionError) as exc:
        option = getattr(exc, "option", None)
        errors.add(exc.section, "%s:%s: [%s]%s: %s" % (
            path, exc.lineno, exc.section, " " + option if option else "",
            "set twice in one section" if option else "section appears twice"))
        result = parser(strict=False)  # not used here: read the rest
        with contextlib.suppress(configparser.ParsingError):
            result.read_string(text, source=path)
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError("%s:%s: %s" % (path, exc.lineno, _no_header(exc.line)))
    except configparser.ParsingError as exc:
        for lineno, _ in exc.errors:
            line = text.splitlines()[lineno - 1].strip()
            if line.startswith("["):
                raise ConfigError("%s:%s: %s" % (path, lineno, _no_header(line)))
            errors.add(_section_at(text, lineno), "%s:%s: cannot parse %s" % (path, lineno, line))
    return result  # read_string raises no other configparser.Error


def _no_header(line):
    line = line.strip()
    if line.startswith("["):  # "[...]" would have been a header
        return "unclosed section header %s (missing ']')" % line
    return "a setting before any [section]: %s" % line


BOM = "\ufeff"


def _read_one(path, errors):
    """-> {section: {key: (value, "file:line")}} for one file."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise ConfigError("%s: not UTF-8 text (%s)" % (path, exc.reason))
    if text.startswith(BOM):  # some editors write one; invisible, and not part of the INI
        text = text[len(BOM):]
        errors.warn("%s: starts with a UTF-8 byte order mark (BOM): ignored (save the file "
                    "without it)" % path)
    parser = _parse(path, text, errors)
    result = {}
    for section in parser.sections():
        kind, _ = _section_kind(section)
        if kind is None:
            raise ConfigError(
                "%s:%d: [%s]: unknown section (expected [reconcile], [watchdog], [runner NAME] or [notify])"
                % (path, _lineno(text, section, None), section)
            )
        result[section] = _values(path, text, parser, section, kind, errors)
    return result


def _values(path, text, parser, section, kind, errors):
    """{key: (value, "file:line")} of one section; a bad key is
    errors.add()ed (raised, or left out with a warning)."""
    values = {}
    for key, raw in parser.items(section):
        lineno = _lineno(text, section, key)
        parse = _SCHEMA[kind].get(key)
        if parse is None and kind == "notify" and _NAMED_KEY.fullmatch(key):
            parse = _SCHEMA[kind][key.partition(".")[0]]
        if parse is None:
            errors.add(section, "%s:%d: [%s] %s: unknown key (known: %s)"
                       % (path, lineno, section, key, ", ".join(sorted(_SCHEMA[kind]))))
            continue
        try:
            value = parse(raw)
        except ValueError as exc:
            errors.add(section, "%s:%d: [%s] %s: %s" % (path, lineno, section, key, exc))
            continue
        values[key] = (value, "%s:%d" % (path, lineno))
    return values


def with_candidate(files, path, candidate, as_name=None):
    """config_files(path) with a drop-in that is not in place yet (pure).

    The candidate is read in the place of <path>.d/<as_name>, in lexical
    order and instead of the file of that name now there (what the tools
    will read once it is installed under that name); without as_name it is
    read after every drop-in.  Errors in it name the candidate's own path."""
    if as_name is None:
        return list(files) + [candidate]
    if os.path.basename(as_name) != as_name or not as_name.endswith(".conf") or as_name == ".conf":
        raise UsageError("--check-config-as: not a drop-in file name (NAME.conf): %r" % as_name)
    target = os.path.join(path + ".d", as_name)
    dropins = sorted(set(files[1:]) | {target})
    return list(files[:1]) + [candidate if f == target else f for f in dropins]


def load(path=None, candidate=None, as_name=None, used=None):
    """Read the configuration.  path=None: the default file, which may be
    missing (built-in defaults).  A path given explicitly must exist.
    candidate: a drop-in not yet in place, read as with_candidate() says
    (--check-config); it must exist.

    used: the kinds of section the command works from ("reconcile",
    "watchdog", "runner", "notify"; None: all, as --check-config).  A bad
    value, key or line in a section of another kind does not stop it: it
    is left out and named in Config.warnings (the command that uses it
    still stops on it).  Both tools leave out "notify" but for
    --notify-test: [notify] only sends notifications, so a mistake there
    (an unknown key, a bad timeout, a program that is missing or not
    executable) is a warning and never stops the boot pin or a check."""
    explicit = path is not None
    if explicit and not path:
        raise UsageError("--config: empty path")
    path = DEFAULT_CONFIG if path is None else path
    errors = _Errors(None if used is None else frozenset(used))
    merged = {}  # section -> key -> (value, where)
    files = []
    names = config_files(path)
    problem = dropin_problem(path)
    if problem:
        errors.warnings.append(problem)
    if candidate is not None:
        if not os.path.isfile(candidate):
            raise ConfigError("%s: no such configuration file" % candidate)
        names = with_candidate(names, path, candidate, as_name)
    for number, name in enumerate(names):
        if number == 0 and not os.path.exists(name):
            if explicit:
                raise ConfigError("%s: no such configuration file" % name)
            continue
        try:
            sections = _read_one(name, errors)
        except OSError as exc:
            raise ConfigError("%s: cannot read: %s" % (name, why(exc)))
        files.append(name)
        for section, values in sections.items():
            merged.setdefault(section, {}).update(values)
    for key, message in _unfiltered(merged.get("notify", {})):
        errors.add("notify", message)
        del merged["notify"][key]
    try:
        conf = build(merged, tuple(files))
    except _NotListed as exc:
        errors.add(exc.section, str(exc))
        merged = {s: v for s, v in merged.items() if _section_kind(s)[0] != "runner"}
        conf = build(merged, tuple(files))
    for command in conf.notify.commands:
        try:
            _check_program(command)
        except ConfigError as exc:
            errors.add("notify", str(exc), "its notifications will fail, each one a warning")
    return dataclasses.replace(conf, warnings=tuple(errors.warnings))


class _NotListed(ConfigError):
    """A [runner NAME] section whose NAME [watchdog] runners does not list."""

    def __init__(self, message, section):
        super().__init__(message)
        self.section = section


def build(merged, files=()):
    """{section: {key: (value, where)}} -> Config (pure)."""
    rec = {k: v for k, (v, _) in merged.get("reconcile", {}).items()}
    pins = rec.pop("pins", None)
    reconcile = ReconcileConfig(**rec)
    if pins is not None:
        reconcile = dataclasses.replace(reconcile, pins=tuple(Pin(n, a) for n, a in pins))

    wd = {k: v for k, (v, _) in merged.get("watchdog", {}).items()}
    names = wd.pop("runners", (DEFAULT_RUNNER,))
    top = {k: wd.pop(k) for k in ("state_dir", "metrics_file", "docker_timeout") if k in wd}
    sections = {}
    for section, values in merged.items():
        kind, name = _section_kind(section)
        if kind == "runner":
            if name not in names:
                where = next(("%s: " % w for _, w in values.values()), "")  # the first key's
                raise _NotListed(
                    "%s[%s]: runner %r is not listed in [watchdog] runners (%s)"
                    % (where, section, name, " ".join(names)), section)
            sections[name] = {k: v for k, (v, _) in values.items()}
    runners = tuple(runner_config(name, wd, sections.get(name, {})) for name in names)
    watchdog = WatchdogConfig(runners=runners, defaults=runner_config(DEFAULT_RUNNER, wd), **top)
    return Config(reconcile=reconcile, watchdog=watchdog, notify=notify_config(merged.get("notify", {})),
                  files=files)


def notify_config(values):
    """[notify] {key: (value, where)} -> NotifyConfig (pure).  An events
    filter needs its command; an empty command is no command."""
    commands = []
    for key, (argv, where) in values.items():
        if key.partition(".")[0] != "command" or not argv:
            continue
        events = values.get("events" + key[len("command"):], ((), ""))[0]
        commands.append(NotifyCommand(key, argv, events, where))
    for _, message in _unfiltered(values):
        raise ConfigError(message)
    timeout = values.get("timeout", (NotifyConfig.timeout, ""))[0]
    return NotifyConfig(commands=tuple(sorted(commands, key=lambda c: c.key)), timeout=timeout)


def _unfiltered(values):
    """[(key, message)] of the events filters in [notify] {key: (value,
    where)} whose command is missing or empty (pure)."""
    return [(key, "%s: [notify] %s: no command%s to filter" % (where, key, key[len("events"):]))
            for key, (events, where) in values.items()
            if key.partition(".")[0] == "events" and events
            and not values.get("command" + key[len("events"):], ((), ""))[0]]


def find_program(name, path=None):
    """The executable file `name` names (a path, or a name looked up in
    PATH), or None."""
    if "/" in name:
        found = [name]
    else:
        path = os.environ.get("PATH", os.defpath) if path is None else path
        found = [os.path.join(d or ".", name) for d in path.split(os.pathsep)]
    for candidate in found:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _check_program(command):
    if find_program(command.argv[0]) is None:
        raise ConfigError("%s: [notify] %s: %s is not an executable program%s"
                          % (command.where, command.key, command.argv[0],
                             "" if "/" in command.argv[0] else " in PATH"))


def runner_config(name, defaults=None, overrides=None):
    """A RunnerConfig for `name`: built-ins < [watchdog] defaults < [runner NAME]."""
    values = dict(defaults or {})
    values.update(overrides or {})
    values.setdefault("container", name)
    return RunnerConfig(name=name, **values)
