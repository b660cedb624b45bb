"""guard.conf: defaults, drop-ins, overrides, and errors that name file:line:key."""

import os
import textwrap

import pytest

from forgejo_runner_guard import config
from forgejo_runner_guard.report import ConfigError, EXIT_USAGE


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_missing_default_file_means_builtin_defaults(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "DEFAULT_CONFIG", str(tmp_path / "absent.conf"))
    cfg = config.load()
    assert cfg.files == ()
    assert cfg.reconcile.hosts_file == "/etc/hosts"
    assert cfg.reconcile.pins == (config.Pin("forge.azrak.io", "10.1.0.10"),)
    (runner,) = cfg.watchdog.runners
    assert (runner.name, runner.container, runner.backend) == ("forgejo_runner", "forgejo_runner", "docker")
    assert (runner.threshold, runner.window, runner.recent, runner.cooldown, runner.max_restarts) == (
        40, 300.0, 60.0, 600.0, 3,
    )
    assert cfg.watchdog.state_dir == "/var/lib/forgejo-runner-guard"


def test_missing_explicit_file_is_a_usage_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        config.load(str(tmp_path / "nope.conf"))
    assert "nope.conf" in str(info.value) and "no such" in str(info.value)
    assert info.value.exit_code == EXIT_USAGE


def test_full_file_and_runner_sections(tmp_path):
    path = write(
        tmp_path / "guard.conf",
        """\
        [reconcile]
        hosts_file = /srv/hosts
        pins =
            forge.azrak.io 10.1.0.10
            forge.azrak.io 2001:db8::10

        [watchdog]
        runners = forgejo_runner second
        threshold = 50
        window = 10m
        cooldown = 1h
        metrics_file = /var/lib/node_exporter/frg.prom

        [runner second]
        container = runner-two
        threshold = 7
        recent = 90
        """,
    )
    cfg = config.load(path)
    assert cfg.files == (path,)
    assert cfg.reconcile.hosts_file == "/srv/hosts"
    assert [(p.name, p.address) for p in cfg.reconcile.pins] == [
        ("forge.azrak.io", "10.1.0.10"),
        ("forge.azrak.io", "2001:db8::10"),
    ]
    first, second = cfg.watchdog.runners
    assert (first.container, first.threshold, first.window, first.cooldown) == ("forgejo_runner", 50, 600.0, 3600.0)
    assert (second.container, second.threshold, second.window, second.recent) == ("runner-two", 7, 600.0, 90.0)
    assert cfg.watchdog.metrics_file == "/var/lib/node_exporter/frg.prom"


def test_dropins_read_in_lexical_order_and_replace_whole_values(tmp_path):
    main = write(tmp_path / "guard.conf", "[reconcile]\npins =\n    a.example 192.0.2.1\n    b.example 192.0.2.2\n")
    write(tmp_path / "guard.conf.d" / "20-late.conf", "[reconcile]\npins = c.example 192.0.2.3\n")
    write(tmp_path / "guard.conf.d" / "10-early.conf", "[reconcile]\npins = z.example 192.0.2.9\n[watchdog]\nthreshold = 9\n")
    write(tmp_path / "guard.conf.d" / "ignored.txt", "this is not read\n")
    cfg = config.load(main)
    assert [os.path.basename(f) for f in cfg.files] == ["guard.conf", "10-early.conf", "20-late.conf"]
    assert cfg.reconcile.pins == (config.Pin("c.example", "192.0.2.3"),)
    assert cfg.watchdog.runners[0].threshold == 9


def test_dropins_apply_when_main_file_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "DEFAULT_CONFIG", str(tmp_path / "guard.conf"))
    write(tmp_path / "guard.conf.d" / "site.conf", "[watchdog]\nthreshold = 11\n")
    cfg = config.load()
    assert cfg.watchdog.runners[0].threshold == 11


def test_empty_pins_means_no_pins(tmp_path):
    cfg = config.load(write(tmp_path / "g.conf", "[reconcile]\npins =\n"))
    assert cfg.reconcile.pins == ()


@pytest.mark.parametrize(
    "text, where",
    [
        ("[watchdog]\nthreshold = forty\n", ":2: [watchdog] threshold: not a whole number"),
        ("[watchdog]\n\nwindow = 5 minutes\n", ":3: [watchdog] window: not a duration"),
        ("[watchdog]\nthreshold = 0\n", ":2: [watchdog] threshold: must be at least 1"),
        ("[watchdog]\nwindow = 0\n", ":2: [watchdog] window: must be more than zero"),
        ("[watchdog]\nbogus = 1\n", ":2: [watchdog] bogus: unknown key"),
        ("[reconcile]\nhosts_file = relative/hosts\n", ":2: [reconcile] hosts_file: not an absolute path"),
        ("[reconcile]\npins = only-a-name\n", ":2: [reconcile] pins: expected 'NAME ADDRESS'"),
        ("[reconcile]\n# c\npins =\n  a.example 192.0.2.1\n  b.example\n", ":3: [reconcile] pins: expected 'NAME ADDRESS'"),
        ("[reconcile]\npins =\n  forge.azrak.io 10.1.0.256\n", ":2: [reconcile] pins: bad address '10.1.0.256'"),
        ("[reconcile]\npins = -bad-.example 10.1.0.10\n", ":2: [reconcile] pins: bad host name '-bad-.example'"),
        ("[whatever]\nx = 1\n", ":1: [whatever]: unknown section"),
        ("threshold = 1\n", ":1: a setting before any [section]"),
        ("[watchdog]\nthreshold = 1\nthreshold = 2\n", ":3: [watchdog] threshold: set twice"),
        ("[runner other]\nthreshold = 5\n", "[runner other]: runner 'other' is not listed"),
        ("[runner forgejo_runner]\nbackend = podman\n", ":2: [runner forgejo_runner] backend: must be one of docker, systemd"),
        ("[watchdog]\nrunners =\n", ":2: [watchdog] runners: empty list"),
        ("[watchdog]\nengine = rkt\n", ":2: [watchdog] engine: must be one of docker, podman"),
        ("[watchdog]\nlogs = syslog\n", ":2: [watchdog] logs: must be one of engine, journal"),
        ("[watchdog]\njournal_match = forgejo-runner\n",
         ":2: [watchdog] journal_match: not a journal match FIELD=VALUE"),
        ("[watchdog]\njournal_match = syslog_identifier=x\n",
         ":2: [watchdog] journal_match: not a journal match FIELD=VALUE"),
        ("[watchdog]\nstop_timeout = soon\n", ":2: [watchdog] stop_timeout: not a duration"),
    ],
)
def test_bad_values_name_file_line_and_key(tmp_path, text, where):
    path = write(tmp_path / "bad.conf", text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    message = str(info.value)
    assert message.startswith(path), message
    assert where in message, message
    assert "\n" not in message


def test_error_in_dropin_names_the_dropin(tmp_path):
    main = write(tmp_path / "guard.conf", "[watchdog]\nthreshold = 40\n")
    bad = write(tmp_path / "guard.conf.d" / "50-site.conf", "[watchdog]\n\n\nrecent = soon\n")
    with pytest.raises(ConfigError) as info:
        config.load(main)
    assert str(info.value).startswith(bad + ":4: [watchdog] recent:")


def test_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.conf"
    path.write_bytes(b"[reconcile]\n# caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.load(str(path))


@pytest.mark.parametrize(
    "text, seconds",
    [("90", 90), ("90s", 90), ("5m", 300), ("1h", 3600), ("2d", 172800), (" 1.5m ", 90), ("10M", 600)],
)
def test_durations(text, seconds):
    assert config.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "5 min", "-5m", "5x", "1h30m", "five"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        config.parse_duration(text)


def test_issue_11_keys(tmp_path):
    from forgejo_runner_guard import journallog

    path = write(tmp_path / "guard.conf", "[watchdog]\nrunners = a b\nengine = podman\n"
                 "stop_timeout = 90\n\n[runner a]\nlogs = journal\njournal_match = "
                 "SYSLOG_IDENTIFIER=forgejo-runner _SYSTEMD_UNIT=r.service\ndaemon = my-runner\n")
    a, b = config.load(path).watchdog.runners
    assert (a.engine, a.logs, a.stop_timeout, a.daemon) == ("podman", "journal", 90.0,
                                                             ("my-runner",))
    assert journallog.matches(a) == ("SYSLOG_IDENTIFIER=forgejo-runner", "_SYSTEMD_UNIT=r.service")
    assert (b.logs, b.stop_timeout, b.daemon) == ("engine", 90.0, ("forgejo-runner", "act_runner"))
    path = write(tmp_path / "none.conf", "[watchdog]\ndaemon =\n")
    assert config.load(path).watchdog.runners[0].daemon == ()  # none looked for
    assert journallog.matches(b) == ("CONTAINER_NAME=b",)  # the journald log driver's field


def test_runner_config_precedence():
    runner = config.runner_config("r1", {"threshold": 10, "window": 60.0}, {"threshold": 20})
    assert (runner.name, runner.container, runner.threshold, runner.window) == ("r1", "r1", 20, 60.0)
    assert runner.cooldown == config.RunnerConfig().cooldown


def test_select_runners_by_name_container_or_defaults(tmp_path):
    cfg = config.load(write(tmp_path / "g.conf", """\
        [watchdog]
        runners = one two
        threshold = 9
        [runner two]
        container = box-two
        """)).watchdog
    assert [r.name for r in config.select_runners(cfg)] == ["one", "two"]
    picked = config.select_runners(cfg, ["box-two", "other", "other"])
    assert [(r.name, r.container, r.threshold) for r in picked] == [("two", "box-two", 9), ("other", "other", 9)]
    with pytest.raises(config.UsageError, match="not a container name: '-x'"):
        config.select_runners(cfg, ["-x"])


def test_two_runners_on_one_container_or_unit_are_refused():
    a = config.runner_config("a", {"container": "c"})
    b = config.runner_config("b", {"container": "c"})
    with pytest.raises(config.UsageError, match="runners a and b both watch container c"):
        config.check_distinct([a, b])
    u1 = config.runner_config("u1", {"backend": "systemd", "unit": "r.service"})
    u2 = config.runner_config("u2", {"backend": "systemd", "unit": "r.service"})
    with pytest.raises(config.UsageError, match="runners u1 and u2 both watch unit r.service"):
        config.check_distinct([u1, u2])
    config.check_distinct([a, u1])  # a container and a unit never clash


def test_polling_model_keys(tmp_path):
    conf = write(tmp_path / "guard.conf", "[watchdog]\nrunners = a b\nfetch_timeout = 5s\n"
                 "[runner b]\nflavour = gitea\nfetch_interval_max = 60s\nsustain = 20s\nfetch_interval = 0.2s\n")
    a, b = config.load(str(conf)).watchdog.runners
    assert (a.sustain, a.fetch_interval, a.fetch_timeout, a.fetch_interval_max, a.flavour) == (
        180.0, 2.0, 5.0, 5.0, "forgejo")
    assert (b.sustain, b.fetch_interval, b.fetch_timeout, b.fetch_interval_max, b.flavour) == (
        20.0, 0.2, 5.0, 60.0, "gitea")


@pytest.mark.parametrize("setting, message", [
    ("flavour = woodpecker", "[watchdog] flavour: must be one of forgejo, gitea: 'woodpecker'"),
    ("sustain = 0", "[watchdog] sustain: must be more than zero"),
    ("fetch_interval = 2x", "[watchdog] fetch_interval: not a duration"),
    ("fetch_timeout = -1s", "[watchdog] fetch_timeout: not a duration"),
])
def test_polling_model_bad_values(tmp_path, setting, message):
    conf = write(tmp_path / "guard.conf", "[watchdog]\n%s\n" % setting)
    with pytest.raises(ConfigError) as info:
        config.load(str(conf))
    assert str(info.value).startswith("%s:2: %s" % (conf, message))
