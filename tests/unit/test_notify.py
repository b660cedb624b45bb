"""[notify]: the configuration, running the commands (real programs, real
failures), the shipped examples against a real HTTP server on loopback
(the real curl and the real Apprise CLI), --notify-test and reconcile's
pin-drift.  The pure rules (transition, filters, the document and the
environment): test_notify_rules.py; the evidence lines runnerlog keeps:
logs/test_runnerlog.py; the watchdog's engine scenarios:
test_notify_watchdog.py."""

import http.server
import io
import json
import os
import stat
import subprocess
import sys
import threading
import time

import pytest

from helpers.tools import ROOT, plain, run_tool, tool_env
from forgejo_runner_guard.config import config
from forgejo_runner_guard import notify
from forgejo_runner_guard.report import Reporter

EXAMPLES = os.path.join(ROOT, "debian", "examples")
EVIDENCE = (
    '2026-06-29T10:00:01.000000000Z time="2026-06-29T10:00:01Z" level=error '
    'msg="failed to fetch task" error="unavailable: unexpected EOF"',
    '2026-06-29T10:00:03.000000000Z time="2026-06-29T10:00:03Z" level=error '
    'msg="failed to fetch task" error="unavailable: connection reset by peer"',
)


# ---------------------------------------------------------------- configuration


def write(path, text, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mode is not None:
        path.chmod(mode)
    return str(path)


def test_notify_section(tmp_path):
    conf = write(tmp_path / "guard.conf",
                 "[notify]\ncommand = true --flag 'two words'\n"
                 "command.mail = /bin/echo root\nevents.mail = refused recovered refused\n"
                 "timeout = 3s\n")
    n = config.load(conf).notify
    assert n.timeout == 3.0
    assert [(c.key, c.name, c.argv, c.events) for c in n.commands] == [
        ("command", "command", ("true", "--flag", "two words"), ()),
        ("command.mail", "mail", ("/bin/echo", "root"), ("refused", "recovered")),
    ]
    assert n.commands[1].where == "%s:3" % conf
    assert config.load(write(tmp_path / "empty.conf", "[notify]\ncommand =\n")).notify == \
        config.NotifyConfig()
    assert config.Config().notify == config.NotifyConfig(commands=(), timeout=10.0)


@pytest.mark.parametrize("text, line, key, what", [
    ("[notify]\ncommand = {script}\n", 2, "command", "is not an executable program"),
    ("[notify]\n\ncommand.x = no-such-program-here\n", 3, "command.x",
     "no-such-program-here is not an executable program in PATH"),
    ("[notify]\ncommand = true\nevents = restarted bogus\n", 3, "events", "unknown event 'bogus'"),
    ("[notify]\nevents.x = refused\n", 2, "events.x", "no command.x to filter"),
    ("[notify]\ncommand = true 'unbalanced\n", 2, "command", "cannot split into words"),
    ("[notify]\ncommand.Bad/Name = true\n", 2, "command.bad/name", "unknown key"),
    ("[notify]\ncommand = true\ntimeout = 0\n", 3, "timeout", "must be more than zero"),
    ("[notify]\ncommand = true\ntimeout = ten seconds\n", 3, "timeout", "not a duration"),
    ("[notify]\ncommand = true\ncolour = red\n", 3, "colour", "unknown key"),
])
def test_a_notify_mistake_stops_only_notify_test_and_check_config(tmp_path, text, line, key,
                                                                  what):
    """[notify] only sends notifications: a mistake in it is one warning
    line for the boot pin and the check, which carry on; --notify-test
    (all about [notify]) and --check-config stop on it (exit 2)."""
    script = write(tmp_path / "notify.sh", "#!/bin/sh\nexit 0\n", 0o644)  # not executable
    hosts = write(tmp_path / "hosts", "127.0.0.1 localhost\n")
    conf = write(tmp_path / "guard.conf", "[reconcile]\nhosts_file = %s\nlock_file = %s\n"
                 "state_dir = %s\n" % (hosts, tmp_path / "hosts.lock", tmp_path)
                 + text.format(script=script))
    line += 4
    before = open(conf, "rb").read()
    head = "%s:%d: [notify] %s: " % (conf, line, key)
    for tool, args in [("forgejo-runner-watchdog", ("--notify-test",)),
                       ("forgejo-runner-watchdog", ("--check-config",)),
                       ("optimus-boot-reconcile", ("--check-config",))]:
        result = run_tool(tool, "--config", conf, *args)
        assert result.returncode == 2, result.stderr
        (only,) = result.stderr.splitlines()
        assert only.startswith("%s: error: %s" % (tool, head)) and what in only, only
    outcome = ("its notifications will fail, each one a warning" if "executable" in what
               else "ignored: a mistake in [notify] never stops this command")
    result = run_tool("optimus-boot-reconcile", "--config", conf, "--pin", "forge.azrak.io=10.1.0.10")
    assert result.returncode == 0, result.stderr
    warning, summary = result.stderr.splitlines()
    assert warning.startswith("optimus-boot-reconcile: warning: " + head) and what in warning
    assert warning.endswith("(%s)" % outcome)
    assert summary.endswith("updated (atomic rename): forge.azrak.io -> 10.1.0.10 added")
    result = run_tool("forgejo-runner-watchdog", "--config", conf, "--dry-run",
                      env={"DOCKER_HOST": "unix:///nonexistent/frg-test/docker.sock"})
    assert result.returncode == 1, result.stderr  # the engine, not the configuration
    warning, error = result.stderr.splitlines()
    assert warning.startswith("forgejo-runner-watchdog: warning: " + head) and what in warning
    assert warning.endswith("(%s)" % outcome)
    assert "Docker engine unreachable" in error
    assert open(conf, "rb").read() == before


def test_a_missing_notify_program_at_run_time_is_a_warning(tmp_path):
    """The boot pin with a [notify] command that is gone: pinned, exit 0;
    a drift seen by --check: exit 3; the program is named in warnings."""
    hosts = write(tmp_path / "hosts", "127.0.0.1 localhost\n")
    conf = write(tmp_path / "guard.conf", "[reconcile]\nhosts_file = %s\nlock_file = %s\n"
                 "state_dir = %s\n[notify]\ncommand = %s\n"
                 % (hosts, tmp_path / "hosts.lock", tmp_path, tmp_path / "gone"))
    load = ("optimus-boot-reconcile: warning: %s:6: [notify] command: %s is not an executable "
            "program (its notifications will fail, each one a warning)" % (conf, tmp_path / "gone"))
    result = run_tool("optimus-boot-reconcile", "--config", conf, "--check")
    assert result.returncode == 3, result.stderr
    assert result.stderr.splitlines() == [
        load,
        "optimus-boot-reconcile: %s: not in sync, would change: forge.azrak.io -> 10.1.0.10 "
        "added" % hosts,
        "optimus-boot-reconcile: warning: notify pin-drift through [notify] command failed: %s "
        "is not an executable program" % (tmp_path / "gone")]
    result = run_tool("optimus-boot-reconcile", "--config", conf)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 3 and lines[0] == load and lines[2] == (
        "optimus-boot-reconcile: warning: notify recovered through [notify] command failed: %s is "
        "not an executable program" % (tmp_path / "gone"))  # the drift ended
    assert "10.1.0.10\tforge.azrak.io # forgejo-runner-guard pin" in open(hosts).read()


# ---------------------------------------------------------------- running


def reporter():
    stream = io.StringIO()
    return Reporter("tool", verbosity=0, stream=stream, journal=False), stream


def doc(event="refused", runner="forgejo_runner", evidence=EVIDENCE):
    return notify.event_document(event, runner, "refused", "forgejo_runner: 60 fetch errors: refused",
                                 error="unauthenticated: unregistered runner", evidence=evidence,
                                 host="build-1", now=1782727200.5, tool="forgejo-runner-watchdog")


def test_a_command_gets_the_event_in_its_environment_and_on_stdin(tmp_path):
    out = tmp_path / "got"
    script = write(tmp_path / "rec", "#!/bin/sh\n{ env | grep ^GUARD_ | sort; echo ---; cat; } >%s\n"
                   "printf %%s \"$GUARD_EVIDENCE\" >%s.evidence\n" % (out, out), 0o755)
    rep, stream = reporter()
    results = notify.send([config.NotifyCommand("command", (script,))], [doc()], 5, rep)
    assert results == [(results[0][0], "command", None)] and stream.getvalue() == ""
    env, _, stdin = out.read_text().partition("---\n")
    assert json.loads(stdin) == doc()
    assert "GUARD_EVENT=refused\n" in env and "GUARD_RUNNER=forgejo_runner\n" in env
    assert "GUARD_HOST=build-1\n" in env and "GUARD_DECISION=refused\n" in env
    assert "GUARD_SUMMARY=forgejo_runner: 60 fetch errors: refused\n" in env
    assert "GUARD_ERROR=unauthenticated: unregistered runner\n" in env
    assert (tmp_path / "got.evidence").read_text() == "\n".join(EVIDENCE)
    assert "GUARD_TIME=1782727200.500\n" in env


def test_failures_are_one_warning_line_each(tmp_path):
    gone = write(tmp_path / "gone", "#!/bin/sh\n", 0o755)
    os.unlink(gone)  # configured, then removed
    commands = [
        config.NotifyCommand("command.fails", ("sh", "-c", "echo 'bad token' >&2; exit 22")),
        config.NotifyCommand("command.gone", (gone,)),
        config.NotifyCommand("command.hangs", ("sh", "-c", "sleep 30 & sleep 40")),
        config.NotifyCommand("command.noexec", (write(tmp_path / "data", "not a program\n", 0o755),)),
        config.NotifyCommand("command.nointerp", (write(tmp_path / "script",
                                                        "#!/nonexistent/sh\n", 0o755),)),
        config.NotifyCommand("command.ok", ("true",)),
        config.NotifyCommand("command.other", ("false",), ("restarted",)),  # filtered out
    ]
    rep, stream = reporter()
    start = time.monotonic()
    results = notify.send(commands, [doc()], 1.0, rep)
    took = time.monotonic() - start
    assert took < 1.9, took  # side by side, and the hung one's child killed with it
    assert [(key, error is None) for _, key, error in results] == [
        ("command.fails", False), ("command.gone", False), ("command.hangs", False),
        ("command.noexec", False), ("command.nointerp", False), ("command.ok", True)]
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5, lines
    prefix = "tool: warning: notify refused (forgejo_runner) through [notify] "
    assert lines[0] == prefix + "command.fails failed: exit status 22: bad token"
    assert lines[1].startswith(prefix + "command.gone failed: ") and gone in lines[1]
    assert lines[2] == prefix + "command.hangs failed: killed it: no answer within 1s"
    assert lines[3] == prefix + ("command.noexec failed: cannot run it: Exec format error (not "
                                 "a program, nor a script starting with #!)")
    assert lines[4] == prefix + ("command.nointerp failed: cannot run it: the interpreter its #! "
                                 "line names does not exist")
    for line in lines:
        plain(line)


def test_dry_run_runs_nothing_and_says_what_it_would_send(tmp_path):
    mark = tmp_path / "ran"
    rep, stream = reporter()
    commands = [config.NotifyCommand("command", ("touch", str(mark))),
                config.NotifyCommand("command.x", ("touch", str(mark)), ("restarted",))]
    assert notify.send(commands, [doc()], 5, rep, dry_run=True) == []
    assert not mark.exists()
    assert stream.getvalue() == \
        "tool: would notify refused (forgejo_runner) through command (dry run)\n"


# ---------------------------------------------------------------- the examples


class Recorder(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append((self.path, dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": 1}')

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A real HTTP server on loopback that records every POST."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    httpd.url = "http://127.0.0.1:%d" % httpd.server_address[1]
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def send_one(argv, event=None):
    rep, stream = reporter()
    results = notify.send([config.NotifyCommand("command.example", tuple(argv))],
                          [event or doc()], 20, rep)
    assert stream.getvalue() == "" and results[0][2] is None, stream.getvalue()


def test_ntfy_example_with_curl(server, tmp_path):
    token = write(tmp_path / "ntfy.token", "tk_secret")
    send_one([os.path.join(EXAMPLES, "notify-ntfy"), server.url + "/forgejo-runner", token])
    [(path, headers, body)] = server.requests
    assert path == "/forgejo-runner"
    assert headers["Title"] == "refused: forgejo_runner on build-1"
    assert headers["Priority"] == "high" and headers["Authorization"] == "Bearer tk_secret"
    text = body.decode()
    assert text.startswith("forgejo_runner: 60 fetch errors: refused\n")
    assert "%s\n%s" % EVIDENCE in text


def test_gotify_example_with_curl(server, tmp_path):
    token = write(tmp_path / "gotify.token", "AbCdEf\n")
    event = doc("recovered", evidence=())
    event["summary"] = "@/etc/shadow"  # sent as text, never read as a file
    send_one([os.path.join(EXAMPLES, "notify-gotify"), server.url + "/", token], doc())
    send_one([os.path.join(EXAMPLES, "notify-gotify"), server.url, token], event)
    (path, headers, body), (_, _, body2) = server.requests
    assert path == "/message" and headers["X-Gotify-Key"] == "AbCdEf"
    assert headers["Content-Type"].startswith("multipart/form-data")
    text = body.decode()
    assert 'name="title"\r\n\r\nrefused: forgejo_runner on build-1\r\n' in text
    assert 'name="priority"\r\n\r\n8\r\n' in text
    assert "forgejo_runner: 60 fetch errors: refused\n\nlast fetch errors:\n%s\n%s\r\n" % EVIDENCE \
        in text
    assert 'name="message"\r\n\r\n@/etc/shadow\r\n' in body2.decode()


def test_apprise_example_with_the_apprise_cli(server):
    apprise = os.path.join(os.path.dirname(sys.executable), "apprise")
    assert os.access(apprise, os.X_OK), "apprise is not installed in this venv (tests/requirements.txt)"
    port = server.server_address[1]
    send_one([os.path.join(EXAMPLES, "notify-apprise"), apprise,
              "json://127.0.0.1:%d/hook" % port])
    [(path, headers, body)] = server.requests
    assert path == "/hook"
    got = json.loads(body)
    assert got["title"] == "refused: forgejo_runner on build-1"
    assert got["type"] == "failure"
    assert got["message"].startswith("forgejo_runner: 60 fetch errors: refused")
    assert all(line in got["message"] for line in EVIDENCE)


def test_mail_example_hands_mail_the_subject_and_the_body(tmp_path):
    """mail(1) needs an MTA this machine must not run: a stand-in `mail`
    on PATH records what the example hands it."""
    got = tmp_path / "mail.out"
    write(tmp_path / "bin" / "mail", "#!/bin/sh\n{ printf '%%s\\n' \"$@\"; echo ---; cat; } >%s\n"
          % got, 0o755)
    path = str(tmp_path / "bin") + os.pathsep + os.environ["PATH"]
    event = doc()
    old = os.environ["PATH"]
    os.environ["PATH"] = path
    try:
        send_one([os.path.join(EXAMPLES, "notify-mail"), "root", "ops@example.org"], event)
    finally:
        os.environ["PATH"] = old
    args, _, body = got.read_text().partition("---\n")
    assert args.splitlines() == ["-s", "[forgejo-runner-guard] refused: forgejo_runner on build-1",
                                 "root", "ops@example.org"]
    assert body.startswith("forgejo_runner: 60 fetch errors: refused\n")
    assert "newest error: unauthenticated: unregistered runner" in body
    assert "%s\n%s" % EVIDENCE in body
    assert json.loads(body.split("the event:\n", 1)[1]) == event


def test_examples_are_shipped_executable():
    listed = open(os.path.join(ROOT, "debian", "forgejo-runner-guard.examples")).read().split()
    assert listed == ["debian/examples/*", "contrib/ansible"]  # the notify examples, the role
    for name in ("notify-ntfy", "notify-gotify", "notify-apprise", "notify-mail"):
        mode = os.stat(os.path.join(EXAMPLES, name)).st_mode
        assert mode & stat.S_IXUSR, name
    for name in ("notify-failure@.service", "onfailure.conf", "notify-network.conf"):
        assert os.path.isfile(os.path.join(EXAMPLES, name)), name


# ---------------------------------------------------------------- --notify-test


def test_notify_test_sends_one_test_event_through_every_command(tmp_path):
    out = tmp_path / "events"
    rec = write(tmp_path / "rec", "#!/bin/sh\n{ echo \"$GUARD_EVENT $1\"; cat; } >%s.$1\n" % out,
                0o755)  # the commands run side by side: a file each
    conf = write(tmp_path / "guard.conf",
                 "[watchdog]\nrunners = a b\n[notify]\ncommand = %s one\n"
                 "command.two = %s two\nevents.two = refused\n" % (rec, rec))
    result = run_tool("forgejo-runner-watchdog", "--config", conf, "--notify-test")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "forgejo-runner-watchdog: notify test: [notify] command: sent",
        "forgejo-runner-watchdog: notify test: [notify] command.two: sent"]
    one, two = (open("%s.%s" % (out, n)).read().splitlines() for n in ("one", "two"))
    assert (one[0], two[0]) == ("test one", "test two")
    assert one[1] == two[1]
    event = json.loads(one[1])
    assert (event["event"], event["runner"], event["decision"]) == ("test", "a b", "test")
    assert event["host"] == os.uname().nodename


def test_notify_test_exit_1_when_one_fails_and_2_without_commands(tmp_path):
    conf = write(tmp_path / "guard.conf", "[notify]\ncommand = true\ncommand.bad = false\n")
    result = run_tool("forgejo-runner-watchdog", "--config", conf, "--notify-test")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "forgejo-runner-watchdog: warning: notify test (forgejo_runner) through [notify] "
        "command.bad failed: exit status 1",
        "forgejo-runner-watchdog: notify test: [notify] command: sent"]
    dry = run_tool("forgejo-runner-watchdog", "--config", conf, "--notify-test", "--dry-run")
    assert dry.returncode == 0 and "would notify test" in dry.stderr
    none = run_tool("forgejo-runner-watchdog", "--config", write(tmp_path / "none.conf", ""),
                    "--notify-test")
    assert none.returncode == 2
    assert none.stderr == "forgejo-runner-watchdog: error: --notify-test: no command in [notify] " \
        "of the configuration\n"


# ---------------------------------------------------------------- reconcile: pin-drift


def test_reconcile_notifies_pin_drift_once_and_its_end(tmp_path):
    out = tmp_path / "events"
    rec = write(tmp_path / "rec", "#!/bin/sh\ncat >>%s\n" % out, 0o755)
    hosts = write(tmp_path / "hosts", "127.0.0.1 localhost\n203.0.113.7 forge.azrak.io\n")
    (tmp_path / "state").mkdir()  # the tool creates only the package's own directories
    conf = write(tmp_path / "guard.conf",
                 "[reconcile]\nhosts_file = %s\nstate_dir = %s\nlock_file = %s\n"
                 "[notify]\ncommand = %s\n" % (hosts, tmp_path / "state", tmp_path / "lock", rec))

    def events():
        return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []

    for _ in range(2):  # drift seen twice: notified once
        result = run_tool("optimus-boot-reconcile", "--config", conf, "--check")
        assert result.returncode == 3, result.stderr
    [drift] = events()
    assert (drift["event"], drift["runner"], drift["decision"]) == ("pin-drift", "", "drift")
    assert drift["summary"].startswith("%s: not in sync, would change" % hosts)
    applied = run_tool("optimus-boot-reconcile", "--config", conf)
    assert applied.returncode == 0, applied.stderr
    again = run_tool("optimus-boot-reconcile", "--config", conf, "--check")
    assert again.returncode == 0, again.stderr
    assert [e["event"] for e in events()] == ["pin-drift", "recovered"]
    assert events()[1]["previous"] == "pin-drift"
    state = json.load(open(tmp_path / "state" / notify.RECONCILE_STATE))
    assert state["runners"] == {}  # the condition ended: nothing left to keep


def test_reconcile_keys_a_hosts_file_by_its_real_path(tmp_path):
    """Two different ./hosts (run from two directories) are two files: the
    drift of one is never 'recovered' by the other; one file named two
    ways (a symlink, ./hosts and its whole path) is one."""
    out = tmp_path / "events"
    rec = write(tmp_path / "rec", "#!/bin/sh\ncat >>%s\n" % out, 0o755)
    (tmp_path / "state").mkdir()
    conf = write(tmp_path / "guard.conf",
                 "[reconcile]\nstate_dir = %s\nlock_file = %s\n[notify]\ncommand = %s\n"
                 % (tmp_path / "state", tmp_path / "lock", rec))
    drifting, pinned = tmp_path / "a", tmp_path / "b"
    for directory, text in ((drifting, "203.0.113.7 forge.azrak.io\n"),
                            (pinned, "10.1.0.10 forge.azrak.io\n")):
        directory.mkdir()
        write(directory / "hosts", text)
    os.symlink(str(drifting / "hosts"), str(tmp_path / "link"))

    def check(cwd, path="./hosts"):
        proc = subprocess.run([sys.executable, os.path.join(ROOT, "bin", "optimus-boot-reconcile"),
                               "--config", conf, "--hosts-file", path, "--check"],
                              cwd=str(cwd), env=tool_env(), capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode in (0, 3) and "Traceback" not in proc.stderr, proc.stderr
        return [json.loads(line)["event"] for line in out.read_text().splitlines()] \
            if out.exists() else []

    assert check(drifting) == ["pin-drift"]
    assert check(pinned) == ["pin-drift"]  # another file, in sync: nothing ended
    assert check(tmp_path, str(tmp_path / "link")) == ["pin-drift"]  # the same file
    assert check(tmp_path, str(drifting / "hosts")) == ["pin-drift"]
    state = json.load(open(tmp_path / "state" / notify.RECONCILE_STATE))
    assert list(state["runners"]) == ["hosts:%s" % (drifting / "hosts")]


# ---------------------------------------------------------------- the OnFailure= example


def test_onfailure_unit_verifies_and_the_drop_in_names_it(tmp_path):
    import configparser
    import subprocess

    unit = "notify-failure@forgejo-runner-watchdog.service.service"  # as OnFailure= starts it
    with open(os.path.join(EXAMPLES, "notify-failure@.service")) as handle:
        (tmp_path / unit).write_text(handle.read())
    proc = subprocess.run(["systemd-analyze", "verify", unit], cwd=str(tmp_path), text=True,
                          capture_output=True, env=dict(os.environ, SYSTEMD_UNIT_PATH="%s:" % tmp_path))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    drop_in = configparser.ConfigParser(interpolation=None)
    drop_in.read(os.path.join(EXAMPLES, "onfailure.conf"))
    assert drop_in["Unit"]["OnFailure"] == "notify-failure@%n.service"
    assert drop_in.sections() == ["Unit"]


def test_state_keeps_the_condition_and_survives_a_damaged_one(tmp_path):
    from forgejo_runner_guard.runners import state

    history = state.State.load(str(tmp_path), pytest.fail)
    history.record("a", 100.0)
    history.set_notified("a", "refused", 101.0)
    history.set_notified("b", "budget-exhausted", 102.0)
    history.save(200.0)
    again = state.State.load(str(tmp_path), pytest.fail)
    assert (again.notified("a"), again.notified("b"), again.notified("c")) == \
        ("refused", "budget-exhausted", None)
    assert again.history("a") == [100.0] and again.history("b") == []
    again.set_notified("a", None, 300.0)
    again.save(300.0)
    doc = json.load(open(tmp_path / "state.json"))
    assert doc["runners"]["a"] == {"restarts": [100.0], "restarts_total": 1}
    doc["runners"]["b"]["notified"] = {"condition": "refused"}  # damaged: forgotten, nothing else
    (tmp_path / "state.json").write_text(json.dumps(doc))
    third = state.State.load(str(tmp_path), pytest.fail)
    assert third.notified("b") is None and third.history("a") == [100.0]
