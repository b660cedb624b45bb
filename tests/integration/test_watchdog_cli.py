"""forgejo-runner-watchdog's command line, state file, lock and metrics,
without a Docker engine (these also run on Python 3.9 with sh 1.14)."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from helpers.tools import ROOT, one_line, run_tool, tool_env
from forgejo_runner_guard.watchdog import metrics
from forgejo_runner_guard.system import safewrite
from forgejo_runner_guard.runners import state
from forgejo_runner_guard.system import engines
from forgejo_runner_guard.report import GuardError

TOOL = "forgejo-runner-watchdog"
NOWHERE = {"DOCKER_HOST": "unix:///nonexistent/frg-test/docker.sock"}


@pytest.mark.parametrize("args, word", [
    (["--threshold", "0"], "--threshold"),
    (["--threshold", "many"], "--threshold"),
    (["--window", "5 minutes"], "--window"),
    (["--window", "0"], "--window"),
    (["--recent", "-1"], "--recent"),
    (["--cooldown", "soon"], "--cooldown"),
    (["--max-restarts", "-1"], "--max-restarts"),
    (["--docker-timeout", "0"], "--docker-timeout"),
    (["--threshold", "-1"], "--threshold: must be at least 1: '-1'"),
    (["--window", "-5m"], "--window: must be more than zero: '-5m'"),
    (["--threshold", "99999999999999999999999"], "--threshold: must be at most 10000"),
    (["--max-restarts", "61"], "--max-restarts: must be at most 60: '61'"),
    (["--docker-timeout", "99999999999999999999h"], "--docker-timeout: must be at most 1h"),
    (["--window", "1d1s"], "--window: not a duration"),
    (["--window", "86401"], "--window: must be at most 1d"),
    (["--recent", "25h"], "--recent: must be at most 1d"),
    (["--cooldown", "2d"], "--cooldown: must be at most 1d"),
    (["--cooldown", "-1s"], "--cooldown: must not be negative"),
    (["--container", "-x"], "--container"),
    (["--container", "a b"], "--container"),
    (["--state-dir", ""], "--state-dir"),
    (["--bogus"], "--bogus"),
    (["-q", "-v"], "-v"),
    (["extra"], "extra"),
])
def test_usage_errors_exit_2_with_one_line(args, word, tmp_path):
    result = run_tool(TOOL, "--state-dir", str(tmp_path / "s"), *args, env=NOWHERE)
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith(TOOL + ": error: ") and word in line
    assert not (tmp_path / "s").exists()


def test_bad_config_exits_2_naming_file_line_key(tmp_path):
    conf = tmp_path / "guard.conf"
    conf.write_text("[watchdog]\nthreshold = 40\nwindow = forever\n")
    result = run_tool(TOOL, "--config", str(conf), "--state-dir", str(tmp_path / "s"), env=NOWHERE)
    assert result.returncode == 2
    line = one_line(result)
    assert "%s:3:" % conf in line and "window" in line
    assert not (tmp_path / "s").exists()


def test_out_of_range_in_a_dropin_exits_2_in_one_line(tmp_path):
    conf = tmp_path / "guard.conf"
    conf.write_text("[watchdog]\n")
    (tmp_path / "guard.conf.d").mkdir()
    (tmp_path / "guard.conf.d" / "x.conf").write_text("[watchdog]\ndocker_timeout = 99999999999999999999h\n")
    result = run_tool(TOOL, "--config", str(conf), "--state-dir", str(tmp_path), env=NOWHERE)
    assert result.returncode == 2
    assert one_line(result).endswith("x.conf:2: [watchdog] docker_timeout: must be at most 1h: "
                                     "'99999999999999999999h'")


def test_a_window_too_short_for_the_threshold_is_warned_about(tmp_path):
    result = run_tool(TOOL, "--state-dir", str(tmp_path), "--dry-run", "--window", "30s", "-q",
                      env=NOWHERE)
    assert result.stderr.splitlines()[0] == (
        TOOL + ": warning: runner forgejo_runner: a window of 30s holds at most 16 fetch errors "
        "(one per poll every 2s), fewer than threshold 40: the threshold can never be reached")
    result = run_tool(TOOL, "--state-dir", str(tmp_path), "--dry-run", "--window", "78s", "-q",
                      env=NOWHERE)
    assert "warning" not in result.stderr


def test_a_mistyped_state_dir_or_metrics_dir_is_an_error_never_created(tmp_path):
    typo = tmp_path / "nonexistent" / "x"
    result = run_tool(TOOL, "--state-dir", str(typo), env=NOWHERE)
    assert result.returncode == 1
    assert one_line(result) == ("%s: error: cannot open lock file %s/watchdog.lock: directory %s "
                                "does not exist" % (TOOL, typo, typo))
    result = run_tool(TOOL, "--state-dir", str(tmp_path), "--metrics-file", str(typo) + ".prom",
                      env=NOWHERE)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "%s: error: cannot write the metrics file %s.prom: directory %s does not exist"
        % (TOOL, typo, typo.parent))
    assert not typo.parent.exists()


def _special_files(where):
    """{name: what it is}: device nodes made here (c 1 7 and c 1 3: a full
    device and a null device, never the real /dev/full or /dev/null), a
    FIFO, a directory, and a symlink to the full one."""
    import stat

    os.mknod(str(where / "full"), stat.S_IFCHR | 0o666, os.makedev(1, 7))
    os.mknod(str(where / "null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkfifo(str(where / "fifo"))
    (where / "dir").mkdir()
    os.symlink("full", str(where / "link-to-full"))
    return {"full": "a character device", "null": "a character device", "fifo": "a FIFO",
            "dir": "a directory", "link-to-full": "a character device"}


def _kinds(where):
    import stat

    return sorted((name, stat.S_IFMT(os.lstat(str(where / name)).st_mode))
                  for name in os.listdir(str(where)))


def test_a_metrics_file_that_is_not_a_regular_file_is_refused_and_left(tmp_path):
    """--metrics-file (and metrics_file) on a device, a FIFO, a directory,
    a symlink to a device: one line naming it, exit 1, nothing replaced."""
    (tmp_path / "m").mkdir()
    (tmp_path / "state").mkdir()
    kinds = _special_files(tmp_path / "m")
    before = _kinds(tmp_path / "m")
    for name, kind in kinds.items():
        path = tmp_path / "m" / name
        result = run_tool(TOOL, "--state-dir", str(tmp_path / "state"), "--container", "x",
                          "--metrics-file", str(path), env=NOWHERE, timeout=30)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 2 and "Traceback" not in result.stderr, result.stderr
        assert lines[1] == ("%s: error: cannot write the metrics file %s: it is %s, not a regular "
                            "file; left as it is" % (TOOL, path, kind))
    conf = tmp_path / "guard.conf"
    conf.write_text("[watchdog]\nmetrics_file = %s\n" % (tmp_path / "m" / "null"))
    result = run_tool(TOOL, "--config", str(conf), "--state-dir", str(tmp_path / "state"),
                      "--container", "x", env=NOWHERE, timeout=30)
    assert result.returncode == 1 and result.stderr.splitlines()[1].endswith(
        "metrics file %s: it is a character device, not a regular file; left as it is"
        % (tmp_path / "m" / "null")), result.stderr
    assert _kinds(tmp_path / "m") == before
    assert os.listdir(str(tmp_path / "m" / "dir")) == []


def test_a_symlinked_metrics_file_is_written_through_and_stays_a_symlink(tmp_path):
    (tmp_path / "collector").mkdir()
    (tmp_path / "collector" / "guard.prom").write_text("old\n")
    os.symlink("collector/guard.prom", str(tmp_path / "guard.prom"))
    result = run_tool(TOOL, "--state-dir", str(tmp_path), "--container", "x", "--metrics-file",
                      str(tmp_path / "guard.prom"), env=NOWHERE, timeout=30)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert os.readlink(str(tmp_path / "guard.prom")) == "collector/guard.prom"
    text = (tmp_path / "collector" / "guard.prom").read_text()
    assert 'forgejo_runner_watchdog_up{container="x"} 0\n' in text
    assert sorted(os.listdir(str(tmp_path / "collector"))) == ["guard.prom"]


def test_a_lock_file_that_is_not_a_regular_file_is_refused(tmp_path):
    """The watchdog's run lock a FIFO (or a device): one line, exit 1,
    nothing opened or replaced."""
    kinds = _special_files(tmp_path)
    before = _kinds(tmp_path)
    for name, kind in kinds.items():
        if name == "dir":
            continue
        os.rename(str(tmp_path / name), str(tmp_path / "watchdog.lock"))
        result = run_tool(TOOL, "--state-dir", str(tmp_path), "--container", "x", env=NOWHERE,
                          timeout=30)
        os.rename(str(tmp_path / "watchdog.lock"), str(tmp_path / name))
        assert result.returncode == 1
        assert one_line(result) == ("%s: error: cannot open lock file %s/watchdog.lock: it is %s, "
                                    "not a regular file; left as it is" % (TOOL, tmp_path, kind))
    assert _kinds(tmp_path) == before


def _state_dir_cases(tmp_path):
    """-> [(what, extra arguments, command prefix)]: state and metrics
    places a real run fails on."""
    typo = tmp_path / "nonexistent" / "x"
    afile = tmp_path / "afile"
    afile.write_text("")
    lockdir = tmp_path / "lockdir"
    (lockdir / "watchdog.lock").mkdir(parents=True)
    readonly = tmp_path / "ro"
    readonly.mkdir()
    good = tmp_path / "good"
    good.mkdir()
    (good / "metrics.prom").mkdir()
    # a read-only bind mount, in a mount namespace of the run's own
    ro = ["unshare", "-m", "--propagation", "private", "sh", "-c",
          'mount --bind -o ro "$0" "$0" && exec "$@"', str(readonly)]
    return [
        ("mistyped", ["--state-dir", str(typo)], []),
        ("a file", ["--state-dir", str(afile)], []),
        ("lock is a directory", ["--state-dir", str(lockdir)], []),
        ("read-only", ["--state-dir", str(readonly)], ro),
        ("metrics directory mistyped", ["--state-dir", str(good), "--metrics-file",
                                        str(typo) + ".prom"], []),
        ("metrics file is a directory", ["--state-dir", str(good), "--metrics-file",
                                         str(good / "metrics.prom")], []),
    ]


def test_a_dry_run_fails_where_the_real_run_would(tmp_path):
    """The state directory (lock, state file) and the metrics file: the
    dry run says what the real run says, with its exit status, and
    writes nothing."""
    for what, args, prefix in _state_dir_cases(tmp_path):
        results = []
        for dry in (["--dry-run"], []):
            command = prefix + [sys.executable, os.path.join(ROOT, "bin", TOOL)] + args + dry
            results.append(subprocess.run(command, env=tool_env(NOWHERE), capture_output=True,
                                          text=True, timeout=60))
        dry, real = results
        assert "Traceback" not in dry.stderr + real.stderr, (what, dry.stderr, real.stderr)
        assert real.returncode == 1 and dry.returncode == 1, (what, dry.stderr, real.stderr)
        assert dry.stderr.splitlines()[-1] == real.stderr.splitlines()[-1], (what, dry.stderr,
                                                                             real.stderr)
        assert "error: cannot " in dry.stderr.splitlines()[-1]
    assert not (tmp_path / "nonexistent").exists() and os.listdir(tmp_path / "ro") == []


def test_a_dry_run_with_a_good_state_directory_creates_nothing(tmp_path):
    result = run_tool(TOOL, "--state-dir", str(tmp_path), "--dry-run",
                      "--metrics-file", str(tmp_path / "m.prom"), env=NOWHERE)
    assert result.returncode == 1 and "cannot write" not in result.stderr  # the engine is missing
    assert os.listdir(tmp_path) == []


def test_missing_config_exits_2(tmp_path):
    result = run_tool(TOOL, "--config", str(tmp_path / "nope.conf"), env=NOWHERE)
    assert result.returncode == 2
    assert "no such configuration file" in one_line(result)


def test_two_runners_on_one_container_is_a_usage_error(tmp_path):
    conf = tmp_path / "guard.conf"
    conf.write_text("[watchdog]\nrunners = a b\n[runner a]\ncontainer = x\n[runner b]\ncontainer = x\n")
    result = run_tool(TOOL, "--config", str(conf), "--dry-run", env=NOWHERE)
    assert result.returncode == 2
    assert "both watch container x" in one_line(result)


def test_help_teaches():
    result = run_tool(TOOL, "--help")
    assert result.returncode == 0
    out = result.stdout
    for text in ("what \"wedged\" means", "failed to fetch task", "--dry-run", "--docker-timeout",
                 "--max-restarts", "exit status:", "  2  usage or configuration error",
                 "orphan", "re-register", "examples:"):
        assert text in out, text


def test_help_says_the_forge_is_asked_first():
    out = run_tool(TOOL, "--help").stdout
    for text in ("asking the forge first (verify = ping, the default)",
                 "/api/actions/ping.v1.PingService/Ping", "forge-unreachable", "ping_timeout",
                 "forge_ca_file", "--add-host", "verify = none: the log alone decides"):
        assert text in out, text


def test_a_forge_ca_file_the_ping_cannot_use_is_a_usage_error(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    conf = tmp_path / "guard.conf"
    conf.write_text("[watchdog]\nforge_ca_file = %s\n" % bad)
    result = run_tool(TOOL, "--config", str(conf), "--dry-run", env=NOWHERE)
    assert result.returncode == 2
    assert one_line(result).startswith(
        "%s: error: forge_ca_file: %s: cannot use as CA file: " % (TOOL, bad))
    conf.write_text("[watchdog]\nforge_ca_file = %s\nverify = none\n" % bad)  # not used: fine
    assert run_tool(TOOL, "--config", str(conf), "--dry-run", env=NOWHERE).returncode == 1


def test_version():
    result = run_tool(TOOL, "--version")
    assert result.returncode == 0 and result.stdout.startswith(TOOL + " ")


def test_unreachable_engine_is_one_line_exit_1(tmp_path):
    result = run_tool(TOOL, "--state-dir", str(tmp_path), "--container", "forgejo_runner",
                      "--json", env=NOWHERE)
    assert result.returncode == 1
    assert "Docker engine unreachable at unix:///nonexistent/frg-test/docker.sock" \
        in one_line(result)
    doc = json.loads(result.stdout)
    assert doc["exit_status"] == 1 and doc["runners"][0]["decision"] == "error"


def test_no_docker_cli_is_one_line_exit_1_with_the_json_document(tmp_path):
    # PATH without any docker: the check fails for the runner, and --json
    # still prints its document (it printed nothing before)
    bare = tmp_path / "bin"
    bare.mkdir()
    (tmp_path / "state").mkdir()
    result = run_tool(TOOL, "--state-dir", str(tmp_path / "state"), "--container", "forgejo_runner",
                      "--dry-run", "--json", env={"PATH": str(bare)})
    assert result.returncode == 1, result.stderr
    assert "docker: command not found (install docker.io or docker-ce-cli)" in one_line(result)
    doc = json.loads(result.stdout)
    assert doc["exit_status"] == 1 and doc["runners"][0]["decision"] == "error"
    assert "command not found" in doc["runners"][0]["error"]


def test_corrupt_state_file_is_a_warning(tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    result = run_tool(TOOL, "--state-dir", str(tmp_path), env=NOWHERE)
    assert result.returncode == 1  # the engine is unreachable, not the state
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(TOOL + ": warning: the state file %s/state.json is corrupt"
                               % tmp_path)
    assert (tmp_path / "state.json").read_text() == "{not json"  # untouched: nothing restarted


# ---------------------------------------------------------------- state


def test_state_round_trip(tmp_path):
    warnings = []
    (tmp_path / "d").mkdir()
    st = state.State.load(str(tmp_path / "d"), warnings.append)
    assert st.history("r") == [] and st.restarts_total("r") == 0
    now = time.time()
    st.record("r", now - 100000)  # older than a day: pruned on save, still counted
    st.record("r", now - 10)
    st.save(now)
    again = state.State.load(str(tmp_path / "d"), warnings.append)
    assert again.history("r") == [now - 10]
    assert again.restarts_total("r") == 2
    assert again.last_restart("r") == now - 10
    assert warnings == []
    assert oct(os.stat(tmp_path / "d" / "state.json").st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("text", ["", "[]", '{"runners": 3}', '{"runners": {"r": {"restarts": ["x"]}}}',
                                  "\xff\xfe"])
def test_corrupt_state_loads_empty_with_a_warning(tmp_path, text):
    (tmp_path / "state.json").write_bytes(text.encode("latin-1"))
    warnings = []
    st = state.State.load(str(tmp_path), warnings.append)
    assert st.history("r") == []
    assert len(warnings) == 1 and "corrupt" in warnings[0]


def test_lock_waits_a_bounded_time(tmp_path):
    with safewrite.lock(str(tmp_path / state.LOCK_FILE), wait=False):
        start = time.monotonic()
        with pytest.raises(GuardError, match="another watchdog run has held"):
            with state.run_lock(str(tmp_path), 0.3):
                pass
        assert 0.3 <= time.monotonic() - start < 2.0


def test_lock_is_taken_once_released(tmp_path):
    held = threading.Event()
    release = threading.Event()
    waited = []

    def holder():
        with state.run_lock(str(tmp_path), 5):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    threading.Timer(0.2, release.set).start()
    with state.run_lock(str(tmp_path), 5, waited.append):
        pass
    thread.join()
    assert waited == [str(tmp_path / state.LOCK_FILE)]


# ---------------------------------------------------------------- metrics


def test_metrics_text(tmp_path):
    path = tmp_path / "w.prom"
    metrics.write(str(path), [
        metrics.Sample('we"ird\\', True, 152, 40, True, 3, 1700000000.5, 1699999999.0),
        metrics.Sample("down", False, None, 40, None, 0, 1700000000.5, None),
    ])
    text = path.read_text()
    assert '# TYPE forgejo_runner_watchdog_restarts_total counter\n' in text
    assert 'forgejo_runner_watchdog_fetch_errors{container="we\\"ird\\\\"} 152\n' in text
    assert 'forgejo_runner_watchdog_up{container="down"} 0\n' in text
    assert 'forgejo_runner_watchdog_fetch_errors{container="down"}' not in text
    assert 'forgejo_runner_watchdog_last_restart_timestamp_seconds{container="down"} 0\n' in text
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or \
            line.startswith("forgejo_runner_watchdog_")


def test_metrics_unwritable_is_a_guard_error(tmp_path):
    with pytest.raises(GuardError, match="cannot write the metrics file"):
        metrics.write(str(tmp_path / "no" / "dir" / "w.prom"), [])


# ---------------------------------------------------------------- docker helpers (no engine)


def test_docker_times():
    assert engines.parse_time("0001-01-01T00:00:00Z") is None
    assert engines.parse_time("") is None
    assert engines.parse_time("2026-06-29T10:00:02.5Z") == 1782727202.5
    assert engines.parse_time("2026-06-29T12:00:02+02:00") == 1782727202.0


@pytest.mark.parametrize("message, kind, text", [
    ("Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?",
     engines.EngineUnreachable, "Docker engine unreachable at"),
    ("Error response from daemon: No such container: r", engines.ContainerMissing,
     "container r does not exist"),
    ("Error response from daemon: configured logging driver does not support reading",
     engines.LogsUnreadable, "cannot read the logs of r"),
    ("something else", engines.DockerError, "docker logs r failed (exit status 1): something else"),
])
def test_docker_errors_are_one_clear_line(message, kind, text):
    exc = engines._error("logs", "r", message, 1)
    assert type(exc) is kind and text in str(exc) and "\n" not in str(exc)
    assert exc.exit_code == 1


def test_podman_times():
    # what `podman inspect --format '{{.Created}}'` prints (Go's time.String())
    assert engines.parse_time("2026-06-29 10:00:02.5 +0000 UTC") == 1782727202.5
    assert engines.parse_time("2026-06-29 12:00:02.25 +0200 CEST") == 1782727202.25
    assert engines.parse_time("0001-01-01 00:00:00 +0000 UTC") is None


@pytest.mark.parametrize("message, kind, text", [
    # what podman 4.3.1 prints (tests/integration/test_podman.py meets each for real)
    ('Error: no container with name or ID "r" found: no such container',
     engines.ContainerMissing, "container r does not exist"),
    ("Error: this container is using the 'none' log driver, cannot read logs: this container "
     "is not logging output", engines.LogsUnreadable, "use k8s-file or journald, or logs = journal"),
    ("Cannot connect to Podman. Please verify your connection to the Linux system using "
     "`podman system connection list`", engines.EngineUnreachable,
     "Podman unreachable at this host (podman, no service)"),
    ("Error: something else", engines.DockerError,
     "podman logs r failed (exit status 125): Error: something else"),
])
def test_podman_errors_are_one_clear_line(message, kind, text, monkeypatch):
    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    exc = engines._error("logs", "r", message, 125, "podman")
    assert type(exc) is kind and text in str(exc) and "\n" not in str(exc)


def test_cli_message_skips_log_lines():
    tail = ("2026-06-29T10:00:02.1Z line one\n2026-06-29T10:00:02.2Z line two\n"
            "Error response from daemon: boom\n")
    assert engines._cli_message(tail) == "Error response from daemon: boom"


def test_docker_timeout_and_state_dir_from_guard_conf_reach_the_tool(tmp_path):
    """An engine that accepts and never answers: the docker call is killed
    after guard.conf's docker_timeout (1 s, not the default 30 s), and the
    run's lock lives in guard.conf's state_dir."""
    import socket

    state_dir = tmp_path / "st"
    state_dir.mkdir()
    conf = tmp_path / "guard.conf"
    conf.write_text("[watchdog]\nstate_dir = %s\ndocker_timeout = 1s\n" % state_dir)
    listener = socket.socket(socket.AF_UNIX)
    try:
        listener.bind(str(tmp_path / "d.sock"))
        listener.listen(16)
        start = time.monotonic()
        result = run_tool(TOOL, "--config", str(conf), "--json",
                          env={"DOCKER_HOST": "unix://%s" % (tmp_path / "d.sock")})
        took = time.monotonic() - start
    finally:
        listener.close()
    assert result.returncode == 1
    assert "timed out (no answer within 1s" in one_line(result)
    assert took < 10, took
    doc = json.loads(result.stdout)
    assert doc["state_dir"] == str(state_dir) and doc["runners"][0]["decision"] == "error"
    assert sorted(os.listdir(state_dir)) == ["watchdog.lock"]


# What a check has loaded when it asks for its first docker call: the calls
# begin before the modules that read and decide load (the order is for
# speed, bench/bench_watchdog.py; rule in forgejo_runner_guard/__init__.py).
FIRST_CALL = r"""
import os, sys
from forgejo_runner_guard.system import engines

def first(self, *args, **kwargs):
    print(" ".join(sorted(m for m in sys.modules if m.startswith("forgejo_runner_guard") or m == "json")))
    sys.stdout.flush()
    os._exit(0)

engines.Call.__init__ = first
from forgejo_runner_guard.watchdog.command import main
main(sys.argv[1:])
"""


def test_the_docker_calls_begin_before_the_reading_and_deciding_modules_load(tmp_path):
    import subprocess
    import sys

    from helpers.tools import tool_env

    (tmp_path / "guard.conf").write_text("")
    proc = subprocess.run([sys.executable, "-c", FIRST_CALL, "--config", str(tmp_path / "guard.conf"),
                           "--container", "forgejo_runner", "--state-dir", str(tmp_path), "--dry-run"],
                          env=tool_env(), capture_output=True, text=True, timeout=60)
    loaded = set(proc.stdout.split())
    assert "forgejo_runner_guard.runners.backends.docker" in loaded, proc.stdout + proc.stderr
    for late in ("json", "forgejo_runner_guard.runners.jobs", "forgejo_runner_guard.runners.registration",
                 "forgejo_runner_guard.logs.runnerlog", "forgejo_runner_guard.logs.stamps",
                 "forgejo_runner_guard.watchdog.decide", "forgejo_runner_guard.watchdog.output"):
        assert late not in loaded, late
