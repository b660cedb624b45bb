"""The runner's own files: its config.yml and its registration (.runner).

Two questions are asked of them:

Do a runner's job containers get the pins?  (--runners)  A job container
on the runner's default job network gets a hosts file Docker builds for
it (localhost and its own name), not a copy of the host's: it resolves
the forge through DNS.  The runner's own config file decides:

    container:
      network: host                                  jobs use host network
      options: --add-host=forge.azrak.io:10.1.0.10   jobs pinned

(`network_mode`, the older key, counts where `network` is not set; a
`--network host` / `--net=host` in the options counts as host network.)

Who is the runner to its forge?  (the watchdog's Ping, issue 20's API
calls)  identity() reads the registration the runner reads: the `.runner`
file (`runner.file` in its config, default `.runner`, relative to the
daemon's working directory: /data in the official images), or Forgejo
12.7+'s `server.connections` in its config.

These find the files and judge them, from text and documents only;
pins/job_pins.py asks the runner's backend and reads the config; only
identity() reads files itself (through `read`, which a test may replace):

  config_argument(argv)   the runner's command line -> the path its
                          -c/--config names (also inside `sh -c SCRIPT`)
  host_path(...)          that path in the container -> the host's file,
                          through the container's mounts
  execstart_argv(text)    `systemctl show -p ExecStart --value` -> argv,
                          only when simple (one command, no quoting)
  load(data)              the file's bytes -> the YAML document, or
                          RunnerConfigError with one line
  judge(doc, pins, path)  -> one JobPin per pin
  identity(launch)        -> Identity: its forge URLs, uuid, name, labels,
                          insecure, where they were read (or why not)
  add_host_addresses(...) the addresses a container's --add-host gives a name

The tool never edits the runner's config: a JobPin that is not pinned
carries the exact option to add.
"""

import dataclasses
import ipaddress
import json
import posixpath
import shlex
from typing import NamedTuple, Optional, Tuple

PINNED = "pinned"
HOST_NETWORK = "host-network"
NOT_PINNED = "not-pinned"

# A shell whose `-c SCRIPT` is searched for the runner's command.
SHELLS = frozenset(("sh", "bash", "dash", "ash", "busybox"))
# Shell words that end one command and start another.
SEPARATORS = frozenset((";", ";;", "&&", "||", "|", "&", "(", ")"))
# What may run the runner: an init, exec, env (and their options).
WRAPPERS = frozenset(("tini", "tini-static", "dumb-init", "catatonit", "exec", "env", "nohup"))
MAX_CONFIG = 1024 * 1024  # bytes: a longer "config" is not the runner's
# runner.file's default (Forgejo runner config.go:581 `File: ".runner"`,
# Gitea act_runner config.go:247-248), relative to the daemon's working directory
RUNNER_FILE = ".runner"
# where both official images keep it: Forgejo's WORKDIR /data, Gitea's run.sh `cd /data`
IMAGE_DATA = "/data"


class Launch(NamedTuple):
    """How a runner was started, as its backend tells (begin_launch()):
    its command line, working directory and mounts (None: it runs on the
    host, paths are the host's), `source` naming where they were read;
    argv None (and `reason`) when the command line cannot be read.
    network: a container's network mode (docker inspect's
    HostConfig.NetworkMode: host, none, bridge, a network's name; "" for a
    unit, which has the host's), extra_hosts its --add-host entries
    (HostConfig.ExtraHosts), hosts_path its own hosts file on the host
    (HostsPath); a unit has neither."""

    argv: Optional[list]
    workdir: str
    mounts: Optional[list]
    source: str
    reason: Optional[str] = None
    network: str = ""
    extra_hosts: tuple = ()
    hosts_path: str = ""


class RunnerConfigError(ValueError):
    """The runner's config cannot be used; the message is one line."""


@dataclasses.dataclass(frozen=True)
class JobPin:
    """Whether job containers get one pin."""

    name: str
    address: str
    status: str  # PINNED, HOST_NETWORK or NOT_PINNED
    detail: str  # the line's text after the pin
    options: str = ""  # NOT_PINNED: container.options as it should read
    yaml: str = ""  # NOT_PINNED: that, as the YAML to put in the file

    def as_dict(self):
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- where the config is


def _unwrap(argv):
    """argv without a leading init or exec wrapper (tini -- ..., exec ...,
    env A=B ...), its options and variable assignments."""
    argv = list(argv)
    while argv and (posixpath.basename(argv[0]) in WRAPPERS or "=" in argv[0]):
        argv.pop(0)
        while argv and argv[0].startswith("-"):
            if argv.pop(0) == "--":
                break
    return argv


def _commands(argv):
    """The commands a command line runs: argv itself, or, for a shell's
    `-c SCRIPT`, each command of the script (split as shell words)."""
    argv = _unwrap(str(a) for a in argv)
    if not argv:
        return []
    if posixpath.basename(argv[0]) in SHELLS:
        for i, arg in enumerate(argv[1:-1], 1):
            if arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]:
                return [c for c in (_unwrap(c) for c in _script_commands(argv[i + 1])) if c]
    return [argv]


def _script_commands(script):
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:  # unbalanced quotes: not a script we can read
        return []
    commands, current = [], []
    for word in words:
        if word in SEPARATORS:
            if current:
                commands.append(current)
            current = []
        else:
            current.append(word)
    if current:
        commands.append(current)
    return commands


def _config_of(command):
    """-c/--config of one runner command, or None (the last one counts, as
    for pflag).  pflag's forms: -c P, -c=P, -cP, --config P, --config=P (a
    global flag: before or after `daemon`)."""
    value = None
    words = command[1:]
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("-c", "--config"):
            if i + 1 < len(words):
                value = words[i + 1]
            i += 2
            continue
        if word.startswith("--config="):
            value = word[len("--config="):]
        elif word.startswith("-c") and not word.startswith("--"):
            value = word[2:][1:] if word[2:].startswith("=") else word[2:]
        i += 1
    return value or None


def config_argument(argv):
    """The config path a runner's command line names, or None: the
    -c/--config of the command that runs `daemon` (directly, or inside a
    shell's `-c SCRIPT`, e.g. `sh -c "sleep 5; forgejo-runner daemon -c
    config.yml"`).  None when no command runs `daemon` or it names none."""
    for command in _commands(argv):
        if "daemon" in command[1:]:
            path = _config_of(command)
            if path:
                return path
    return None


def in_container(path, workdir):
    """A path as the runner opens it: relative ones from its working
    directory (the image's WORKDIR, / when none)."""
    return posixpath.normpath(posixpath.join(workdir or "/", path))


def host_path(path, mounts):
    """The host's file behind `path` (absolute, in the container) through
    the container's mounts (docker inspect's Mounts: dicts with Type,
    Source, Destination), the deepest mount first; None when no bind mount
    or volume holds it (the file is in the image's own filesystem)."""
    best = None
    for mount in mounts or ():
        if not isinstance(mount, dict) or mount.get("Type", "bind") not in ("bind", "volume"):
            continue
        dest = posixpath.normpath(str(mount.get("Destination") or ""))
        source = str(mount.get("Source") or "")
        if not dest.startswith("/") or not source:
            continue
        if path == dest or path.startswith(dest.rstrip("/") + "/"):
            if best is None or len(dest) > len(best[0]):
                best = (dest, source)
    if best is None:
        return None
    rest = path[len(best[0]):].lstrip("/")
    return posixpath.join(best[1], rest) if rest else best[1]


def execstart_argv(text):
    """`systemctl show -p ExecStart --value` -> the argv of its one
    command, or None unless it is simple: exactly one command, and no
    quoting, escapes or variables in it (systemd shows argv joined by
    spaces, so those could not be split back safely)."""
    entries = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if len(entries) != 1:
        return None
    entry = entries[0]
    start, end = entry.find("argv[]="), entry.find(" ; ", entry.find("argv[]="))
    if start < 0 or end < 0 or entry.count("argv[]=") != 1:
        return None
    argv = entry[start + len("argv[]="):end].split()
    if not argv or any(c in word for word in argv for c in "\"'\\$"):
        return None
    return argv


# ---------------------------------------------------------------- the file


def load(data):
    """The config file's bytes -> the YAML document (a dict; {} for an
    empty file).  RunnerConfigError with one line otherwise."""
    import yaml

    if len(data) > MAX_CONFIG:
        raise RunnerConfigError("larger than %d bytes: not a runner config" % MAX_CONFIG)
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " at line %d, column %d" % (mark.line + 1, mark.column + 1) if mark else ""
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RunnerConfigError("not valid YAML: %s%s" % (" ".join(str(what).split()), where))
    except ValueError as exc:  # e.g. not UTF-8
        raise RunnerConfigError("not valid YAML: %s" % " ".join(str(exc).split()))
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise RunnerConfigError("not a runner config: the document is %s, not a mapping"
                                % yaml_kind(doc))
    return doc


def yaml_kind(value):
    """What a YAML value is, in YAML's words ('a sequence', not 'list')."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a sequence"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (set, frozenset)):
        return "a set"
    if isinstance(value, bytes):
        return "binary data"
    return "a date" if hasattr(value, "year") else "a value of another kind"


def _container(doc):
    section = doc.get("container")
    if section is None:
        return "", ""
    if not isinstance(section, dict):
        raise RunnerConfigError("container: not a mapping (%s)" % yaml_kind(section))
    network = section.get("network")
    if network in (None, ""):
        network = section.get("network_mode")  # the older key
    options = section.get("options")
    for key, value in (("network", network), ("options", options)):
        if value is not None and not isinstance(value, str):
            raise RunnerConfigError("container.%s: not a string (%s)" % (key, yaml_kind(value)))
    return network or "", options or ""


def _split_options(options):
    try:
        return shlex.split(options)
    except ValueError as exc:
        raise RunnerConfigError("container.options: cannot split it as shell words: %s" % exc)


def _option_values(words, *names):
    """Values of --NAME V and --NAME=V, in order."""
    values = []
    for i, word in enumerate(words):
        for name in names:
            if word == name and i + 1 < len(words):
                values.append(words[i + 1])
            elif word.startswith(name + "="):
                values.append(word[len(name) + 1:])
    return values


def _host_entry(value):
    """--add-host's value -> (name, address): NAME:ADDRESS (an IPv6
    address splits at the first colon), NAME=ADDRESS, brackets dropped."""
    sep = "=" if "=" in value else ":"
    name, _, address = value.partition(sep)
    address = address.strip()
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    return name.strip().lower(), address


def _same_address(a, b):
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def add_host_option(name, address):
    """The option that gives job containers the pin (Docker's NAME:ADDRESS
    form, which every Docker version reads, IPv6 included)."""
    return "--add-host=%s:%s" % (name, address)


def judge(doc, pins, path):
    """The runner's config document -> [JobPin] for each pin.  `path`
    names the file in the text.  RunnerConfigError for a container section that
    is not what the runner reads."""
    import yaml

    network, options = _container(doc)
    words = _split_options(options)
    host = network == "host" or "host" in _option_values(words, "--network", "--net")
    added = _option_values(words, "--add-host")
    results = []
    for pin in pins:
        mine = [v for v in added if _host_entry(v)[0] == pin.name.lower()]
        right = [v for v in mine if _same_address(_host_entry(v)[1], pin.address)]
        wrong = [v for v in mine if v not in right]
        if right and not wrong:
            results.append(JobPin(pin.name, pin.address, PINNED,
                                  "jobs pinned (container.options in %s)" % path))
            continue
        if host and not mine:
            results.append(JobPin(pin.name, pin.address, HOST_NETWORK,
                                  "jobs use host network (container.network in %s)" % path))
            continue
        want = add_host_option(pin.name, pin.address)
        fixed = _drop_add_hosts(words, wrong) + ([] if right else [want])
        fixed = " ".join(shlex.quote(w) for w in fixed)
        if right:
            detail = "jobs NOT pinned: container.options in %s also maps %s elsewhere" \
                % (path, pin.name)
        else:
            detail = "jobs NOT pinned: add %s to container.options in %s" % (want, path)
        if wrong:
            detail += " (and remove %s)" % ", ".join("--add-host=" + v for v in wrong)
        results.append(JobPin(pin.name, pin.address, NOT_PINNED, detail, options=fixed,
                              yaml=yaml.safe_dump({"container": {"options": fixed}},
                                                  default_flow_style=False, width=1 << 16)))
    return results


def _drop_add_hosts(words, values):
    """words without the --add-host V / --add-host=V whose V is in values."""
    out, skip = [], False
    for i, word in enumerate(words):
        if skip:
            skip = False
        elif word == "--add-host" and i + 1 < len(words) and words[i + 1] in values:
            skip = True
        elif not (word.startswith("--add-host=") and word[len("--add-host="):] in values):
            out.append(word)
    return out


# ---------------------------------------------------------------- who the runner is


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a runner is to its forge, from its own files (identity()).

    urls      the forge URLs it talks to: its .runner's `address`, or each
              of its config's server.connections' `url` (() when not found)
    uuid      its registration's uuid (the first connection's)
    name      its registration's name (the first connection's key)
    labels    the names of its labels (`docker` of `docker:docker://node:20`):
              its config's runner.labels when set (they override the
              registration's, as the runner's daemon does), else the
              registration's (the first connection's)
    insecure  its config's runner.insecure: true (TLS not verified)
    source    where these were read, e.g. "/data/.runner (the host's
              /srv/runner/.runner)"
    reason    why no forge URL was found ("" when urls are found)
    """

    urls: Tuple[str, ...] = ()
    uuid: str = ""
    name: str = ""
    labels: Tuple[str, ...] = ()
    insecure: bool = False
    source: str = ""
    reason: str = ""

    @property
    def found(self):
        return bool(self.urls)


def _read(path, limit):
    with open(path, "rb") as handle:
        return handle.read(limit + 1)


def _open(path, launch, read, limit):
    """A file as the runner opens it -> (bytes or None, where, why not);
    why is None when no mount of the container holds the file."""
    host = path if launch.mounts is None else host_path(path, launch.mounts)
    if host is None:
        return None, path, None
    where = path if host == path else "%s (the host's %s)" % (path, host)
    try:
        data = read(host, limit)
    except OSError as exc:
        return None, where, "%s: %s" % (where, getattr(exc, "strerror", None) or exc)
    if len(data) > limit:
        return None, where, "%s: larger than %d bytes" % (where, limit)
    return data, where, ""


def _label_names(labels):
    if not isinstance(labels, list):
        return ()
    return tuple(str(label).split(":", 1)[0].strip() for label in labels
                 if str(label).split(":", 1)[0].strip())


def _text(doc, key):
    value = doc.get(key)
    return value.strip() if isinstance(value, str) else ""


def _connections(doc, where, runner_labels, insecure):
    """server.connections (Forgejo runner 12.7+, config.go:489-512) ->
    Identity, or None when the config has none."""
    server = doc.get("server")
    connections = server.get("connections") if isinstance(server, dict) else None
    if not isinstance(connections, dict) or not connections:
        return None
    items = [(str(name), conn) for name, conn in connections.items() if isinstance(conn, dict)]
    urls = tuple(u for u in (_text(conn, "url") for _, conn in items) if u)
    if not urls:
        return Identity(source="server.connections in %s" % where,
                        reason="server.connections in %s: no connection has a url" % where)
    name, first = items[0]
    return Identity(urls, _text(first, "uuid"), name,
                    runner_labels or _label_names(first.get("labels")), insecure,
                    "server.connections in %s" % where)


def _registration(data, where, runner_labels, insecure):
    """The .runner file's bytes (JSON, written by the runner's
    registration: WARNING, id, uuid, name, token, address, labels) ->
    Identity."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        return Identity(source=where, reason="%s: not JSON (%s)" % (where, " ".join(str(exc).split())))
    if not isinstance(doc, dict):
        return Identity(source=where, reason="%s: not a runner registration" % where)
    address = _text(doc, "address")
    if not address:
        return Identity(source=where, reason="%s: no address in it" % where)
    return Identity((address,), _text(doc, "uuid"), _text(doc, "name"),
                    runner_labels or _label_names(doc.get("labels")), insecure, where)


def identity(launch, read=_read):
    """Who the runner that `launch` (registration.Launch) describes is to
    its forge: its config (-c/--config on its command line, read through
    its mounts) for runner.file, runner.insecure, runner.labels and
    server.connections, then its .runner file (runner.file, default
    .runner, relative to its working directory; a container without one
    (workdir /) also at /data/.runner, where the official images keep it)
    -> Identity, with `reason` when no forge URL is found.  Never raises
    for what it reads; read(path, limit) -> bytes (OSError) is the I/O."""
    if launch.argv is None:
        return Identity(source=launch.source, reason=launch.reason or "no command line")
    doc, where, config = {}, None, config_argument(launch.argv)
    if config is not None:
        data, where, why = _open(in_container(config, launch.workdir), launch, read, MAX_CONFIG)
        if data is None:
            return Identity(source=where, reason="cannot read its config: %s" % (
                why or "%s is in the container's own filesystem (no mount holds it)" % where))
        try:
            doc = load(data)
        except RunnerConfigError as exc:
            return Identity(source=where, reason="its config %s: %s" % (where, exc))
    runner = doc.get("runner") if isinstance(doc.get("runner"), dict) else {}
    labels, insecure = _label_names(runner.get("labels")), runner.get("insecure") is True
    found = _connections(doc, where, labels, insecure)
    if found is not None:
        return found
    name = _text(runner, "file") or RUNNER_FILE
    paths = [in_container(name, launch.workdir)]
    if launch.mounts is not None and (launch.workdir or "/") == "/" and not name.startswith("/"):
        paths.append(in_container(name, IMAGE_DATA))
    whys, unmounted = [], []
    for path in paths:
        data, where, why = _open(path, launch, read, MAX_CONFIG)
        if data is not None:
            return _registration(data, where, labels, insecure)
        (whys if why else unmounted).append(why or path)
    if unmounted:
        whys.append("not on a mount of the container (looked for %s)" % ", ".join(unmounted))
    return Identity(source=launch.source, reason="no %s: %s" % (name, "; ".join(whys)))


def add_host_addresses(name, extra_hosts, hosts_text=""):
    """The addresses a container's --add-host entries (docker inspect's
    HostConfig.ExtraHosts: NAME:ADDRESS, or NAME=ADDRESS since Docker 25)
    give `name`, in order; () when none does.  A `host-gateway` entry is
    the address Docker wrote for it into the container's own hosts file
    (`hosts_text`, its HostsPath), as it writes it again at every start."""
    addresses = []
    for entry in extra_hosts or ():
        host, address = _host_entry(str(entry))
        if host != name.lower():
            continue
        if address == "host-gateway":
            addresses.extend(_hosts_file_addresses(hosts_text, host))
        elif _is_address(address):
            addresses.append(address)
    return tuple(dict.fromkeys(addresses))


def _is_address(text):
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _hosts_file_addresses(text, name):
    """The addresses a hosts file's lines give `name` (comments dropped)."""
    found = []
    for line in (text or "").splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and _is_address(fields[0]) and name in (f.lower() for f in fields[1:]):
            found.append(fields[0])
    return found
