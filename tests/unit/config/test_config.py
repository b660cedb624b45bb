"""guard.conf: defaults, drop-ins, overrides, and errors that name file:line:key."""

import os
import re
import textwrap

import pytest

from forgejo_runner_guard.config import config, selection, values
from forgejo_runner_guard.config.values import EVENTS
from forgejo_runner_guard.report import ConfigError, EXIT_USAGE, UsageError


def load_error(tmp_path, text):
    """-> (path, message) of the ConfigError that loading `text` raises."""
    path = write(tmp_path / "bad.conf", text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    return path, str(info.value)


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
        ("[reconcile]\npins = 1.2.3 10.1.0.10\n", ":2: [reconcile] pins: bad host name '1.2.3': inet_aton "
         "reads it as the IPv4 address 1.2.0.3"),
        ("[whatever]\nx = 1\n", ":1: [whatever]: unknown section"),
        ("threshold = 1\n", ":1: a setting before any [section]"),
        ("[watchdog]\nthreshold = 1\nthreshold = 2\n", ":3: [watchdog] threshold: set twice"),
        ("[runner other]\nthreshold = 5\n", "[runner other]: runner 'other' is not listed"),
        ("[runner forgejo_runner]\nbackend = podman\n", ":2: [runner forgejo_runner] backend: must be one of docker, systemd"),
        ("[watchdog]\nrunners =\n", ":2: [watchdog] runners: empty list"),
        ("[watchdog]\nthreshold = -1\n", ":2: [watchdog] threshold: must be at least 1: '-1'"),
        ("[watchdog]\nthreshold = 10001\n", ":2: [watchdog] threshold: must be at most 10000"),
        ("[watchdog]\nthreshold = " + "9" * 5000 + "\n", ":2: [watchdog] threshold: must be at most 10000"),
        ("[watchdog]\nmax_restarts = 61\n", ":2: [watchdog] max_restarts: must be at most 60"),
        ("[watchdog]\nmax_restarts = -1\n", ":2: [watchdog] max_restarts: must be at least 0"),
        ("[watchdog]\ndocker_timeout = 0\n", ":2: [watchdog] docker_timeout: must be more than zero"),
        ("[watchdog]\ndocker_timeout = 99999999999999999999h\n", ":2: [watchdog] docker_timeout: must be at most 1h"),
        ("[watchdog]\ndocker_timeout = 3601\n", ":2: [watchdog] docker_timeout: must be at most 1h"),
        ("[watchdog]\nwindow = 1.5d\n", ":2: [watchdog] window: must be at most 1d"),
        ("[watchdog]\nrecent = -5m\n", ":2: [watchdog] recent: must be more than zero: '-5m'"),
        ("[watchdog]\ncooldown = 86401s\n", ":2: [watchdog] cooldown: must be at most 1d"),
        ("[watchdog]\ncooldown = -1\n", ":2: [watchdog] cooldown: must not be negative"),
        ("[reconcile]\n[watchdog\nthreshold = 4\n", ":2: unclosed section header [watchdog (missing ']')"),
        ("[watchdog\nthreshold = 4\n", ":1: unclosed section header [watchdog (missing ']')"),
        ("[reconcile]\nhosts_file\n", ":2: cannot parse hosts_file"),
        ("[reconcile]\n[reconcile]\n", ":2: [reconcile]: section appears twice"),
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
    path, message = load_error(tmp_path, text)
    assert message.startswith(path), message
    assert where in message, message
    assert "\n" not in message


@pytest.mark.parametrize("text", [
    "[watchdog]\nthreshold = 1\nmax_restarts = 0\ncooldown = 0\nwindow = 1d\nrecent = 1s\n"
    "docker_timeout = 1h\n",
    "[watchdog]\nthreshold = 10000\nmax_restarts = 60\ncooldown = 1d\nwindow = 0.5\n"
    "docker_timeout = 0.1\n",
])
def test_the_bounds_themselves_load(tmp_path, text):
    cfg = config.load(write(tmp_path / "g.conf", text))
    expected = {k: config.parse_duration(v) if k not in ("threshold", "max_restarts") else int(v)
                for k, v in (line.split(" = ") for line in text.splitlines()[1:])}
    runner = cfg.watchdog.runners[0]
    got = {k: getattr(runner, k, None) for k in expected}
    got["docker_timeout"] = cfg.watchdog.docker_timeout
    assert got == expected


@pytest.mark.parametrize("text, message", [
    ("[watchdog]\nthreshold = forty\n", ":2: [watchdog] threshold: not a whole number: 'forty'"),
    ("[watchdog]\nthreshold forty\n", ":2: cannot parse threshold forty"),
    ("[watchdog]\nthreshold = 1\nthreshold = 2\n", ":3: [watchdog] threshold: set twice"),
    ("[watchdog]\n[runner x]\nthreshold = 2\n", "[runner x]: runner 'x' is not listed"),
    ("[runner forgejo_runner]\nbogus = 2\n", ":2: [runner forgejo_runner] bogus: unknown key"),
])
def test_an_unused_section_is_a_warning_for_a_command_that_does_not_use_it(tmp_path, text,
                                                                          message):
    path = write(tmp_path / "g.conf", "[reconcile]\nhosts_file = /srv/hosts\n" + text)
    line = int(message[1]) + 2 if message.startswith(":") else None
    message = ":%d%s" % (line, message[2:]) if line else message
    with pytest.raises(ConfigError, match="^" + re.escape(path)) as info:
        config.load(path)  # every section used
    assert message in str(info.value)
    with pytest.raises(ConfigError):
        config.load(path, used=("reconcile", "watchdog", "runner"))
    cfg = config.load(path, used=("reconcile",))
    assert cfg.reconcile.hosts_file == "/srv/hosts"
    (warning,) = cfg.warnings
    assert warning.startswith(path) and message in warning
    assert warning.endswith("(ignored: this command does not use [%s])"
                            % ("runner x" if "runner x" in text else text[1:].split("]")[0]))


def test_a_broken_reconcile_section_still_stops_the_reconcile(tmp_path):
    path = write(tmp_path / "g.conf", "[reconcile]\npins = x\n[watchdog]\nthreshold = 0\n")
    with pytest.raises(ConfigError, match=r":2: \[reconcile\] pins"):
        config.load(path, used=("reconcile",))
    assert config.load(write(tmp_path / "ok.conf", "[reconcile]\n"), used=("reconcile",)).warnings == ()


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


@pytest.mark.parametrize("text", ["", "m", "5 min", "-5m", "5x", "1h30m", "five", "1e3"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        config.parse_duration(text)


@pytest.mark.parametrize("text, bounds, message", [
    ("-5m", (None, None), "must not be negative: '-5m'"),
    ("0", (0.0, None), "must be more than zero: '0'"),
    ("-0", (0.0, 60.0), "must be more than zero: '-0'"),
    ("61", (0.0, 60.0), "must be at most 1m: '61'"),
    ("9" * 400 + "d", (None, 86400.0), "must be at most 1d"),
    ("90.5", (None, 90.0), "must be at most 90s: '90.5'"),
])
def test_duration_bounds(text, bounds, message):
    with pytest.raises(ValueError) as info:
        config.parse_duration(text, bounds)
    assert message in str(info.value)


def test_a_duration_on_its_bounds_is_accepted():
    assert config.parse_duration("60", (0.0, 60.0)) == 60.0
    assert config.parse_duration("0", (None, 60.0)) == 0.0
    assert config.parse_duration("+1m", (0.0, 60.0)) == 60.0


@pytest.mark.parametrize("text, number", [("0", 0), ("+7", 7), (" 10 ", 10), ("0010", 10)])
def test_counts(text, number):
    assert config.parse_count(text, 0, 10) == number


@pytest.mark.parametrize("text, message", [
    ("-1", "must be at least 0: '-1'"), ("11", "must be at most 10: '11'"),
    ("1" * 5000, "must be at most 10: "), ("1.0", "not a whole number"), ("", "not a whole number"),
])
def test_count_bounds(text, message):
    with pytest.raises(ValueError) as info:
        config.parse_count(text, 0, 10)
    assert message in str(info.value)


@pytest.mark.parametrize("seconds, text", [(86400, "1d"), (3600, "1h"), (300, "5m"), (90, "90s"),
                                           (0.5, "0.5s"), (172800, "2d"), (5400, "90m")])
def test_duration_text(seconds, text):
    assert values.duration_text(seconds) == text


@pytest.mark.parametrize("window, threshold, warned", [
    (78.0, 40, False), (77.9, 40, True), (76.0, 40, True), (300.0, 40, False), (0.5, 1, False),
    (0.5, 2, True)])
def test_a_window_too_short_for_the_threshold(window, threshold, warned):
    runner = config.runner_config("r", {"window": window, "threshold": threshold})
    text = selection.unreachable(runner)
    assert (text is not None) == warned
    if warned:
        most = int(window // 2) + 1
        assert text == ("runner r: a window of %s holds at most %d fetch errors (one per poll "
                        "every 2s), fewer than threshold %d: the threshold can never be reached"
                        % (values.duration_text(window), most, threshold))


@pytest.mark.parametrize("window, interval, threshold, most", [
    # in floats 1.0 // 0.1 == 9.0 and int(0.3 / 0.1) == 2: the polls are counted in Go's nanoseconds
    ("1s", "0.1", 11, None), ("1s", "0.1", 12, 11), ("0.3", "0.1", 4, None), ("0.3", "0.1", 5, 4),
    ("0.1m", "2", 4, None), ("0.1m", "2", 5, 4),  # 0.1 * 60 == 6.000000000000001
    ("0.000000003", "0.000000001", 4, None), ("0.000000003", "0.000000001", 5, 4),  # 1ns polls
])
def test_the_polls_a_window_holds_are_counted_exactly(tmp_path, window, interval, threshold, most):
    runner = config.load(write(tmp_path / "g.conf", "[watchdog]\nwindow = %s\nfetch_interval = %s\n"
                               "threshold = %d\n" % (window, interval, threshold))).watchdog.runners[0]
    text = selection.unreachable(runner)
    if most is None:
        assert text is None
    else:
        assert text == ("runner forgejo_runner: a window of %s holds at most %d fetch errors (one per poll "
                        "every %ss), fewer than threshold %d: the threshold can never be reached"
                        % (values.duration_text(runner.window), most, "%g" % runner.fetch_interval,
                           threshold))
def test_issue_11_keys(tmp_path):
    from forgejo_runner_guard.runners.backends import journal

    path = write(tmp_path / "guard.conf", "[watchdog]\nrunners = a b\nengine = podman\n"
                 "stop_timeout = 90\n\n[runner a]\nlogs = journal\njournal_match = "
                 "SYSLOG_IDENTIFIER=forgejo-runner _SYSTEMD_UNIT=r.service\ndaemon = my-runner\n")
    a, b = config.load(path).watchdog.runners
    assert (a.engine, a.logs, a.stop_timeout, a.daemon) == ("podman", "journal", 90.0,
                                                             ("my-runner",))
    assert journal.matches(a) == ("SYSLOG_IDENTIFIER=forgejo-runner", "_SYSTEMD_UNIT=r.service")
    assert (b.logs, b.stop_timeout, b.daemon) == ("engine", 90.0, ("forgejo-runner", "gitea-runner",
                                                              "act_runner"))
    path = write(tmp_path / "none.conf", "[watchdog]\ndaemon =\n")
    assert config.load(path).watchdog.runners[0].daemon == ()  # none looked for
    assert journal.matches(b) == ("CONTAINER_NAME=b",)  # the journald log driver's field


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
    assert [r.name for r in selection.select_runners(cfg)] == ["one", "two"]
    picked = selection.select_runners(cfg, ["box-two", "other", "other"])
    assert [(r.name, r.container, r.threshold) for r in picked] == [("two", "box-two", 9), ("other", "other", 9)]
    with pytest.raises(config.UsageError, match="not a container name: '-x'"):
        selection.select_runners(cfg, ["-x"])


def test_two_runners_on_one_container_or_unit_are_refused():
    a = config.runner_config("a", {"container": "c"})
    b = config.runner_config("b", {"container": "c"})
    with pytest.raises(config.UsageError, match="runners a and b both watch container c"):
        selection.check_distinct([a, b])
    u1 = config.runner_config("u1", {"backend": "systemd", "unit": "r.service"})
    u2 = config.runner_config("u2", {"backend": "systemd", "unit": "r.service"})
    with pytest.raises(config.UsageError, match="runners u1 and u2 both watch unit r.service"):
        selection.check_distinct([u1, u2])
    selection.check_distinct([a, u1])  # a container and a unit never clash


# ------------------------------------------------------------ what the mutation run found untested


@pytest.mark.parametrize("text, message", [
    ("[reconcile]\nhosts_file =\n", ":2: [reconcile] hosts_file: empty path"),
    ("[runner forgejo_runner]\ncontainer =\n", ":2: [runner forgejo_runner] container: expected one word: ''"),
    ("[runner forgejo_runner]\ncontainer = a b\n", ":2: [runner forgejo_runner] container: expected one word: 'a b'"),
    ("[runner forgejo_runner]\nbackend =\n", ":2: [runner forgejo_runner] backend: must be one of docker, systemd: ''"),
    ("[reconcile]\n[whatever]\n", ":2: [whatever]: unknown section (expected [reconcile], [watchdog], [runner NAME] or [notify])"),
    ("[whatever]\n[reconcile]\n", ":1: [whatever]: unknown section (expected [reconcile], [watchdog], [runner NAME] or [notify])"),
    ("[DEFAULT]\nthreshold = 1\n", ":1: [DEFAULT]: unknown section (expected [reconcile], [watchdog], [runner NAME] or [notify])"),
    ("[reconcile]\nstate_dir = rel\n[watchdog]\nstate_dir = /x\n", ":2: [reconcile] state_dir: not an absolute path: 'rel'"),
    ("[watchdog]\nstate_dir = /x\n[reconcile]\nstate_dir = rel\n", ":4: [reconcile] state_dir: not an absolute path: 'rel'"),
    ("[reconcile]\npins = a.io 10.1.0.1\n pins = 10.1.0.2\n", ":2: [reconcile] pins: expected 'NAME ADDRESS', got 'pins = 10.1.0.2'"),
    ("[reconcile]\npins = a.io 10.1.0.1\n  pins = 10.1.0.2\n", ":2: [reconcile] pins: expected 'NAME ADDRESS', got 'pins = 10.1.0.2'"),
    ("[reconcile]\npins = a.io 10.1.0.1\n\tpins = 10.1.0.2\n", ":2: [reconcile] pins: expected 'NAME ADDRESS', got 'pins = 10.1.0.2'"),
    ("[watchdog]\nbogus = 1\n", ":2: [watchdog] bogus: unknown key (known: %s)"
     % ", ".join(sorted(config._SCHEMA["watchdog"]))),
    ("[runner x]\n", "[runner x]: runner 'x' is not listed in [watchdog] runners (forgejo_runner)"),
    ("[watchdog]\nrunners = a b\n[runner x]\nthreshold = 3\nrecent = 9\n", ":4: [runner x]: runner 'x' is not listed in [watchdog] runners (a b)"),
])
def test_messages_exactly(tmp_path, text, message):
    path, got = load_error(tmp_path, text)
    assert got == (path + message if message.startswith(":") else message)


def test_file_errors_exactly(tmp_path):
    with pytest.raises(ConfigError) as info:
        config.load(str(tmp_path / "nope.conf"))
    assert str(info.value) == "%s: no such configuration file" % (tmp_path / "nope.conf")
    with pytest.raises(ConfigError) as info:
        config.load(str(tmp_path))  # a directory
    assert str(info.value) == "%s: cannot read: Is a directory" % tmp_path
    latin = tmp_path / "latin1.conf"
    latin.write_bytes(b"[reconcile]\n# caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        config.load(str(latin))
    assert str(info.value) == "%s: not UTF-8 text (invalid continuation byte)" % latin


def test_values_load_as_written(tmp_path):
    cfg = config.load(write(tmp_path / "g.conf", """\
        [watchdog]
        state_dir = /srv/state
        metrics_file =
        job_prefixes = 100%-TASK- X-
        [runner forgejo_runner]
        backend = systemd
        unit = my%runner.service
        """))
    assert (cfg.watchdog.state_dir, cfg.watchdog.metrics_file) == ("/srv/state", None)
    (runner,) = cfg.watchdog.runners
    assert (runner.backend, runner.unit, runner.job_prefixes) == (
        "systemd", "my%runner.service", ("100%-TASK-", "X-"))
    assert cfg.watchdog.defaults.name == cfg.watchdog.defaults.container == "forgejo_runner"
    assert config.parse_optional_path("") is None and config.parse_optional_path(" ") is None


def test_an_unlisted_runner_in_an_unused_section_leaves_the_rest(tmp_path):
    path = write(tmp_path / "g.conf", "[reconcile]\nhosts_file = /h\n[runner x]\n")
    cfg = config.load(path, used=("reconcile",))
    assert cfg.files == (path,) and cfg.reconcile.hosts_file == "/h"
    assert cfg.warnings == ("[runner x]: runner 'x' is not listed in [watchdog] runners "
                            "(forgejo_runner) (ignored: this command does not use [runner x])",)


def test_a_duplicate_and_a_bad_line_in_an_unused_section(tmp_path):
    path = write(tmp_path / "g.conf", "[reconcile]\nhosts_file = /h\n[watchdog]\nthreshold = 1\n"
                 "threshold = 2\nnot a setting\n")
    cfg = config.load(path, used=("reconcile",))
    assert cfg.reconcile.hosts_file == "/h"
    assert cfg.warnings == ("%s:5: [watchdog] threshold: set twice in one section (ignored: this "
                            "command does not use [watchdog])" % path,)


def test_setting_is_the_watchdog_schema():
    assert config.setting("threshold")("7") == 7
    assert config.setting("cooldown")("0") == 0.0
    with pytest.raises(ValueError, match="must be more than zero: '-5m'"):
        config.setting("window")("-5m")


@pytest.mark.parametrize("text, minimum, maximum, value", [
    ("0", 0, None, 0), ("+000000000001", 0, 10, 1), ("-0", 0, 10, 0), ("10", 0, 10, 10),
    ("0010", 0, 10, 10)])
def test_parse_count_values(text, minimum, maximum, value):
    assert config.parse_count(text, minimum, maximum) == value


def test_parse_count_default_minimum_and_long_negatives():
    assert config.parse_count("0") == 0
    with pytest.raises(ValueError) as info:
        config.parse_count("-123456789012", 0, 10)
    assert str(info.value) == "must be at least 0: '-123456789012'"


def test_select_runners_and_check_distinct_messages():
    cfg = config.WatchdogConfig()
    with pytest.raises(UsageError) as info:
        selection.select_runners(cfg, [""])
    assert str(info.value) == "--container: not a container name: ''"
    a = config.runner_config("a", {"container": "c"})
    b = config.runner_config("b", {"container": "c"})
    with pytest.raises(UsageError) as info:
        selection.check_distinct([a, b])
    assert str(info.value) == "runners a and b both watch container c"


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
    ("fetch_timeout = -1s", "[watchdog] fetch_timeout: must be more than zero: '-1s'"),
    ("sustain = 2d", "[watchdog] sustain: must be at most 1d: '2d'"),
    ("fetch_interval = 2h", "[watchdog] fetch_interval: must be at most 1h: '2h'"),
    ("fetch_interval_max = 99999999999999999999h", "[watchdog] fetch_interval_max: must be at most 1h"),
])
def test_polling_model_bad_values(tmp_path, setting, message):
    conf = write(tmp_path / "guard.conf", "[watchdog]\n%s\n" % setting)
    with pytest.raises(ConfigError) as info:
        config.load(str(conf))
    assert str(info.value).startswith("%s:2: %s" % (conf, message))


def test_the_notify_timeout_has_bounds(tmp_path):
    conf = write(tmp_path / "guard.conf", "[notify]\ntimeout = 2h\n")
    with pytest.raises(ConfigError) as info:
        config.load(str(conf))
    assert str(info.value) == "%s:2: [notify] timeout: must be at most 1h: '2h'" % conf


def test_notify_section_loads_named_commands_and_their_events(tmp_path):
    path = write(tmp_path / "g.conf", """\
        [notify]
        command = /bin/true
        command.ntfy = /bin/echo a 'b c'
        events.ntfy = restarted refused
        timeout = 30s
        """)
    notify = config.load(path).notify
    assert notify.timeout == 30.0
    assert [(c.key, c.argv, c.events, c.where) for c in notify.commands] == [
        ("command", ("/bin/true",), (), path + ":2"),
        ("command.ntfy", ("/bin/echo", "a", "b c"), ("restarted", "refused"), path + ":3")]


def test_a_notify_program_that_is_missing(tmp_path):
    path = write(tmp_path / "g.conf", "[reconcile]\nhosts_file = /h\n[notify]\ncommand.x = /nonexistent/x\n")
    message = "%s:4: [notify] command.x: /nonexistent/x is not an executable program" % path
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(info.value) == message
    with pytest.raises(ConfigError):
        config.load(path, used=("reconcile", "notify"))
    cfg = config.load(path, used=("reconcile",))
    assert cfg.warnings == (message + " (its notifications will fail, each one a warning)",)
    assert cfg.files == (path,) and cfg.reconcile.hosts_file == "/h"
    assert [c.argv for c in cfg.notify.commands] == [("/nonexistent/x",)]  # tried, and warned


def test_named_keys_only_in_notify(tmp_path):
    _, message = load_error(tmp_path, "[watchdog]\ncommand.x = /bin/true\n")
    assert message.endswith(":2: [watchdog] command.x: unknown key (known: %s)"
                            % ", ".join(sorted(config._SCHEMA["watchdog"])))
    assert "runners, state_dir, stop_timeout, sustain, threshold" in message
    _, message = load_error(tmp_path, "[notify]\nbogus.x = 1\n")
    assert message.endswith(":2: [notify] bogus.x: unknown key (known: command, events, timeout)")


def test_notify_values_exactly(tmp_path):
    from forgejo_runner_guard.config.values import EVENTS

    _, message = load_error(tmp_path, "[notify]\ncommand = /bin/echo 'unclosed\n")
    assert message.endswith(":2: [notify] command: cannot split into words: No closing quotation: "
                            "\"/bin/echo 'unclosed\"")
    _, message = load_error(tmp_path, "[notify]\ncommand = /bin/true\nevents = restarted nope\n")
    assert message.endswith(":3: [notify] events: unknown event 'nope' (known: %s)" % ", ".join(EVENTS))
    path, message = load_error(tmp_path, "[notify]\ncommand.a = /bin/true\nevents.b = restarted\n")
    assert message == "%s:3: [notify] events.b: no command.b to filter" % path
    path = write(tmp_path / "ok.conf", "[notify]\ncommand = /bin/echo a # b\ncommand.x =\n"
                 "events.x =\nevents = restarted\n")
    notify = config.load(path).notify
    assert [(c.key, c.argv, c.events) for c in notify.commands] == [
        ("command", ("/bin/echo", "a", "#", "b"), ("restarted",))]
    assert notify.timeout == 10.0
    assert config.parse_argv("") == () and config.parse_events("") == ()


def test_a_notify_program_is_looked_up_in_path(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    prog = bindir / "notifier"
    prog.write_text("#!/bin/sh\n")
    prog.chmod(0o755)
    (bindir / "plain").write_text("")  # not executable
    (bindir / "adir").mkdir()
    path = "%s:%s" % (tmp_path / "none", bindir)
    assert config.find_program("notifier", path) == str(prog)
    assert config.find_program("plain", path) is None and config.find_program("adir", path) is None
    assert config.find_program(str(prog)) == str(prog)
    assert config.find_program(str(bindir / "plain")) is None
    monkeypatch.chdir(bindir)
    assert config.find_program("notifier", ":/nonexistent") == "./notifier"  # an empty entry is .
    monkeypatch.setenv("PATH", str(bindir))
    assert config.find_program("notifier") == str(prog)
    monkeypatch.delenv("PATH")
    assert config.find_program("sh") in ("/bin/sh", "/usr/bin/sh")  # os.defpath
    monkeypatch.setenv("PATH", str(tmp_path / "none"))
    conf = write(tmp_path / "g.conf", "[notify]\ncommand = notifier\n")
    with pytest.raises(ConfigError) as info:
        config.load(conf)
    assert str(info.value) == "%s:2: [notify] command: notifier is not an executable program in PATH" % conf


def test_notify_keys_in_any_order_and_filters_without_a_command(tmp_path, monkeypatch):
    path = write(tmp_path / "g.conf", "[notify]\ntimeout = 3s\nevents = restarted\ncommand = /bin/true\n"
                 "events.x = refused\ncommand.x = /bin/echo x\n")
    notify = config.load(path).notify
    assert [(c.key, c.argv, c.events) for c in notify.commands] == [
        ("command", ("/bin/true",), ("restarted",)), ("command.x", ("/bin/echo", "x"), ("refused",))]
    # an events filter whose command is missing or empty filters nothing: an error
    path, message = load_error(tmp_path, "[notify]\nevents = refused\n")
    assert message == "%s:2: [notify] events: no command to filter" % path
    path, message = load_error(tmp_path, "[notify]\ncommand.x =\nevents.x = refused\n")
    assert message == "%s:3: [notify] events.x: no command.x to filter" % path
    # a relative path with a slash is that file, never looked up in PATH
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "n").write_text("#!/bin/sh\n")
    (bindir / "n").chmod(0o755)
    monkeypatch.chdir(tmp_path)
    assert config.find_program("bin/n", str(tmp_path)) == "bin/n"
    assert config.find_program("bin/n", str(tmp_path / "nowhere")) == "bin/n"
    monkeypatch.chdir(bindir)
    assert config.find_program("bin/n", str(tmp_path)) is None


def test_stop_timeout_bounds(tmp_path):
    _, message = load_error(tmp_path, "[watchdog]\nstop_timeout = 2h\n")
    assert message.endswith(":2: [watchdog] stop_timeout: must be at most 1h: '2h'")
    assert config.load(write(tmp_path / "ok.conf", "[watchdog]\nstop_timeout = 0\n")).watchdog.runners[0].stop_timeout == 0.0


def test_with_candidate_places_a_drop_in_not_yet_in_place():
    files = ["/e/g.conf", "/e/g.conf.d/10-a.conf", "/e/g.conf.d/30-c.conf"]
    assert config.with_candidate(files, "/e/g.conf", "/tmp/new") == files + ["/tmp/new"]
    assert config.with_candidate(files, "/e/g.conf", "/tmp/new", "20-b.conf") == [
        "/e/g.conf", "/e/g.conf.d/10-a.conf", "/tmp/new", "/e/g.conf.d/30-c.conf"]
    assert config.with_candidate(files, "/e/g.conf", "/tmp/new", "30-c.conf") == [
        "/e/g.conf", "/e/g.conf.d/10-a.conf", "/tmp/new"]
    assert config.with_candidate(["/e/g.conf"], "/e/g.conf", "/tmp/new", "0.conf") == [
        "/e/g.conf", "/tmp/new"]
    for bad in ("x", "a/b.conf", ".conf", "x.conf.bak"):
        with pytest.raises(UsageError) as info:
            config.with_candidate(files, "/e/g.conf", "/tmp/new", bad)
        assert str(info.value) == "--check-config-as: not a drop-in file name (NAME.conf): %r" % bad


def test_load_with_a_candidate(tmp_path):
    main = write(tmp_path / "g.conf", "[watchdog]\nthreshold = 5\n")
    later = write(tmp_path / "g.conf.d" / "50-late.conf", "[watchdog]\nthreshold = 7\n")
    cand = write(tmp_path / "cand.conf", "[watchdog]\nthreshold = 6\n")
    assert config.load(main, cand).watchdog.runners[0].threshold == 6  # read last
    cfg = config.load(main, cand, "10-early.conf")  # read before 50-late
    assert cfg.watchdog.runners[0].threshold == 7 and cfg.files == (main, cand, later)
    with pytest.raises(ConfigError) as info:
        config.load(main, str(tmp_path / "nope.conf"))
    assert str(info.value) == "%s: no such configuration file" % (tmp_path / "nope.conf")
    with pytest.raises(ConfigError) as info:
        config.load(main, str(tmp_path))  # a directory is no file
    assert str(info.value) == "%s: no such configuration file" % tmp_path


def test_journal_matches():
    assert config.parse_matches("SYSLOG_IDENTIFIER=forgejo-runner _SYSTEMD_UNIT=a.service") == (
        "SYSLOG_IDENTIFIER=forgejo-runner", "_SYSTEMD_UNIT=a.service")
    assert config.parse_matches("") == ()
    with pytest.raises(ValueError) as info:
        config.parse_matches("A=1 b=2")
    assert str(info.value) == ("not a journal match FIELD=VALUE (e.g. SYSLOG_IDENTIFIER=forgejo-runner): "
                               "'b=2'")


def test_a_notify_mistake_leaves_out_only_the_bad_key(tmp_path):
    """For a command that only notifies through [notify], each bad key is
    one warning and is left out; the rest of [notify] stays in force."""
    path = write(tmp_path / "g.conf", """\
        [notify]
        command.ntfy = /bin/true
        events.ntfy = restarted bogus
        command.mail = /bin/echo 'unbalanced
        events.mail = refused
        timeout = ten seconds
        colour = red
        command.ok = /bin/true
        events.ok = refused
        """)
    cfg = config.load(path, used=("reconcile",))
    assert [(c.key, c.events) for c in cfg.notify.commands] == [
        ("command.ntfy", ()), ("command.ok", ("refused",))]
    assert cfg.notify.timeout == 10.0
    why = " (ignored: a mistake in [notify] never stops this command)"
    assert cfg.warnings == (
        "%s:3: [notify] events.ntfy: unknown event 'bogus' (known: %s)%s"
        % (path, ", ".join(EVENTS), why),
        "%s:4: [notify] command.mail: cannot split into words: No closing quotation: "
        "\"/bin/echo 'unbalanced\"%s" % (path, why),
        "%s:6: [notify] timeout: not a duration (use e.g. 90, 90s, 5m, 1h): 'ten seconds'%s"
        % (path, why),
        "%s:7: [notify] colour: unknown key (known: command, events, timeout)%s" % (path, why),
        "%s:5: [notify] events.mail: no command.mail to filter%s" % (path, why))
    with pytest.raises(ConfigError) as info:
        config.load(path)  # --check-config: every section, strictly
    assert str(info.value) == cfg.warnings[0][:-len(why)]
    with pytest.raises(ConfigError):
        config.load(path, used=("watchdog", "runner", "notify"))  # --notify-test


# ---------------------------------------------------------------- asking the forge (issue 19)


def test_verify_keys(tmp_path):
    conf = write(tmp_path / "guard.conf", "[watchdog]\nrunners = a b c\nping_timeout = 4s\n"
                 "forge_ca_file = /etc/ssl/private-ca.pem\n"
                 "[runner b]\nverify = none\n"
                 "[runner c]\nforge = https://forge.azrak.io:8443/git/\nping_timeout = 1m\n")
    a, b, c = config.load(str(conf)).watchdog.runners
    assert (a.verify, a.forge, a.ping_timeout, a.forge_ca_file) == (
        "ping", "", 4.0, "/etc/ssl/private-ca.pem")
    assert (b.verify, b.forge, b.ping_timeout) == ("none", "", 4.0)
    assert (c.verify, c.forge, c.ping_timeout) == ("ping", "https://forge.azrak.io:8443/git/", 60.0)
    default = config.RunnerConfig()
    assert (default.verify, default.forge, default.ping_timeout, default.forge_ca_file) == (
        "ping", "", 10.0, None)


@pytest.mark.parametrize("setting, message", [
    ("verify = log", "[watchdog] verify: must be one of ping, none: 'log'"),
    ("forge = forge.azrak.io", "[watchdog] forge: not an http:// or https:// URL with a host: "
                               "'forge.azrak.io'"),
    ("forge = https://forge.azrak.io:0x1/", "[watchdog] forge: not a URL (Port could not be cast "
                                            "to integer value as '0x1')"),
    ("ping_timeout = 0", "[watchdog] ping_timeout: must be more than zero: '0'"),
    ("ping_timeout = 2m", "[watchdog] ping_timeout: must be at most 1m: '2m'"),
    ("forge_ca_file = ca.pem", "[watchdog] forge_ca_file: not an absolute path: 'ca.pem'"),
])
def test_verify_bad_values(tmp_path, setting, message):
    path, error = load_error(tmp_path, "[watchdog]\n%s\n" % setting)
    assert error.startswith("%s:2: %s" % (path, message)), error


def test_drop_ins_that_cannot_be_read_are_a_warning(tmp_path, monkeypatch):
    conf = tmp_path / "guard.conf"
    conf.write_text("[watchdog]\nthreshold = 30\n")
    dropins = tmp_path / "guard.conf.d"
    assert config.load(str(conf)).warnings == ()  # no drop-in directory: nothing to say
    dropins.write_text("[watchdog]\nthreshold = 20\n")  # a file where the directory belongs
    loaded = config.load(str(conf))
    assert loaded.warnings == ("%s is not a directory: no drop-ins are read from it" % dropins,)
    assert loaded.watchdog.runners[0].threshold == 30 and loaded.files == (str(conf),)
    dropins.unlink()
    dropins.symlink_to(tmp_path / "gone")  # a dangling symlink
    assert config.load(str(conf)).warnings == (
        "%s is not a directory: no drop-ins are read from it" % dropins,)
    dropins.unlink()
    dropins.mkdir()
    (dropins / "50-site.conf").write_text("[watchdog]\nthreshold = 20\n")
    loaded = config.load(str(conf))
    assert loaded.warnings == () and loaded.watchdog.runners[0].threshold == 20
    real = os.listdir

    def refused(path):
        if path == str(dropins):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "listdir", refused)
    assert config.dropin_problem(str(conf)) == (
        "cannot list %s: Permission denied: its drop-ins are not read" % dropins)
    assert config.dropin_problem(str(tmp_path / "other.conf")) is None


def test_a_byte_order_mark_is_a_warning_and_left_out(tmp_path):
    path = tmp_path / "guard.conf"
    path.write_bytes(b"\xef\xbb\xbf[watchdog]\nthreshold = 30\n")  # as Notepad saves "UTF-8 with BOM"
    loaded = config.load(str(path))
    assert loaded.warnings == ("%s: starts with a UTF-8 byte order mark (BOM): ignored (save the file "
                               "without it)" % path,)
    assert loaded.watchdog.runners[0].threshold == 30 and loaded.files == (str(path),)


def test_an_empty_config_path_is_a_usage_error():
    with pytest.raises(UsageError) as info:
        config.load("")
    assert str(info.value) == "--config: empty path" and info.value.exit_code == EXIT_USAGE


def test_build_refuses_an_events_filter_without_its_command():
    merged = {"notify": {"events.x": (("restarted",), "/etc/g.conf:3"),
                         "command": (("/bin/true",), "/etc/g.conf:2")}}
    with pytest.raises(ConfigError) as info:
        config.build(merged)
    assert str(info.value) == "/etc/g.conf:3: [notify] events.x: no command.x to filter"


def test_forge_urls():
    assert values.parse_url(None) == "" and values.parse_url("  ") == ""  # no value: no URL
    assert values.parse_url(" http://forge.lan:3000/ ") == "http://forge.lan:3000/"
    for text in ("ftp://forge.lan/", "http://forge.lan b", "https:///path"):
        with pytest.raises(ValueError) as info:
            values.parse_url(text)
        assert str(info.value) == "not an http:// or https:// URL with a host: %r" % text
