"""--check-config: both tools check guard.conf, its drop-ins and a candidate
drop-in (what Ansible's `validate=` hands over) and write nothing."""

import json
import os
import textwrap

import pytest
from helpers.tools import run_tool

from forgejo_runner_guard.config import config
from forgejo_runner_guard.report import UsageError

TOOLS = ("optimus-boot-reconcile", "forgejo-runner-watchdog")


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture
def site(tmp_path):
    """guard.conf, two drop-ins, and a listing of every file's bytes."""
    main = write(tmp_path / "etc" / "guard.conf", """\
        [reconcile]
        hosts_file = /nonexistent/hosts
        """)
    write(tmp_path / "etc" / "guard.conf.d" / "50-ansible.conf", """\
        [watchdog]
        runners = old
        [runner old]
        container = old
        """)
    write(tmp_path / "etc" / "guard.conf.d" / "90-local.conf", """\
        [watchdog]
        threshold = 7
        """)

    def snapshot():
        return {p: open(os.path.join(d, p), "rb").read() if os.path.isfile(os.path.join(d, p)) else None
                for d, _, files in os.walk(str(tmp_path)) for p in files}

    return main, tmp_path, snapshot


@pytest.mark.parametrize("tool", TOOLS)
def test_valid_configuration_exits_0_and_names_the_files(site, tool):
    main, root, snapshot = site
    before = snapshot()
    proc = run_tool(tool, "--config", main, "--check-config", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"valid": True, "files": [
        main, str(root / "etc/guard.conf.d/50-ansible.conf"), str(root / "etc/guard.conf.d/90-local.conf"),
    ], "warnings": []}
    assert snapshot() == before


@pytest.mark.parametrize("tool", TOOLS)
def test_bad_candidate_exits_2_with_file_line_key_and_writes_nothing(site, tool):
    main, root, snapshot = site
    candidate = write(root / "tmp" / "source", """\
        # from Ansible
        [reconcile]
        pins =
            forge.azrak.io 10.1.0.999
        """)
    before = snapshot()
    proc = run_tool(tool, "--config", main, "--check-config", candidate, "--check-config-as", "50-ansible.conf")
    assert proc.returncode == 2
    assert proc.stderr == "%s: error: %s:3: [reconcile] pins: bad address '10.1.0.999': not an IPv4 or IPv6 address\n" % (
        tool, candidate)
    assert proc.stdout == ""
    assert snapshot() == before


def test_candidate_takes_the_place_of_the_drop_in_it_will_replace(site):
    main, root, _ = site
    # The installed 50-ansible.conf names runner "old" with a [runner old]
    # section; the candidate drops it.  Read beside the old file, [runner old]
    # would be a runner not in `runners`; read in its place, all is well.
    candidate = write(root / "tmp" / "source", """\
        [watchdog]
        runners = new
        """)
    proc = run_tool("optimus-boot-reconcile", "--config", main, "--check-config", candidate,
                    "--check-config-as", "50-ansible.conf", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["files"] == [main, candidate, str(root / "etc/guard.conf.d/90-local.conf")]

    proc = run_tool("optimus-boot-reconcile", "--config", main, "--check-config", candidate)
    assert proc.returncode == 2
    assert "[runner old]: runner 'old' is not listed in [watchdog] runners (new)" in proc.stderr


def test_candidate_under_a_new_name_sorts_among_the_drop_ins(site):
    main, root, _ = site
    candidate = write(root / "tmp" / "x", "[watchdog]\nthreshold = 3\n")
    proc = run_tool("forgejo-runner-watchdog", "--config", main, "--check-config", candidate,
                    "--check-config-as", "60-new.conf", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["files"] == [
        main, str(root / "etc/guard.conf.d/50-ansible.conf"), candidate, str(root / "etc/guard.conf.d/90-local.conf"),
    ]


def test_a_bad_installed_drop_in_fails_the_check_too(site):
    main, root, _ = site
    write(root / "etc" / "guard.conf.d" / "90-local.conf", "[watchdog]\nthreshold = many\n")
    proc = run_tool("forgejo-runner-watchdog", "--config", main, "--check-config")
    assert proc.returncode == 2
    assert proc.stderr.endswith("90-local.conf:2: [watchdog] threshold: not a whole number: 'many'\n")


def test_two_runners_on_one_container_fail_the_check(site):
    main, root, _ = site
    candidate = write(root / "tmp" / "c", """\
        [watchdog]
        runners = a b
        [runner b]
        container = a
        """)
    proc = run_tool("forgejo-runner-watchdog", "--config", main, "--check-config", candidate,
                    "--check-config-as", "50-ansible.conf")
    assert proc.returncode == 2
    assert proc.stderr == "forgejo-runner-watchdog: error: runners a and b both watch container a\n"


@pytest.mark.parametrize("args, message", [
    (["--check-config", "{root}/absent"], "{root}/absent: no such configuration file"),
    (["--check-config-as", "50-ansible.conf"], "--check-config-as needs --check-config FILE"),
    (["--check-config", "{root}/etc/guard.conf", "--check-config-as", "../x.conf"],
     "--check-config-as: not a drop-in file name (NAME.conf): '../x.conf'"),
    (["--check-config", "{root}/etc/guard.conf", "--check-config-as", "x.txt"],
     "--check-config-as: not a drop-in file name (NAME.conf): 'x.txt'"),
])
def test_usage_errors_exit_2(site, args, message):
    main, root, snapshot = site
    before = snapshot()
    args = [a.format(root=root) for a in args]
    proc = run_tool("optimus-boot-reconcile", "--config", main, *args)
    assert (proc.returncode, proc.stderr) == (2, "optimus-boot-reconcile: error: %s\n" % message.format(root=root))
    assert snapshot() == before


@pytest.mark.parametrize("tool, other", [
    ("optimus-boot-reconcile", "--check"),
    ("optimus-boot-reconcile", "--unpin-all"),
    ("forgejo-runner-watchdog", "--dry-run"),
])
def test_check_config_refuses_options_it_would_ignore(site, tool, other):
    main, _, snapshot = site
    before = snapshot()
    proc = run_tool(tool, "--config", main, "--check-config", other)
    assert (proc.returncode, proc.stderr) == (2, "%s: error: --check-config does not go with %s\n" % (tool, other))
    assert snapshot() == before


def test_quiet_says_nothing_and_default_says_one_line(site):
    main, _, _ = site
    assert run_tool("optimus-boot-reconcile", "--config", main, "--check-config", "-q").stderr == ""
    proc = run_tool("optimus-boot-reconcile", "--config", main, "--check-config")
    assert proc.stderr.startswith("optimus-boot-reconcile: configuration valid: %s, " % main)
    assert proc.stderr.count("\n") == 1


@pytest.mark.parametrize("tool", TOOLS)
def test_it_warns_as_a_run_would(tmp_path, tool):
    """A window too short for its threshold, drop-ins that are not read:
    the check says what the run would say (and stays valid, exit 0)."""
    main = write(tmp_path / "guard.conf", """\
        [watchdog]
        window = 30s
        state_dir = %s
        """ % tmp_path)
    (tmp_path / "guard.conf.d").write_text("[watchdog]\nwindow = 5m\n")  # not a directory
    expected = ["runner forgejo_runner: a window of 30s holds at most 16 fetch errors (one per "
                "poll every 2s), fewer than threshold 40: the threshold can never be reached",
                "%s.d is not a directory: no drop-ins are read from it" % main]
    proc = run_tool(tool, "--config", main, "--check-config", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"valid": True, "files": [main], "warnings": sorted(
        expected, key=lambda w: not w.endswith("read from it"))}
    warned = ["%s: warning: %s" % (tool, text) for text in json.loads(proc.stdout)["warnings"]]
    assert proc.stderr.splitlines() == warned
    proc = run_tool(tool, "--config", main, "--check-config")
    assert (proc.returncode, proc.stderr.splitlines()) == (
        0, warned + ["%s: configuration valid: %s" % (tool, main)])
    # the run itself says the same before it starts (here it then fails: no engine)
    run = run_tool("forgejo-runner-watchdog", "--config", main, "--dry-run",
                   env={"DOCKER_HOST": "unix://%s/none.sock" % tmp_path})
    assert run.stderr.splitlines()[:2] == [w.replace(tool, "forgejo-runner-watchdog") for w in warned]


def test_help_documents_it():
    for tool in TOOLS:
        text = run_tool(tool, "--help").stdout
        assert "--check-config [FILE]" in text and "--check-config-as NAME" in text


# ------------------------------------------------------------ the pure part


def test_with_candidate_orders_and_replaces():
    files = ["/c/g.conf", "/c/g.conf.d/10-a.conf", "/c/g.conf.d/50-ansible.conf"]
    assert config.with_candidate(files, "/c/g.conf", "/t/s") == files + ["/t/s"]
    assert config.with_candidate(files, "/c/g.conf", "/t/s", "50-ansible.conf") == [
        "/c/g.conf", "/c/g.conf.d/10-a.conf", "/t/s"]
    assert config.with_candidate(files, "/c/g.conf", "/t/s", "05-first.conf") == [
        "/c/g.conf", "/t/s", "/c/g.conf.d/10-a.conf", "/c/g.conf.d/50-ansible.conf"]
    for bad in ("a/b.conf", ".conf", "x", ""):
        with pytest.raises(UsageError):
            config.with_candidate(files, "/c/g.conf", "/t/s", bad)


@pytest.mark.parametrize("tool", TOOLS)
def test_a_byte_order_mark_is_accepted_with_a_warning(tmp_path, tool):
    """A drop-in saved by an editor that writes a UTF-8 BOM: the BOM is
    left out, the file read as written, and a warning names it, in every
    run (here --check-config, the dry run and the boot pin)."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    main = tmp_path / "guard.conf"
    main.write_bytes(b"\xef\xbb\xbf[reconcile]\nhosts_file = %s\nlock_file = %s\nstate_dir = %s\n"
                     % (str(hosts).encode(), str(tmp_path / "lock").encode(),
                        str(tmp_path).encode()))
    dropin = tmp_path / "guard.conf.d" / "50-site.conf"
    dropin.parent.mkdir()
    dropin.write_bytes(b"\xef\xbb\xbf[watchdog]\nthreshold = 30\n")
    warning = "%s: warning: %%s: starts with a UTF-8 byte order mark (BOM): ignored (save the file " \
        "without it)" % tool
    proc = run_tool(tool, "--config", str(main), "--check-config", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [warning % main, warning % dropin]
    assert json.loads(proc.stdout)["warnings"] == [line.split(": warning: ", 1)[1]
                                                   for line in proc.stderr.splitlines()]
    if tool == "optimus-boot-reconcile":
        proc = run_tool(tool, "--config", str(main))
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.splitlines()[:2] == [warning % main, warning % dropin]
        assert "forge.azrak.io # forgejo-runner-guard pin" in hosts.read_text()
    else:
        proc = run_tool(tool, "--config", str(main), "--dry-run", "--json", "--state-dir",
                        str(tmp_path), env={"DOCKER_HOST": "unix:///nonexistent/frg/docker.sock"})
        assert proc.returncode == 1, proc.stderr  # the engine, not the configuration
        assert proc.stderr.splitlines()[:2] == [warning % main, warning % dropin]
        assert json.loads(proc.stdout)["runners"][0]["threshold"] == 30
