"""guard.conf's settings for the forge's own view (issue 20):
forge_token_file, forge_scope, forge_api, queue_wait."""

import pytest

from forgejo_runner_guard.config import config, values
from forgejo_runner_guard.report import ConfigError


def write(path, text):
    path.write_text(text)
    return str(path)


def test_defaults_leave_the_forge_unasked():
    runner = config.RunnerConfig()
    assert (runner.forge_token_file, runner.forge_scope, runner.forge_api, runner.queue_wait) == (
        None, (), "auto", 300.0)


def test_watchdog_defaults_and_a_runner_of_its_own(tmp_path):
    cfg = config.load(write(tmp_path / "g.conf", (
        "[watchdog]\nrunners = a b\nforge_token_file = /etc/forgejo-runner-guard/forge-token\n"
        "forge_scope = org ops\nqueue_wait = 10m\n"
        "[runner b]\nforge_scope = repo ops/app\nforge_api = gitea\nqueue_wait = 90\n")))
    a, b = cfg.watchdog.runners
    assert (a.forge_token_file, a.forge_scope, a.forge_api, a.queue_wait) == (
        "/etc/forgejo-runner-guard/forge-token", ("org", "ops"), "auto", 600.0)
    assert (b.forge_token_file, b.forge_scope, b.forge_api, b.queue_wait) == (
        "/etc/forgejo-runner-guard/forge-token", ("repo", "ops/app"), "gitea", 90.0)


@pytest.mark.parametrize("text, value", [
    ("repo ops/app", ("repo", "ops/app")), ("  org   ops ", ("org", "ops")), ("user", ("user",)),
    ("admin", ("admin",)), ("", ()), ("repo O.x_1/r-2.git", ("repo", "O.x_1/r-2.git")),
])
def test_scopes(text, value):
    assert values.parse_scope(text) == value


@pytest.mark.parametrize("text, message", [
    ("repo", "expected 'repo OWNER/REPO': 'repo'"),
    ("repo ops", "expected 'repo OWNER/REPO': 'repo ops'"),
    ("repo ops/app/x", "expected 'repo OWNER/REPO': 'repo ops/app/x'"),
    ("repo ops/../x", "expected 'repo OWNER/REPO': 'repo ops/../x'"),
    ("repo ops/a?b", "expected 'repo OWNER/REPO': 'repo ops/a?b'"),
    ("org", "expected 'org ORG': 'org'"),
    ("org a/b", "expected 'org ORG': 'org a/b'"),
    ("org a b", "expected 'org ORG': 'org a b'"),
    ("admin all", "admin takes nothing after it: 'admin all'"),
    ("site", "must be 'repo OWNER/REPO', 'org ORG', 'user' or 'admin': 'site'"),
])
def test_bad_scopes(text, message):
    with pytest.raises(ValueError) as info:
        values.parse_scope(text)
    assert str(info.value) == message


@pytest.mark.parametrize("text, where", [
    ("[watchdog]\nforge_scope = team x\n", ":2: [watchdog] forge_scope: must be 'repo OWNER/REPO'"),
    ("[watchdog]\nforge_api = github\n", ":2: [watchdog] forge_api: must be one of auto, forgejo, gitea"),
    ("[watchdog]\nforge_token_file = token\n", ":2: [watchdog] forge_token_file: not an absolute path"),
    ("[watchdog]\nqueue_wait = 0\n", ":2: [watchdog] queue_wait: must be more than zero"),
    ("[watchdog]\nqueue_wait = 2d\n", ":2: [watchdog] queue_wait: must be at most 1d"),
    ("[runner forgejo_runner]\nqueue_wait = soon\n", ":2: [runner forgejo_runner] queue_wait: not a duration"),
])
def test_bad_values_name_file_line_and_key(tmp_path, text, where):
    path = write(tmp_path / "g.conf", text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(info.value).startswith(path + where)


def test_an_empty_token_file_is_none(tmp_path):
    cfg = config.load(write(tmp_path / "g.conf", "[watchdog]\nforge_token_file =\n"))
    assert cfg.watchdog.runners[0].forge_token_file is None
